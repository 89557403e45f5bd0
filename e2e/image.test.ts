/**
 * The container image, built and run for real (root, podman): scripts/image.sh builds deploy/Dockerfile
 * (on a locally assembled node:22-bookworm-slim equivalent, as no registry is reachable), then the
 * image runs as kubeadm's DaemonSet runs it — privileged, the ConfigMap mounted at /var/lib/kube-proxy,
 * the host's xtables lock, and kubeadm's exact argv `--config=/var/lib/kube-proxy/config.conf
 * --hostname-override=<node>` — inside the lab's node namespace (`--network=ns:`, the lab's stand-in
 * for hostNetwork), against the fake API server. Real packets go through a ClusterIP and a NodePort;
 * /healthz, /livez and /metrics are read from outside the container; SIGTERM stops it with exit 0 and
 * its rules stay; `--cleanup` run through the image removes them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, LabProcess, type Lab } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';
import { clusterObjects, kubeadmConfigConf, kubeadmKubeconfig } from '../test/fixtures/kubeadm.js';
import { slice, svc } from './scenarios/index.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const IMAGE_SH = join(REPO, 'scripts/image.sh');
const FAKE_API = fileURLToPath(new URL('./lab/fake-apiserver-main.ts', import.meta.url));
const TOKEN = 'kubeadm-token';
const NODE = 'node-1';
/** Where kubeadm's DaemonSet mounts the kube-proxy ConfigMap. */
const CONF_DIR = '/var/lib/kube-proxy';
const XTABLES_LOCK = '/run/xtables.lock';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (podman runs as root here)';
  for (const tool of ['podman', 'runc']) {
    if (spawnSync(tool, ['--version']).error)
      return `${tool} is not installed (apt-get install podman runc debootstrap)`;
  }
  if (spawnSync('curl', ['--version']).error) return 'curl is not installed';
  return labSkipReason();
}

const skip = skipReason();

/** Runs scripts/image.sh with `args`; resolves with stdout, rejects with the tail of its output. */
function imageSh(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [IMAGE_SH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

/** Resident set size of a process and its descendants, in MiB (from /proc). */
function rssMiB(pid: number): number {
  let kb = 0;
  const visit = (p: number): void => {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/) : []) visit(Number(k));
    } catch {
      // exited meanwhile
    }
  };
  visit(pid);
  return Math.round(kb / 1024);
}

