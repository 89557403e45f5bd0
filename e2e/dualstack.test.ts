/**
 * Dual-stack end to end (root only): a lab with IPv4 and IPv6 on every interface, the real daemon in
 * the node namespace with a v4 and a v6 cluster CIDR, and real connections over IPv6 through
 * iptables mode (ip6tables, legacy and nft) and nftables mode (`table ip6 kube-proxy`): cluster IP,
 * NodePort from outside (masqueraded), a single-stack IPv6 service, an endpoint change, and the IPv4
 * side of the same dual-stack service. The machine's own namespace is only read, before and after.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab, type LabProcess, type Tally } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';
import { NODE_NAME, slice, svc, toYaml, type Obj } from './scenarios/index.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const V4_VIP = '172.30.0.10';
const V6_VIP = 'fd00:30::10';
const V6_ONLY_VIP = 'fd00:30::11';

interface Mode {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly tools: readonly string[];
  /** The IPv6 rules the mode wrote, read in the node namespace. */
  readonly v6Rules: (lab: Lab) => Promise<string>;
}

const MODES: readonly Mode[] = [
  ...(['nft', 'legacy'] as const).map((b): Mode => ({
    name: `iptables (${b})`,
    args: ['--proxy-mode=iptables'],
    env: { KUBE_PROXY_IPTABLES_BACKEND: b },
    tools: [`ip6tables-${b}`, `ip6tables-${b}-save`, `ip6tables-${b}-restore`],
    v6Rules: async (lab) => (await lab.exec('node', `ip6tables-${b}-save`, ['-t', 'nat'])).stdout,
  })),
  {
    name: 'nftables',
    args: ['--proxy-mode=nftables'],
    env: {},
    tools: ['nft'],
    v6Rules: async (lab) => (await lab.exec('node', 'nft', ['list', 'table', 'ip6', 'kube-proxy'])).stdout,
  },
];

function skipReason(mode: Mode): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of [...mode.tools, 'conntrack'])
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  return labSkipReason();
}

const port = (nodePort?: number): Obj[] => [
  { name: 'http', port: 80, protocol: 'TCP', ...(nodePort ? { nodePort } : {}) },
];

/** One family's EndpointSlice of `service` (TCP 8080 `http`, ready, on this node). */
const familySlice = (name: string, service: string, family: 'IPv4' | 'IPv6', ips: readonly string[]): Obj =>
  slice(
    service,
    ips.map((ip) => ({ ip })),
    undefined,
    { name, addressType: family },
  );

const spread = (t: Tally): string => JSON.stringify({ ok: t.ok, backends: t.backends, errors: t.errors });

