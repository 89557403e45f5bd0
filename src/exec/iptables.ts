/**
 * The iptables tools: which iptables the system uses (legacy or nft), the family's binaries for it, and
 * the few commands every mode runs through them (save, restore, ensure/delete one rule, create a chain).
 *
 * Detection follows upstream's image (kubernetes-sigs/iptables-wrappers): the kubelet leaves a
 * KUBE-IPTABLES-HINT (or the older KUBE-KUBELET-CANARY) chain in mangle with the backend it uses; without
 * one, the backend whose save output has more rules wins; nft by default. The environment variable
 * KUBE_PROXY_IPTABLES_BACKEND=legacy|nft overrides detection.
 */
import { which, type Exec, type RunResult } from './run.js';
import type { IPFamily } from '../model/types.js';
import { ModeUnavailableError } from '../errors.js';

export type { Exec };

export type IPTablesBackendKind = 'legacy' | 'nft';

/** The environment variable that forces a backend. */
export const BACKEND_ENV = 'KUBE_PROXY_IPTABLES_BACKEND';

/** The binaries of one backend for one family. */
export interface IPTablesTools {
  readonly backend: IPTablesBackendKind;
  readonly family: IPFamily;
  /** e.g. iptables-nft or ip6tables-legacy. */
  readonly iptables: string;
  readonly restore: string;
  readonly save: string;
}

/** The tool names for a backend and family (not checked for existence). */
export function toolsFor(backend: IPTablesBackendKind, family: IPFamily): IPTablesTools {
  const base = family === 'IPv6' ? 'ip6tables' : 'iptables';
  return {
    backend,
    family,
    iptables: `${base}-${backend}`,
    restore: `${base}-${backend}-restore`,
    save: `${base}-${backend}-save`,
  };
}

/** Parses the override; undefined when unset or empty. Throws RangeError naming the variable and value otherwise. */
export function backendFromEnv(env: NodeJS.ProcessEnv): IPTablesBackendKind | undefined {
  const v = env[BACKEND_ENV]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  if (v === 'legacy' || v === 'nft') return v;
  throw new RangeError(`${BACKEND_ENV} must be "legacy" or "nft", got ${JSON.stringify(env[BACKEND_ENV])}`);
}

const HINT_RE = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m;

function ruleLines(saveText: string): number {
  let n = 0;
  for (const line of saveText.split('\n')) if (line.startsWith('-')) n++;
  return n;
}

async function saveOutput(exec: Exec, cmd: string, args: readonly string[]): Promise<string | undefined> {
  try {
    return (await exec(cmd, args, { timeoutMs: 30_000 })).stdout;
  } catch {
    return undefined;
  }
}

/**
 * Decides the backend as iptables-wrapper does: (1) KUBE_PROXY_IPTABLES_BACKEND; (2) a kubelet hint
 * chain in mangle of the nft tables, then of the legacy ones; (3) more rules in legacy save than in
 * nft save (both families) means legacy; (4) nft. Returns the choice and why.
 */
export async function detectBackend(
  exec: Exec,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ backend: IPTablesBackendKind; reason: string }> {
  const forced = backendFromEnv(env);
  if (forced) return { backend: forced, reason: `${BACKEND_ENV}=${forced}` };
  for (const b of ['nft', 'legacy'] as const) {
    for (const fam of ['IPv4', 'IPv6'] as const) {
      const t = toolsFor(b, fam);
      const out = await saveOutput(exec, t.save, ['-t', 'mangle']);
      if (out !== undefined && HINT_RE.test(out))
        return { backend: b, reason: `kubelet hint chain found in ${t.save} -t mangle` };
    }
  }
  const count = async (b: IPTablesBackendKind): Promise<number> => {
    let n = 0;
    for (const fam of ['IPv4', 'IPv6'] as const)
      n += ruleLines((await saveOutput(exec, toolsFor(b, fam).save, [])) ?? '');
    return n;
  };
  const legacy = await count('legacy');
  const nft = await count('nft');
  if (legacy > nft)
    return { backend: 'legacy', reason: `iptables-legacy has more rules (${legacy} vs ${nft})` };
  return {
    backend: 'nft',
    reason:
      legacy === 0 && nft === 0
        ? 'no rules in either backend; nft is the default'
        : `iptables-nft has at least as many rules (${nft} vs ${legacy})`,
  };
}

