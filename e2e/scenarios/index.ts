/**
 * Mode-independent lab scenarios: one manifests folder (Node, Services, EndpointSlices) describing a
 * small cluster around the lab's pods, and the checks every kernel mode (iptables legacy/nft,
 * nftables, ipvs) must pass with real packets. A mode's test file creates the lab with
 * {@link prepareScenarioLab}, starts its daemon on `ctx.dir`, then runs each of {@link SCENARIOS}.
 *
 * Addresses: services 172.30.0.0/16, LB ingress / external IPs 192.0.2.0/24, node IP 10.100.0.2,
 * pods 10.244.0.0/24 (client, b1, b2, b3 — every backend answers `<pod> client=<ip:port>`).
 * Endpoints with node `node-2` are "remote" (still pods on this bridge: the proxy only looks at nodeName).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab, type Tally } from '../lab/topology.js';
import { pollUntil } from '../lab/poll.js';

/** The daemon's --hostname-override. */
export const NODE_NAME = 'node-1';
/** A node name for remote endpoints. */
export const REMOTE_NODE = 'node-2';

/** What differs between modes in the shared scenarios. */
export interface ModeTraits {
  /** 127.0.0.1:nodePort works from the node (iptables IPv4 with route_localnet); nftables and ipvs: no. */
  readonly localhostNodePorts: boolean;
}

export type Obj = Record<string, unknown>;

export interface ScenarioContext {
  readonly lab: Lab;
  readonly ip: Readonly<Record<'client' | 'b1' | 'b2' | 'b3', string>>;
  readonly traits: ModeTraits;
  /** The manifests folder the daemon watches. */
  readonly dir: string;
  /** Writes (replaces) one manifests file. */
  write(file: string, objs: readonly Obj[]): void;
  /** Sets the endpoints of service `web` (TCP 80->8080 and UDP 53->5353). */
  setWebEndpoints(ips: readonly string[]): void;
  /** Polls `fn` until it returns something other than undefined/false (default 15 s). */
  until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  /** Extra text for failure messages (e.g. the daemon's log tail). */
  diagnostics: () => string;
}

export interface Scenario {
  readonly name: string;
  run(ctx: ScenarioContext): Promise<void>;
}

export const svc = (name: string, spec: Obj, status?: Obj): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: 'default', name },
  spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec },
  ...(status ? { status } : {}),
});

export interface Ep {
  readonly ip: string;
  readonly node?: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

const HTTP_PORTS: Obj[] = [{ name: 'http', port: 8080, protocol: 'TCP' }];

/** An EndpointSlice of service `svcName` (default name `<svc>-1`, IPv4); TCP 8080 `http` unless `ports`. */
export const slice = (
  svcName: string,
  eps: readonly Ep[],
  ports: Obj[] = HTTP_PORTS,
  opts: { readonly name?: string; readonly addressType?: 'IPv4' | 'IPv6' } = {},
): Obj => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    namespace: 'default',
    name: opts.name ?? `${svcName}-1`,
    labels: { 'kubernetes.io/service-name': svcName },
  },
  addressType: opts.addressType ?? 'IPv4',
  endpoints: eps.map((e) => ({
    addresses: [e.ip],
    nodeName: e.node ?? NODE_NAME,
    conditions: { ready: e.ready ?? true, serving: e.serving ?? true, terminating: e.terminating ?? false },
  })),
  ports,
});

/** Manifests as JSON documents separated by `---` (valid YAML). */
export const toYaml = (objs: readonly Obj[]): string =>
  objs.map((o) => JSON.stringify(o)).join('\n---\n') + '\n';

const lb = (ip: string): Obj => ({ loadBalancer: { ingress: [{ ip }] } });

