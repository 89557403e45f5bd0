/**
 * kube-proxy's Prometheus metrics, with upstream's names, types, label names, buckets and help
 * texts (pkg/proxy/metrics), on a registry owned by the caller (no global registry, so tests and
 * several proxies in one process do not collide).
 */
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  exponentialBuckets,
  linearBuckets,
} from 'prom-client';
import type { ProxyMode } from '../model/proxy-mode.js';

/** Label value of `ip_family`: upstream passes `string(v1.IPFamily)`, i.e. "IPv4" or "IPv6". */
export type IPFamilyLabel = 'IPv4' | 'IPv6';

/** Typed handles on every kube-proxy metric, plus the registry that exposes them. */
export interface ProxyMetrics {
  readonly registry: Registry;
  /**
   * Registers upstream's two nfacct counters (iptables mode, where the objects could be created):
   * kubeproxy_iptables_ct_state_invalid_dropped_packets_total and
   * kubeproxy_iptables_localhost_nodeports_accepted_packets_total, each read with `read(object)` at
   * scrape time. Absent until called; a second call is a no-op. A failed read keeps the last value.
   */
  addNfacctCounters(read: (object: string) => Promise<number>): void;
  /** kubeproxy_sync_proxy_rules_duration_seconds{ip_family}: every sync, full or partial. */
  readonly syncProxyRulesDuration: Histogram<'ip_family'>;
  /** kubeproxy_sync_full_proxy_rules_duration_seconds{ip_family}. */
  readonly syncFullProxyRulesDuration: Histogram<'ip_family'>;
  /** kubeproxy_sync_partial_proxy_rules_duration_seconds{ip_family}. */
  readonly syncPartialProxyRulesDuration: Histogram<'ip_family'>;
  /** kubeproxy_network_programming_duration_seconds{ip_family}: now − last-change-trigger-time. */
  readonly networkProgrammingDuration: Histogram<'ip_family'>;
  /** kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family}: unix seconds of the last successful sync. */
  readonly syncProxyRulesLastTimestamp: Gauge<'ip_family'>;
  /** kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family}: unix seconds of the last Sync() request. */
  readonly syncProxyRulesLastQueuedTimestamp: Gauge<'ip_family'>;
  readonly endpointChangesPending: Gauge;
  readonly endpointChangesTotal: Counter;
  readonly serviceChangesPending: Gauge;
  readonly serviceChangesTotal: Counter;
  readonly iptablesRestoreFailuresTotal: Counter<'ip_family'>;
  readonly iptablesPartialRestoreFailuresTotal: Counter<'ip_family'>;
  /** kubeproxy_sync_proxy_rules_iptables_total{ip_family,table}: rules in the table, including unchanged ones. */
  readonly iptablesRulesTotal: Gauge<'ip_family' | 'table'>;
  /** kubeproxy_sync_proxy_rules_iptables_last{ip_family,table}: rules written by the last sync. */
  readonly iptablesRulesLastSync: Gauge<'ip_family' | 'table'>;
  readonly nftablesSyncFailuresTotal: Counter<'ip_family'>;
  readonly nftablesCleanupFailuresTotal: Counter<'ip_family'>;
  /** kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family,traffic_policy}: a gauge despite the name; traffic_policy is "internal" or "external". */
  readonly noLocalEndpointsTotal: Gauge<'ip_family' | 'traffic_policy'>;
  /** kubeproxy_proxy_healthz_total{code}: code is the HTTP status as a string ("200", "503"). */
  readonly proxyHealthzTotal: Counter<'code'>;
  readonly proxyLivezTotal: Counter<'code'>;
  readonly conntrackReconcilerDeletedEntriesTotal: Counter<'ip_family'>;
  readonly conntrackReconcilerSyncDuration: Histogram<'ip_family'>;
  /**
   * kubeproxy_ipvs_real_server_health{ip_family,state} (ours): probe targets by health state
   * ("healthy" / "unhealthy") under --ipvs-health-check; per state, not per server, so bounded.
   */
  readonly ipvsRealServerHealth: Gauge<'ip_family' | 'state'>;
  /**
   * kubeproxy_sync_proxy_rules_drift_total{ip_family,object} (ours): differences found between what
   * the proxy last wrote and what the kernel holds, by kind of object (table, chain, map, set,
   * jump, virtual_server, real_server, ipset, address).
   */
  readonly syncProxyRulesDriftTotal: Counter<'ip_family' | 'object'>;
  /** Ours: userspace listeners that could not bind (each failed attempt). */
  readonly userspaceListenFailuresTotal: Counter<'ip_family' | 'protocol' | 'code'>;
}

export interface MetricsOptions {
  /**
   * Register only what upstream registers for this mode (iptables: full/partial durations and the
   * iptables counters; ipvs: iptables restore failures; nftables: the nftables counters). When
   * omitted every metric is registered. Handles of unregistered metrics still work; they are just
   * not exposed.
   */
  readonly mode?: ProxyMode;
  /** Also collect the process_* and nodejs_* metrics (default true). */
  readonly defaultMetrics?: boolean;
}

