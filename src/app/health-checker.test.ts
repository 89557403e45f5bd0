import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { HealthChecker } from './health-checker.js';
import { createMemoryLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { tcpConnectProbe } from '../exec/tcp-probe.js';

test('a failing endpoint goes unhealthy after fall probes, logs, counts, asks for a sync, and comes back after rise', async () => {
  const logger = createMemoryLogger();
  const metrics = createMetrics({ defaultMetrics: false });
  let now = 0;
  let up = true;
  const probed: string[] = [];
  let changes = 0;
  const c = new HealthChecker({
    family: 'IPv4',
    options: { intervalMs: 1000, timeoutMs: 100, fall: 2, rise: 1 },
    logger,
    metrics,
    onChange: () => changes++,
    probe: (ip, port) => {
      probed.push(`${ip}:${port}`);
      return Promise.resolve(ip === '10.0.0.2' ? up : true);
    },
    now: () => now,
    manual: true,
  });
  c.setTargets(['10.0.0.1:80', '10.0.0.2:80']);
  up = false;
  await c.runDue();
  assert.equal(c.isHealthy('10.0.0.2:80'), true);
  now = 1000;
  await c.runDue();
  assert.deepEqual([...c.unhealthy()], ['10.0.0.2:80']);
  assert.equal(changes, 1);
  assert.ok(
    logger.entries.some((e) => /failed its health check/.test(e.msg) && e.obj.endpoint === '10.0.0.2:80'),
  );
  const text = await metrics.registry.metrics();
  assert.match(text, /kubeproxy_ipvs_real_server_health\{ip_family="IPv4",state="unhealthy"\} 1/);
  now = 1500;
  await c.runDue();
  assert.equal(probed.length, 4, 'no probe before the interval has passed');
  up = true;
  now = 2000;
  await c.runDue();
  assert.equal(c.isHealthy('10.0.0.2:80'), true);
  assert.equal(changes, 2);
});

test('tcpConnectProbe: true for a listener, false for a closed port', async () => {
  const server: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  assert.equal(await tcpConnectProbe('127.0.0.1', port, 1000), true);
  await new Promise<void>((r) =>
    server.close(() => {
      r();
    }),
  );
  assert.equal(await tcpConnectProbe('127.0.0.1', port, 1000), false);
});
