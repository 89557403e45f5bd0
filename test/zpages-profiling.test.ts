/**
 * The metrics server's debugging endpoints on the daemon (state mode, no root): /flagz and /statusz
 * when their gates are on (404 when off, as upstream's alpha z-pages), and --profiling's CPU profile
 * and heap snapshot (V8 formats) under /debug/pprof.
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

/** Runs `fn` against a daemon started with `flags` (plus state mode on an empty manifests folder). */
async function withDaemon(flags: string[], fn: (base: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-zpages-'));
  const port = await freePort();
  const cmd = parseCommandLine([
    '--proxy-mode=state',
    `--manifests=${dir}`,
    '--hostname-override=n1',
    '--healthz-bind-address=',
    `--metrics-bind-address=127.0.0.1:${port}`,
    ...flags,
  ]);
  const daemon = await runDaemon(cmd, createMemoryLogger());
  try {
    await daemon.firstSync;
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('/flagz and /statusz: 404 by default, text pages with the gates on', async () => {
  await withDaemon([], async (base) => {
    assert.equal((await fetch(`${base}/flagz`)).status, 404);
    assert.equal((await fetch(`${base}/statusz`)).status, 404);
    assert.equal((await fetch(`${base}/debug/pprof/heap`)).status, 404, 'no profiling without --profiling');
  });
  await withDaemon(
    ['--feature-gates=ComponentFlagz=true,ComponentStatusz=true', '--iptables-sync-period=45s'],
    async (base) => {
      const flagz = await fetch(`${base}/flagz`);
      assert.equal(flagz.status, 200);
      assert.match(flagz.headers.get('content-type') ?? '', /^text\/plain/);
      const lines = (await flagz.text()).split('\n');
      assert.equal(lines[1], 'kube-proxy flagz');
      assert.ok(lines.includes('iptables-sync-period=45s'), 'a given flag, as given');
      assert.ok(lines.includes('iptables-min-sync-period=1s'), 'a default');
      assert.ok(lines.includes('feature-gates=ComponentFlagz=true,ComponentStatusz=true'));
      const statusz = await (await fetch(`${base}/statusz`)).text();
      assert.match(statusz, /^\nkube-proxy statusz\n/);
      assert.match(statusz, /^Started: \w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}$/m);
      assert.match(statusz, /^Up: \d+ hr \d\d min \d\d sec$/m);
      assert.match(statusz, /^Emulation version: 1\.34$/m);
      assert.match(statusz, /^Paths: .*\/flagz .*\/metrics .*\/statusz/m);
    },
  );
});

test('--profiling: a CPU profile and a heap snapshot on demand', async () => {
  await withDaemon(['--profiling'], async (base) => {
    assert.equal((await fetch(`${base}/debug/pprof/`)).status, 200);
    const cpu = await fetch(`${base}/debug/pprof/profile?seconds=0.3`);
    assert.equal(cpu.status, 200);
    const profile = (await cpu.json()) as { nodes?: unknown[]; startTime?: number; endTime?: number };
    assert.ok(Array.isArray(profile.nodes) && profile.nodes.length > 0, 'a V8 CPU profile');
    assert.ok((profile.endTime ?? 0) > (profile.startTime ?? 0));
    assert.equal((await fetch(`${base}/debug/pprof/profile?seconds=9999`)).status, 400);
    const heap = await fetch(`${base}/debug/pprof/heap`);
    assert.equal(heap.status, 200);
    assert.match(heap.headers.get('content-disposition') ?? '', /kube-proxy\.heapsnapshot/);
    const snap = (await heap.json()) as { snapshot?: { node_count?: number } };
    assert.ok((snap.snapshot?.node_count ?? 0) > 0, 'a V8 heap snapshot');
  });
});