const SUBSYSTEM = 'kubeproxy';
// component-base prefixes each help text with its stability level; scrapers see "[ALPHA] ...".
const alpha = (help: string): string => `[ALPHA] ${help}`;

/** Upstream's sync-duration buckets: ExponentialBuckets(0.001, 2, 15), i.e. 1 ms … 16.384 s. */
export const SYNC_DURATION_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 15);

/**
 * Upstream's network-programming buckets: a leading 0 (its merge helper starts from a zero-length
 * slice of length 1), then 0.25, 0.5, 1…59 by 1, 60…115 by 5, 120…300 by 30.
 */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

/** Upstream's nfacct-backed counters: metric name, help, nfacct object (pkg/proxy/metrics). */
const NFACCT_METRICS: readonly (readonly [string, string, string])[] = [
  [
    'kubeproxy_iptables_ct_state_invalid_dropped_packets_total',
    'packets dropped by iptables to work around conntrack problems',
    'ct_state_invalid_dropped_pkts',
  ],
  [
    'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
    'packets accepted on nodeports of loopback interface',
    'localhost_nps_accepted_pkts',
  ],
];

/** Creates every kube-proxy metric on a new Registry. */
export function createMetrics(options: MetricsOptions = {}): ProxyMetrics {
  const registry = new Registry();
  const mode = options.mode;
  const want = (...modes: ProxyMode[]): Registry[] =>
    mode === undefined || modes.includes(mode) ? [registry] : [];
  const always: Registry[] = [registry];

  const familyHistogram = (
    name: string,
    help: string,
    buckets: readonly number[],
    registers: Registry[],
  ): Histogram<'ip_family'> =>
    new Histogram({
      name: `${SUBSYSTEM}_${name}`,
      help: alpha(help),
      labelNames: ['ip_family'],
      buckets: [...buckets],
      registers,
    });
  const familyCounter = (name: string, help: string, registers: Registry[]): Counter<'ip_family'> =>
    new Counter({ name: `${SUBSYSTEM}_${name}`, help: alpha(help), labelNames: ['ip_family'], registers });
  const familyGauge = (name: string, help: string, registers: Registry[]): Gauge<'ip_family'> =>
    new Gauge({ name: `${SUBSYSTEM}_${name}`, help: alpha(help), labelNames: ['ip_family'], registers });

  let nfacctAdded = false;
  const metrics: ProxyMetrics = {
    registry,
    addNfacctCounters: (read) => {
      if (nfacctAdded) return;
      nfacctAdded = true;
      for (const [name, help, object] of NFACCT_METRICS) {
        new Counter({
          name,
          help: alpha(help),
          registers: [registry],
          async collect() {
            try {
              const v = await read(object);
              this.reset();
              this.inc(v);
            } catch {
              // Keep the last value: a scrape must not fail because the tool did once.
            }
          },
        });
      }
    },
    syncProxyRulesDuration: familyHistogram(
      'sync_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds',
      SYNC_DURATION_BUCKETS,
      always,
    ),
    syncFullProxyRulesDuration: familyHistogram(
      'sync_full_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for full resyncs',
      SYNC_DURATION_BUCKETS,
      want('iptables'),
    ),
    syncPartialProxyRulesDuration: familyHistogram(
      'sync_partial_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for partial resyncs',
      SYNC_DURATION_BUCKETS,
      want('iptables'),
    ),
    networkProgrammingDuration: familyHistogram(
      'network_programming_duration_seconds',
      'In Cluster Network Programming Latency in seconds',
      NETWORK_PROGRAMMING_BUCKETS,
      always,
    ),
    syncProxyRulesLastTimestamp: familyGauge(
      'sync_proxy_rules_last_timestamp_seconds',
      'The last time proxy rules were successfully synced',
      always,
    ),
    syncProxyRulesLastQueuedTimestamp: familyGauge(
      'sync_proxy_rules_last_queued_timestamp_seconds',
      'The last time a sync of proxy rules was queued',
      always,
    ),
    endpointChangesPending: new Gauge({
      name: `${SUBSYSTEM}_sync_proxy_rules_endpoint_changes_pending`,
      help: alpha('Pending proxy rules Endpoint changes'),
      registers: always,
    }),
    endpointChangesTotal: new Counter({
      name: `${SUBSYSTEM}_sync_proxy_rules_endpoint_changes_total`,
      help: alpha('Cumulative proxy rules Endpoint changes'),
      registers: always,
    }),
    serviceChangesPending: new Gauge({
      name: `${SUBSYSTEM}_sync_proxy_rules_service_changes_pending`,
      help: alpha('Pending proxy rules Service changes'),
      registers: always,
    }),
    serviceChangesTotal: new Counter({
      name: `${SUBSYSTEM}_sync_proxy_rules_service_changes_total`,
      help: alpha('Cumulative proxy rules Service changes'),
      registers: always,
    }),
    iptablesRestoreFailuresTotal: familyCounter(
      'sync_proxy_rules_iptables_restore_failures_total',
      'Cumulative proxy iptables restore failures',
      want('iptables', 'ipvs'),
    ),
    iptablesPartialRestoreFailuresTotal: familyCounter(
      'sync_proxy_rules_iptables_partial_restore_failures_total',
      'Cumulative proxy iptables partial restore failures',
      want('iptables'),
    ),
    iptablesRulesTotal: new Gauge({
      name: `${SUBSYSTEM}_sync_proxy_rules_iptables_total`,
      help: alpha('Total number of iptables rules owned by kube-proxy'),
      labelNames: ['ip_family', 'table'],
      registers: want('iptables'),
    }),
    iptablesRulesLastSync: new Gauge({
      name: `${SUBSYSTEM}_sync_proxy_rules_iptables_last`,
      help: alpha('Number of iptables rules written by kube-proxy in last sync'),
      labelNames: ['ip_family', 'table'],
      registers: want('iptables'),
    }),
    nftablesSyncFailuresTotal: familyCounter(
      'sync_proxy_rules_nftables_sync_failures_total',
      'Cumulative proxy nftables sync failures',
      want('nftables'),
    ),
    nftablesCleanupFailuresTotal: familyCounter(
      'sync_proxy_rules_nftables_cleanup_failures_total',
      'Cumulative proxy nftables cleanup failures',
      want('nftables'),
    ),
    noLocalEndpointsTotal: new Gauge({
      name: `${SUBSYSTEM}_sync_proxy_rules_no_local_endpoints_total`,
      help: alpha('Number of services with a Local traffic policy and no endpoints'),
      labelNames: ['ip_family', 'traffic_policy'],
      registers: always,
    }),
    proxyHealthzTotal: new Counter({
      name: `${SUBSYSTEM}_proxy_healthz_total`,
      help: alpha('Cumulative proxy healthz HTTP status'),
      labelNames: ['code'],
      registers: always,
    }),
    proxyLivezTotal: new Counter({
      name: `${SUBSYSTEM}_proxy_livez_total`,
      help: alpha('Cumulative proxy livez HTTP status'),
      labelNames: ['code'],
      registers: always,
    }),
    conntrackReconcilerDeletedEntriesTotal: familyCounter(
      'conntrack_reconciler_deleted_entries_total',
      'Cumulative conntrack flows deleted by conntrack reconciler',
      always,
    ),
    ipvsRealServerHealth: new Gauge({
      name: `${SUBSYSTEM}_ipvs_real_server_health`,
      help: alpha('Real servers probed by the IPVS health check, by health state'),
      labelNames: ['ip_family', 'state'],
      registers: want('ipvs', 'userspace'),
    }),
    syncProxyRulesDriftTotal: new Counter({
      name: `${SUBSYSTEM}_sync_proxy_rules_drift_total`,
      help: alpha('Differences found between the rules last written and the kernel, by object kind'),
      labelNames: ['ip_family', 'object'],
      registers: want('iptables', 'ipvs', 'nftables'),
    }),
    userspaceListenFailuresTotal: new Counter({
      name: `${SUBSYSTEM}_userspace_listen_failures_total`,
      help: alpha('Userspace listeners that could not bind, by error code (each failed attempt)'),
      labelNames: ['ip_family', 'protocol', 'code'],
      registers: want('userspace'),
    }),
    conntrackReconcilerSyncDuration: familyHistogram(
      'conntrack_reconciler_sync_duration_seconds',
      'ReconcileConntrackFlowsLatency latency in seconds',
      SYNC_DURATION_BUCKETS,
      always,
    ),
  };

  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return metrics;
}

