// A Kubernetes node built from network namespaces, for root-only end-to-end tests of every proxy mode.
//
//   <p>ext 10.100.0.1 ──veth── eth0 10.100.0.2 (node IP)  <p>node  cbr0 10.244.0.1/24 (br_netfilter, hairpin)
//                                                                    │ bridge
//                                   ┌────────────────────────────────┼──────────────── …
//                         <p>pod1 10.244.0.10             <p>pod2 10.244.0.11          <p>podN 10.244.0.(9+N)
//
// <p> is a per-run prefix `kpt-<pid>-<rand>-`, so parallel runs never collide and leftovers of a
// dead run can be recognised and swept. Everything the lab programs lives in these namespaces; the
// machine's own namespace is never touched.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NetAgent, type ConnResult } from './agent.js';
import { execIn, spawnIn, type ExecOptions, type ExecResult, type LabProcess } from './process.js';

export type { ConnResult } from './agent.js';
export { LabExecError, LabProcess, type ExecOptions, type ExecResult, type ExitInfo } from './process.js';

const ECHO_SERVER = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));

/** Prefix of every namespace any lab creates; the rest is `<pid>-<rand>-<role>`. */
export const LAB_NS_PREFIX = 'kpt-';
const STALE_RE = /^kpt-(\d+)-[0-9a-z]+-/;

/** Fixed addressing of every lab (IPv6 values apply only with `ipv6: true`). */
export const LAB_ADDRESSES = {
  externalCidr: '10.100.0.0/24',
  extIp: '10.100.0.1',
  nodeIp: '10.100.0.2',
  podCidr: '10.244.0.0/24',
  podGateway: '10.244.0.1',
  /** Pod i (0-based) gets 10.244.0.(firstPodHost + i). */
  firstPodHost: 10,
  externalCidrV6: 'fd00:10:100::/64',
  extIpV6: 'fd00:10:100::1',
  nodeIpV6: 'fd00:10:100::2',
  podCidrV6: 'fd00:10:244::/64',
  podGatewayV6: 'fd00:10:244::1',
} as const;

const MAX_PODS = 200;
const POD_NAME_RE = /^[a-z][a-z0-9]{0,7}$/;

/** Options for {@link createLab}. */
export interface LabOptions {
  /** Pod count (named pod1..podN) or explicit names (`/^[a-z][a-z0-9]{0,7}$/`, not 'node'/'ext'). Default 3. */
  readonly pods?: number | readonly string[];
  /** Also give every interface an IPv6 address (dual-stack). Default false. */
  readonly ipv6?: boolean;
  /** Bridge-port hairpin mode on the pod ports (needed for pod→VIP→same pod). Default true. */
  readonly hairpin?: boolean;
  /**
   * Namespace prefix; default `kpt-<pid>-<6 hex>-`. A custom one must look like `kpt-<this pid>-<[0-9a-z]+>-`
   * (at most 24 characters) so that {@link sweepStaleLabs} still recognises it.
   */
  readonly prefix?: string;
}

/** A pod namespace attached to the node's bridge. */
export interface LabPod {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly ipv6: string | undefined;
  /** The pod's veth end in the node namespace (a port of cbr0). The pod side is `eth0`. */
  readonly hostVeth: string;
}

/** The node namespace (where the proxy under test runs and programs its rules). */
export interface LabNode {
  readonly name: 'node';
  readonly ns: string;
  /** The node IP, on `eth0` towards the external client. */
  readonly ip: string;
  readonly ipv6: string | undefined;
  readonly bridge: 'cbr0';
  readonly bridgeIp: string;
  readonly bridgeIpv6: string | undefined;
  readonly externalInterface: 'eth0';
}

/** The external client namespace, outside the cluster; its default route points at the node IP. */
export interface LabExternal {
  readonly name: 'ext';
  readonly ns: string;
  readonly ip: string;
  readonly ipv6: string | undefined;
}

/** Where traffic comes from: a namespace name of this lab, a short name ('node', 'ext', a pod name), or a pod/node/ext object. */
export type NsRef = string | { readonly ns: string };

