/**
 * kubeadm's command line and files against the fake API server, without root: the config file is
 * kubeadm's, and only --proxy-mode=state and a loopback healthz address are added (mode "" means
 * iptables, which needs a network namespace; e2e/dropin-kubeadm.test.ts runs the exact argv there, as root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/backends/index.js';
import { parseCommandLine } from '../src/config/load.js';
import { runDaemon } from '../src/app/proxy-server.js';
import { createMemoryLogger } from '../src/observability/logger.js';
import { startFakeApiServer } from './fake-apiserver.js';
import { clusterObjects, writeKubeadmFiles } from './fixtures/kubeadm.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => {
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  });
}

test('kubeadm-shaped config + kubeconfig: starts, lists and watches with the token, syncs, serves /healthz', async () => {
  const api = await startFakeApiServer({ token: 'kubeadm-token' });
  for (const { resource, obj } of clusterObjects('node-1', '192.168.0.10', ['10.244.1.5', '10.244.2.7']))
    api.create(resource, obj);
  const dir = mkdtempSync(join(tmpdir(), 'kpt-kubeadm-'));
  const conf = writeKubeadmFiles(dir, api.url, 'kubeadm-token');
  const hz = await freePort();
  const cmd = parseCommandLine([
    `--config=${conf}`,
    '--hostname-override=node-1',
    '--proxy-mode=state',
    `--healthz-bind-address=127.0.0.1:${hz}`,
    '--metrics-bind-address=',
  ]);
  assert.equal(cmd.config.clusterCIDRs[0], '10.244.0.0/16');
  assert.equal(cmd.config.iptables.syncPeriodMs, 30_000, 'kubeadm zero values get upstream defaults');
  const logger = createMemoryLogger();
  const daemon = await runDaemon(cmd, logger);
  try {
    await daemon.firstSync;
    const synced = logger.entries.find((e) => e.msg.startsWith('desired state computed'));
    assert.equal(synced?.obj.servicePorts, 1);
    // every request carried the kubeconfig's token, with upstream's selectors
    const lists = api.requests.filter((r) => !r.watch);
    assert.ok(lists.length >= 3);
    assert.ok(api.requests.every((r) => r.headers.authorization === 'Bearer kubeadm-token'));
    assert.ok(
      api.requests.some(
        (r) => r.path === '/api/v1/nodes' && r.query.get('fieldSelector') === 'metadata.name=node-1',
      ),
    );
    assert.ok(
      api.requests.some(
        (r) =>
          r.path === '/api/v1/services' &&
          r.query.get('labelSelector') ===
            '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless',
      ),
    );
    const res = await fetch(`http://127.0.0.1:${hz}/healthz`);
    assert.equal(res.status, 200);
    // a watch event reaches the data plane
    api.create('services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: 'default', name: 'dns' },
      spec: { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
    });
    for (let i = 0; i < 100 && !logger.entries.some((e) => e.obj.servicePorts === 2); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      logger.entries.some((e) => e.obj.servicePorts === 2 && e.obj.full === false),
      'a partial sync with the new service',
    );
  } finally {
    await daemon.stop();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