for (const mode of MODES) {
  describe(`dual-stack: ${mode.name} over IPv6 in the lab`, { skip: skipReason(mode) }, () => {
    let lab: Lab;
    let dir: string;
    let daemon: LabProcess | undefined;
    const v6 = { b1: '', b2: '', client: '' };

    const write = (file: string, objs: readonly Obj[]): void => {
      writeFileSync(join(dir, file), toYaml(objs));
    };
    const setV6Endpoints = (ips: readonly string[]): void => {
      write('dual-v6.yaml', [familySlice('dual-v6', 'dual', 'IPv6', ips)]);
    };
    const until = <T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> =>
      pollUntil(what, fn, { timeoutMs: 30_000, diagnostics: () => `daemon:\n${daemon?.tail(30) ?? ''}` });

    before(async () => {
      lab = await createLab({ pods: ['client', 'b1', 'b2'], ipv6: true });
      dir = mkdtempSync(join(tmpdir(), 'kpt-dual-'));
      for (const b of ['b1', 'b2']) await lab.startBackend(b, { tcpPorts: [8080] });
      v6.b1 = lab.pod('b1').ipv6!;
      v6.b2 = lab.pod('b2').ipv6!;
      v6.client = lab.pod('client').ipv6!;
      write('base.yaml', [
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: NODE_NAME },
          spec: { podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'] },
          status: {
            addresses: [
              { type: 'InternalIP', address: lab.node.ip },
              { type: 'InternalIP', address: lab.node.ipv6! },
            ],
          },
        },
        svc('dual', {
          type: 'NodePort',
          ipFamilyPolicy: 'RequireDualStack',
          ipFamilies: ['IPv4', 'IPv6'],
          clusterIP: V4_VIP,
          clusterIPs: [V4_VIP, V6_VIP],
          ports: port(30080),
        }),
        familySlice('dual-v4', 'dual', 'IPv4', [lab.pod('b1').ip, lab.pod('b2').ip]),
        svc('v6only', {
          ipFamilyPolicy: 'SingleStack',
          ipFamilies: ['IPv6'],
          clusterIP: V6_ONLY_VIP,
          clusterIPs: [V6_ONLY_VIP],
          ports: port(),
        }),
        familySlice('v6only-a', 'v6only', 'IPv6', [lab.pod('b2').ipv6!]),
      ]);
      setV6Endpoints([v6.b1, v6.b2]);
      daemon = lab.spawnInNode(
        process.execPath,
        [
          '--import',
          'tsx',
          DAEMON,
          ...mode.args,
          `--manifests=${dir}`,
          `--hostname-override=${NODE_NAME}`,
          '--cluster-cidr=10.244.0.0/16,fd00:10:244::/64',
          '--healthz-bind-address=0.0.0.0:10256',
          '--metrics-bind-address=127.0.0.1:10249',
          '--iptables-min-sync-period=0s',
          '-v=2',
        ],
        { ...process.env, ...mode.env },
      );
    });

    after(async () => {
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('a pod reaches the IPv6 cluster IP; both endpoints answer; the pod address is kept', async () => {
      const t = await until('IPv6 cluster IP answers', async () => {
        const r = await lab.tcpMany('client', V6_VIP, 80, 20);
        return r.ok === 20 ? r : undefined;
      });
      assert.ok((t.backends.b1 ?? 0) > 0 && (t.backends.b2 ?? 0) > 0, spread(t));
      assert.deepEqual(Object.keys(t.clients), [v6.client], 'pod-to-service traffic is not masqueraded');
      const rules = await mode.v6Rules(lab);
      assert.ok(rules.includes(V6_VIP), `the IPv6 rules name ${V6_VIP}`);
      assert.ok(!rules.includes(V4_VIP), 'no IPv4 address in the IPv6 rules');
    });

    test('the IPv4 cluster IP of the same service works too', async () => {
      const t = await lab.tcpMany('client', V4_VIP, 80, 10);
      assert.equal(t.ok, 10, spread(t));
    });

    test('NodePort on the node IPv6 address from outside the cluster, masqueraded', async () => {
      const t = await until('IPv6 NodePort answers', async () => {
        const r = await lab.tcpMany('ext', lab.node.ipv6!, 30080, 10);
        return r.ok === 10 ? r : undefined;
      });
      assert.deepEqual(
        Object.keys(t.clients),
        [lab.node.bridgeIpv6],
        'external NodePort traffic is masqueraded',
      );
    });

    test('a single-stack IPv6 service lands on its one endpoint', async () => {
      const t = await lab.tcpMany('client', V6_ONLY_VIP, 80, 10);
      assert.deepEqual({ ...t.backends }, { b2: 10 }, spread(t));
    });

    test('an IPv6 endpoint removed from the slice gets no new connections; the IPv4 side is unchanged', async () => {
      setV6Endpoints([v6.b2]);
      await until('only b2 over IPv6', async () => {
        const r = await lab.tcpMany('client', V6_VIP, 80, 10);
        return r.ok === 10 && r.backends.b2 === 10 ? r : undefined;
      });
      const v4 = await lab.tcpMany('client', V4_VIP, 80, 20);
      assert.ok(v4.ok === 20 && (v4.backends.b1 ?? 0) > 0, `IPv4 still spread over both: ${spread(v4)}`);
    });
  });
}
