/**
 * The nft tool: find it, run a script as one transaction, read with a script, check a script without
 * applying it. Every nftables-mode process goes through here.
 */
import { ModeUnavailableError } from '../errors.js';
import {
  ExecError,
  defaultExec,
  spawnInteractive,
  watchLines,
  which,
  type Exec,
  type Interactive,
  type LineWatch,
} from './run.js';

/** Generous: a 30k-service full load takes seconds on a loaded 2-core machine. */
export const NFT_TIMEOUT_MS = 120_000;

/**
 * Runs a script as one atomic transaction (default `nft -f -`); injectable for tests. `close` (when
 * present) ends a process the runner keeps between transactions.
 */
export type NftRunner = ((script: string) => Promise<void>) & { close?: () => void };

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
 * table does not exist (nft exits 1 then). The listing goes through a temporary file: nft flushes
 * each token, and a 10k-service table read through a pipe took twice as long.
 */
export async function nftListTable(
  family: 'ip' | 'ip6',
  name: string,
  nft = 'nft',
  exec: Exec = defaultExec,
): Promise<string> {
  const r = await exec(nft, ['list', 'table', family, name], {
    timeoutMs: NFT_TIMEOUT_MS,
    okCodes: [0, 1],
    stdoutToFile: true,
  });
  return r.code === 0 ? r.stdout : '';
}

/** Scripts longer than this go to `nft -f -`: `nft -i` reads its input one byte per read(2). */
export const SESSION_MAX_BYTES = 64 * 1024;
/**
 * A session is replaced after this many transactions or this much input: nft's interactive history
 * keeps every line in memory.
 */
export const SESSION_MAX_TRANSACTIONS = 1000;
export const SESSION_MAX_INPUT_BYTES = 4 * 1024 * 1024;
/** After this many sessions that died on their own, every transaction uses `nft -f -`. */
const SESSION_MAX_DEATHS = 3;

export interface NftSessionOptions {
  /** The interactive command: default `nft -i` (the bench prefixes `ip netns exec NS`). */
  readonly command?: string;
  readonly args?: readonly string[];
  /** Large scripts (and any when sessions keep dying): default `nftRunner(nft)`. */
  readonly fallback?: NftRunner;
  /** Called with the pid of the `nft -i` process before each of its transactions (the drift gate). */
  readonly onOwnPid?: (pid: number) => void;
  readonly maxBytes?: number;
  readonly maxTransactions?: number;
  readonly maxInputBytes?: number;
  readonly timeoutMs?: number;
}

/**
 * A runner that keeps one `nft -i` process and writes each small transaction to it as one line
 * (nft reads a line and commits it as one batch, as `nft -f` does a file). Every `nft -f` process
 * pays ~10–25 ms on this machine after its commit, closing its netlink socket (measured with strace:
 * the commit itself takes well under 1 ms for an incremental sync at 10k services); a kept
 * process pays it once. After each transaction line the runner writes a marker line that nft
 * rejects (`kpt-sync-N`): nft reports every error on stderr in input order, so what stderr holds
 * before the marker's own error is the transaction's result (empty: committed). Scripts over
 * `maxBytes`, scripts with `#` (a comment would swallow the rest of the line) and every script once
 * sessions keep dying go to `fallback`. A session that times out is killed; the transaction's
 * outcome is then unknown and the caller's next sync is a full one, as after any failure.
 */
export function nftSessionRunner(nft = 'nft', opts: NftSessionOptions = {}): NftRunner & { close(): void } {
  const command = opts.command ?? nft;
  const args = opts.args ?? ['-i'];
  const fallback = opts.fallback ?? nftRunner(nft);
  const maxBytes = opts.maxBytes ?? SESSION_MAX_BYTES;
  const maxTransactions = opts.maxTransactions ?? SESSION_MAX_TRANSACTIONS;
  const maxInputBytes = opts.maxInputBytes ?? SESSION_MAX_INPUT_BYTES;
  const timeoutMs = opts.timeoutMs ?? NFT_TIMEOUT_MS;
  interface Session {
    proc: Interactive;
    stderr: string;
    used: number;
    written: number;
    /** Ended by us (recycled, timed out, closed): its exit is no death. */
    retired: boolean;
    /** The transaction in flight: called on new stderr, or with the exit. */
    pending?: (exit?: { code: number | null; error?: string }) => void;
  }
  let session: Session | undefined;
  let deaths = 0;
  let seq = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const start = (): Session => {
    const s: Session = { stderr: '', used: 0, written: 0, retired: false } as Session;
    s.proc = spawnInteractive(
      command,
      args,
      {
        onStderr: (chunk) => {
          s.stderr += chunk;
          s.pending?.();
        },
        onExit: (code, error) => {
          if (session === s) session = undefined;
          if (!s.retired) deaths++;
          s.pending?.({ code, ...(error !== undefined ? { error } : {}) });
        },
      },
      // nft -i writes its line history to $HOME/.nft_history when it exits: nowhere, here.
      { ...process.env, HOME: '/nonexistent/kube-proxy-ts' },
    );
    return s;
  };
  const retire = (s: Session | undefined): void => {
    if (!s) return;
    if (session === s) session = undefined;
    s.retired = true;
    s.proc.kill();
  };

  const viaSession = (script: string): Promise<void> => {
    if (session && (session.used >= maxTransactions || session.written >= maxInputBytes)) retire(session);
    const s = (session ??= start());
    s.used++;
    const token = `kpt-sync-${++seq}`;
    const line = script
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .join(' ; ');
    s.written += line.length;
    return new Promise<void>((resolve, reject) => {
      const done = (err?: ExecError): void => {
        clearTimeout(timer);
        s.pending = undefined;
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        retire(s);
        done(new ExecError('KP_ERR_EXEC_TIMEOUT', command, args, null, s.stderr));
      }, timeoutMs);
      s.pending = (exit) => {
        if (exit) {
          done(
            new ExecError('KP_ERR_EXEC_FAILED', command, args, exit.code, `${s.stderr}${exit.error ?? ''}`),
          );
          return;
        }
        // The marker's own error is "Error: ...\n<token>\n<carets>\n"; what precedes it is ours.
        const at = `\n${s.stderr}`.indexOf(`\n${token}\n`);
        if (at < 0) return;
        const caretEnd = s.stderr.indexOf('\n', at + token.length + 1);
        if (caretEnd < 0) return;
        const before = s.stderr.slice(0, at).split('\n').slice(0, -2).join('\n').trim();
        s.stderr = s.stderr.slice(caretEnd + 1);
        done(before === '' ? undefined : new ExecError('KP_ERR_EXEC_FAILED', command, args, null, before));
      };
      if (s.proc.pid !== undefined) opts.onOwnPid?.(s.proc.pid);
      if (!s.proc.write(`${line}\n${token}\n`))
        done(new ExecError('KP_ERR_EXEC_FAILED', command, args, null, 'nft -i has exited'));
    });
  };

  const runner = (script: string): Promise<void> => {
    const useSession = script.length <= maxBytes && !script.includes('#') && deaths < SESSION_MAX_DEATHS;
    const next = queue.then(() => (useSession ? viaSession(script) : fallback(script)));
    queue = next.catch(() => undefined);
    return next;
  };
  return Object.assign(runner, {
    close: () => {
      retire(session);
      fallback.close?.();
    },
  });
}
