import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Node } from '../model/types.js';
import { createFakeClock, realClock } from './go-time.js';
import { createMetrics, renderMetrics } from './metrics.js';
import { createMetricsServer } from './metrics-server.js';
import { ProxyHealthServer, isNodeEligible } from './proxy-health.js';

const T0 = Date.parse('2025-01-02T03:04:05Z');
const TIMEOUT = 60_000; // 2 × a 30 s syncPeriod

function node(overrides: Partial<{ deletionTimestamp: string; taints: Node['taints'] }> = {}): Node {
  return {
    kind: 'Node',
    meta: {
      namespace: '',
      name: 'node-a',
      uid: 'u1',
      resourceVersion: '1',
      labels: {},
      annotations: {},
      ...(overrides.deletionTimestamp !== undefined
        ? { deletionTimestamp: overrides.deletionTimestamp }
        : {}),
    },
    addresses: [],
    podCIDRs: [],
    taints: overrides.taints ?? [],
  };
}

interface Got {
  status: number;
  body: string;
  headers: Headers;
}

async function get(base: string, path: string): Promise<Got> {
  const r = await fetch(base + path);
  return { status: r.status, body: await r.text(), headers: r.headers };
}

function setup(bodyFormat: 'json' | 'legacy' = 'json') {
  const clock = createFakeClock(T0);
  const metrics = createMetrics({ defaultMetrics: false });
  const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock, metrics, bodyFormat });
  let base = '';
  before(async () => {
    const addr = await hs.listen('127.0.0.1:0');
    base = `http://127.0.0.1:${addr.port}`;
  });
  after(() => hs.close());
  return { clock, metrics, hs, url: () => base };
}

describe('ProxyHealthServer state (fake clock)', () => {
  it('is healthy before any family has synced, even with updates queued', () => {
    const clock = createFakeClock(T0);
    const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock });
    assert.equal(hs.isHealthy(), true);
    hs.queuedUpdate('IPv4');
    clock.advance(10 * TIMEOUT);
    // Upstream only judges families present in its last-updated map.
    assert.equal(hs.isHealthy(), true);
  });

  it('goes unhealthy exactly when the oldest pending update reaches the timeout, and recovers on updated()', () => {
    const clock = createFakeClock(T0);
    const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock });
    hs.updated('IPv4');
    hs.queuedUpdate('IPv4');
    clock.advance(TIMEOUT - 1);
    assert.equal(hs.isHealthy(), true);
    clock.advance(1);
    assert.equal(hs.isHealthy(), false);
    hs.updated('IPv4');
    assert.equal(hs.isHealthy(), true);
  });

  it('keeps the time of the first queued update while one is pending', () => {
    const clock = createFakeClock(T0);
    const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock });
    hs.updated('IPv4');
    hs.queuedUpdate('IPv4');
    clock.advance(TIMEOUT / 2);
    hs.queuedUpdate('IPv4');
    clock.advance(TIMEOUT / 2);
    assert.equal(hs.isHealthy(), false);
  });

  it('is unhealthy when any one family is late, and reports each family', () => {
    const clock = createFakeClock(T0);
    const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock });
    hs.updated('IPv4');
    hs.updated('IPv6');
    hs.queuedUpdate('IPv6');
    clock.advance(TIMEOUT);
    hs.queuedUpdate('IPv4');
    const h = hs.health();
    assert.equal(h.healthy, false);
    assert.equal(h.status.get('IPv4')?.healthy, true);
    assert.equal(h.status.get('IPv6')?.healthy, false);
  });

  it('judges node eligibility from deletionTimestamp and the autoscaler taint', () => {
    assert.equal(isNodeEligible(node()), true);
    assert.equal(isNodeEligible(node({ deletionTimestamp: '2025-01-02T00:00:00Z' })), false);
    assert.equal(
      isNodeEligible(
        node({ taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '123', effect: 'NoSchedule' }] }),
      ),
      false,
    );
    assert.equal(isNodeEligible(node({ taints: [{ key: 'other', effect: 'NoSchedule' }] })), true);
    assert.equal(isNodeEligible(undefined), false);
  });

  it('rejects a nonsensical timeout with a message naming it', () => {
    assert.throws(() => new ProxyHealthServer({ healthTimeoutMs: Number.NaN }), /healthTimeoutMs.*NaN/);
  });
});

