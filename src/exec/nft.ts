/**
 * The nft tool: find it, run a script as one transaction, read with a script, check a script without
 * applying it. Every nftables-mode process goes through here.
 */
import { ModeUnavailableError } from '../errors.js';
import { defaultExec, watchLines, which, type Exec, type LineWatch } from './run.js';

/** Generous: a 30k-service full load takes seconds on a loaded 2-core machine. */
export const NFT_TIMEOUT_MS = 120_000;

/** Runs `nft -f -` with a script (one atomic transaction); injectable for tests. */
export type NftRunner = (script: string) => Promise<void>;

/** The full path of `nft`, or a ModeUnavailableError that says how to install it. */
export function findNft(find: (cmd: string) => string | undefined = which): string {
  const nft = find('nft');
  if (!nft)
    throw new ModeUnavailableError(
      'nftables mode needs the `nft` binary (Debian: apt-get install nftables), which is not on PATH',
    );
  return nft;
}

/**
 * The default runner: `nft -f -`. `onSpawn` gets each transaction's pid (the drift gate's way of
 * knowing its own generations in `nft monitor`).
 */
export function nftRunner(nft = 'nft', exec: Exec = defaultExec, onSpawn?: (pid: number) => void): NftRunner {
  return async (script) => {
    await exec(nft, ['-f', '-'], {
      input: script,
      timeoutMs: NFT_TIMEOUT_MS,
      ...(onSpawn ? { onSpawn } : {}),
    });
  };
}

/**
 * `nft monitor` (every event of this network namespace, one line each, and a `# new generation N by
 * process P (comm)` line after each transaction) until stopped or it exits. Read-only.
 */
export function nftMonitor(
  nft: string,
  onLine: (line: string) => void,
  onExit: (code: number | null, stderr: string) => void,
): LineWatch {
  return watchLines(nft, ['monitor'], onLine, onExit);
}

/** Runs a read-only script (`list ...` commands) with `nft -t -f -` (terse: no set elements) and returns its output. */
export function nftReader(nft = 'nft', exec: Exec = defaultExec): (script: string) => Promise<string> {
  return async (script) =>
    (await exec(nft, ['-t', '-f', '-'], { input: script, timeoutMs: NFT_TIMEOUT_MS })).stdout;
}

/**
 * Runs a read-only script with `nft -f -`, not terse (set and map elements included), and returns
 * its output: the nftables drift check's read-back.
 */
export function nftFullReader(nft = 'nft', exec: Exec = defaultExec): (script: string) => Promise<string> {
  return async (script) =>
    (await exec(nft, ['-f', '-'], { input: script, timeoutMs: NFT_TIMEOUT_MS })).stdout;
}

/** `nft -c -f -`: parses and checks a script against the kernel without applying it. */
export async function nftCheck(nft: string, script: string, exec: Exec = defaultExec): Promise<void> {
  await exec(nft, ['-c', '-f', '-'], { input: script, timeoutMs: 10_000 });
}

/**
 * `nft list table <family> <name>` with its elements (not terse), for `explain --live`; '' when the
 * table does not exist (nft exits 1 then).
 */
export async function nftListTable(
  family: 'ip' | 'ip6',
  name: string,
  nft = 'nft',
  exec: Exec = defaultExec,
): Promise<string> {
  const r = await exec(nft, ['list', 'table', family, name], { timeoutMs: NFT_TIMEOUT_MS, okCodes: [0, 1] });
  return r.code === 0 ? r.stdout : '';
}
