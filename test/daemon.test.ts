/**
 * The daemon end to end, in process: manifests source -> tracker -> state-mode proxier, with the
 * real /healthz and /metrics servers on loopback, reacting to file edits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/backends/index.js';
import { parseCommandLine } from '../src/config/load.js';
import { runDaemon } from '../src/app/proxy-server.js';
import { createMemoryLogger } from '../src/observability/logger.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => {
        if (a && typeof a === 'object') resolve(a.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function until<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  tries = 200,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('daemon on the manifests source serves /healthz and /metrics and follows file edits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-daemon-'));
  cpSync('examples', dir, { recursive: true });
  const [hz, mp] = [await freePort(), await freePort()];
  const cmd = parseCommandLine([
    '--proxy-mode=state',
    `--manifests=${dir}`,
    '--hostname-override=demo-node',
    `--healthz-bind-address=127.0.0.1:${hz}`,
    `--metrics-bind-address=127.0.0.1:${mp}`,
    '--iptables-min-sync-period=0s',
  ]);
  const logger = createMemoryLogger();
  const daemon = await runDaemon(cmd, logger);
  try {
    await daemon.firstSync;
    const synced = () => logger.entries.filter((e) => e.msg.startsWith('desired state computed'));
    assert.equal(synced()[0]?.obj.full, true, 'the first sync is full');
    const firstPorts = synced()[0]?.obj.servicePorts as number;
    assert.ok(firstPorts >= 5, `expected the example service ports, got ${firstPorts}`);

    const hzRes = await fetch(`http://127.0.0.1:${hz}/healthz`);
    assert.equal(hzRes.status, 200);
    assert.equal(hzRes.headers.get('content-type'), 'application/json');
    // Upstream >= 1.33 marshals its ProxyHealth struct (older releases used a format string).
    const body = JSON.parse(await hzRes.text()) as Record<string, unknown>;
    assert.equal(body.nodeEligible, true);
    assert.equal(body.healthy, true);
    assert.ok(typeof body.lastUpdated === 'string' && typeof body.currentTime === 'string');
    assert.equal((await fetch(`http://127.0.0.1:${hz}/livez`)).status, 200);

    const metrics1 = await (await fetch(`http://127.0.0.1:${mp}/metrics`)).text();
    assert.ok((metricValue(metrics1, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds') ?? 0) > 0);
    assert.match(metrics1, /# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram/);
    assert.equal(await (await fetch(`http://127.0.0.1:${mp}/proxyMode`)).text(), 'state');

    // A new Service file: a partial sync that adds one service port.
    writeFileSync(
      join(dir, 'added.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata: {name: added, namespace: default}\nspec: {clusterIP: 10.96.0.99, ports: [{name: http, port: 80}]}\n',
    );
    await until(
      () => synced().some((e) => e.obj.servicePorts === firstPorts + 1 && e.obj.full === false),
      'a partial sync with the new service',
    );
    const metrics2 = await (await fetch(`http://127.0.0.1:${mp}/metrics`)).text();
    assert.ok((metricValue(metrics2, 'kubeproxy_sync_proxy_rules_service_changes_total') ?? 0) >= 1);

    // A broken file is reported once and loses nothing.
    writeFileSync(join(dir, 'added.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: added\n');
    await until(
      () =>
        logger.entries.some((e) => e.level === 'error' && /added\.yaml/.test(e.msg + JSON.stringify(e.obj))),
      'the parse error',
    );
    rmSync(join(dir, 'added.yaml'));
    await until(() => synced().at(-1)?.obj.servicePorts === firstPorts, 'the service removed again');
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