describe('ProxyHealthServer HTTP, JSON body (current upstream)', () => {
  const s = setup('json');

  it('answers 200 on /healthz and /livez at startup, with JSON headers', async () => {
    for (const path of ['/healthz', '/livez']) {
      const r = await get(s.url(), path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    }
    const hz = await get(s.url(), '/healthz');
    assert.equal(
      hz.body,
      '{"lastUpdated":"2025-01-02T03:04:05Z","currentTime":"2025-01-02T03:04:05Z","nodeEligible":true,"healthy":true}',
    );
    const lz = await get(s.url(), '/livez');
    assert.equal(
      lz.body,
      '{"lastUpdated":"2025-01-02T03:04:05Z","currentTime":"2025-01-02T03:04:05Z","healthy":true}',
    );
  });

  it('reports 503 with the stale lastUpdated and per-family status once a queued update times out', async () => {
    s.hs.updated('IPv4');
    s.clock.advance(1000);
    s.hs.queuedUpdate('IPv4');
    s.clock.advance(500);
    let r = await get(s.url(), '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      lastUpdated: '2025-01-02T03:04:06.5Z', // "now", while healthy
      currentTime: '2025-01-02T03:04:06.5Z',
      nodeEligible: true,
      healthy: true,
      status: { IPv4: { lastUpdated: '2025-01-02T03:04:05Z', healthy: true } },
    });
    s.clock.advance(TIMEOUT);
    r = await get(s.url(), '/healthz');
    assert.equal(r.status, 503);
    assert.equal(
      r.body,
      '{"lastUpdated":"2025-01-02T03:04:05Z","currentTime":"2025-01-02T03:05:06.5Z","nodeEligible":true,"healthy":false,' +
        '"status":{"IPv4":{"lastUpdated":"2025-01-02T03:04:05Z","healthy":false}}}',
    );
    assert.equal((await get(s.url(), '/livez')).status, 503);
    s.hs.updated('IPv4');
    assert.equal((await get(s.url(), '/healthz')).status, 200);
  });

  it('fails /healthz but not /livez when the node is being deleted', async () => {
    s.hs.syncNode(node({ taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] }));
    const hz = await get(s.url(), '/healthz');
    assert.equal(hz.status, 503);
    assert.equal(JSON.parse(hz.body).nodeEligible, false);
    assert.equal(JSON.parse(hz.body).healthy, true); // proxy health itself is fine
    assert.equal((await get(s.url(), '/livez')).status, 200);
    s.hs.syncNode(node());
    assert.equal((await get(s.url(), '/healthz')).status, 200);
  });

  it('answers 404 on other paths', async () => {
    const r = await get(s.url(), '/healthz/extra');
    assert.equal(r.status, 404);
    assert.equal(r.body, '404 page not found\n');
  });

  it('counts responses by code in kubeproxy_proxy_healthz_total / livez_total', async () => {
    const count = async (name: string, code: string): Promise<number> => {
      const m = new RegExp(`^${name}\\{code="${code}"\\} (\\d+)$`, 'm').exec(
        await renderMetrics(s.metrics.registry),
      );
      return m ? Number(m[1]) : 0;
    };
    const h200 = await count('kubeproxy_proxy_healthz_total', '200');
    const h503 = await count('kubeproxy_proxy_healthz_total', '503');
    const l200 = await count('kubeproxy_proxy_livez_total', '200');
    await get(s.url(), '/healthz');
    await get(s.url(), '/livez');
    s.hs.setNodeEligible(false);
    await get(s.url(), '/healthz');
    s.hs.setNodeEligible(true);
    assert.equal(await count('kubeproxy_proxy_healthz_total', '200'), h200 + 1);
    assert.equal(await count('kubeproxy_proxy_healthz_total', '503'), h503 + 1);
    assert.equal(await count('kubeproxy_proxy_livez_total', '200'), l200 + 1);
  });
});

