/**
 * Userspace mode planner: which sockets the relay opens for a desired state, and the listener table
 * `kube-proxy render --proxy-mode userspace` prints. Pure: no I/O, no clock.
 *
 * Without root the relay listens directly on the service addresses (bind works for 127.0.0.0/8 and
 * for addresses on a local interface). A later portal mode (iptables REDIRECT to a proxy port) can
 * reuse the same plan: `service` is what a portal rule matches, `listen` is where the relay listens.
 */
import type { DesiredState, Endpoint, ServicePortState } from '../../proxy/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import { joinHostPort } from '../../net/ip.js';

/** How traffic reaches a listener; decides which traffic policy applies. */
export type ListenerKind = 'clusterIP' | 'externalIP' | 'loadBalancer' | 'nodePort';

/** Protocols the relay can carry (node has no SCTP sockets; upstream userspace had none either). */
export type RelayProtocol = 'TCP' | 'UDP';

/** One socket the relay should own. */
export interface ListenerPlan {
  /** Unique per plan list: "TCP/127.0.0.10:8080" (protocol, listen address, listen port). */
  readonly id: string;
  /** Service port key (ServicePortState.key). */
  readonly servicePortKey: string;
  /** "ns/svc:port" for messages. */
  readonly serviceName: string;
  readonly protocol: RelayProtocol;
  readonly kind: ListenerKind;
  /** The service address and port clients use: what a portal (REDIRECT/DNAT) rule would match. */
  readonly service: { readonly address: string; readonly port: number };
  /** Where the relay binds; equal to `service` in direct (no-root) mode. */
  readonly listen: { readonly address: string; readonly port: number };
  /**
   * Balancer identity: listeners of one service port that use the same policy set share rotation and
   * affinity ("<key>|internal" or "<key>|external").
   */
  readonly balancerKey: string;
  /** The usable endpoints for this kind of traffic (internal or external policy set), sorted. */
  readonly endpoints: readonly Endpoint[];
  /** ClientIP affinity timeout in seconds; 0 = none. */
  readonly stickyMaxAgeSeconds: number;
  /**
   * With no usable endpoints: "reject" when the service has no endpoints at all, "drop" when it has
   * some but none for this policy (Local policy, no local endpoints), as the iptables modes decide.
   * The relay resets TCP connections in both cases (it cannot make a client time out cheaply).
   */
  readonly noEndpoints: 'reject' | 'drop';
}

/** A service port the relay cannot carry, with the reason. */
export interface SkippedPort {
  readonly servicePortKey: string;
  readonly serviceName: string;
  readonly reason: string;
}

const KIND_ORDER: Readonly<Record<ListenerKind, number>> = {
  clusterIP: 0,
  externalIP: 1,
  loadBalancer: 2,
  nodePort: 3,
};

function internalSet(sp: ServicePortState): readonly Endpoint[] {
  return sp.info.internalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints;
}

function externalSet(sp: ServicePortState): readonly Endpoint[] {
  return sp.info.externalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints;
}

/**
 * The addresses NodePorts listen on: the configured nodePortAddresses IPs, else every node IP;
 * plus the loopback address when localhost NodePorts are on (IPv4 only, as upstream).
 */
export function nodePortListenAddresses(state: DesiredState, opts: FamilyOptions): string[] {
  const out = new Set<string>(opts.nodePortAddresses.matchAll ? state.nodeIPs : opts.nodePortAddresses.ips);
  if (opts.localhostNodePorts && state.family === 'IPv4') out.add('127.0.0.1');
  return [...out].sort();
}

/** Service ports of `state` that the relay skips (SCTP), sorted by key. */
export function skippedPorts(state: DesiredState): SkippedPort[] {
  const out: SkippedPort[] = [];
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key);
    if (sp && sp.info.protocol === 'SCTP') {
      out.push({
        servicePortKey: key,
        serviceName: sp.info.nameString,
        reason: 'SCTP is not supported in userspace mode',
      });
    }
  }
  return out;
}