describe('container image: built with podman, run with kubeadm argv in a node namespace', { skip }, () => {
  let lab: Lab;
  let dir: string;
  let api: LabProcess;
  let proxy: LabProcess;
  let image: string;
  let seq = 0;
  const name = `kpt-image-${process.pid}`;

  const diagnostics = (): string => `container:\n${proxy?.tail(30)}\napi:\n${api?.tail(10)}`;
  const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
    pollUntil(what, fn, { timeoutMs, diagnostics });
  const apiCommand = async (cmd: Record<string, unknown>): Promise<void> => {
    const n = ++seq;
    api.stdin?.write(`${JSON.stringify({ seq: n, ...cmd })}\n`);
    const m = await api.waitForOutput(new RegExp(`^(done|error) ${n}\\b.*$`, 'm'));
    assert.equal(m[1], 'done', m[0]);
  };
  const curl = async (url: string): Promise<{ code: number; body: string }> => {
    const r = await lab.exec('node', 'curl', ['-s', '-m', '2', '-w', '\n%{http_code}', url], {
      allowFail: true,
    });
    const i = r.stdout.lastIndexOf('\n');
    return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };
  /** `podman run` of the image in the lab's node namespace, as the DaemonSet's pod spec has it. */
  const runArgs = (containerName: string, args: readonly string[]): string[] => [
    'podman',
    'run',
    '--rm',
    `--name=${containerName}`,
    `--network=ns:/run/netns/${lab.node.ns}`,
    '--privileged',
    `--volume=${dir}:${CONF_DIR}:ro`,
    `--volume=${XTABLES_LOCK}:${XTABLES_LOCK}`,
    image,
    ...args,
  ];

  before(async () => {
    const built = await imageSh(['build'], 30 * 60_000);
    assert.equal(
      built.code,
      0,
      `scripts/image.sh build failed:\n${built.err.split('\n').slice(-30).join('\n')}`,
    );
    image = built.out.trim().split('\n').pop()!;
    const figures = built.err.match(/^image\.sh: built .*$/m)?.[0];
    if (figures) console.log(`# ${figures}`);

    lab = await createLab({ pods: ['client', 'b1', 'b2'] });
    dir = mkdtempSync(join(tmpdir(), 'kpt-image-'));
    for (const b of ['b1', 'b2']) await lab.startBackend(b, { tcpPorts: [8080] });
    api = lab.spawnInNode(process.execPath, ['--import', 'tsx', FAKE_API, `--token=${TOKEN}`]);
    const url = (await api.waitForOutput(/fake-apiserver listening (http:\/\/\S+)/, 30_000))[1]!;
    const eps = [lab.pod('b1').ip, lab.pod('b2').ip];
    for (const { resource, obj } of clusterObjects(NODE, lab.node.ip, eps)) {
      await apiCommand({ op: 'apply', resource, obj });
    }
    await apiCommand({
      op: 'apply',
      resource: 'services',
      obj: svc('web-np', {
        type: 'NodePort',
        clusterIP: '10.96.0.12',
        clusterIPs: ['10.96.0.12'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
      }),
    });
    await apiCommand({
      op: 'apply',
      resource: 'endpointslices',
      obj: slice(
        'web-np',
        eps.map((ip) => ({ ip, node: NODE })),
      ),
    });
    // The ConfigMap as kubeadm writes it, with the paths as the container sees them.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'kubeconfig.conf'), kubeadmKubeconfig(url, TOKEN));
    writeFileSync(join(dir, 'config.conf'), kubeadmConfigConf(`${CONF_DIR}/kubeconfig.conf`));
    // kubeadm mounts the host's xtables lock (hostPath, FileOrCreate).
    if (!existsSync(XTABLES_LOCK)) writeFileSync(XTABLES_LOCK, '');
    // kubeadm's container command, verbatim: the image's entrypoint is /usr/local/bin/kube-proxy.
    const args = runArgs(name, [`--config=${CONF_DIR}/config.conf`, `--hostname-override=${NODE}`]);
    const child = spawn('bash', [IMAGE_SH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = new LabProcess('host', `image.sh ${args.join(' ')}`, child);
  });

  after(async () => {
    // The container first: it holds the node namespace.
    if (image) await imageSh(['podman', 'rm', '--force', '--time=0', '--ignore', name], 60_000);
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('starts in iptables mode and programs the node namespace', async () => {
    await proxy.waitForOutput(/programming the data plane/, 120_000);
    const nat = await until('web programmed', async () => {
      const text = (await lab.exec('node', 'iptables-save', ['-t', 'nat'])).stdout;
      return /^-A KUBE-NODEPORTS .*default\/web-np:http.*--dport 30080/m.test(text) ? text : undefined;
    });
    assert.match(nat, /^-A KUBE-SERVICES .*default\/web:http cluster IP.* -j KUBE-SVC-\w+$/m);
  });

  test('a client pod reaches both endpoints through the ClusterIP', async () => {
    const t = await until('web reachable', async () => {
      const r = await lab.tcpMany('client', '10.96.0.10', 80, 20);
      return r.ok === 20 ? r : undefined;
    });
    assert.ok((t.backends.b1 ?? 0) > 0 && (t.backends.b2 ?? 0) > 0, `spread: ${JSON.stringify(t.backends)}`);
  });

  test('an outside client reaches the NodePort on the node IP, masqueraded', async () => {
    const t = await until('nodeport reachable', async () => {
      const r = await lab.tcpMany('ext', lab.node.ip, 30080, 10);
      return r.ok === 10 ? r : undefined;
    });
    const first = await lab.tcp('ext', lab.node.ip, 30080);
    assert.ok(first.ok, first.ok ? '' : first.error);
    assert.match(first.reply, /client=10\.244\.0\.1:/, 'backends see the node bridge address (masquerade)');
    assert.equal(t.ok, 10);
  });

  test('/healthz, /livez and /metrics answer from outside the container', async (t) => {
    const hz = await until('healthz 200', async () => {
      const r = await curl(`http://${lab.node.ip}:10256/healthz`);
      return r.code === 200 ? r : undefined;
    });
    assert.equal((JSON.parse(hz.body) as { nodeEligible?: unknown }).nodeEligible, true);
    assert.equal((await curl('http://127.0.0.1:10256/livez')).code, 200);
    const metrics = await curl('http://127.0.0.1:10249/metrics');
    assert.equal(metrics.code, 200);
    assert.match(metrics.body, /^kubeproxy_sync_proxy_rules_duration_seconds_count(\{[^}]*\})? [1-9]/m);
    // Memory for deploy/daemonset.yaml's resources: the container's processes, after syncing.
    const pid = Number(
      (await imageSh(['podman', 'inspect', '--format={{.State.Pid}}', name], 60_000)).out.trim(),
    );
    if (pid > 0) t.diagnostic(`container RSS after sync (3 services): ${rssMiB(pid)} MiB`);
  });

  test('records a Starting Event on its Node through events.k8s.io/v1, with the token', async () => {
    await api.waitForOutput(
      /^request POST \/apis\/events\.k8s\.io\/v1\/namespaces\/default\/events\? auth=ok$/m,
      20_000,
    );
  });

  test('SIGTERM: the container exits 0 and leaves its rules', async () => {
    proxy.setRef(true); // keep the test alive while it waits for the exit
    const kill = await imageSh(['podman', 'kill', '--signal=TERM', name], 60_000);
    assert.equal(kill.code, 0, kill.err);
    const exit = await Promise.race([
      proxy.exited,
      new Promise<undefined>((r) => {
        setTimeout(() => {
          r(undefined);
        }, 60_000).unref();
      }),
    ]);
    assert.ok(exit, `the container did not exit within 60 s of SIGTERM\n${diagnostics()}`);
    assert.equal(exit.code, 0, diagnostics());
    assert.match(proxy.tail(20), /shutting down/);
    assert.equal((await lab.tcpMany('client', '10.96.0.10', 80, 5)).ok, 5);
  });

  test('--init-only through the image (an init container) sets the mode sysctls and exits 0', async () => {
    await lab.exec('node', 'sysctl', ['-w', 'net.ipv4.conf.all.route_localnet=0']);
    const r = await imageSh(['podman', ...runArgs(`${name}-init`, ['--init-only']).slice(1)], 120_000);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    const v = (await lab.exec('node', 'sysctl', ['-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim();
    assert.equal(v, '1');
  });

  test('--cleanup through the image removes the rules and exits 0', async () => {
    const r = await imageSh(['podman', ...runArgs(`${name}-cleanup`, ['--cleanup']).slice(1)], 120_000);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    const nat = (await lab.exec('node', 'iptables-save', ['-t', 'nat'])).stdout;
    assert.doesNotMatch(nat, /KUBE-/, 'no KUBE- chain or rule is left');
    assert.equal((await lab.tcp('client', '10.96.0.10', 80, { timeoutMs: 1000 })).ok, false);
  });
});
