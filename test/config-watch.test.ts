/**
 * --config changes on disk: the daemon (the real CLI, state mode, no root) logs the change and exits 1
 * so that the pod restarts with the new file, as upstream does; a ConfigMap-style update (a new
 * `..data` symlink renamed into place) counts, and a rewrite with the same content does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../e2e/run-daemon.ts', import.meta.url));
const conf = (mode: string): string =>
  `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ${mode}\n` +
  `healthzBindAddress: ""\nmetricsBindAddress: ""\n`;

/** Starts the CLI on `configPath`; resolves once it has synced, with a handle to its exit. */
async function start(configPath: string, manifests: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', RUN, `--config=${configPath}`, `--manifests=${manifests}`, '--hostname-override=n1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) =>
    child.on('close', (code) => {
      r(code);
    }),
  );
  for (let i = 0; i < 400 && !/programming the data plane|synced/.test(err); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited, log: () => err };
}

test('an in-place edit of --config makes the daemon log it and exit 1; same bytes do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-confwatch-'));
  try {
    const manifests = join(dir, 'm');
    mkdirSync(manifests);
    const path = join(dir, 'config.conf');
    writeFileSync(path, conf('state'));
    const d = await start(path, manifests);
    assert.equal(d.child.exitCode, null, d.log());
    writeFileSync(path, conf('state')); // same content: ignored
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(d.child.exitCode, null, `exited on a same-content write:\n${d.log()}`);
    writeFileSync(path, conf('state') + 'clusterCIDR: 10.244.0.0/16\n');
    const code = await Promise.race([
      d.exited,
      new Promise((r) =>
        setTimeout(() => {
          r('timeout');
        }, 20_000),
      ),
    ]);
    if (code === 'timeout') d.child.kill('SIGKILL');
    assert.equal(code, 1, d.log());
    assert.match(d.log(), /the --config file changed on disk/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a ConfigMap-style update (..data symlink swap) is seen too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-confwatch-'));
  try {
    const manifests = join(dir, 'm');
    mkdirSync(manifests);
    // The kubelet's layout: config.conf -> ..data/config.conf, ..data -> ..<timestamp>/
    const vol = join(dir, 'vol');
    mkdirSync(join(vol, '..v1'), { recursive: true });
    writeFileSync(join(vol, '..v1', 'config.conf'), conf('state'));
    symlinkSync('..v1', join(vol, '..data'));
    symlinkSync('..data/config.conf', join(vol, 'config.conf'));
    const d = await start(join(vol, 'config.conf'), manifests);
    assert.equal(d.child.exitCode, null, d.log());
    mkdirSync(join(vol, '..v2'));
    writeFileSync(join(vol, '..v2', 'config.conf'), conf('state') + 'clusterCIDR: 10.244.0.0/16\n');
    symlinkSync('..v2', join(vol, '..data_tmp'));
    renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
    const code = await Promise.race([
      d.exited,
      new Promise((r) =>
        setTimeout(() => {
          r('timeout');
        }, 20_000),
      ),
    ]);
    if (code === 'timeout') d.child.kill('SIGKILL');
    assert.equal(code, 1, d.log());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