/** The base cluster: every service the scenarios use except `web`'s endpoints. */
export function baseManifests(lab: Lab): Obj[] {
  const ip = { b1: lab.pod('b1').ip, b2: lab.pod('b2').ip, b3: lab.pod('b3').ip };
  const tcp = (nodePort?: number): Obj[] => [
    { name: 'http', port: 80, protocol: 'TCP', ...(nodePort ? { nodePort } : {}) },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: NODE_NAME },
      spec: { podCIDRs: ['10.244.0.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: lab.node.ip }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'kubernetes' },
      spec: { cidrs: ['172.30.0.0/16'] },
    },
    svc('web', {
      clusterIP: '172.30.0.10',
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    }),
    svc('np', { type: 'NodePort', clusterIP: '172.30.0.11', ports: tcp(30080) }),
    slice('np', [{ ip: ip.b1 }, { ip: ip.b2 }]),
    svc('lb', { type: 'LoadBalancer', clusterIP: '172.30.0.12', ports: tcp(30081) }, lb('192.0.2.10')),
    slice('lb', [{ ip: ip.b1 }]),
    svc(
      'lbok',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.13',
        loadBalancerSourceRanges: [`${lab.ext.ip}/32`],
        ports: tcp(30082),
      },
      lb('192.0.2.11'),
    ),
    slice('lbok', [{ ip: ip.b1 }]),
    svc(
      'lbno',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.14',
        loadBalancerSourceRanges: ['198.51.100.0/24'],
        ports: tcp(30083),
      },
      lb('192.0.2.12'),
    ),
    slice('lbno', [{ ip: ip.b1 }]),
    svc('eip', { clusterIP: '172.30.0.15', externalIPs: ['192.0.2.20'] }),
    slice('eip', [{ ip: ip.b2 }]),
    svc(
      'etpl',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.16',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 30300,
        ports: tcp(30084),
      },
      lb('192.0.2.13'),
    ),
    slice('etpl', [{ ip: ip.b1 }, { ip: ip.b3, node: REMOTE_NODE }]),
    svc(
      'etpr',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.17',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 30301,
        ports: tcp(30085),
      },
      lb('192.0.2.14'),
    ),
    slice('etpr', [{ ip: ip.b3, node: REMOTE_NODE }]),
    svc('itpl', { clusterIP: '172.30.0.18', internalTrafficPolicy: 'Local' }),
    slice('itpl', [{ ip: ip.b1 }, { ip: ip.b3, node: REMOTE_NODE }]),
    svc('sticky', { clusterIP: '172.30.0.19', sessionAffinity: 'ClientIP' }),
    slice('sticky', [{ ip: ip.b1 }, { ip: ip.b2 }, { ip: ip.b3 }]),
    svc('empty', { clusterIP: '172.30.0.20' }),
    svc('term', { clusterIP: '172.30.0.21' }),
    slice('term', [
      { ip: ip.b1, ready: false, serving: true, terminating: true },
      { ip: ip.b2, ready: false, serving: false, terminating: true },
    ]),
  ];
}

/**
 * Creates the lab (pods client, b1, b2, b3 with TCP 8080 and UDP 5353 backends) and the manifests
 * folder with the base cluster and `web` on b1+b2. The caller starts its daemon on `ctx.dir` and
 * must call the returned `dispose` (also on failure).
 */
export async function prepareScenarioLab(
  traits: ModeTraits,
): Promise<{ ctx: ScenarioContext; dispose: () => Promise<void> }> {
  const lab = await createLab({ pods: ['client', 'b1', 'b2', 'b3'] });
  const dir = mkdtempSync(join(tmpdir(), 'kpt-manifests-'));
  const dispose = async (): Promise<void> => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const b of ['b1', 'b2', 'b3']) await lab.startBackend(b, { tcpPorts: [8080], udpPorts: [5353] });
    const ip = {
      client: lab.pod('client').ip,
      b1: lab.pod('b1').ip,
      b2: lab.pod('b2').ip,
      b3: lab.pod('b3').ip,
    };
    const write = (file: string, objs: readonly Obj[]): void => {
      // Write-then-rename would be atomic, but the source must cope with partial writes anyway; keep it simple.
      writeFileSync(join(dir, file), toYaml(objs));
    };
    const ctx: ScenarioContext = {
      lab,
      ip,
      traits,
      dir,
      write,
      setWebEndpoints: (ips) => {
        write('web-slice.yaml', [
          slice(
            'web',
            ips.map((i) => ({ ip: i })),
            [
              { name: 'http', port: 8080, protocol: 'TCP' },
              { name: 'dns', port: 5353, protocol: 'UDP' },
            ],
          ),
        ]);
      },
      diagnostics: () => '',
      until: <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> =>
        pollUntil(what, fn, { timeoutMs, diagnostics: () => ctx.diagnostics() }),
    };
    write('base.yaml', baseManifests(lab));
    ctx.setWebEndpoints([ip.b1, ip.b2]);
    return { ctx, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Every connection succeeded and landed on `backend`. */
export function only(t: Tally, backend: string): boolean {
  return t.ok === t.total && t.backends[backend] === t.total;
}

const esc = (s: string): string => s.replaceAll('.', '\\.');

/** HTTP status of GET http://ip:port/ from `from` (curl), or '' when there was no answer. */
async function httpCode(ctx: ScenarioContext, from: string, ip: string, port: number): Promise<string> {
  const r = await ctx.lab.exec(
    from,
    'curl',
    ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '2', `http://${ip}:${port}/`],
    { allowFail: true },
  );
  return r.stdout.trim();
}