/** Fails with a clear message when a binary of `tools` is missing from PATH. */
export function assertToolsPresent(
  tools: IPTablesTools,
  find: (cmd: string) => string | undefined = which,
): void {
  const missing = [tools.iptables, tools.restore, tools.save].filter((c) => find(c) === undefined);
  if (missing.length > 0) {
    throw new ModeUnavailableError(
      `iptables mode (${tools.backend}, ${tools.family}) needs ${missing.join(', ')} on PATH; install the iptables package or set ${BACKEND_ENV}`,
    );
  }
}

export type IPTablesTable = 'nat' | 'filter' | 'mangle' | 'raw';

/** A rule in a built-in (or any) chain, as `iptables -t TABLE -C CHAIN ARGS...` names it. */
export interface ChainRule {
  readonly table: string;
  readonly chain: string;
  readonly args: readonly string[];
}

/**
 * `iptables-save [-t table]`: the table's text (all tables without one); with `onChunk`, the text is
 * handed to it as it arrives and '' is returned.
 */
export async function iptablesSave(
  exec: Exec,
  tools: IPTablesTools,
  table?: string,
  timeoutMs?: number,
  onChunk?: (chunk: string) => void,
): Promise<string> {
  const args = table === undefined ? [] : ['-t', table];
  const r = await exec(tools.save, args, {
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(onChunk ? { onStdout: onChunk } : {}),
  });
  return r.stdout;
}

/**
 * `iptables-restore -w --noflush [--counters]` of `text` (or its chunks): replaces the chains the text declares and
 * leaves every other chain alone.
 */
export function iptablesRestore(
  exec: Exec,
  tools: IPTablesTools,
  text: string | Iterable<string>,
  opts: { readonly counters?: boolean; readonly timeoutMs?: number } = {},
): Promise<RunResult> {
  const args = ['-w', '--noflush', ...(opts.counters ? ['--counters'] : [])];
  return exec(tools.restore, args, {
    // An iterable is the input in chunks, written as the tool reads (see RunOptions.inputChunks).
    ...(typeof text === 'string' ? { input: text } : { inputChunks: text }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
}

/** `iptables -N`: creates a chain; an existing one is fine. */
export async function ensureChain(
  exec: Exec,
  tools: IPTablesTools,
  table: string,
  chain: string,
): Promise<void> {
  await exec(tools.iptables, ['-w', '-t', table, '-N', chain], { okCodes: [0, 1] });
}

/**
 * Upstream's EnsureRule: `-C` first, then prepend (`-I CHAIN 1`) or append (`-A`) when the rule is not
 * there. Returns true when it added the rule.
 */
export async function ensureRule(
  exec: Exec,
  tools: IPTablesTools,
  rule: ChainRule,
  position: 'prepend' | 'append',
  timeoutMs?: number,
): Promise<boolean> {
  const t = timeoutMs === undefined ? {} : { timeoutMs };
  const check = await exec(tools.iptables, ['-w', '-t', rule.table, '-C', rule.chain, ...rule.args], {
    okCodes: [0, 1, 2],
    ...t,
  });
  if (check.code === 0) return false;
  const where = position === 'prepend' ? ['-I', rule.chain, '1'] : ['-A', rule.chain];
  await exec(tools.iptables, ['-w', '-t', rule.table, ...where, ...rule.args], t);
  return true;
}

/** `iptables -D` of one rule; resolves with the exit code (0 deleted, 1 or 2 not there). */
export async function deleteRule(
  exec: Exec,
  tools: IPTablesTools,
  rule: ChainRule,
  timeoutMs?: number,
): Promise<number> {
  const r = await exec(tools.iptables, ['-w', '-t', rule.table, '-D', rule.chain, ...rule.args], {
    okCodes: [0, 1, 2],
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  return r.code;
}
