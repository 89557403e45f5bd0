/**
 * Runs the conntrack cleanup planned by plan.ts with the `conntrack` tool (conntrack-tools): one
 * `conntrack -L` to list UDP flows, then one `conntrack -D` per stale (destination, endpoint); after
 * full syncs also the TCP flows that left un-DNATed before their rules existed.
 */
import type { Logger } from '../../observability/logger.js';
import type { ProxyMetrics } from '../../observability/metrics.js';
import type { DesiredState } from '../../proxy/types.js';
import type { Exec } from '../../exec/run.js';
import { conntrackDelete, conntrackList } from '../../exec/conntrack.js';
import {
  cleanupRequired,
  filterArgs,
  parseConntrackList,
  planConntrackCleanup,
  planStuckTCPSyns,
  type FlowFilter,
} from './plan.js';

export interface ConntrackDeps {
  readonly exec: Exec;
  readonly logger: Logger;
  /** The conntrack binary; default `conntrack`. */
  readonly command?: string;
}

export interface CleanupResult {
  /** False when no cleanup was required after this sync (nothing was run). */
  readonly attempted: boolean;
  /** Entries reported deleted by conntrack. */
  readonly flows: number;
  readonly durationMs: number;
}

/**
 * After a successful sync: when upstream would (a change touched a UDP service), lists the UDP flows
 * of the state's family and deletes the stale ones. `conntrack -D` exits 1 when nothing matched,
 * which is not an error. Throws ExecError when the tool is missing or fails otherwise.
 */
export async function cleanupStaleUDP(state: DesiredState, deps: ConntrackDeps): Promise<CleanupResult> {
  if (!cleanupRequired(state)) return { attempted: false, flows: 0, durationMs: 0 };
  return listAndDelete(
    state,
    deps,
    'udp',
    [],
    (list) => planConntrackCleanup(state, parseConntrackList(list)).deletions,
    (n, flows) => {
      deps.logger.info({ filters: n, flows }, 'deleted stale UDP conntrack entries');
    },
  );
}

/**
 * After a successful full sync, or one that added TCP frontends: deletes the TCP flows that left
 * un-DNATed while the node had no rules for their service frontend (plan.ts `planStuckTCPSyns`): one
 * `conntrack -L -p tcp --state SYN_SENT`, then one `conntrack -D` per stuck frontend. The client's
 * next SYN retransmission then meets the rules (seconds) instead of the stale flow (up to 120 s,
 * usually the client's whole connect timeout).
 */
export async function releaseStuckTCPSyns(state: DesiredState, deps: ConntrackDeps): Promise<CleanupResult> {
  return listAndDelete(
    state,
    deps,
    'tcp',
    ['--state', 'SYN_SENT'],
    (list) => planStuckTCPSyns(state, parseConntrackList(list, 'tcp')),
    (n, flows) => {
      deps.logger.info(
        { frontends: n, flows },
        'deleted un-NATed TCP SYN_SENT conntrack entries of service frontends (sent before their rules existed)',
      );
    },
  );
}

/** One `conntrack -L` of the state's family, the deletions `plan` makes of it, one `conntrack -D` each. */
async function listAndDelete(
  state: DesiredState,
  deps: ConntrackDeps,
  protocol: 'udp' | 'tcp',
  listFilter: readonly string[],
  plan: (list: string) => readonly FlowFilter[],
  report: (filters: number, flows: number) => void,
): Promise<CleanupResult> {
  const started = performance.now();
  const cmd = deps.command ?? 'conntrack';
  const fam = state.family === 'IPv6' ? 'ipv6' : 'ipv4';
  const deletions = plan(await conntrackList(deps.exec, fam, protocol, cmd, listFilter));
  let flows = 0;
  for (const f of deletions) flows += await conntrackDelete(deps.exec, fam, filterArgs(f), cmd);
  if (deletions.length > 0) report(deletions.length, flows);
  return { attempted: true, flows, durationMs: performance.now() - started };
}

/**
 * What every kernel mode runs after a successful sync: {@link cleanupStaleUDP}, and after a full sync
 * or one that gave a TCP frontend its first rules (a new Service, a new external IP) also
 * {@link releaseStuckTCPSyns}; the outcome counted in upstream's reconciler metrics. Never
 * throws: as upstream, stale flows are a degraded state, not a failed sync, so a failure is logged
 * and the sync stands.
 */
export async function reconcileConntrack(
  state: DesiredState,
  deps: ConntrackDeps & { readonly metrics?: ProxyMetrics | undefined },
  full = false,
): Promise<void> {
  const count = (r: CleanupResult): void => {
    if (!r.attempted) return;
    deps.metrics?.conntrackReconcilerDeletedEntriesTotal.inc({ ip_family: state.family }, r.flows);
    deps.metrics?.conntrackReconcilerSyncDuration.observe({ ip_family: state.family }, r.durationMs / 1000);
  };
  try {
    count(await cleanupStaleUDP(state, deps));
  } catch (err) {
    deps.logger.error({ err }, 'conntrack cleanup failed');
  }
  if (!full && state.conntrack.tcpFrontendsAdded !== true) return;
  try {
    count(await releaseStuckTCPSyns(state, deps));
  } catch (err) {
    deps.logger.error({ err }, 'conntrack cleanup of un-NATed TCP flows failed');
  }
}