/**
 * The registry's text exposition, with each sample's labels in the order Go's client writes them
 * (sorted by name, `le` last) so a diff against upstream's /metrics shows only value changes.
 * prom-client itself writes labels in the order the caller passed them, with `le` first.
 */
export async function renderMetrics(registry: Registry): Promise<string> {
  const text = await registry.metrics();
  return text
    .split('\n')
    .map((line) => (line.startsWith('#') || !line.includes('{') ? line : normalizeLabelOrder(line)))
    .join('\n');
}

/** The Content-Type of `renderMetrics` output. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function normalizeLabelOrder(line: string): string {
  const open = line.indexOf('{');
  const pairs: [string, string][] = [];
  let i = open + 1;
  // prom-client escapes \, " and newline inside values, so scan values honouring backslashes.
  while (i < line.length && line[i] !== '}') {
    const eq = line.indexOf('="', i);
    if (eq < 0) return line;
    const name = line.slice(i, eq);
    let j = eq + 2;
    let raw = '';
    while (j < line.length && line[j] !== '"') {
      if (line[j] === '\\') {
        raw += line.slice(j, j + 2);
        j += 2;
      } else {
        raw += line.charAt(j);
        j += 1;
      }
    }
    pairs.push([name, raw]);
    i = j + 1;
    if (line[i] === ',') i += 1;
  }
  if (line[i] !== '}') return line;
  pairs.sort(([a], [b]) => (a === 'le' ? 1 : b === 'le' ? -1 : a < b ? -1 : a > b ? 1 : 0));
  return `${line.slice(0, open)}{${pairs.map(([n, v]) => `${n}="${v}"`).join(',')}}${line.slice(i + 1)}`;
}