/** The scenarios, in the order a mode's test file should run them (later ones edit endpoints). */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'ClusterIP: connections spread over both endpoints; the pod source is kept',
    run: async ({ lab, ip }) => {
      const t = await lab.tcpMany('client', '172.30.0.10', 80, 60);
      assert.equal(t.ok, 60, JSON.stringify(t.errors));
      assert.ok((t.backends.b1 ?? 0) > 5 && (t.backends.b2 ?? 0) > 5, JSON.stringify(t.backends));
      assert.deepEqual(Object.keys(t.clients), [ip.client]);
    },
  },
  {
    name: 'NodePort from the external client (masqueraded), from a pod, from the node, and on localhost',
    run: async ({ lab, traits }) => {
      const ext = await lab.tcpMany('ext', lab.node.ip, 30080, 20);
      assert.equal(ext.ok, 20, JSON.stringify(ext.errors));
      assert.deepEqual(
        Object.keys(ext.clients),
        [lab.node.bridgeIp],
        'external NodePort traffic is masqueraded',
      );
      const pod = await lab.tcpMany('client', lab.node.ip, 30080, 10);
      assert.equal(pod.ok, 10, JSON.stringify(pod.errors));
      const node = await lab.tcpMany('node', lab.node.ip, 30080, 10);
      assert.equal(node.ok, 10, JSON.stringify(node.errors));
      const lo = await lab.tcpMany('node', '127.0.0.1', 30080, 5);
      if (traits.localhostNodePorts)
        assert.equal(lo.ok, 5, `localhost NodePort: ${JSON.stringify(lo.errors)}`);
      else assert.equal(lo.ok, 0, 'localhost NodePorts must not work in this mode');
    },
  },
  {
    name: 'LoadBalancer: no source ranges; in range passes; out of range dropped; the NodePort bypasses the ranges',
    run: async ({ lab }) => {
      assert.equal((await lab.tcpMany('ext', '192.0.2.10', 80, 5)).ok, 5);
      assert.equal((await lab.tcpMany('ext', '192.0.2.11', 80, 5)).ok, 5);
      const no = await lab.tcp('ext', '192.0.2.12', 80, { timeoutMs: 800 });
      assert.equal(no.ok ? 'ok' : no.error, 'timeout');
      assert.equal((await lab.tcp('ext', lab.node.ip, 30083)).ok, true);
    },
  },
  {
    name: 'externalIPs reach the endpoint from outside',
    run: async ({ lab }) => {
      assert.ok(only(await lab.tcpMany('ext', '192.0.2.20', 80, 5), 'b2'));
    },
  },
  {
    name: 'eTP=Local: external traffic stays local with its source IP; pods reach every endpoint; health check node port 200 / 503',
    run: async (ctx) => {
      const { lab } = ctx;
      const t = await lab.tcpMany('ext', '192.0.2.13', 80, 20);
      assert.ok(only(t, 'b1'), JSON.stringify(t.backends));
      assert.deepEqual(Object.keys(t.clients), [lab.ext.ip], 'source IP preserved');
      const np = await lab.tcpMany('ext', lab.node.ip, 30084, 10);
      assert.ok(only(np, 'b1'), JSON.stringify(np.backends));
      assert.deepEqual(Object.keys(np.clients), [lab.ext.ip], 'NodePort source IP preserved');
      const p = await lab.tcpMany('client', '192.0.2.13', 80, 40);
      assert.equal(p.ok, 40);
      assert.ok(
        (p.backends.b3 ?? 0) > 0,
        `pods short-circuit to all endpoints: ${JSON.stringify(p.backends)}`,
      );
      // The counts of the very first sync may reach the health servers before they listen: any later
      // sync refreshes them, so add an unrelated service to cause one.
      ctx.write('nudge.yaml', [svc('nudge', { clusterIP: '172.30.0.30' })]);
      await ctx.until(
        'health check node port 200',
        async () => (await httpCode(ctx, 'ext', lab.node.ip, 30300)) === '200',
      );
      assert.equal(await httpCode(ctx, 'ext', lab.node.ip, 30301), '503');
    },
  },
  {
    name: 'no local endpoints under eTP=Local: external traffic dropped (times out); the cluster IP still works',
    run: async ({ lab }) => {
      const lbr = await lab.tcp('ext', '192.0.2.14', 80, { timeoutMs: 800 });
      assert.equal(lbr.ok ? 'ok' : lbr.error, 'timeout');
      const npr = await lab.tcp('ext', lab.node.ip, 30085, { timeoutMs: 800 });
      assert.equal(npr.ok ? 'ok' : npr.error, 'timeout');
      assert.ok(only(await lab.tcpMany('client', '172.30.0.17', 80, 5), 'b3'));
    },
  },
  {
    name: 'iTP=Local: only the local endpoint',
    run: async ({ lab }) => {
      assert.ok(only(await lab.tcpMany('client', '172.30.0.18', 80, 30), 'b1'));
    },
  },
  {
    name: 'ClientIP affinity: every connection of one client lands on one endpoint',
    run: async ({ lab }) => {
      const t = await lab.tcpMany('client', '172.30.0.19', 80, 30);
      assert.equal(t.ok, 30, JSON.stringify(t.errors));
      assert.equal(Object.keys(t.backends).length, 1, JSON.stringify(t.backends));
    },
  },
  {
    name: 'no endpoints: connection refused at once',
    run: async ({ lab }) => {
      const started = Date.now();
      const r = await lab.tcp('client', '172.30.0.20', 80, { timeoutMs: 1500 });
      assert.equal(r.ok ? 'ok' : r.error, 'refused');
      assert.ok(Date.now() - started < 1500);
    },
  },
  {
    name: 'hairpin: a pod reaching itself through its service is masqueraded',
    run: async ({ lab, ip }) => {
      const t = await lab.tcpMany('b1', '172.30.0.10', 80, 40);
      assert.equal(t.ok, 40, JSON.stringify(t.errors));
      assert.ok((t.backends.b1 ?? 0) > 0);
      for (const r of t.results) {
        if (!r.ok) continue;
        if (r.reply.startsWith('b1 '))
          assert.match(r.reply, new RegExp(`client=(${esc(lab.node.bridgeIp)}|${esc(lab.node.ip)}):`));
        else assert.match(r.reply, new RegExp(`client=${esc(ip.b1)}:`));
      }
    },
  },
  {
    name: 'terminating fallback: the serving terminating endpoint is used, the non-serving one never',
    run: async ({ lab }) => {
      assert.ok(only(await lab.tcpMany('client', '172.30.0.21', 80, 20), 'b1'));
    },
  },
  {
    name: 'endpoints removed and added while traffic runs (no failed connection)',
    run: async (ctx) => {
      const { lab, ip } = ctx;
      let running = true;
      const failures: string[] = [];
      let sent = 0;
      const traffic = (async () => {
        while (running && sent < 3000) {
          const t = await lab.tcpMany('client', '172.30.0.10', 80, 10);
          sent += t.total;
          for (const r of t.results) if (!r.ok) failures.push(r.error);
        }
      })();
      try {
        ctx.setWebEndpoints([ip.b1]);
        await ctx.until('only b1', async () =>
          only(await lab.tcpMany('client', '172.30.0.10', 80, 10), 'b1'),
        );
        ctx.setWebEndpoints([ip.b1, ip.b2, ip.b3]);
        await ctx.until('three backends', async () => {
          const t = await lab.tcpMany('client', '172.30.0.10', 80, 40);
          return t.ok === 40 && Object.keys(t.backends).length === 3;
        });
        ctx.setWebEndpoints([ip.b1, ip.b2]);
        await ctx.until('b3 gone', async () => {
          const t = await lab.tcpMany('client', '172.30.0.10', 80, 30);
          return t.ok === 30 && !t.backends.b3;
        });
      } finally {
        running = false;
        await traffic;
      }
      assert.ok(sent > 0);
      assert.deepEqual(failures, [], `connections failed while endpoints changed (${sent} sent)`);
    },
  },
  {
    name: 'UDP: a flow pinned to a removed endpoint moves to the other one (conntrack cleanup)',
    run: async (ctx) => {
      const { lab, ip } = ctx;
      ctx.setWebEndpoints([ip.b1, ip.b2]);
      await ctx.until('web on b1+b2', async () => {
        const t = await lab.tcpMany('client', '172.30.0.10', 80, 30);
        return t.ok === 30 && !t.backends.b3 && (t.backends.b1 ?? 0) > 0 && (t.backends.b2 ?? 0) > 0;
      });
      const sourcePort = 40001;
      const first = await lab.udpMany('client', '172.30.0.10', 53, 3, { sourcePort });
      assert.equal(first.ok, 3, JSON.stringify(first.errors));
      const backends = Object.keys(first.backends);
      assert.equal(backends.length, 1, `one flow, one backend: ${JSON.stringify(first.backends)}`);
      const pinned = backends[0]!;
      const other = pinned === 'b1' ? 'b2' : 'b1';
      ctx.setWebEndpoints([pinned === 'b1' ? ip.b2 : ip.b1]);
      // Same source port all along: without the cleanup the conntrack entry keeps the flow on `pinned` (alive, still answering).
      await ctx.until(`the UDP flow moved to ${other}`, async () => {
        const r = await lab.udp('client', '172.30.0.10', 53, { sourcePort, timeoutMs: 500 });
        return r.ok && r.reply.startsWith(`${other} `);
      });
      ctx.setWebEndpoints([ip.b1, ip.b2]);
    },
  },
  {
    name: 'UDP: a one-way flow pinned to an endpoint is cut when the service scales to zero, and moves when it scales back (kubernetes#139628)',
    run: async (ctx) => {
      const { lab, ip } = ctx;
      const sourcePort = 40002;
      ctx.setWebEndpoints([ip.b1]);
      // The flow keeps its conntrack entry alive, as a statsd sender would.
      await ctx.until('the UDP flow on b1', async () => {
        const r = await lab.udp('client', '172.30.0.10', 53, { sourcePort, timeoutMs: 500 });
        return r.ok && r.reply.startsWith('b1 ');
      });
      ctx.setWebEndpoints([]);
      // b1 is still alive and answering: only the conntrack cleanup can stop the flow reaching it.
      // A datagram b1 gets just before its entry is deleted has its reply un-NATed by nothing, and
      // the client drops it (a timeout): the cut is still going on, so poll on.
      const cut = await ctx.until(
        'the flow no longer reaches b1 (REJECT for a service without endpoints)',
        async () => {
          const r = await lab.udp('client', '172.30.0.10', 53, { sourcePort, timeoutMs: 500 });
          return r.ok || r.error === 'timeout' ? undefined : r;
        },
      );
      assert.equal(cut.ok ? 'ok' : cut.error, 'refused', 'the next packet meets the no-endpoints REJECT');
      ctx.setWebEndpoints([ip.b2]);
      await ctx.until('the same flow reaches b2', async () => {
        const r = await lab.udp('client', '172.30.0.10', 53, { sourcePort, timeoutMs: 500 });
        return r.ok && r.reply.startsWith('b2 ');
      });
      ctx.setWebEndpoints([ip.b1, ip.b2]);
    },
  },
];
