/**
 * deploy/: the manifests parse and say what an operator expects, RBAC covers exactly the API calls
 * the api source makes, the ConfigMap's files work with our config and connection code, and the
 * image recipe copies files that exist and ends in a working entrypoint. (No container engine here.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseKubeProxyConfiguration } from '../src/config/decode.js';
import { parseCommandLine } from '../src/config/load.js';
import { loadConnectionSettings } from '../src/k8s/client.js';
import { watchedResources } from '../src/sources/api-source.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed manifests are untyped; the assertions check their shape
type Obj = Record<string, any>;
const read = (f: string): Obj[] =>
  parseAllDocuments(readFileSync(join('deploy', f), 'utf8')).map((d) => d.toJS() as Obj);
const kustomization = read('kustomization.yaml')[0]!;
const all: Obj[] = (kustomization.resources as string[]).flatMap((f) => read(f));
const byKind = (k: string): Obj => all.find((o) => o.kind === k)!;

test('kustomization lists every manifest in deploy/ and each parses', () => {
  const files = [
    'serviceaccount.yaml',
    'clusterrole.yaml',
    'clusterrolebinding.yaml',
    'configmap.yaml',
    'daemonset.yaml',
  ];
  assert.deepEqual([...(kustomization.resources as string[])].sort(), [...files].sort());
  assert.deepEqual(all.map((o) => String(o.kind)).sort(), [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'DaemonSet',
    'ServiceAccount',
  ]);
  for (const o of all) {
    assert.ok(typeof o.apiVersion === 'string' && o.metadata?.name, `${o.kind} has apiVersion and name`);
  }
});

test('RBAC grants exactly what the api source lists and watches (plus events), to the DaemonSet account', () => {
  const rules = byKind('ClusterRole').rules as {
    apiGroups: string[];
    resources: string[];
    verbs: string[];
  }[];
  const allows = (group: string, resource: string, verb: string) =>
    rules.some(
      (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
    );
  const needed = watchedResources({ nodeName: 'n', serviceCIDRs: true }).map((w) => {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/([^/]+)$/.exec(w.path);
    assert.ok(m, `unexpected path ${w.path}`);
    return { group: m[1] ?? '', resource: m[2]! };
  });
  for (const n of needed)
    for (const verb of ['list', 'watch'])
      assert.ok(allows(n.group, n.resource, verb), `${verb} ${n.group}/${n.resource}`);
  // nothing beyond that: every granted resource is one we call (events aside)
  const granted = rules.flatMap((r) => r.resources.flatMap((res) => r.apiGroups.map((g) => `${g}/${res}`)));
  for (const g of granted) {
    if (g.endsWith('/events')) continue;
    assert.ok(
      needed.some((n) => `${n.group}/${n.resource}` === g),
      `granted but unused: ${g}`,
    );
  }
  const binding = byKind('ClusterRoleBinding');
  assert.equal(binding.roleRef.name, byKind('ClusterRole').metadata.name);
  assert.deepEqual(binding.subjects, [
    { kind: 'ServiceAccount', name: 'kube-proxy', namespace: 'kube-system' },
  ]);
});

test('DaemonSet: kubeadm command line, host network, privileges, mounts, probes, tolerations, priority', () => {
  const ds = byKind('DaemonSet');
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  assert.deepEqual(c.command, [
    '/usr/local/bin/kube-proxy',
    '--config=/var/lib/kube-proxy/config.conf',
    '--hostname-override=$(NODE_NAME)',
  ]);
  assert.equal(c.env[0].valueFrom.fieldRef.fieldPath, 'spec.nodeName');
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(pod.serviceAccountName, byKind('ServiceAccount').metadata.name);
  assert.equal(c.securityContext.privileged, true);
  assert.equal(c.livenessProbe.httpGet.path, '/livez');
  assert.equal(c.livenessProbe.httpGet.port, 10256);
  // Readiness means "programmed": /readyz, on the same healthz port.
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.readinessProbe.httpGet.port, 10256);
  const mounts = Object.fromEntries((c.volumeMounts as Obj[]).map((m) => [m.name, m.mountPath]));
  assert.deepEqual(mounts, {
    'kube-proxy': '/var/lib/kube-proxy',
    'xtables-lock': '/run/xtables.lock',
    'lib-modules': '/lib/modules',
  });
  const vols = Object.fromEntries((pod.volumes as Obj[]).map((v) => [v.name, v]));
  assert.equal(vols['xtables-lock'].hostPath.type, 'FileOrCreate');
  assert.equal(vols['kube-proxy'].configMap.name, byKind('ConfigMap').metadata.name);
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
});

test('the ConfigMap config.conf parses to the expected config; its kubeconfig authenticates with the token file', async () => {
  const cm = byKind('ConfigMap');
  const { config } = parseKubeProxyConfiguration(cm.data['config.conf']);
  assert.equal(config.mode, 'iptables');
  assert.equal(config.clientConnection.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  assert.equal(config.healthzBindAddress, '0.0.0.0:10256');
  const dir = mkdtempSync(join(tmpdir(), 'kpt-deploy-'));
  try {
    writeFileSync(join(dir, 'token'), 'sa-token\n');
    writeFileSync(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const kc = (cm.data['kubeconfig.conf'] as string).replaceAll(
      '/var/run/secrets/kubernetes.io/serviceaccount',
      dir,
    );
    writeFileSync(join(dir, 'kubeconfig.conf'), kc);
    const s = await loadConnectionSettings({ kubeconfig: join(dir, 'kubeconfig.conf'), master: '' });
    assert.equal(s.server.href, 'https://kubernetes.default.svc/');
    assert.equal((await s.authHeaders()).Authorization, 'Bearer sa-token');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Dockerfile copies files that exist and its entrypoint command line works', () => {
  const df = readFileSync('deploy/Dockerfile', 'utf8');
  for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const src of m[1]!.split(/\s+/)) assert.ok(existsSync(src), `COPY source ${src} exists`);
  }
  assert.match(df, /ENTRYPOINT \["\/usr\/local\/bin\/kube-proxy"\]/);
  for (const pkg of ['iptables', 'nftables', 'ipset', 'ipvsadm', 'conntrack', 'iproute2'])
    assert.match(df, new RegExp(`\\b${pkg}\\b`));
  // the entrypoint (bin/kube-proxy.js) answers --version and parses the DaemonSet's argv shape
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '-e', "import('./src/main.ts').then((m) => m.main(['--version']))"],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^kube-proxy-ts v\d+\.\d+\.\d+/);
  const cmd = parseCommandLine(
    ['--config=/var/lib/kube-proxy/config.conf', '--hostname-override=node-a'],
    () => byKind('ConfigMap').data['config.conf'] as string,
  );
  assert.equal(cmd.command, 'run');
  assert.equal(cmd.config.hostnameOverride, 'node-a');
});

test("bin/kube-proxy.js's first line sets the daemon's malloc environment and node flag, within old kernels' 127 bytes", () => {
  const first = readFileSync('bin/kube-proxy.js', 'utf8').split('\n')[0]!;
  assert.ok(first.length <= 127, `${first.length} bytes: Linux before 5.1 cuts a #! line at 127`);
  const m = /^#!\/usr\/bin\/env -S (.*)$/.exec(first);
  assert.ok(m, first);
  // The same line runs a script that prints what the daemon would get in place of this file.
  const dir = mkdtempSync(join(tmpdir(), 'kpt-shebang-'));
  try {
    const script = join(dir, 'show.mjs');
    writeFileSync(
      script,
      "console.log([process.env.MALLOC_MMAP_THRESHOLD_, process.env.MALLOC_TRIM_THRESHOLD_, ...process.execArgv].join('|'));\n",
    );
    const r = spawnSync('/usr/bin/env', ['-S', `${m[1]} ${script}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '65536|1048576|--max-semi-space-size=4');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