/**
 * One listener per (service port, address, protocol): the cluster IP, each external IP, each LB VIP
 * (all on the service port) and the NodePort on each node-port address. Cluster-IP traffic uses the
 * internal-policy set, the rest the external-policy set. When two service ports claim the same
 * protocol/address/port, the first in key order wins (the other is dropped from the plan).
 * Output is sorted by service port key, then kind, then address; deterministic for equal input.
 */
export function planListeners(state: DesiredState, opts: FamilyOptions): ListenerPlan[] {
  const out: ListenerPlan[] = [];
  const seen = new Set<string>();
  const nodeAddrs = nodePortListenAddresses(state, opts);
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key);
    if (!sp) continue;
    const info = sp.info;
    if (info.protocol === 'SCTP') continue;
    const protocol: RelayProtocol = info.protocol;
    const add = (kind: ListenerKind, address: string, port: number): void => {
      const id = `${protocol}/${joinHostPort(address, port)}`;
      if (seen.has(id) || address === '' || port <= 0) return;
      seen.add(id);
      const internal = kind === 'clusterIP';
      const endpoints = internal ? internalSet(sp) : externalSet(sp);
      out.push({
        id,
        servicePortKey: key,
        serviceName: info.nameString,
        protocol,
        kind,
        service: { address, port },
        listen: { address, port },
        balancerKey: `${key}|${internal ? 'internal' : 'external'}`,
        endpoints,
        stickyMaxAgeSeconds: info.stickyMaxAgeSeconds,
        noEndpoints: sp.hasAnyEndpoints ? 'drop' : 'reject',
      });
    };
    const group: [ListenerKind, string, number][] = [['clusterIP', info.clusterIP, info.port]];
    for (const ip of [...info.externalIPs].sort()) group.push(['externalIP', ip, info.port]);
    for (const ip of [...info.loadBalancerVIPs].sort()) group.push(['loadBalancer', ip, info.port]);
    if (info.nodePort > 0) for (const ip of nodeAddrs) group.push(['nodePort', ip, info.nodePort]);
    group.sort((a, b) => KIND_ORDER[a[0]] - KIND_ORDER[b[0]]);
    for (const [kind, address, port] of group) add(kind, address, port);
  }
  return out;
}

function pad(cells: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return cells.map((row) =>
    row
      .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The listener table for `kube-proxy render --proxy-mode userspace`: one section per family
 * ("# userspace IPv4"), columns SERVICE-PORT, PROTO, LISTEN, KIND, ENDPOINTS, AFFINITY, then any
 * skipped ports as comments. `options[i]` belongs to `states[i]`. Byte-identical for equal input.
 */
export function renderUserspace(states: readonly DesiredState[], options: readonly FamilyOptions[]): string {
  const lines: string[] = [];
  states.forEach((state, i) => {
    const opts = options[i] ?? options.find((o) => o.family === state.family);
    if (!opts) throw new RangeError(`renderUserspace: no FamilyOptions for family ${state.family}`);
    lines.push(`# userspace ${state.family}`);
    const rows: string[][] = [['SERVICE-PORT', 'PROTO', 'LISTEN', 'KIND', 'ENDPOINTS', 'AFFINITY']];
    for (const p of planListeners(state, opts)) {
      const eps =
        p.endpoints.length > 0 ? p.endpoints.map((e) => e.endpoint).join(',') : `none (${p.noEndpoints})`;
      const aff = p.stickyMaxAgeSeconds > 0 ? `ClientIP ${p.stickyMaxAgeSeconds}s` : 'None';
      rows.push([p.serviceName, p.protocol, joinHostPort(p.listen.address, p.listen.port), p.kind, eps, aff]);
    }
    lines.push(...pad(rows));
    for (const s of skippedPorts(state)) lines.push(`# skipped ${s.serviceName}: ${s.reason}`);
  });
  return lines.join('\n') + '\n';
}
