/**
 * Userspace mode end to end (root only): the real daemon runs in the lab's node namespace on a
 * manifests folder and, being root with iptables there, programs portals: pod traffic to a cluster
 * IP is REDIRECTed (KUBE-PORTALS-CONTAINER) to the relay's proxy port, which connects to the backend
 * pods. Checks distribution, affinity, retry past a dead endpoint, reject without endpoints, NodePort
 * from outside, UDP, endpoint removal, host-originated traffic, and that shutdown and --cleanup leave
 * no chain behind. The machine's own namespace is only read (iptables-save), never written.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab, type LabProcess, type Tally } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const NODE = 'node-1';
const BACKEND = 'nft';
const SAVE = `iptables-${BACKEND}-save`;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync(SAVE, ['--version']).status !== 0) return `${SAVE} is not installed`;
  return labSkipReason();
}

/** nat and filter of the machine's own namespace, both iptables backends: read-only. */
function rootRules(): string {
  let out = '';
  for (const cmd of ['iptables-nft-save', 'iptables-legacy-save']) {
    for (const t of ['nat', 'filter']) out += spawnSync(cmd, ['-t', t], { encoding: 'utf8' }).stdout ?? '';
  }
  // Counters and the header/footer comments change on their own; chain and rule lines do not.
  return out
    .split('\n')
    .filter((l) => l.startsWith('-') || l.startsWith(':'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n');
}

let tail: (() => string) | undefined;

function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  return pollUntil(what, fn, { timeoutMs, diagnostics: () => (tail ? `daemon:\n${tail()}` : '') });
}

type Obj = Record<string, unknown>;
const svc = (name: string, spec: Obj): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: 'default', name },
  spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec },
});
const PORTS = [
  { name: 'http', port: 8080, protocol: 'TCP' },
  { name: 'dns', port: 5353, protocol: 'UDP' },
];
const slice = (svcName: string, ips: string[], ports: Obj[] = PORTS): Obj => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { namespace: 'default', name: `${svcName}-1`, labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({
    addresses: [ip],
    nodeName: NODE,
    conditions: { ready: true, serving: true, terminating: false },
  })),
  ports,
});
const yaml = (objs: Obj[]) => objs.map((o) => JSON.stringify(o)).join('\n---\n') + '\n';

function errorsOf(t: Tally): string {
  return JSON.stringify({ errors: t.errors, backends: t.backends });
}

