// Kubernetes Events: the recorder POSTs events.k8s.io/v1 Events with the token, in upstream's shape
// (reportingController kube-proxy, instance kube-proxy-<node>, Node events in "default"), and a
// failing API server is logged once per reason, never thrown.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, type ConnectionSettings } from '../src/k8s/client.js';
import { EventRecorder } from '../src/k8s/events.js';
import { createMemoryLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';

let api: FakeApiServer;
let client: ApiClient;
const settings = (url: string, token: string): ConnectionSettings => ({
  server: new URL(url),
  rejectUnauthorized: true,
  authHeaders: () => Promise.resolve({ Authorization: `Bearer ${token}` }),
  origin: 'test',
});

before(async () => {
  api = await startFakeApiServer({ token: 't' });
  client = new ApiClient({ settings: settings(api.url, 't'), qps: 0 });
});
after(async () => {
  client.close();
  await api.close();
});

test('a Node event goes to namespace default, a Service event to the Service namespace', async () => {
  const rec = new EventRecorder(client, 'node-1', createMemoryLogger());
  await rec.record({
    regarding: { kind: 'Node', name: 'node-1', uid: 'node-1' },
    type: 'Normal',
    reason: 'Starting',
    action: 'StartKubeProxy',
    note: '',
  });
  await rec.record({
    regarding: { kind: 'Service', namespace: 'shop', name: 'web' },
    type: 'Warning',
    reason: 'FailedToStartServiceHealthcheck',
    action: 'Listen',
    note: 'node node-1 failed to start healthcheck "shop/web" on port 30000',
  });
  const posts = api.requests.filter((r) => r.method === 'POST').map((r) => r.path);
  assert.deepEqual(posts, [
    '/apis/events.k8s.io/v1/namespaces/default/events',
    '/apis/events.k8s.io/v1/namespaces/shop/events',
  ]);
  const [start, hc] = api.events as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(start!.apiVersion, 'events.k8s.io/v1');
  assert.equal(start!.reportingController, 'kube-proxy');
  assert.equal(start!.reportingInstance, 'kube-proxy-node-1');
  assert.deepEqual(start!.regarding, { kind: 'Node', name: 'node-1', apiVersion: 'v1', uid: 'node-1' });
  assert.match(start!.eventTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(start!.metadata.name, /^node-1\.[0-9a-f]{16}$/);
  assert.equal(hc!.type, 'Warning');
  assert.equal(hc!.reason, 'FailedToStartServiceHealthcheck');
  assert.equal(hc!.metadata.namespace, 'shop');
});

test('a refused POST is a warning logged once per reason, never an exception', async () => {
  const bad = new ApiClient({ settings: settings(api.url, 'wrong'), qps: 0 });
  try {
    const log = createMemoryLogger();
    const rec = new EventRecorder(bad, 'node-1', log);
    const ev = {
      regarding: { kind: 'Node', name: 'n' },
      type: 'Normal',
      reason: 'Starting',
      action: 'A',
      note: '',
    } as const;
    await rec.record(ev);
    await rec.record(ev);
    assert.equal(log.entries.filter((e) => e.level === 'warn').length, 1);
  } finally {
    bad.close();
  }
});