/** Options for one connection. */
export interface ConnOptions {
  /** Give up after this long (connect + reply). Default 2000. */
  readonly timeoutMs?: number;
  /** TCP (`tcp`): bind this client source port, e.g. to meet a conntrack flow an earlier attempt left. */
  readonly sourcePort?: number;
}

/** Options for a batch of TCP connections. */
export interface ManyOptions extends ConnOptions {
  /** How many connections may be in flight at once. Default 1 (sequential). */
  readonly concurrency?: number;
}

/** Options for UDP. */
export interface UdpOptions extends ManyOptions {
  /** Bind this client source port (implies one socket for every datagram of the call). */
  readonly sourcePort?: number;
  /** Send every datagram of the call from one socket, so they share a source port (one conntrack flow). */
  readonly sameSocket?: boolean;
  /** Datagram payload. Default 'ping'. */
  readonly payload?: string;
}

/** Summary of a batch of connections. */
export interface Tally {
  readonly total: number;
  readonly ok: number;
  /** Backend name (first word of the reply) → count. */
  readonly backends: Readonly<Record<string, number>>;
  /** Client IP the backend saw → count (shows masquerading). */
  readonly clients: Readonly<Record<string, number>>;
  /** Error kind ('timeout', 'refused', …) → count. */
  readonly errors: Readonly<Record<string, number>>;
  /** Every individual result, in order. */
  readonly results: readonly ConnResult[];
}

/** Ports a backend listens on (each on 0.0.0.0, and on :: for an IPv6 lab). */
export interface BackendPorts {
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
}