describe('userspace mode with portals in the lab', { skip: skipReason() }, () => {
  let lab: Lab;
  let daemon: LabProcess;
  let dir: string;
  let ip: Record<'b1' | 'b2' | 'b3' | 'idle', string>;
  let rootBefore: string;

  const write = (file: string, objs: Obj[]) => {
    writeFileSync(join(dir, file), yaml(objs));
  };
  const natRules = async () => (await lab.exec('node', SAVE, ['-t', 'nat'])).stdout;

  before(async () => {
    rootBefore = rootRules();
    assert.doesNotMatch(
      rootBefore,
      /KUBE-PORTALS|KUBE-NODEPORT-(CONTAINER|HOST|NON-LOCAL)/,
      'the root namespace already has userspace portal chains',
    );
    lab = await createLab({ pods: ['client', 'b1', 'b2', 'b3', 'idle'] });
    ip = { b1: lab.pod('b1').ip, b2: lab.pod('b2').ip, b3: lab.pod('b3').ip, idle: lab.pod('idle').ip };
    for (const b of ['b1', 'b2', 'b3']) await lab.startBackend(b, { tcpPorts: [8080], udpPorts: [5353] });
    dir = mkdtempSync(join(tmpdir(), 'kpt-us-manifests-'));
    write('base.yaml', [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: NODE },
        spec: { podCIDRs: ['10.244.0.0/24'] },
        status: { addresses: [{ type: 'InternalIP', address: lab.node.ip }] },
      },
      svc('web', {
        clusterIP: '172.30.0.10',
        ports: [
          { name: 'http', port: 80, protocol: 'TCP' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      }),
      svc('np', {
        type: 'NodePort',
        clusterIP: '172.30.0.11',
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
      }),
      slice('np', [ip.b1, ip.b2], [PORTS[0]!]),
      svc('dead', { clusterIP: '172.30.0.12' }),
      slice('dead', [ip.idle, ip.b2], [PORTS[0]!]),
      svc('sticky', { clusterIP: '172.30.0.19', sessionAffinity: 'ClientIP' }),
      slice('sticky', [ip.b1, ip.b2, ip.b3], [PORTS[0]!]),
      svc('empty', { clusterIP: '172.30.0.20' }),
    ]);
    write('web-slice.yaml', [slice('web', [ip.b1, ip.b2, ip.b3])]);
    daemon = lab.spawnInNode(
      process.execPath,
      [
        '--import',
        'tsx',
        DAEMON,
        '--proxy-mode=userspace',
        `--manifests=${dir}`,
        `--hostname-override=${NODE}`,
        '--cluster-cidr=10.244.0.0/16',
        '--healthz-bind-address=127.0.0.1:10256',
        '--metrics-bind-address=127.0.0.1:10249',
        '--iptables-min-sync-period=0s',
        '-v=2',
      ],
      { ...process.env, KUBE_PROXY_IPTABLES_BACKEND: BACKEND },
    );
    tail = () => daemon.tail(40);
    await daemon.waitForOutput(/userspace startup summary/, 30_000);
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const now = rootRules();
    assert.doesNotMatch(
      now,
      /KUBE-PORTALS|KUBE-NODEPORT-(CONTAINER|HOST|NON-LOCAL)/,
      'portal chains appeared in the root namespace',
    );
    assert.equal(now, rootBefore, 'the root namespace nat/filter rules changed');
  });

  test('portal mode was chosen and its chains and jumps exist in the node namespace', async () => {
    assert.match(daemon.tail(200), /userspace mode: portals with iptables-nft/);
    const nat = await natRules();
    assert.match(nat, /-A PREROUTING .*-j KUBE-PORTALS-CONTAINER/);
    assert.match(nat, /-A OUTPUT .*-j KUBE-PORTALS-HOST/);
    assert.match(nat, /-A PREROUTING .*--dst-type LOCAL .*-j KUBE-NODEPORT-CONTAINER/);
    assert.match(
      nat,
      /-A KUBE-PORTALS-CONTAINER -d 172\.30\.0\.10\/32 -p tcp .*--dport 80 .*-j REDIRECT --to-ports \d+/,
    );
    assert.match(
      nat,
      new RegExp(
        `-A KUBE-PORTALS-HOST -d 172\\.30\\.0\\.10/32 -p udp .*--dport 53 .*-j DNAT --to-destination ${lab.node.ip.replaceAll('.', '\\.')}:\\d+`,
      ),
    );
    const filter = (await lab.exec('node', SAVE, ['-t', 'filter'])).stdout;
    assert.match(filter, /-A INPUT .*-j KUBE-NODEPORT-NON-LOCAL/);
  });

  test('round robin: 30 connections from a pod land exactly 10 on each of 3 backends', async () => {
    const t = await lab.tcpMany('client', '172.30.0.10', 80, 30);
    assert.equal(t.ok, 30, errorsOf(t));
    assert.deepEqual({ ...t.backends }, { b1: 10, b2: 10, b3: 10 });
  });

  test('host-originated traffic to the cluster IP (OUTPUT DNAT to the node IP)', async () => {
    const t = await lab.tcpMany('node', '172.30.0.10', 80, 6);
    assert.equal(t.ok, 6, errorsOf(t));
  });

  test('ClientIP affinity: every connection of one client lands on one endpoint', async () => {
    const t = await lab.tcpMany('client', '172.30.0.19', 80, 20);
    assert.equal(t.ok, 20, errorsOf(t));
    assert.equal(Object.keys(t.backends).length, 1, JSON.stringify(t.backends));
  });

  test('an endpoint without a listener is skipped: every connection still succeeds', async () => {
    const t = await lab.tcpMany('client', '172.30.0.12', 80, 20);
    assert.equal(t.ok, 20, errorsOf(t));
    assert.deepEqual({ ...t.backends }, { b2: 20 });
  });

  test('no endpoints: the connection is reset at once, not left to time out', async () => {
    // The relay has accepted the handshake before it knows there is nowhere to go, so the client
    // sees a reset after connecting (upstream userspace closed the socket the same way).
    const t = await lab.tcpMany('client', '172.30.0.20', 80, 3, { timeoutMs: 1500 });
    assert.equal(t.ok, 0);
    for (const r of t.results)
      assert.ok(!r.ok && (r.error === 'reset' || r.error === 'refused'), JSON.stringify(r));
  });

  test('NodePort from the external client', async () => {
    const t = await lab.tcpMany('ext', lab.node.ip, 30080, 10);
    assert.equal(t.ok, 10, errorsOf(t));
    assert.deepEqual(Object.keys(t.backends).sort(), ['b1', 'b2']);
  });

  test('UDP round trip through the cluster IP, spread over the backends', async () => {
    const t = await lab.udpMany('client', '172.30.0.10', 53, 9);
    assert.equal(t.ok, 9, errorsOf(t));
    assert.deepEqual({ ...t.backends }, { b1: 3, b2: 3, b3: 3 });
  });

  test('an endpoint removed from the manifest gets no new connections', async () => {
    write('web-slice.yaml', [slice('web', [ip.b1, ip.b2])]);
    await until('b3 gone', async () => {
      const t = await lab.tcpMany('client', '172.30.0.10', 80, 12);
      return t.ok === 12 && t.backends.b3 === undefined;
    });
    const t = await lab.tcpMany('client', '172.30.0.10', 80, 30);
    assert.equal(t.ok, 30, errorsOf(t));
    assert.deepEqual({ ...t.backends }, { b1: 15, b2: 15 });
  });

  test('shutdown removes the portal chains and jumps', async () => {
    const exit = await daemon.stop(5000);
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit));
    const nat = await natRules();
    assert.doesNotMatch(nat, /KUBE-PORTALS|KUBE-NODEPORT-/);
    const filter = (await lab.exec('node', SAVE, ['-t', 'filter'])).stdout;
    assert.doesNotMatch(filter, /KUBE-NODEPORT-NON-LOCAL/);
  });

  test('--cleanup removes portal chains left behind by a killed proxy', async () => {
    const leftover = [
      '*nat',
      ':KUBE-PORTALS-CONTAINER - [0:0]',
      ':KUBE-NODEPORT-HOST - [0:0]',
      '-A KUBE-PORTALS-CONTAINER -d 172.30.0.10/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 40000',
      '-I PREROUTING 1 -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER',
      '-A OUTPUT -m comment --comment "handle service NodePorts; NOTE: this must be after the portal rules" -m addrtype --dst-type LOCAL -j KUBE-NODEPORT-HOST',
      'COMMIT',
      '',
    ].join('\n');
    await lab.exec('node', `iptables-${BACKEND}-restore`, ['-w', '--noflush'], { input: leftover });
    assert.match(await natRules(), /KUBE-PORTALS-CONTAINER/);
    const r = await lab.exec(
      'node',
      'env',
      [
        `KUBE_PROXY_IPTABLES_BACKEND=${BACKEND}`,
        process.execPath,
        '--import',
        'tsx',
        DAEMON,
        '--cleanup',
        '--proxy-mode=userspace',
      ],
      {
        allowFail: true,
        timeoutMs: 60_000,
      },
    );
    assert.equal(r.code, 0, `--cleanup failed: ${r.stderr}`);
    assert.doesNotMatch(await natRules(), /KUBE-PORTALS|KUBE-NODEPORT-/);
  });
});
