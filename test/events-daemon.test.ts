/**
 * Events the daemon sends where upstream sends them, against the fake API server (no root: mode
 * "state" touches no kernel): "Starting" for the Node at start, and "FailedToStartServiceHealthcheck"
 * for a Service whose health check node port cannot be bound; the proxy keeps serving the rest.
 * The IPVS deprecation Event is checked through startupEvents (ipvs mode needs the VM's kernel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/backends/index.js';
import { parseCommandLine } from '../src/config/load.js';
import { runDaemon } from '../src/app/proxy-server.js';
import { ApiClient } from '../src/k8s/client.js';
import { EventRecorder, startupEvents } from '../src/k8s/events.js';
import { createMemoryLogger } from '../src/observability/logger.js';
import { startFakeApiServer } from './fake-apiserver.js';
import { clusterObjects, writeKubeadmFiles } from './fixtures/kubeadm.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Holds a TCP port on every address (what a health check server of another process would do). */
function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : 0 });
    });
  });
}

test('a health check node port that cannot be bound: a Warning Event about the Service, as upstream', async () => {
  const api = await startFakeApiServer({ token: 'tok' });
  for (const { resource, obj } of clusterObjects('node-1', '192.168.0.10', ['10.244.1.5']))
    api.create(resource, obj);
  const held = await holdPort();
  api.create('services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'shop', name: 'front' },
    spec: {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.20',
      clusterIPs: ['10.96.0.20'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: held.port,
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 31080 }],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'kpt-events-'));
  const conf = writeKubeadmFiles(dir, api.url, 'tok');
  const logger = createMemoryLogger();
  const daemon = await runDaemon(
    parseCommandLine([
      `--config=${conf}`,
      '--hostname-override=node-1',
      '--proxy-mode=state',
      '--healthz-bind-address=',
      '--metrics-bind-address=',
    ]),
    logger,
  );
  try {
    await daemon.firstSync;
    for (
      let i = 0;
      i < 100 && !api.events.some((e: Obj) => e.reason === 'FailedToStartServiceHealthcheck');
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    const events = api.events as Obj[];
    const start = events.find((e) => e.reason === 'Starting');
    assert.deepEqual(start?.regarding, { kind: 'Node', name: 'node-1', apiVersion: 'v1', uid: 'node-1' });
    assert.equal(start?.action, 'StartKubeProxy');
    assert.ok(!events.some((e) => e.reason === 'IPVSDeprecation'), 'no deprecation outside ipvs mode');
    const hc = events.find((e) => e.reason === 'FailedToStartServiceHealthcheck');
    assert.ok(hc, JSON.stringify(events.map((e) => String(e.reason))));
    assert.equal(hc.type, 'Warning');
    assert.equal(hc.action, 'Listen');
    assert.equal(hc.metadata.namespace, 'shop');
    assert.deepEqual(hc.regarding, {
      kind: 'Service',
      name: 'front',
      namespace: 'shop',
      apiVersion: 'v1',
      uid: 'shop/front',
    });
    assert.match(
      hc.note,
      new RegExp(`node node-1 failed to start healthcheck "shop/front" on port ${held.port}`),
    );
  } finally {
    await daemon.stop();
    held.server.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ipvs mode adds the IPVSDeprecation Warning about the Node; other modes do not', async () => {
  assert.deepEqual(
    startupEvents('iptables', 'n1').map((e) => e.reason),
    ['Starting'],
  );
  const api = await startFakeApiServer({ token: 't' });
  const client = new ApiClient({
    settings: {
      server: new URL(api.url),
      rejectUnauthorized: true,
      authHeaders: () => Promise.resolve({ Authorization: 'Bearer t' }),
      origin: 'test',
    },
    qps: 0,
  });
  try {
    const rec = new EventRecorder(client, 'n1', createMemoryLogger());
    for (const e of startupEvents('ipvs', 'n1')) await rec.record(e);
    const [start, dep] = api.events as Obj[];
    assert.equal(start?.reason, 'Starting');
    assert.equal(dep?.reason, 'IPVSDeprecation');
    assert.equal(dep?.type, 'Warning');
    assert.equal(dep?.action, 'StartKubeProxy');
    assert.equal(dep?.metadata.namespace, 'default');
    assert.deepEqual(dep?.regarding, { kind: 'Node', name: 'n1', apiVersion: 'v1', uid: 'n1' });
    assert.match(dep?.note, /deprecated/);
  } finally {
    client.close();
    await api.close();
  }
});
