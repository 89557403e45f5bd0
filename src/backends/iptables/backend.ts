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
    const p = new IPTablesProxier({
      logger: deps.logger,
      options: deps.options,
      tools,
      ...(deps.onNeedFullSync ? { onNeedFullSync: deps.onNeedFullSync } : {}),
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
      ...(deps.syncPeriodMs !== undefined ? { canaryPeriodMs: deps.syncPeriodMs } : {}),
    });
    await p.start();
    return p;
  },
  cleanup: async (logger) => {
    if (!(await cleanupIPTables(logger)))
      throw new KpError('KP_ERR_CLEANUP', 'iptables cleanup did not complete; see the errors above');
  },
};
