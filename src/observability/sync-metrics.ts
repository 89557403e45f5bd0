/**
 * What the sync loop's outcomes mean for observability: upstream's sync metrics, /healthz's queued and
 * updated times, the no-local-endpoints gauges, the iptables rule counts, and the health check node
 * port servers' services and local endpoint counts. Built once, before the loop, with every observer
 * it feeds; nothing is reassigned afterwards.
 */
import type { SyncHooks, SyncReport } from '../app/sync-loop.js';
import type { Logger } from './logger.js';
import type { ProxyMetrics } from './metrics.js';
import type { ProxyHealthServer } from './proxy-health.js';
import type { ServiceHealthServer } from './service-health.js';

export interface SyncObservers {
  readonly metrics: ProxyMetrics;
  readonly health: ProxyHealthServer;
  readonly serviceHealth: ServiceHealthServer;
  readonly logger: Logger;
  /**
   * When the daemon started (ms since epoch). Changes triggered before it are not network-programming
   * latency of this process (a restart would record the age of every object), so they are not observed,
   * as upstream's endpoints tracker ignores trigger times before its start.
   */
  readonly startedAt: number;
  /** Called after each successful sync's observers ran (the daemon resolves its firstSync here). */
  readonly afterSync?: (report: SyncReport) => void;
}

/** The network-programming latencies (seconds) a sync finished at `at` records, given the start time. */
export function programmingLatencies(
  triggerTimes: Iterable<number>,
  at: number,
  startedAt: number,
): number[] {
  const out: number[] = [];
  for (const t of triggerTimes) if (t >= startedAt && at >= t) out.push((at - t) / 1000);
  return out;
}

/** The SyncHooks that feed `o`. */
export function syncObservabilityHooks(o: SyncObservers): SyncHooks {
  const { metrics, health, serviceHealth, logger } = o;
  return {
    started: (families) => {
      health.expectFamilies(families);
      for (const f of families) health.updated(f);
    },
    queued: (families) => {
      for (const f of families) {
        health.queuedUpdate(f);
        metrics.syncProxyRulesLastQueuedTimestamp.set({ ip_family: f }, Date.now() / 1000);
      }
    },
    changeRecorded: (kind) => {
      (kind === 'service' ? metrics.serviceChangesTotal : metrics.endpointChangesTotal).inc();
    },
    pending: (c) => {
      metrics.serviceChangesPending.set(c.services);
      metrics.endpointChangesPending.set(c.endpoints);
    },
    synced: (r) => {
      const labels = { ip_family: r.family };
      const secs = r.durationMs / 1000;
      metrics.syncProxyRulesDuration.observe(labels, secs);
      (r.full ? metrics.syncFullProxyRulesDuration : metrics.syncPartialProxyRulesDuration).observe(
        labels,
        secs,
      );
      metrics.syncProxyRulesLastTimestamp.set(labels, r.at / 1000);
      for (const s of programmingLatencies(r.state.lastChangeTriggerTimes, r.at, o.startedAt))
        metrics.networkProgrammingDuration.observe(labels, s);
      metrics.noLocalEndpointsTotal.set(
        { ...labels, traffic_policy: 'internal' },
        r.state.noLocalEndpoints.internal,
      );
      metrics.noLocalEndpointsTotal.set(
        { ...labels, traffic_policy: 'external' },
        r.state.noLocalEndpoints.external,
      );
      for (const [table, c] of Object.entries(r.outcome.ruleCounts ?? {})) {
        metrics.iptablesRulesTotal.set({ ...labels, table }, c.total);
        metrics.iptablesRulesLastSync.set({ ...labels, table }, c.written);
      }
      health.updated(r.family);
      health.syncSucceeded(r.family, r.full);
      // Counts apply to services the server knows, so set them once the listeners are in place.
      // Copy first: the state's maps are live and change with the next build.
      const counts = new Map(r.state.localReadyEndpoints);
      serviceHealth.syncServices(new Map(r.state.healthCheckNodePorts)).then(
        () => {
          serviceHealth.syncEndpoints(counts);
        },
        (err: unknown) => {
          logger.error({ err }, 'service health check servers');
        },
      );
      o.afterSync?.(r);
    },
    failed: (family, _full, err) => {
      health.syncFailed(family, err);
    },
    drift: (family, findings) => {
      for (const f of findings) metrics.syncProxyRulesDriftTotal.inc({ ip_family: family, object: f.object });
    },
  };
}
