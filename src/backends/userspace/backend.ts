/**
 * Registration of userspace mode: the relay options the configuration implies, render (the listener
 * table plus each family's portal rules) and create (portal or direct relay, decided per family).
 */
import type { Backend, BackendDeps } from '../backend.js';
import type { DesiredState } from '../../proxy/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyConfig } from '../../config/types.js';
import { parsePortRange } from '../../config/validate.js';
import { renderUserspace } from './render.js';
import { renderPortalSection } from './portal-render.js';
import { cleanupPortals, decidePortals, type PortalDecision } from './portal.js';
import { UserspaceProxier, type UserspaceRelayOptions } from './relay.js';

/**
 * The relay options the configuration implies: the balancer algorithm (userspaceBalancer), whether
 * portals may be used (userspacePortals, --userspace-portals) and the proxy port range (portRange;
 * "" or "0-0" = ephemeral). udpIdleTimeoutMs comes via FamilyOptions.
 */
export function userspaceOptionsFromConfig(
  config: Pick<ProxyConfig, 'userspaceBalancer' | 'portRange' | 'userspacePortals'>,
): UserspaceRelayOptions {
  const r = config.portRange === '' ? undefined : parsePortRange(config.portRange);
  return {
    algorithm: config.userspaceBalancer,
    portals: config.userspacePortals ? 'auto' : 'off',
    ...(r && r.max > 0 ? { portRange: { min: Math.max(1, r.min), max: r.max } } : {}),
  };
}

/**
 * The listener table (direct mode) followed by each family's portal section: what `render` prints.
 * The portal rules are shown always, labelled, since render cannot know whether the daemon will run
 * as root with iptables.
 */
export function renderUserspaceWithPortals(
  states: readonly DesiredState[],
  options: readonly FamilyOptions[],
  portRange?: { readonly min: number; readonly max: number },
): string {
  const parts = [renderUserspace(states, options)];
  states.forEach((state, i) => {
    const opts = options[i] ?? options.find((o) => o.family === state.family);
    if (opts) parts.push(renderPortalSection(state, opts, portRange));
  });
  return parts.join('');
}

/**
 * A userspace backend whose proxiers use `opts` (the configured userspaceBalancer and portRange:
 * see userspaceOptionsFromConfig). create() decides portal vs direct mode for the family and logs it.
 */
export function createUserspaceBackend(opts: UserspaceRelayOptions = {}): Backend {
  return {
    mode: 'userspace',
    kernel: false,
    watches: [],
    prerequisites: [
      'none in direct mode (listens on the service addresses that are local)',
      'portal mode (root): iptables (legacy or nft) with iptables-save and iptables-restore',
    ],
    // Upstream's userspace proxier ran on the iptables sync periods.
    syncPeriods: (config) => ({
      syncPeriodMs: config.iptables.syncPeriodMs,
      minSyncPeriodMs: config.iptables.minSyncPeriodMs,
    }),
    fromConfig: (config) => createUserspaceBackend({ ...opts, ...userspaceOptionsFromConfig(config) }),
    render: (states, options) => renderUserspaceWithPortals(states, options, opts.portRange),
    create: async (deps: BackendDeps) => {
      const decision: PortalDecision =
        opts.portals === 'off'
          ? { mode: 'direct', reason: 'portals turned off' }
          : await decidePortals(deps.options.family, opts.probe);
      const log = deps.logger.child({ mode: 'userspace', family: deps.options.family });
      if (decision.mode === 'portal')
        log.info(
          { relay: 'portal', tools: decision.tools.iptables },
          `userspace mode: portals with ${decision.reason}; service addresses are redirected to local proxy ports`,
        );
      else
        log.warn(
          { relay: 'direct', reason: decision.reason },
          `userspace mode: direct listening (${decision.reason}); only service addresses that are local to this machine can be served`,
        );
      return new UserspaceProxier(deps, opts, decision);
    },
    cleanup: (logger: Logger) => cleanupPortals(logger, opts.probe),
  };
}

/** The userspace backend with default options (round robin, 2 s connect timeout). */
export const userspaceBackend: Backend = createUserspaceBackend();
