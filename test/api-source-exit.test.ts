// After stop(), the api source leaves no timer or socket behind: a process that used it exits by itself.
// The parent spawns this same file as a child (KPT_API_SOURCE_EXIT_CHILD=1) that runs a full cycle,
// including reconnects and a stalled request, and then simply returns from its main module.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.env.KPT_API_SOURCE_EXIT_CHILD === '1') {
  const { ApiClient, loadConnectionSettings } = await import('../src/k8s/client.js');
  const { createApiSource } = await import('../src/sources/api-source.js');
  const { createMemoryLogger } = await import('../src/observability/logger.js');
  const { startFakeApiServer } = await import('./fake-apiserver.js');
  const api = await startFakeApiServer({ bookmarkIntervalMs: 50 });
  api.create('nodes', { metadata: { name: 'n1' } });
  const client = new ApiClient({
    settings: await loadConnectionSettings({ kubeconfig: '', master: api.url }),
  });
  const source = createApiSource({
    connection: client,
    scope: { nodeName: 'n1', serviceCIDRs: true },
    logger: createMemoryLogger(),
    configSyncPeriodMs: 20,
    timing: {
      backoffInitialMs: 5,
      backoffMaxMs: 20,
      idleTimeoutMs: 200,
      minWatchTimeoutSeconds: 1,
      shortWatchMs: 10,
    },
  });
  let events = 0;
  await source.start(() => {
    events++;
  });
  await source.waitForSync();
  api.dropWatches();
  api.failNext(2);
  api.stallNext(1);
  api.create('nodes', { metadata: { name: 'n2' } });
  await new Promise((r) => setTimeout(r, 100));
  await source.stop();
  client.close();
  await api.close();
  process.stdout.write(`child done after ${events} events\n`);
} else {
  const { test } = await import('node:test');
  const assert: typeof import('node:assert/strict') = (await import('node:assert/strict')).default;
  test('a process exits on its own after source.stop(), client.close() and server close()', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, KPT_API_SOURCE_EXIT_CHILD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // A generous hang detector, not a performance threshold: a leaked handle keeps the child alive forever.
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => {
        resolve(c);
      });
    });
    clearTimeout(killer);
    assert.equal(code, 0, `child output:\n${out}`);
    assert.match(out, /child done after \d+ events/);
  });
}
