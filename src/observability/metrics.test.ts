import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NETWORK_PROGRAMMING_BUCKETS,
  SYNC_DURATION_BUCKETS,
  createMetrics,
  renderMetrics,
} from './metrics.js';

/** name -> type, from the # TYPE lines of an exposition. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

function help(text: string, name: string): string | undefined {
  const prefix = `# HELP ${name} `;
  return text
    .split('\n')
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length);
}

const ALL: Record<string, string> = {
  kubeproxy_sync_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_full_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_partial_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_network_programming_duration_seconds: 'histogram',
  kubeproxy_sync_proxy_rules_last_timestamp_seconds: 'gauge',
  kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds: 'gauge',
  kubeproxy_sync_proxy_rules_endpoint_changes_pending: 'gauge',
  kubeproxy_sync_proxy_rules_endpoint_changes_total: 'counter',
  kubeproxy_sync_proxy_rules_service_changes_pending: 'gauge',
  kubeproxy_sync_proxy_rules_service_changes_total: 'counter',
  kubeproxy_sync_proxy_rules_iptables_restore_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_iptables_total: 'gauge',
  kubeproxy_sync_proxy_rules_iptables_last: 'gauge',
  kubeproxy_sync_proxy_rules_nftables_sync_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_no_local_endpoints_total: 'gauge',
  kubeproxy_proxy_healthz_total: 'counter',
  kubeproxy_proxy_livez_total: 'counter',
  kubeproxy_conntrack_reconciler_deleted_entries_total: 'counter',
  kubeproxy_conntrack_reconciler_sync_duration_seconds: 'histogram',
};

describe('createMetrics', () => {
  it('exposes every upstream metric with its type', async () => {
    const m = createMetrics();
    const t = types(await renderMetrics(m.registry));
    for (const [name, type] of Object.entries(ALL)) assert.equal(t.get(name), type, name);
    assert.equal(t.get('process_cpu_seconds_total'), 'counter');
    assert.equal(t.get('process_start_time_seconds'), 'gauge');
  });

  it('prefixes help texts with the stability level as component-base does', async () => {
    const text = await renderMetrics(createMetrics({ defaultMetrics: false }).registry);
    assert.equal(
      help(text, 'kubeproxy_sync_proxy_rules_duration_seconds'),
      '[ALPHA] SyncProxyRules latency in seconds',
    );
    assert.equal(help(text, 'kubeproxy_proxy_healthz_total'), '[ALPHA] Cumulative proxy healthz HTTP status');
  });

  it('uses exponential 1ms x 2^k buckets for sync durations', async () => {
    assert.equal(SYNC_DURATION_BUCKETS.length, 15);
    SYNC_DURATION_BUCKETS.forEach((b, i) => {
      assert.ok(Math.abs(b - 0.001 * 2 ** i) < 1e-12, `bucket ${i}`);
    });
    const m = createMetrics({ defaultMetrics: false });
    m.syncProxyRulesDuration.observe({ ip_family: 'IPv4' }, 0.003);
    const text = await renderMetrics(m.registry);
    const les = [
      ...text.matchAll(
        /^kubeproxy_sync_proxy_rules_duration_seconds_bucket\{ip_family="IPv4",le="([^"]+)"\} (\d+)$/gm,
      ),
    ];
    assert.deepEqual(
      les.map((x) => x[1]),
      [
        '0.001',
        '0.002',
        '0.004',
        '0.008',
        '0.016',
        '0.032',
        '0.064',
        '0.128',
        '0.256',
        '0.512',
        '1.024',
        '2.048',
        '4.096',
        '8.192',
        '16.384',
        '+Inf',
      ],
    );
    assert.deepEqual(
      les.map((x) => Number(x[2])),
      [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    );
  });

  it("uses upstream's merged network-programming buckets (leading 0 up to 300s)", () => {
    assert.equal(NETWORK_PROGRAMMING_BUCKETS.length, 1 + 2 + 59 + 12 + 7);
    assert.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5), [0, 0.25, 0.5, 1, 2]);
    assert.equal(NETWORK_PROGRAMMING_BUCKETS.at(-1), 300);
    assert.ok(NETWORK_PROGRAMMING_BUCKETS.includes(115) && NETWORK_PROGRAMMING_BUCKETS.includes(150));
  });

  it('writes labels sorted by name whatever order the caller used', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.iptablesRulesTotal.set({ table: 'nat', ip_family: 'IPv6' }, 42);
    m.noLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: 'IPv4' }, 2);
    m.proxyHealthzTotal.inc({ code: '503' });
    m.endpointChangesTotal.inc(3);
    const text = await renderMetrics(m.registry);
    assert.match(text, /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv6",table="nat"\} 42$/m);
    assert.match(
      text,
      /^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{ip_family="IPv4",traffic_policy="internal"\} 2$/m,
    );
    assert.match(text, /^kubeproxy_proxy_healthz_total\{code="503"\} 1$/m);
    assert.match(text, /^kubeproxy_sync_proxy_rules_endpoint_changes_total 3$/m);
  });

  it('keeps escaped label values intact when reordering', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.iptablesRulesTotal.set({ table: 'a"b\\c,d', ip_family: 'IPv4' }, 1);
    const text = await renderMetrics(m.registry);
    assert.match(
      text,
      /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="a\\"b\\\\c,d"\} 1$/m,
    );
  });

  it('registers only what upstream registers for the mode', async () => {
    const nft = types(
      await renderMetrics(createMetrics({ mode: 'nftables', defaultMetrics: false }).registry),
    );
    assert.ok(nft.has('kubeproxy_sync_proxy_rules_nftables_sync_failures_total'));
    assert.ok(!nft.has('kubeproxy_sync_proxy_rules_iptables_total'));
    assert.ok(!nft.has('kubeproxy_sync_full_proxy_rules_duration_seconds'));
    const ipt = types(
      await renderMetrics(createMetrics({ mode: 'iptables', defaultMetrics: false }).registry),
    );
    assert.ok(ipt.has('kubeproxy_sync_partial_proxy_rules_duration_seconds'));
    assert.ok(!ipt.has('kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total'));
    const ipvs = types(await renderMetrics(createMetrics({ mode: 'ipvs', defaultMetrics: false }).registry));
    assert.ok(ipvs.has('kubeproxy_sync_proxy_rules_iptables_restore_failures_total'));
    assert.ok(!ipvs.has('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total'));
  });

  it('gives each call its own registry', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.serviceChangesTotal.inc();
    assert.match(await renderMetrics(a.registry), /^kubeproxy_sync_proxy_rules_service_changes_total 1$/m);
    assert.match(await renderMetrics(b.registry), /^kubeproxy_sync_proxy_rules_service_changes_total 0$/m);
  });
});

describe('addNfacctCounters', () => {
  it('is absent until added; then reads each object at scrape time, keeping the last value on a failed read', async () => {
    const m = createMetrics({ mode: 'iptables', defaultMetrics: false });
    assert.doesNotMatch(await renderMetrics(m.registry), /nfacct|_packets_total/);
    const counts = new Map([
      ['ct_state_invalid_dropped_pkts', 2],
      ['localhost_nps_accepted_pkts', 7],
    ]);
    let fail = false;
    m.addNfacctCounters((object) =>
      fail ? Promise.reject(new Error('gone')) : Promise.resolve(counts.get(object)!),
    );
    m.addNfacctCounters(() => Promise.resolve(99)); // a second call (the other family) is a no-op
    let text = await renderMetrics(m.registry);
    assert.match(text, /^kubeproxy_iptables_ct_state_invalid_dropped_packets_total 2$/m);
    assert.match(text, /^kubeproxy_iptables_localhost_nodeports_accepted_packets_total 7$/m);
    assert.match(text, /# TYPE kubeproxy_iptables_localhost_nodeports_accepted_packets_total counter/);
    counts.set('localhost_nps_accepted_pkts', 9);
    text = await renderMetrics(m.registry);
    assert.match(text, /^kubeproxy_iptables_localhost_nodeports_accepted_packets_total 9$/m);
    fail = true;
    text = await renderMetrics(m.registry);
    assert.match(text, /^kubeproxy_iptables_localhost_nodeports_accepted_packets_total 9$/m);
  });
});