/** A running network-namespace lab. Create with {@link createLab}; always `destroy()` it. */
export interface Lab {
  /** `kpt-<pid>-<rand>-`; every namespace of this lab starts with it. */
  readonly prefix: string;
  readonly ipv6: boolean;
  readonly node: LabNode;
  readonly ext: LabExternal;
  readonly pods: readonly LabPod[];
  /** The pod called `name`; throws if there is none. */
  pod(name: string): LabPod;
  /** Every namespace name of this lab. */
  namespaces(): readonly string[];
  /** Resolves a {@link NsRef} to one of this lab's namespace names; throws for anything else. */
  resolveNs(ref: NsRef): string;
  /** Runs a command in one of the lab's namespaces (e.g. `iptables-restore`, `nft -f -` with `input`); throws on non-zero exit unless `allowFail`. */
  exec(ns: NsRef, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-lived process in a lab namespace; captured output; killed on destroy. */
  spawn(ns: NsRef, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): LabProcess;
  /** `spawn` in the node namespace: the daemon under test. */
  spawnInNode(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): LabProcess;
  /**
   * Starts echo-server.mjs in a lab namespace and resolves once every port is bound. It answers each
   * TCP connection and each UDP datagram with `<name> client=<ip:port>` (name: pod name, 'node' or 'ext').
   */
  startBackend(where: NsRef, ports: BackendPorts): Promise<LabProcess>;
  /** One TCP connection from `from` to ip:port; the reply line or why there was none. */
  tcp(from: NsRef, ip: string, port: number, opts?: ConnOptions): Promise<ConnResult>;
  /** `n` TCP connections (each a new connection); see {@link Tally}. */
  tcpMany(from: NsRef, ip: string, port: number, n: number, opts?: ManyOptions): Promise<Tally>;
  /** One UDP datagram and its reply. */
  udp(from: NsRef, ip: string, port: number, opts?: UdpOptions): Promise<ConnResult>;
  /** `n` UDP exchanges; new socket each unless `sameSocket`/`sourcePort`. */
  udpMany(from: NsRef, ip: string, port: number, n: number, opts?: UdpOptions): Promise<Tally>;
  /** Kills every process the lab started and deletes every namespace it made. Idempotent; never throws. */
  destroy(): Promise<void>;
}

/** Parsed backend reply `<name> client=<ip:port>`; undefined if `reply` has another shape. */
export function parseReply(
  reply: string,
): { backend: string; clientIp: string; clientPort: number } | undefined {
  const m = /^(\S+) client=(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(reply.trim());
  if (!m) return undefined;
  return { backend: m[1]!, clientIp: m[2] ?? m[3]!, clientPort: Number(m[4]) };
}

/** Builds a {@link Tally} from individual results. */
export function tally(results: readonly ConnResult[]): Tally {
  const backends: Record<string, number> = {};
  const clients: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let ok = 0;
  for (const r of results) {
    if (r.ok) {
      ok++;
      const p = parseReply(r.reply);
      const name = p?.backend ?? r.reply;
      backends[name] = (backends[name] ?? 0) + 1;
      if (p) clients[p.clientIp] = (clients[p.clientIp] ?? 0) + 1;
    } else {
      errors[r.error] = (errors[r.error] ?? 0) + 1;
    }
  }
  return { total: results.length, ok, backends, clients, errors, results };
}

// ---------------------------------------------------------------------------------------------
// Process-wide registry, so namespaces and processes go away even if a test forgets destroy()
// or the run is interrupted.

const liveLabs = new Set<LabImpl>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const lab of liveLabs) lab.destroySync();
      // Re-raise so the default action (or someone else's handler) still decides how we die.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

function killNsPidsSync(ns: string): void {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const p of (r.stdout ?? '').split(/\s+/)) {
    const pid = Number(p);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

function deleteNsSync(ns: string): void {
  killNsPidsSync(ns);
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** Names in `ip netns list` (first word of each line). */
export function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes leftover lab namespaces (`kpt-<pid>-…`) whose creating pid is no longer running, killing
 * any process still inside them first. Returns the names deleted. Labs of live processes are left alone.
 */
export function sweepStaleLabs(): string[] {
  const gone: string[] = [];
  for (const ns of listNamespaces()) {
    const m = STALE_RE.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    deleteNsSync(ns);
    gone.push(ns);
  }
  return gone;
}

let skipCache: string | undefined | null = null;

/**
 * Why the lab cannot run here (not Linux, not root, no working `ip netns`), or undefined when it can.
 * Meant for `test(name, { skip: labSkipReason() }, …)`. Probes once per process by creating and
 * deleting a namespace.
 */
export function labSkipReason(): string | undefined {
  if (skipCache !== null) return skipCache;
  skipCache = probe();
  return skipCache;
}

function probe(): string | undefined {
  if (process.platform !== 'linux')
    return `network-namespace e2e tests need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network-namespace e2e tests need root (run as uid 0)';
  const probeNs = `${LAB_NS_PREFIX}${process.pid}-probe-x`;
  const add = spawnSync('ip', ['netns', 'add', probeNs], { encoding: 'utf8' });
  if (add.error) return `\`ip\` (iproute2) is not available: ${add.error.message}`;
  if (add.status !== 0) return `\`ip netns add\` does not work here: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probeNs], { stdio: 'ignore' });
  return undefined;
}

// ---------------------------------------------------------------------------------------------

function podNames(opt: LabOptions['pods']): string[] {
  const names =
    typeof opt === 'number' || opt === undefined
      ? Array.from({ length: opt ?? 3 }, (_, i) => `pod${i + 1}`)
      : [...opt];
  if (typeof opt === 'number' && (!Number.isInteger(opt) || opt < 0))
    throw new Error(`lab: option pods: ${opt} is not a non-negative integer`);
  if (names.length > MAX_PODS) throw new Error(`lab: option pods: ${names.length} pods, at most ${MAX_PODS}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (!POD_NAME_RE.test(n) || n === 'node' || n === 'ext')
      throw new Error(
        `lab: option pods: pod name ${JSON.stringify(n)} must match ${POD_NAME_RE} and not be 'node' or 'ext'`,
      );
    if (seen.has(n)) throw new Error(`lab: option pods: pod name ${JSON.stringify(n)} is repeated`);
    seen.add(n);
  }
  return names;
}

/**
 * Builds a lab (see the file header for the topology). Needs root; check {@link labSkipReason}
 * first. If building fails half-way, everything made so far is removed before the error is thrown.
 *
 * @example
 * const lab = await createLab({ pods: ['client', 'b1', 'b2'] });
 * try {
 *   await lab.startBackend('b1', { tcpPorts: [8080] });
 *   const r = await lab.tcp('client', lab.pod('b1').ip, 8080); // { ok: true, reply: 'b1 client=10.244.0.10:41234' }
 * } finally { await lab.destroy(); }
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const names = podNames(opts.pods);
  const prefix = opts.prefix ?? `${LAB_NS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}-`;
  if (!prefix.startsWith(`${LAB_NS_PREFIX}${process.pid}-`) || !STALE_RE.test(prefix) || prefix.length > 24)
    throw new Error(
      `lab: option prefix: ${JSON.stringify(prefix)} must look like "kpt-${process.pid}-<[0-9a-z]+>-" and be at most 24 characters`,
    );
  installExitHooks();
  const lab = new LabImpl(prefix, names, opts.ipv6 ?? false);
  liveLabs.add(lab);
  try {
    await lab.build(opts.hairpin ?? true);
    return lab;
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

class LabImpl implements Lab {
  readonly node: LabNode;
  readonly ext: LabExternal;
  readonly pods: readonly LabPod[];
  private readonly made = new Set<string>();
  private readonly procs = new Set<LabProcess>();
  private readonly agents = new Map<string, NetAgent>();
  private destroyed = false;

  constructor(
    readonly prefix: string,
    podNameList: readonly string[],
    readonly ipv6: boolean,
  ) {
    const A = LAB_ADDRESSES;
    const v6 = <T>(x: T): T | undefined => (ipv6 ? x : undefined);
    this.node = {
      name: 'node',
      ns: `${prefix}node`,
      ip: A.nodeIp,
      ipv6: v6(A.nodeIpV6),
      bridge: 'cbr0',
      bridgeIp: A.podGateway,
      bridgeIpv6: v6(A.podGatewayV6),
      externalInterface: 'eth0',
    };
    this.ext = { name: 'ext', ns: `${prefix}ext`, ip: A.extIp, ipv6: v6(A.extIpV6) };
    this.pods = podNameList.map((name, i) => ({
      name,
      ns: `${prefix}${name}`,
      ip: `10.244.0.${A.firstPodHost + i}`,
      ipv6: v6(`fd00:10:244::${(A.firstPodHost + i).toString(16)}`),
      hostVeth: `veth${i}`,
    }));
  }

  pod(name: string): LabPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p)
      throw new Error(
        `lab: no pod named ${JSON.stringify(name)} (pods: ${this.pods.map((x) => x.name).join(', ')})`,
      );
    return p;
  }

  namespaces(): readonly string[] {
    return [this.node.ns, this.ext.ns, ...this.pods.map((p) => p.ns)];
  }

  resolveNs(ref: NsRef): string {
    const s = typeof ref === 'string' ? ref : ref.ns;
    if (this.namespaces().includes(s)) return s;
    if (s === 'node') return this.node.ns;
    if (s === 'ext') return this.ext.ns;
    const p = this.pods.find((x) => x.name === s);
    if (p) return p.ns;
    throw new Error(
      `lab: ${JSON.stringify(s)} is not a namespace of lab ${this.prefix} (use 'node', 'ext', a pod name or a full namespace name)`,
    );
  }

  private shortName(ns: string): string {
    return ns.slice(this.prefix.length);
  }

  async build(hairpin: boolean): Promise<void> {
    const { node, ext, ipv6 } = this;
    const A = LAB_ADDRESSES;
    for (const ns of [node.ns, ext.ns]) await this.addNs(ns);
    await this.batch(node.ns, [
      'link set lo up',
      'link add cbr0 type bridge',
      `addr add ${A.podGateway}/24 dev cbr0`,
      ...(ipv6 ? [`addr add ${A.podGatewayV6}/64 dev cbr0 nodad`] : []),
      'link set cbr0 up',
      `link add eth0 type veth peer name eth0 netns ${ext.ns}`,
      `addr add ${A.nodeIp}/24 dev eth0`,
      ...(ipv6 ? [`addr add ${A.nodeIpV6}/64 dev eth0 nodad`] : []),
      'link set eth0 up',
      // The node's own sockets need a route for VIPs to reach the OUTPUT-chain DNAT.
      `route add default via ${A.extIp}`,
      ...(ipv6 ? [`route add default via ${A.extIpV6}`] : []),
    ]);
    await this.batch(ext.ns, [
      'link set lo up',
      `addr add ${A.extIp}/24 dev eth0`,
      ...(ipv6 ? [`addr add ${A.extIpV6}/64 dev eth0 nodad`] : []),
      'link set eth0 up',
      // External traffic to node-owned external/LB IPs goes through the node.
      `route add default via ${A.nodeIp}`,
      ...(ipv6 ? [`route add default via ${A.nodeIpV6}`] : []),
    ]);
    const sysctls = [
      'net.ipv4.ip_forward=1',
      // Pod→VIP→pod on one bridge: the reply is bridged at L2 unless br_netfilter shows it to conntrack.
      'net.bridge.bridge-nf-call-iptables=1',
      ...(ipv6 ? ['net.ipv6.conf.all.forwarding=1', 'net.bridge.bridge-nf-call-ip6tables=1'] : []),
    ];
    await execIn(node.ns, 'sysctl', ['-qw', ...sysctls]);

    await forEachLimit(this.pods, 8, (p) => this.addNs(p.ns));
    await this.batch(
      node.ns,
      this.pods.flatMap((p) => [
        `link add ${p.hostVeth} type veth peer name eth0 netns ${p.ns}`,
        `link set ${p.hostVeth} master cbr0`,
        // pod→VIP→same pod is DNATed in br_netfilter and must leave by the port it came in on.
        ...(hairpin ? [`link set ${p.hostVeth} type bridge_slave hairpin on`] : []),
        `link set ${p.hostVeth} up`,
      ]),
    );
    await forEachLimit(this.pods, 8, (p) =>
      this.batch(p.ns, [
        'link set lo up',
        `addr add ${p.ip}/24 dev eth0`,
        ...(p.ipv6 ? [`addr add ${p.ipv6}/64 dev eth0 nodad`] : []),
        'link set eth0 up',
        `route add default via ${A.podGateway}`,
        ...(ipv6 ? [`route add default via ${A.podGatewayV6}`] : []),
      ]),
    );
  }

  /** Creates `ns` and records it for cleanup, unless it already existed (then it is not ours to delete). */
  private async addNs(ns: string): Promise<void> {
    this.made.add(ns);
    try {
      await execIn(undefined, 'ip', ['netns', 'add', ns]);
    } catch (err) {
      if (/File exists/.test(String(err))) this.made.delete(ns);
      throw err;
    }
  }

  private async batch(ns: string, commands: readonly string[]): Promise<void> {
    if (commands.length === 0) return;
    await execIn(undefined, 'ip', ['-n', ns, '-batch', '-'], { input: commands.join('\n') + '\n' });
  }

  exec(ns: NsRef, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.assertLive();
    return execIn(this.resolveNs(ns), cmd, args, opts);
  }

  spawn(ns: NsRef, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): LabProcess {
    this.assertLive();
    const proc = spawnIn(this.resolveNs(ns), cmd, args, env);
    this.procs.add(proc);
    return proc;
  }

  spawnInNode(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): LabProcess {
    return this.spawn(this.node.ns, cmd, args, env);
  }

  async startBackend(where: NsRef, ports: BackendPorts): Promise<LabProcess> {
    const ns = this.resolveNs(where);
    const list = (xs: readonly number[] | undefined): string => {
      for (const x of xs ?? [])
        if (!Number.isInteger(x) || x < 1 || x > 65535)
          throw new Error(`lab: startBackend: port ${x} is not in 1..65535`);
      return xs && xs.length > 0 ? xs.join(',') : '-';
    };
    const tcp = list(ports.tcpPorts);
    const udp = list(ports.udpPorts);
    if (tcp === '-' && udp === '-')
      throw new Error('lab: startBackend: give at least one of tcpPorts, udpPorts');
    const proc = this.spawn(ns, process.execPath, [
      ECHO_SERVER,
      this.shortName(ns),
      tcp,
      udp,
      this.ipv6 ? '1' : '0',
    ]);
    // The server prints its marker only after every listen() callback, so no probing loop is needed.
    const m = await proc.waitForOutput(/"ready":(true|false)/, 15_000);
    if (m[1] !== 'true') {
      await proc.stop();
      throw new Error(`lab: backend in ${ns} failed to start:\n${proc.tail()}`);
    }
    return proc;
  }

  private agent(from: NsRef): NetAgent {
    this.assertLive();
    const ns = this.resolveNs(from);
    let a = this.agents.get(ns);
    if (!a || a.proc.exitInfo) {
      a = NetAgent.start(ns);
      this.procs.add(a.proc);
      this.agents.set(ns, a);
    }
    return a;
  }

  async tcp(from: NsRef, ip: string, port: number, opts: ConnOptions = {}): Promise<ConnResult> {
    const [r] = await this.agent(from).request({
      op: 'tcp',
      ip,
      port,
      n: 1,
      timeoutMs: opts.timeoutMs ?? 2000,
      ...(opts.sourcePort !== undefined ? { sourcePort: opts.sourcePort } : {}),
    });
    return r!;
  }

  async tcpMany(from: NsRef, ip: string, port: number, n: number, opts: ManyOptions = {}): Promise<Tally> {
    const rs = await this.agent(from).request({
      op: 'tcp',
      ip,
      port,
      n,
      timeoutMs: opts.timeoutMs ?? 2000,
      concurrency: opts.concurrency ?? 1,
    });
    return tally(rs);
  }

  async udp(from: NsRef, ip: string, port: number, opts: UdpOptions = {}): Promise<ConnResult> {
    const t = await this.udpMany(from, ip, port, 1, opts);
    return t.results[0]!;
  }

  async udpMany(from: NsRef, ip: string, port: number, n: number, opts: UdpOptions = {}): Promise<Tally> {
    const rs = await this.agent(from).request({
      op: 'udp',
      ip,
      port,
      n,
      timeoutMs: opts.timeoutMs ?? 2000,
      concurrency: opts.concurrency ?? 1,
      sameSocket: opts.sameSocket ?? false,
      ...(opts.sourcePort !== undefined ? { sourcePort: opts.sourcePort } : {}),
      payload: opts.payload ?? 'ping',
    });
    return tally(rs);
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error(`lab ${this.prefix} is already destroyed`);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await Promise.all([...this.procs].map((p) => p.stop(1000)));
    } catch {
      // destroySync below kills whatever is left
    }
    await forEachLimit([...this.made], 8, async (ns) => {
      await execIn(undefined, 'ip', ['netns', 'pids', ns], { allowFail: true }).then((r) => {
        for (const p of r.stdout.split(/\s+/)) {
          const pid = Number(p);
          if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone
            }
          }
        }
      });
      await execIn(undefined, 'ip', ['netns', 'del', ns], { allowFail: true });
    }).catch(() => undefined);
    // Anything the async path could not remove.
    const left = new Set(listNamespaces());
    for (const ns of this.made) if (left.has(ns)) deleteNsSync(ns);
    liveLabs.delete(this);
  }

  /** Synchronous last-resort cleanup for process exit and signals. */
  destroySync(): void {
    this.destroyed = true;
    for (const p of this.procs) p.signal('SIGKILL');
    for (const ns of this.made) deleteNsSync(ns);
    liveLabs.delete(this);
  }
}

async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0] as Error;
}
