import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectionConfigError, TokenBucket, loadConnectionSettings } from './client.js';

function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-client-'));
  return fn(dir).finally(() => {
    rmSync(dir, { recursive: true, force: true });
  });
}

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

function kubeconfig(server: string, user: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${server}
    certificate-authority-data: ${Buffer.from(CA_PEM).toString('base64')}
contexts:
- name: ctx
  context: { cluster: c, user: u }
current-context: ctx
users:
- name: u
  user:
${user}
`;
}

test('--master alone: that URL, no credentials', async () => {
  const s = await loadConnectionSettings({ kubeconfig: '', master: 'http://127.0.0.1:8080' });
  assert.equal(s.server.href, 'http://127.0.0.1:8080/');
  assert.deepEqual(await s.authHeaders(), {});
  assert.equal(s.ca, undefined);
  assert.equal(s.origin, 'master');
});

test('--master that is not a URL names the flag and the value', async () => {
  await assert.rejects(loadConnectionSettings({ kubeconfig: '', master: 'not a url' }), (e: unknown) => {
    assert.ok(e instanceof ConnectionConfigError);
    assert.match(e.message, /--master/);
    assert.match(e.message, /not a url/);
    return true;
  });
  await assert.rejects(
    loadConnectionSettings({ kubeconfig: '', master: 'ftp://x' }),
    /scheme must be http or https/,
  );
});

test('kubeconfig: server, CA and bearer token; --master overrides the server', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'kubeconfig');
    writeFileSync(p, kubeconfig('https://10.0.0.1:6443', '    token: abc123'));
    const s = await loadConnectionSettings({ kubeconfig: p, master: '' });
    assert.equal(s.server.href, 'https://10.0.0.1:6443/');
    assert.equal(s.ca?.toString(), CA_PEM);
    assert.equal(s.rejectUnauthorized, true);
    assert.deepEqual(await s.authHeaders(), { Authorization: 'Bearer abc123' });
    const o = await loadConnectionSettings({ kubeconfig: p, master: 'https://lb.example:443' });
    assert.equal(o.server.host, 'lb.example');
    assert.deepEqual(await o.authHeaders(), { Authorization: 'Bearer abc123' });
  });
});

test('kubeconfig with an http:// server still yields its credentials', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'kubeconfig');
    writeFileSync(p, kubeconfig('http://127.0.0.1:8080', '    username: admin\n    password: secret'));
    const s = await loadConnectionSettings({ kubeconfig: p, master: '' });
    assert.equal(s.server.protocol, 'http:');
    assert.deepEqual(await s.authHeaders(), {
      Authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}`,
    });
  });
});

test('missing kubeconfig file: error names the flag and path', async () => {
  await assert.rejects(
    loadConnectionSettings({ kubeconfig: '/nonexistent/kc', master: '' }),
    (e: unknown) => {
      assert.ok(e instanceof ConnectionConfigError);
      assert.match(e.message, /--kubeconfig "\/nonexistent\/kc"/);
      return true;
    },
  );
});

test('in-cluster: service host/port from env, token and CA from the service-account files', async () => {
  await withTmp(async (dir) => {
    const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'tok-1');
    writeFileSync(join(sa, 'ca.crt'), CA_PEM);
    writeFileSync(join(sa, 'namespace'), 'kube-system');
    const s = await loadConnectionSettings(
      { kubeconfig: '', master: '', inClusterPathPrefix: dir },
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
    );
    assert.equal(s.server.href, 'https://[fd00::1]:6443/');
    assert.equal(s.ca?.toString(), CA_PEM);
    assert.deepEqual(await s.authHeaders(), { Authorization: 'Bearer tok-1' });
    assert.equal(s.origin, 'in-cluster');
  });
});

test('no flags and not in a pod: a clear error', async () => {
  await assert.rejects(
    loadConnectionSettings({ kubeconfig: '', master: '' }, {}),
    /neither --kubeconfig nor --master/,
  );
});

test('token bucket: burst first, then refills at qps; qps <= 0 never waits', async () => {
  let now = 0;
  const b = new TokenBucket(1, 2, () => now);
  const aborted = AbortSignal.abort(new Error('would wait'));
  await b.take(aborted);
  await b.take(aborted);
  await assert.rejects(b.take(aborted), /would wait/);
  now += 1000;
  await b.take(aborted);
  await assert.rejects(b.take(aborted), /would wait/);
  const free = new TokenBucket(0, 0, () => now);
  for (let i = 0; i < 100; i++) await free.take(aborted);
});

test('kubeconfig users[].user.tokenFile (kubeadm) becomes a bearer token, re-read on each request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-tokenfile-'));
  try {
    writeFileSync(join(dir, 'token'), 'first\n');
    writeFileSync(
      join(dir, 'kubeconfig'),
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]\n' +
        'contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {tokenFile: token}}]\n',
    );
    const s = await loadConnectionSettings({ kubeconfig: join(dir, 'kubeconfig'), master: '' });
    assert.equal((await s.authHeaders()).Authorization, 'Bearer first');
    writeFileSync(join(dir, 'token'), 'rotated\n');
    assert.equal((await s.authHeaders()).Authorization, 'Bearer rotated');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
