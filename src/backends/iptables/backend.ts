/**
 * Registration of iptables mode: render (pure, renderForDisplay), create (detects legacy vs nft and
 * starts an IPTablesProxier for one family) and cleanup (both backends, both families).
 */
import type { Backend, Proxier } from '../backend.js';
import { renderForDisplay } from './render-display.js';
import { LARGE_CLUSTER_ENDPOINTS, type RenderMode } from './render.js';
import type { DesiredState } from '../../proxy/types.js';
import { cleanupIPTables } from './cleanup.js';
import { IPTablesProxier } from './proxier.js';
import { assertToolsPresent, detectBackend, toolsFor } from '../../exec/iptables.js';
import { defaultExec } from '../../exec/run.js';
import { KpError } from '../../errors.js';
import { nfacctEnsure, nfacctPackets } from '../../exec/nfacct.js';
import type { Logger } from '../../observability/logger.js';
import { NFACCT_CT_STATE_INVALID, NFACCT_LOCALHOST_NODEPORTS } from './render.js';

let nfacctReady: Promise<boolean> | undefined;

/**
 * Creates upstream's two nfacct objects once per process (they belong to the network namespace,
 * which both families share). False, with one log line naming the error, where the `nfacct` tool or
 * the kernel's nfnetlink_acct is missing: the rules then count nothing and the two metrics are absent.
 */
function nfacctCounters(logger: Logger): Promise<boolean> {
  nfacctReady ??= (async () => {
    try {
      for (const name of [NFACCT_CT_STATE_INVALID, NFACCT_LOCALHOST_NODEPORTS])
        await nfacctEnsure(defaultExec, name);
      return true;
    } catch (err) {
      logger.warn(
        { err },
        'nfacct counters unavailable: kubeproxy_iptables_ct_state_invalid_dropped_packets_total and kubeproxy_iptables_localhost_nodeports_accepted_packets_total are not reported',
      );
      return false;
    }
  })();
  return nfacctReady;
}

/**
 * The render mode that gives a part of `whole` the rule text the whole state's render has for it:
 * large-cluster mode (comments dropped) follows the whole state's endpoint count.
 */
function wholeStateMode(whole: readonly DesiredState[] | undefined): Partial<RenderMode> {
  if (!whole) return {};
  let total = 0;
  for (const s of whole) for (const sp of s.services.values()) total += sp.endpoints.length;
  return { largeClusterThreshold: total > LARGE_CLUSTER_ENDPOINTS ? -1 : Number.MAX_SAFE_INTEGER };
}

export const iptablesBackend: Backend = {
  mode: 'iptables',
  kernel: true,
  watches: [],
  prerequisites: [
    'iptables (legacy or nft) with iptables-save and iptables-restore',
    'conntrack (conntrack-tools), for UDP cleanup',
  ],
  syncPeriods: (config) => ({
    syncPeriodMs: config.iptables.syncPeriodMs,
    minSyncPeriodMs: config.iptables.minSyncPeriodMs,
  }),
  fromConfig: () => iptablesBackend,
  render: (states, options, whole) => renderForDisplay(states, options, wholeStateMode(whole)),
  create: async (deps): Promise<Proxier> => {
    const { backend, reason } = await detectBackend(defaultExec);
    const tools = toolsFor(backend, deps.options.family);
    assertToolsPresent(tools);
    deps.logger.info({ backend, reason, restore: tools.restore }, 'using iptables backend');
    const nfacct = await nfacctCounters(deps.logger);
    if (nfacct) deps.metrics?.addNfacctCounters((object) => nfacctPackets(defaultExec, object));
    const p = new IPTablesProxier({
      nfacct,
      logger: deps.logger,
      options: deps.options,
      tools,
      ...(deps.onNeedFullSync ? { onNeedFullSync: deps.onNeedFullSync } : {}),
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
      ...(deps.syncPeriodMs !== undefined ? { canaryPeriodMs: deps.syncPeriodMs } : {}),
      ...(deps.collectGarbage ? { collectGarbage: deps.collectGarbage } : {}),
    });
    await p.start();
    return p;
  },
  cleanup: async (logger) => {
    if (!(await cleanupIPTables(logger)))
      throw new KpError('KP_ERR_CLEANUP', 'iptables cleanup did not complete; see the errors above');
  },
};