describe('ProxyHealthServer HTTP, legacy body (upstream <= 1.32)', () => {
  const s = setup('legacy');
  const GO_TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})? \+0000 UTC(?: m=[+-]\d+\.\d{9})?`;

  it('uses the exact upstream format strings', async () => {
    const hz = await get(s.url(), '/healthz');
    assert.equal(hz.status, 200);
    assert.match(
      hz.body,
      new RegExp(`^\\{"lastUpdated": "${GO_TIME}","currentTime": "${GO_TIME}", "nodeEligible": true\\}$`),
    );
    assert.equal(
      hz.body,
      '{"lastUpdated": "2025-01-02 03:04:05 +0000 UTC","currentTime": "2025-01-02 03:04:05 +0000 UTC", "nodeEligible": true}',
    );
    const lz = await get(s.url(), '/livez');
    assert.match(lz.body, new RegExp(`^\\{"lastUpdated": "${GO_TIME}","currentTime": "${GO_TIME}"\\}$`));
  });

  it("reports the late family's lastUpdated when unhealthy", async () => {
    s.hs.updated('IPv6');
    s.hs.queuedUpdate('IPv6');
    s.clock.advance(TIMEOUT + 250);
    s.hs.setNodeEligible(false);
    const hz = await get(s.url(), '/healthz');
    assert.equal(hz.status, 503);
    assert.equal(
      hz.body,
      '{"lastUpdated": "2025-01-02 03:04:05 +0000 UTC","currentTime": "2025-01-02 03:05:05.25 +0000 UTC", "nodeEligible": false}',
    );
  });

  it('prints the monotonic part with the real clock', async () => {
    const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock: realClock, bodyFormat: 'legacy' });
    const { port } = await hs.listen('127.0.0.1:0');
    try {
      const r = await get(`http://127.0.0.1:${port}`, '/livez');
      assert.match(
        r.body,
        /^\{"lastUpdated": "[^"]+ m=\+\d+\.\d{9}","currentTime": "[^"]+ m=\+\d+\.\d{9}"\}$/,
      );
    } finally {
      await hs.close();
    }
  });
});

describe('metrics server', () => {
  const metrics = createMetrics();
  const server = createMetricsServer(metrics.registry, {
    proxyMode: 'nftables',
    configz: { mode: 'nftables', syncPeriodMs: 30000 },
  });
  let base = '';
  before(async () => {
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1:0')).port}`;
  });
  after(() => server.close());

  it('serves /metrics as Prometheus text with the kube-proxy and process metrics', async () => {
    metrics.syncProxyRulesLastTimestamp.set({ ip_family: 'IPv4' }, 1735787045);
    const r = await get(base, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(r.body, /^# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram$/m);
    assert.match(
      r.body,
      /^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} 1735787045$/m,
    );
    assert.match(r.body, /^# TYPE process_resident_memory_bytes gauge$/m);
  });

  it('serves /healthz as a plain "ok"', async () => {
    const r = await get(base, '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  });

  it('serves /proxyMode and /configz', async () => {
    const mode = await get(base, '/proxyMode');
    assert.equal(mode.body, 'nftables');
    assert.equal(mode.headers.get('x-content-type-options'), 'nosniff');
    const cz = await get(base, '/configz');
    assert.equal(cz.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(cz.body), {
      'kubeproxy.config.k8s.io': { mode: 'nftables', syncPeriodMs: 30000 },
    });
  });

  it('answers 404 elsewhere and rejects a bad bind address clearly', async () => {
    assert.equal((await get(base, '/nope')).status, 404);
    await assert.rejects(server.listen('localhost'), /invalid bind address "localhost"/);
  });
});
