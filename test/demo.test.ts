/**
 * The README's demo, run as a newcomer would (through tsx instead of dist/): requests spread across the
 * backends, the sticky service sticks, UDP answers, and an edit of the manifests takes effect live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('demo: round robin, affinity, UDP, and a live manifest edit', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-demo-'));
  cpSync('examples', dir, { recursive: true });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/demo/demo.ts', `--manifests=${dir}`, '--rounds=8', '--interval-ms=700'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  try {
    for (let i = 0; i < 200 && !out.includes('round 1'); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    assert.match(
      out,
      /web +127\.0\.0\.1:30080 +round robin +-> backend-18081 x3, backend-18082 x3, backend-18083 x3/,
    );
    assert.match(out, /sticky +127\.0\.0\.1:30081 +ClientIP sticky +-> backend-1808\d x6\n/);
    assert.match(out, /echo +127\.0\.0\.1:30053 +udp +-> udp-backend-18084 got "hello"/);

    // Remove the web-18083 EndpointSlice from the file (an atomic rename, as editors do).
    const file = join(dir, 'demo.yaml');
    const docs = readFileSync(file, 'utf8').split(/^---$/m);
    const kept = docs.filter((d) => !/name: web-18083\b/.test(d));
    assert.equal(kept.length, docs.length - 1);
    writeFileSync(join(dir, '.demo.yaml.tmp'), kept.join('---'));
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, '.demo.yaml.tmp'), file);
    const code = await exited;
    assert.equal(code, 0, out);
    assert.match(
      out,
      /web +127\.0\.0\.1:30080 +round robin +-> backend-18081 x(4|5), backend-18082 x(4|5)\n/,
      out,
    );
  } finally {
    child.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
