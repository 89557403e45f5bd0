// Integration: the api source against the in-process fake API server (real wire protocol).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, loadConnectionSettings } from '../src/k8s/client.js';
import { createApiSource } from '../src/sources/api-source.js';
import type { ApiSource } from '../src/sources/api-source.js';
import type { SourceEvent } from '../src/sources/source.js';
import type { Kind, KubeObject } from '../src/model/types.js';
import { createMemoryLogger } from '../src/observability/logger.js';
import { PROXY_LABEL_SELECTOR } from '../src/model/filters.js';
import { DEFAULT_RESOURCES, startFakeApiServer } from './fake-apiserver.js';
import type { FakeApiServer } from './fake-apiserver.js';

const FAST = {
  backoffInitialMs: 5,
  backoffMaxMs: 40,
  idleTimeoutMs: 400,
  minWatchTimeoutSeconds: 1,
  shortWatchMs: 20,
};
const NODE = 'node-a';

type Obj = Record<string, unknown>;

function svc(name: string, ip: string, labels: Record<string, string> = {}, port = 80): Obj {
  return {
    metadata: { name, namespace: 'default', labels },
    spec: {
      type: 'ClusterIP',
      clusterIP: ip,
      clusterIPs: [ip],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    },
  };
}
function slice(name: string, service: string, ip: string, extraLabels: Record<string, string> = {}): Obj {
  return {
    metadata: {
      name,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': service, ...extraLabels },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true }, nodeName: NODE }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}
function node(name: string, zone = 'z1'): Obj {
  return {
    metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
    spec: { podCIDRs: ['10.244.0.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] },
  };
}

/** A consumer that mirrors the stream and records every protocol violation (duplicate add, etc.). */
class Mirror {
  readonly state = new Map<string, KubeObject>();
  readonly violations: string[] = [];
  readonly synced = new Set<Kind>();
  readonly events: SourceEvent[] = [];
  private readonly waiters: (() => void)[] = [];
  handler = (ev: SourceEvent): void => {
    this.events.push(ev);
    if (ev.type === 'synced') {
      if (this.synced.has(ev.kind)) this.violations.push(`second synced for ${ev.kind}`);
      this.synced.add(ev.kind);
    } else {
      const k = key(ev.object);
      const cur = this.state.get(k);
      if (ev.type === 'add') {
        if (cur) this.violations.push(`add of present ${k}`);
        this.state.set(k, ev.object);
      } else if (ev.type === 'update') {
        if (!cur) this.violations.push(`update of absent ${k}`);
        else if (cur.meta.resourceVersion !== ev.old.meta.resourceVersion)
          this.violations.push(
            `update of ${k}: old rv ${ev.old.meta.resourceVersion} != held ${cur.meta.resourceVersion}`,
          );
        if (ev.old.meta.resourceVersion === ev.object.meta.resourceVersion)
          this.violations.push(`duplicate update of ${k} at rv ${ev.object.meta.resourceVersion}`);
        this.state.set(k, ev.object);
      } else {
        if (!cur) this.violations.push(`delete of absent ${k}`);
        this.state.delete(k);
      }
    }
    for (const w of this.waiters.splice(0)) w();
  };
  /** Resolves when `pred` holds, re-checking after each event (and every 50 ms); rejects after `ms`. */
  async until(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  versions(): Record<string, string> {
    return Object.fromEntries(
      [...this.state].map(([k, o]): [string, string] => [k, o.meta.resourceVersion]).sort(),
    );
  }
}

function key(o: KubeObject): string {
  return `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
}

const KIND_OF: Record<string, Kind> = {
  services: 'Service',
  endpointslices: 'EndpointSlice',
  nodes: 'Node',
  servicecidrs: 'ServiceCIDR',
};

/** What the consumer must end up holding: the server's objects filtered as kube-proxy selects them. */
function expected(api: FakeApiServer, withCIDRs: boolean): Record<string, string> {
  const out: [string, string][] = [];
  for (const res of ['services', 'endpointslices', 'nodes', ...(withCIDRs ? ['servicecidrs'] : [])]) {
    for (const o of api.list(res)) {
      const md = o.metadata as {
        name: string;
        namespace?: string;
        resourceVersion: string;
        labels?: Record<string, string>;
      };
      const labels = md.labels ?? {};
      if (
        (res === 'services' || res === 'endpointslices') &&
        ('service.kubernetes.io/service-proxy-name' in labels || 'service.kubernetes.io/headless' in labels)
      )
        continue;
      if (res === 'nodes' && md.name !== NODE) continue;
      out.push([`${KIND_OF[res]!}/${md.namespace ?? ''}/${md.name}`, md.resourceVersion]);
    }
  }
  return Object.fromEntries(out.sort());
}

interface Rig {
  api: FakeApiServer;
  client: ApiClient;
  source: ApiSource;
  mirror: Mirror;
  logger: ReturnType<typeof createMemoryLogger>;
  stop(): Promise<void>;
}

async function rig(
  api: FakeApiServer,
  opts: { serviceCIDRs?: boolean; pageSize?: number; seed?: number } = {},
): Promise<Rig> {
  const settings = await loadConnectionSettings({ kubeconfig: '', master: api.url });
  const client = new ApiClient({ settings, qps: 0 });
  const logger = createMemoryLogger();
  const mirror = new Mirror();
  const rnd = mulberry32(opts.seed ?? 1);
  const source = createApiSource({
    connection: client,
    scope: { nodeName: NODE, serviceCIDRs: opts.serviceCIDRs ?? false },
    logger,
    timing: FAST,
    pageSize: opts.pageSize ?? 2,
    random: rnd,
  });
  await source.start(mirror.handler);
  return {
    api,
    client,
    source,
    mirror,
    logger,
    async stop() {
      await source.stop();
      client.close();
    },
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('api source', () => {
  let api: FakeApiServer;
  before(async () => {
    api = await startFakeApiServer({ bookmarkIntervalMs: 100 });
  });
  after(async () => {
    await api.close();
  });

  test('initial list delivers everything (paged), then synced once per kind', async () => {
    for (let i = 0; i < 5; i++) api.create('services', svc(`s${i}`, `10.96.0.${i + 10}`));
    for (let i = 0; i < 5; i++)
      api.create('endpointslices', slice(`s${i}-abc`, `s${i}`, `10.244.0.${i + 10}`));
    api.create('nodes', node(NODE));
    api.create('nodes', node('node-b'));
    api.create('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16'] } });
    const r = await rig(api, { serviceCIDRs: true });
    try {
      assert.equal(await r.source.waitForSync(), true);
      assert.equal(r.source.hasSynced(), true);
      assert.deepEqual(r.mirror.versions(), expected(api, true));
      assert.deepEqual([...r.mirror.synced].sort(), ['EndpointSlice', 'Node', 'Service', 'ServiceCIDR']);
      // Per kind, every add of the initial list precedes that kind's synced event.
      for (const kind of r.mirror.synced) {
        const syncedAt = r.mirror.events.findIndex((e) => e.type === 'synced' && e.kind === kind);
        const adds = r.mirror.events.filter((e) => e.type === 'add' && e.object.kind === kind).length;
        const addsBefore = r.mirror.events
          .slice(0, syncedAt)
          .filter((e) => e.type === 'add' && e.object.kind === kind).length;
        assert.equal(addsBefore, adds, `${kind}: all adds before synced`);
      }
      assert.ok(!r.mirror.state.has('Node//node-b'), 'other nodes are not delivered');
      // Five services with limit=2 need continue tokens.
      assert.ok(
        api.requests.some(
          (q) => q.path === '/api/v1/services' && q.query.get('continue') && q.query.get('limit') === '2',
        ),
      );
      assert.deepEqual(r.mirror.violations, []);
    } finally {
      await r.stop();
    }
  });

  test('sends upstream selectors, watches with bookmarks from the list resourceVersion', async () => {
    const first = api.requests.length;
    const r = await rig(api);
    try {
      await r.source.waitForSync();
      await r.mirror.until(() => api.openWatches() >= 3, 'three watches open');
      const mine = api.requests.slice(first);
      const reqs = mine.filter((q) => q.path === '/api/v1/services' || q.path.endsWith('/endpointslices'));
      assert.ok(reqs.length > 0);
      for (const q of reqs) assert.equal(q.query.get('labelSelector'), PROXY_LABEL_SELECTOR);
      const nodeReqs = mine.filter((q) => q.path === '/api/v1/nodes');
      assert.ok(nodeReqs.length > 0);
      for (const q of nodeReqs) assert.equal(q.query.get('fieldSelector'), `metadata.name=${NODE}`);
      const watches = mine.filter((q) => q.watch);
      assert.ok(watches.length >= 3);
      for (const w of watches) {
        assert.equal(w.query.get('allowWatchBookmarks'), 'true');
        assert.match(w.query.get('resourceVersion') ?? '', /^[1-9][0-9]*$/);
        const t = Number(w.query.get('timeoutSeconds'));
        assert.ok(
          t >= FAST.minWatchTimeoutSeconds && t <= 2 * FAST.minWatchTimeoutSeconds,
          `timeoutSeconds ${t}`,
        );
      }
      assert.equal(
        mine.some((q) => q.path.includes('servicecidrs')),
        false,
        'no ServiceCIDR watch unless asked',
      );
    } finally {
      await r.stop();
    }
  });

  test('watch delivers add, update and delete; label changes move objects in and out', async () => {
    const r = await rig(api);
    try {
      await r.source.waitForSync();
      api.create('services', svc('w1', '10.96.1.1'));
      await r.mirror.until(() => r.mirror.state.has('Service/default/w1'), 'w1 added');
      api.update('services', svc('w1', '10.96.1.1', {}, 81));
      await r.mirror.until(
        () =>
          (r.mirror.state.get('Service/default/w1') as { ports?: { port: number }[] } | undefined)?.ports?.[0]
            ?.port === 81,
        'w1 updated',
      );
      api.update('services', svc('w1', '10.96.1.1', { 'service.kubernetes.io/headless': '' }, 81));
      await r.mirror.until(() => !r.mirror.state.has('Service/default/w1'), 'w1 leaves the selection');
      api.update('services', svc('w1', '10.96.1.1', {}, 82));
      await r.mirror.until(() => r.mirror.state.has('Service/default/w1'), 'w1 re-enters the selection');
      api.delete('services', 'default', 'w1');
      await r.mirror.until(() => !r.mirror.state.has('Service/default/w1'), 'w1 deleted');
      api.create('nodes', node(`${NODE}-other`));
      api.update('nodes', node(NODE, 'z2'));
      await r.mirror.until(
        () => r.mirror.state.get(`Node//${NODE}`)?.meta.labels['topology.kubernetes.io/zone'] === 'z2',
        'node updated',
      );
      assert.deepEqual(r.mirror.versions(), expected(api, false));
      assert.deepEqual(r.mirror.violations, []);
    } finally {
      await r.stop();
    }
  });

  test('invalid object: logged once with name, field and value, skipped; last good version stays', async () => {
    api.create('services', svc('bad', 'not-an-ip'));
    api.create('services', svc('good', '10.96.2.2'));
    const r = await rig(api);
    try {
      await r.source.waitForSync();
      assert.ok(r.mirror.state.has('Service/default/good'));
      assert.ok(!r.mirror.state.has('Service/default/bad'));
      const logged = (): typeof r.logger.entries =>
        r.logger.entries.filter((e) => e.level === 'error' && e.obj.name === 'bad');
      assert.equal(logged().length, 1);
      assert.equal(logged()[0]!.obj.namespace, 'default');
      assert.equal(logged()[0]!.obj.field, 'spec.clusterIP');
      assert.equal(logged()[0]!.obj.value, 'not-an-ip');
      // Force a relist: the same bad version is not logged again.
      api.compact();
      api.expireWatches();
      api.create('services', svc('after-relist', '10.96.2.3'));
      await r.mirror.until(
        () => r.mirror.state.has('Service/default/after-relist'),
        'flow continues after relist',
      );
      assert.equal(logged().length, 1);
      // A bad update keeps the last good version in force.
      const goodBefore = r.mirror.state.get('Service/default/good')!;
      api.update('services', svc('good', '10.96.2.999'));
      api.create('services', svc('marker', '10.96.2.4'));
      await r.mirror.until(() => r.mirror.state.has('Service/default/marker'), 'marker');
      assert.equal(r.mirror.state.get('Service/default/good'), goodBefore);
      assert.equal(r.logger.entries.filter((e) => e.level === 'error' && e.obj.name === 'good').length, 1);
      // Its deletion still goes through.
      api.delete('services', 'default', 'good');
      await r.mirror.until(() => !r.mirror.state.has('Service/default/good'), 'good deleted');
      assert.deepEqual(r.mirror.violations, []);
    } finally {
      await r.stop();
      api.delete('services', 'default', 'bad');
    }
  });

  test('HTTP 500 and 410 on the first list: retries, then syncs', async () => {
    api.failNext(3, 500, (q) => q.path === '/api/v1/nodes');
    api.failNext(1, 410, (q) => q.path === '/api/v1/services');
    const r = await rig(api);
    try {
      assert.equal(r.source.hasSynced(), false);
      assert.equal(await r.source.waitForSync(), true);
      assert.deepEqual(r.mirror.versions(), expected(api, false));
      assert.ok(
        r.logger.entries.some(
          (e) => e.msg === 'the API server answers 500; retrying' && e.obj.phase === 'list',
        ),
      );
    } finally {
      await r.stop();
    }
  });

  test('a stalled watch is detected by the watchdog and re-established', async () => {
    const r = await rig(api);
    try {
      await r.source.waitForSync();
      await r.mirror.until(() => api.openWatches() >= 3, 'watches open');
      api.stallWatches();
      api.create('services', svc('during-stall', '10.96.3.1'));
      await r.mirror.until(() => r.mirror.state.has('Service/default/during-stall'), 'event after stall');
      assert.ok(
        r.logger.entries.some((e) => /idle timeout|no data/.test(String(e.obj.err))),
        'watchdog fired',
      );
      assert.deepEqual(r.mirror.violations, []);
    } finally {
      await r.stop();
    }
  });

  test('stop() before the first list resolves waitForSync(false) and delivers nothing more', async () => {
    api.stallNext(1, (q) => q.path === '/api/v1/services');
    const r = await rig(api);
    await r.stop();
    assert.equal(await r.source.waitForSync(), false);
    const n = r.mirror.events.length;
    api.create('services', svc('after-stop', '10.96.4.1'));
    await tick(100);
    assert.equal(r.mirror.events.length, n);
  });
});

test('ServiceCIDRs fall back to networking.k8s.io/v1beta1 when v1 is not served', async () => {
  const api = await startFakeApiServer({
    resources: {
      ...DEFAULT_RESOURCES,
      servicecidrs: {
        kind: 'ServiceCIDR',
        apiVersion: 'networking.k8s.io/v1beta1',
        path: '/apis/networking.k8s.io/v1beta1/servicecidrs',
        namespaced: false,
      },
    },
  });
  api.create('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
  api.create('nodes', node(NODE));
  const r = await rig(api, { serviceCIDRs: true });
  try {
    assert.equal(await r.source.waitForSync(), true);
    assert.ok(r.mirror.state.has('ServiceCIDR//kubernetes'));
    assert.ok(
      api.requests.some((q) => q.path === '/apis/networking.k8s.io/v1/servicecidrs'),
      'v1 tried first',
    );
    assert.ok(r.logger.entries.some((e) => e.msg.includes('another API version')));
  } finally {
    await r.stop();
    await api.close();
  }
});

describe('api source under faults', () => {
  for (const goneMode of ['event', 'http'] as const) {
    test(`random mutations interleaved with drops, 500s, 410s, stalls and bookmarks converge exactly (gone as ${goneMode})`, async () => {
      const api = await startFakeApiServer({ bookmarkIntervalMs: 100, goneMode, historySize: 40 });
      const rnd = mulberry32(goneMode === 'event' ? 42 : 7);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      for (let i = 0; i < 6; i++) api.create('services', svc(`c${i}`, `10.96.5.${i + 1}`));
      api.create('nodes', node(NODE));
      const r = await rig(api, { serviceCIDRs: true, seed: goneMode === 'event' ? 3 : 4 });
      const faults: string[] = [];
      try {
        await r.source.waitForSync();
        for (let step = 0; step < 150; step++) {
          const i = Math.floor(rnd() * 10);
          const name = `c${i}`;
          const roll = rnd();
          if (roll < 0.55) {
            const labels: Record<string, string> =
              rnd() < 0.15 ? { 'service.kubernetes.io/service-proxy-name': 'other' } : {};
            api.apply('services', svc(name, `10.96.5.${i + 1}`, labels, 80 + Math.floor(rnd() * 100)));
            api.apply('endpointslices', slice(`${name}-x`, name, `10.244.5.${Math.floor(rnd() * 250) + 1}`));
          } else if (roll < 0.7) {
            api.delete('services', 'default', name);
            if (rnd() < 0.5) api.delete('endpointslices', 'default', `${name}-x`);
          } else if (roll < 0.75) {
            api.apply('nodes', node(pick([NODE, 'node-z']), pick(['z1', 'z2', 'z3'])));
          } else if (roll < 0.78) {
            if (!api.delete('servicecidrs', '', 'extra'))
              api.create('servicecidrs', { metadata: { name: 'extra' }, spec: { cidrs: ['10.100.0.0/16'] } });
          } else {
            const f = pick(['drop', 'fail', 'expire', 'compact', 'stall', 'stallNext', 'bookmark'] as const);
            faults.push(f);
            if (f === 'drop') api.dropWatches();
            else if (f === 'fail') api.failNext(1 + Math.floor(rnd() * 3), pick([500, 503, 429]));
            else if (f === 'expire') api.expireWatches();
            else if (f === 'compact') {
              api.compact();
              api.dropWatches();
            } else if (f === 'stall') api.stallWatches();
            else if (f === 'stallNext') api.stallNext(1);
            else api.bookmark();
          }
          if (rnd() < 0.3) await tick(Math.floor(rnd() * 30));
        }
        await r.mirror.until(
          () => JSON.stringify(r.mirror.versions()) === JSON.stringify(expected(api, true)),
          'convergence',
        );
        assert.deepEqual(r.mirror.versions(), expected(api, true));
        assert.deepEqual(r.mirror.violations, [], `faults: ${faults.join(',')}`);
        assert.ok(faults.length > 0);
        // For the record in the test output: how hard the run was.
        console.log(
          `faults: ${faults.join(',')}; lists: ${api.requests.filter((q) => !q.watch).length}, watches: ${api.requests.filter((q) => q.watch).length}`,
        );
      } finally {
        await r.stop();
        await api.close();
      }
    });
  }
});
