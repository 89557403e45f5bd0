/**
 * Userspace portal executor: decides whether portals can run here, applies the rules that
 * portal-render.ts writes, ensures the jumps from the built-in chains and removes everything again
 * (proxier close, `--cleanup`). Every process goes through exec/run.ts (via the iptables tools' Exec).
 */
import type { IPFamily } from '../../model/types.js';
import type { Logger } from '../../observability/logger.js';
import { which, defaultExec } from '../../exec/run.js';
import {
  deleteRule,
  detectBackend,
  ensureRule,
  iptablesRestore,
  toolsFor,
  type Exec,
  type IPTablesTools,
} from '../../exec/iptables.js';
import { PORTAL_FILTER_CHAINS, PORTAL_JUMPS, PORTAL_NAT_CHAINS } from './portal-render.js';
import { KpError } from '../../errors.js';

const TIMEOUT_MS = 30_000;

/** How a userspace proxier reaches its services. */
export type PortalDecision =
  | { readonly mode: 'portal'; readonly tools: IPTablesTools; readonly reason: string }
  | { readonly mode: 'direct'; readonly reason: string };

/** What the decision depends on; injectable for tests. */
export interface PortalProbe {
  readonly exec?: Exec;
  readonly isRoot?: boolean;
  readonly find?: (cmd: string) => string | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Portal mode needs root, the family's iptables binaries (legacy or nft, chosen as iptables mode
 * does) and a nat table that answers `iptables-save -t nat`. Anything missing means direct mode,
 * with the reason.
 */
export async function decidePortals(family: IPFamily, probe: PortalProbe = {}): Promise<PortalDecision> {
  const exec = probe.exec ?? defaultExec;
  const isRoot = probe.isRoot ?? process.getuid?.() === 0;
  const find = probe.find ?? which;
  if (!isRoot) return { mode: 'direct', reason: 'not running as root' };
  let backend;
  try {
    backend = await detectBackend(exec, probe.env ?? process.env);
  } catch (err) {
    return { mode: 'direct', reason: err instanceof Error ? err.message : String(err) };
  }
  const tools = toolsFor(backend.backend, family);
  const missing = [tools.iptables, tools.restore, tools.save].filter((c) => find(c) === undefined);
  if (missing.length > 0) return { mode: 'direct', reason: `${missing.join(', ')} not found on PATH` };
  try {
    await exec(tools.save, ['-t', 'nat'], { timeoutMs: TIMEOUT_MS });
  } catch (err) {
    return {
      mode: 'direct',
      reason: `${tools.save} -t nat failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return { mode: 'portal', tools, reason: `${tools.iptables} (${backend.reason})` };
}

/** Writes our chains with `iptables-restore -w --noflush` (the text declares, so rewrites, each chain). */
export async function applyPortalRules(
  tools: IPTablesTools,
  text: string,
  exec: Exec = defaultExec,
): Promise<void> {
  await iptablesRestore(exec, tools, text, { timeoutMs: TIMEOUT_MS });
}

/** Adds each jump of PORTAL_JUMPS that `-C` does not find (prepend: `-I CHAIN 1`, else `-A`). Call after the chains exist. */
export async function ensurePortalJumps(tools: IPTablesTools, exec: Exec = defaultExec): Promise<number> {
  let added = 0;
  for (const j of PORTAL_JUMPS) {
    if (await ensureRule(exec, tools, j, j.position === 'prepend' ? 'prepend' : 'append', TIMEOUT_MS))
      added++;
  }
  return added;
}

async function saveText(tools: IPTablesTools, table: 'nat' | 'filter', exec: Exec): Promise<string> {
  try {
    return (await exec(tools.save, ['-t', table], { timeoutMs: TIMEOUT_MS })).stdout;
  } catch {
    return '';
  }
}

function declares(save: string, chain: string): boolean {
  return save.split('\n').some((l) => l.startsWith(`:${chain} `));
}

/**
 * Removes the jumps and our chains from one family's tables. Looks first (iptables-save) and does
 * nothing when none of our chains exist, so it never creates tables. Best effort: returns the errors
 * it met (empty when all went well).
 */
export async function removePortals(tools: IPTablesTools, exec: Exec = defaultExec): Promise<string[]> {
  const errors: string[] = [];
  const saves = { nat: await saveText(tools, 'nat', exec), filter: await saveText(tools, 'filter', exec) };
  const chains: ['nat' | 'filter', string][] = [
    ...PORTAL_NAT_CHAINS.filter((c) => declares(saves.nat, c)).map((c) => ['nat', c] as ['nat', string]),
    ...PORTAL_FILTER_CHAINS.filter((c) => declares(saves.filter, c)).map(
      (c) => ['filter', c] as ['filter', string],
    ),
  ];
  if (chains.length === 0) return errors;
  for (const j of PORTAL_JUMPS) {
    if (!declares(saves[j.table], j.args[j.args.length - 1]!)) continue;
    // A jump may have been added twice (e.g. by two runs racing): delete until none is left (bounded).
    for (let i = 0; i < 8; i++) {
      const code = await deleteRule(exec, tools, j, TIMEOUT_MS).catch((err: unknown) => {
        errors.push(String(err));
        return undefined;
      });
      if (code !== 0) break;
    }
  }
  for (const [table, chain] of chains) {
    for (const op of ['-F', '-X']) {
      try {
        await exec(tools.iptables, ['-w', '-t', table, op, chain], { timeoutMs: TIMEOUT_MS });
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  }
  return errors;
}

/**
 * `--cleanup` for userspace mode: removes portal chains and jumps of both families with the
 * detected iptables backend. Needs root; without it (or without iptables) there is nothing of ours.
 */
export async function cleanupPortals(logger: Logger, probe: PortalProbe = {}): Promise<void> {
  const exec = probe.exec ?? defaultExec;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const d = await decidePortals(family, probe);
    if (d.mode !== 'portal') {
      logger.debug({ family, reason: d.reason }, 'userspace cleanup: no portal rules to remove');
      continue;
    }
    const errors = await removePortals(d.tools, exec);
    if (errors.length > 0)
      throw new KpError('KP_ERR_CLEANUP', `userspace portal cleanup (${family}): ${errors.join('; ')}`);
  }
}
