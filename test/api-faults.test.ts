// Integration: the api source under API-server faults an operator meets (issue #13): a server that
// accepts and then hangs, 401 from the start, 429 with Retry-After. Against the in-process fake server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, type ConnectionSettings } from '../src/k8s/client.js';
import { createApiSource, type ApiSource } from '../src/sources/api-source.js';
import type { ReflectorTiming } from '../src/k8s/reflector.js';
import type { SourceEvent } from '../src/sources/source.js';
import { createMemoryLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';

const NODE = 'node-a';
type Obj = Record<string, unknown>;

function svc(name: string, ip: string): Obj {
  return {
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP: ip,
      clusterIPs: [ip],
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    },
  };
}

interface Rig {
  source: ApiSource;
  logger: ReturnType<typeof createMemoryLogger>;
  services: Set<string>;
  token: { value: string };
  stop(): Promise<void>;
}

async function rig(api: FakeApiServer, timing: Partial<ReflectorTiming>, token = 'good'): Promise<Rig> {
  const tok = { value: token };
  const settings: ConnectionSettings = {
    server: new URL(api.url),
    rejectUnauthorized: true,
    authHeaders: () => Promise.resolve({ Authorization: `Bearer ${tok.value}` }),
    origin: 'test',
  };
  const client = new ApiClient({ settings, qps: 0 });
  const logger = createMemoryLogger();
  const services = new Set<string>();
  const source = createApiSource({
    connection: client,
    scope: { nodeName: NODE, serviceCIDRs: false },
    logger,
    timing: { minWatchTimeoutSeconds: 60, shortWatchMs: 20, ...timing },
  });
  await source.start((ev: SourceEvent) => {
    if (ev.type === 'add' && ev.object.kind === 'Service') services.add(ev.object.meta.name);
    if (ev.type === 'delete' && ev.object.kind === 'Service') services.delete(ev.object.meta.name);
  });
  return {
    source,
    logger,
    services,
    token: tok,
    async stop() {
      await source.stop();
      client.close();
    },
  };
}

async function until(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('api source under faults an operator meets', () => {
  let api: FakeApiServer;
  before(async () => {
    api = await startFakeApiServer({ token: 'good' });
    api.create('nodes', { metadata: { name: NODE }, spec: {}, status: {} });
  });
  after(async () => {
    await api.close();
  });

  test('a server that accepts and then hangs is detected by the liveness probe, then relisted', async () => {
    // The hard idle ceiling is far away: only the probe (no byte for 300 ms, no answer in 200 ms) can
    // notice. Before the probe existed, nothing did within the ceiling (3 min by default).
    const r = await rig(api, { probeAfterMs: 300, probeTimeoutMs: 200, idleTimeoutMs: 600_000 });
    try {
      assert.equal(await r.source.waitForSync(), true);
      await until(() => api.openWatches() >= 3, 'watches open');
      const before = api.requests.length;
      api.hang();
      api.create('services', svc('during-hang', '10.96.7.1'));
      // Detection: a fresh LIST (a relist) is attempted, and the source reports the fault.
      const relisted = (): boolean =>
        api.requests.slice(before).some((q) => !q.watch && q.path === '/api/v1/services');
      await until(relisted, 'a relist after the hang', 5_000);
      await tick(1_500);
      assert.equal(r.source.status().fault?.kind, 'hung');
      const hungLines = r.logger.entries.filter((e) => e.obj.fault === 'hung' && e.level === 'warn');
      assert.equal(hungLines.length, 1, 'one line for the fault, not one per reflector or retry');
      assert.match(hungLines[0]!.msg, /stopped answering/);
      api.unhang();
      await until(() => r.services.has('during-hang'), 'the Service created during the hang arrives');
      await until(() => r.source.status().fault === undefined, 'fault cleared');
      assert.ok(r.logger.entries.some((e) => e.msg === 'API server requests succeed again'));
    } finally {
      api.unhang();
      await r.stop();
      api.delete('services', 'default', 'during-hang');
    }
  });

  test('a quiet but live server keeps its watches (the probe is answered)', async () => {
    const r = await rig(api, { probeAfterMs: 100, probeTimeoutMs: 1_000, idleTimeoutMs: 600_000 });
    try {
      await r.source.waitForSync();
      await until(() => api.openWatches() >= 3, 'watches open');
      const watches = (): number => api.requests.filter((q) => q.watch).length;
      const before = watches();
      await tick(1_000);
      assert.equal(watches(), before, 'no re-watch while the server answers probes');
      assert.ok(
        api.requests.some((q) => q.path === '/version'),
        'probes were sent',
      );
      assert.equal(r.source.status().fault, undefined);
    } finally {
      await r.stop();
    }
  });

  test('401 from the start: one clear error line, never synced, then steady once the token works', async () => {
    const r = await rig(api, { backoffInitialMs: 10, backoffMaxMs: 40 }, 'wrong');
    try {
      await until(
        () => api.requests.filter((q) => q.headers.authorization === 'Bearer wrong').length > 20,
        'retries',
      );
      const lines = r.logger.entries.filter((e) => e.level === 'error' || e.level === 'warn');
      assert.deepEqual(
        lines.map((e) => e.msg),
        ["not authorized: check the kubeconfig's credentials"],
        'exactly one line for all those retries',
      );
      const st = r.source.status();
      assert.equal(st.synced, false);
      assert.equal(st.fault?.kind, 'unauthorized');
      r.token.value = 'good';
      assert.equal(await r.source.waitForSync(), true);
      assert.equal(r.source.status().fault, undefined);
      assert.equal(r.source.status().synced, true);
    } finally {
      await r.stop();
    }
  });

  test('429 with Retry-After: the retry waits as long as the server asked', async () => {
    const isSvcList = (q: { path: string; watch: boolean }): boolean =>
      !q.watch && q.path === '/api/v1/services';
    api.failNext(1, 429, isSvcList, 1);
    const start = api.requests.length;
    const r = await rig(api, { backoffInitialMs: 5, backoffMaxMs: 10 });
    try {
      assert.equal(await r.source.waitForSync(), true);
      const lists = api.requests.slice(start).filter(isSvcList);
      assert.ok(lists.length >= 2);
      // A lower bound only: a loaded machine can make it later, never sooner.
      assert.ok(lists[1]!.at - lists[0]!.at >= 950, `retried after ${lists[1]!.at - lists[0]!.at} ms`);
      assert.equal(r.logger.entries.filter((e) => e.obj.fault === 'throttled').length, 1);
    } finally {
      await r.stop();
    }
  });
});
