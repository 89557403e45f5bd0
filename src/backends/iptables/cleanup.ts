/**
 * `kube-proxy --cleanup` for iptables mode (upstream pkg/proxy/iptables CleanupLeftovers): removes the jumps, the top-level and
 * per-service chains and the canaries, for both backends (legacy, nft) and both families, best effort.
 * The kubelet-owned KUBE-FIREWALL chain and its jumps stay.
 */
import type { Logger } from '../../observability/logger.js';
import { which, defaultExec } from '../../exec/run.js';
import { isServiceChainName } from './hash.js';
import { JUMP_RULES, KUBE_PROXY_CANARY, natChainsFromSave } from './render.js';
import {
  deleteRule,
  iptablesRestore,
  iptablesSave,
  toolsFor,
  type Exec,
  type IPTablesTools,
} from '../../exec/iptables.js';

const NAT_CHAINS = new Set([
  'KUBE-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-POSTROUTING',
  'KUBE-MARK-MASQ',
  KUBE_PROXY_CANARY,
]);
const FILTER_CHAINS = new Set([
  'KUBE-SERVICES',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-FORWARD',
  'KUBE-NODEPORTS',
  'KUBE-PROXY-FIREWALL',
  KUBE_PROXY_CANARY,
]);

/** The restore text that flushes and deletes `chains` of `table` (a chain must be empty before -X). */
export function deleteChainsText(table: string, chains: readonly string[]): string {
  if (chains.length === 0) return '';
  return `*${table}\n${chains.map((c) => `:${c} - [0:0]`).join('\n')}\n${chains.map((c) => `-X ${c}`).join('\n')}\nCOMMIT\n`;
}

/** Cleans one backend/family. Returns false when something failed (already logged). */
export async function cleanupTools(
  tools: IPTablesTools,
  logger: Logger,
  exec: Exec = defaultExec,
): Promise<boolean> {
  let ok = true;
  for (const j of JUMP_RULES) {
    if (j.kubeletOwned) continue;
    // A jump may have been inserted more than once (e.g. by two proxies); remove every copy, bounded.
    for (let i = 0; i < 16; i++) {
      const code = await deleteRule(exec, tools, j).catch(() => undefined);
      if (code !== 0) break;
    }
  }
  for (const [table, owned] of [
    ['nat', NAT_CHAINS],
    ['filter', FILTER_CHAINS],
  ] as const) {
    try {
      const save = await iptablesSave(exec, tools, table, 300_000);
      const chains = [...natChainsFromSave(save)]
        .filter((c) => owned.has(c) || (table === 'nat' && isServiceChainName(c)))
        .sort();
      const text = deleteChainsText(table, chains);
      if (text !== '') await iptablesRestore(exec, tools, text, { timeoutMs: 300_000 });
      if (chains.length > 0)
        logger.info(
          { backend: tools.backend, family: tools.family, table, chains: chains.length },
          'removed iptables chains',
        );
    } catch (err) {
      ok = false;
      logger.error(
        {
          backend: tools.backend,
          family: tools.family,
          table,
          err,
        },
        'iptables cleanup failed',
      );
    }
  }
  await exec(tools.iptables, ['-w', '-t', 'mangle', '-X', KUBE_PROXY_CANARY], { okCodes: [0, 1, 2] }).catch(
    () => undefined,
  );
  return ok;
}

/** Every backend and family whose tools are installed; missing ones are skipped silently. */
export async function cleanupIPTables(
  logger: Logger,
  exec: Exec = defaultExec,
  find: (cmd: string) => string | undefined = which,
): Promise<boolean> {
  let ok = true;
  for (const backend of ['legacy', 'nft'] as const) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const tools = toolsFor(backend, family);
      if ([tools.iptables, tools.save, tools.restore].some((c) => find(c) === undefined)) continue;
      if (!(await cleanupTools(tools, logger, exec))) ok = false;
    }
  }
  return ok;
}
