/**
 * The pure half of UDP conntrack cleanup (upstream pkg/proxy/conntrack/cleanup.go):
 * given the desired state and the UDP flows in the conntrack table, which entries to delete.
 * Shared by every kernel mode (iptables, nftables, ipvs); conntrack.ts runs the tool.
 */
import type { DesiredState } from '../../proxy/types.js';
import { frontendIPs } from '../../proxy/service-port.js';

/** One UDP conntrack entry, as `conntrack -L -p udp` prints it. */
export interface UdpFlow {
  readonly origSrc: string;
  readonly origDst: string;
  readonly origSport: number;
  readonly origDport: number;
  /** Who answers: the DNATed endpoint, or the service IP itself when the packet was not DNATed. */
  readonly replySrc: string;
}

/** Delete entries matching all the given fields (`conntrack -D -p udp ...`; TCP when `protocol` says so). */
export interface FlowFilter {
  /** Default 'udp'. */
  readonly protocol?: 'udp' | 'tcp';
  readonly origDst?: string;
  readonly origDport?: number;
  readonly replySrc?: string;
  /** TCP only: the conntrack state, e.g. SYN_SENT. */
  readonly state?: 'SYN_SENT';
}

export interface ConntrackPlan {
  /** Whether upstream would run the cleanup at all after this sync. */
  readonly required: boolean;
  /** Filters to delete, deduplicated, in a stable order. */
  readonly deletions: readonly FlowFilter[];
}

/** Whether a sync must reconcile UDP conntrack: a change touched a service that has or had a UDP port. */
export function cleanupRequired(state: DesiredState): boolean {
  return state.conntrack.udpServicePorts.size > 0 || state.conntrack.deletedUDPClusterIPs.size > 0;
}

/** `conntrack -D` arguments for a filter (family given by the caller as `-f ipv4|ipv6`). */
export function filterArgs(f: FlowFilter): string[] {
  const args = ['-p', f.protocol ?? 'udp'];
  if (f.origDst !== undefined) args.push('--orig-dst', f.origDst);
  if (f.origDport !== undefined) args.push('--dport', String(f.origDport));
  if (f.replySrc !== undefined) args.push('--reply-src', f.replySrc);
  if (f.state !== undefined) args.push('--state', f.state);
  return args;
}

const FIELD_RE = /(src|dst|sport|dport)=(\S+)/g;

/**
 * Parses `conntrack -L -p udp` output (one entry per line: the original tuple's src/dst/sport/dport,
 * then the reply tuple's), or `-p tcp` output with `protocol` 'tcp'. Lines without both tuples are
 * skipped.
 */
export function parseConntrackList(text: string, protocol: 'udp' | 'tcp' = 'udp'): UdpFlow[] {
  const flows: UdpFlow[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(protocol)) continue;
    const vals: Record<string, string[]> = { src: [], dst: [], sport: [], dport: [] };
    for (const m of line.matchAll(FIELD_RE)) vals[m[1]!]!.push(m[2]!);
    const [origSrc, replySrc] = vals.src!;
    const [origDst] = vals.dst!;
    const [sport] = vals.sport!;
    const [dport] = vals.dport!;
    if (
      origSrc === undefined ||
      replySrc === undefined ||
      origDst === undefined ||
      sport === undefined ||
      dport === undefined
    )
      continue;
    flows.push({ origSrc, origDst, origSport: Number(sport), origDport: Number(dport), replySrc });
  }
  return flows;
}

/**
 * What to delete after a successful sync:
 * - `conntrack -D -p udp --orig-dst IP` for every UDP cluster IP of a deleted service port;
 * - for every UDP service port: each flow to one of its service IPs on its port, or to its nodePort,
 *   whose reply source is not one of its serving endpoints (Ready, or Serving and Terminating): a
 *   removed endpoint, or the service IP itself when the flow was created while the service had no
 *   endpoints. A port without serving endpoints loses all its flows, so its REJECT applies to the
 *   next packet (upstream fixed the same gap in kubernetes#139629);
 * - every flow to a frontend a port no longer has (`goneUDPFrontends`: a deleted service's IPs and
 *   nodePort, a removed external IP) unless a live UDP port uses it now (kubernetes#141371).
 * Deletions are grouped by (orig dst, dport, reply src).
 * Returns required=false (and nothing to delete) when upstream would not run the cleanup.
 */
export function planConntrackCleanup(state: DesiredState, flows: readonly UdpFlow[]): ConntrackPlan {
  if (!cleanupRequired(state)) return { required: false, deletions: [] };
  const out = new Map<string, FlowFilter>();
  const add = (f: FlowFilter): void => {
    out.set(`${f.origDst ?? ''}|${f.origDport ?? ''}|${f.replySrc ?? ''}`, f);
  };
  const liveClusterIPs = new Set<string>();
  for (const sp of state.services.values())
    if (sp.info.protocol === 'UDP') liveClusterIPs.add(sp.info.clusterIP);
  for (const ip of state.conntrack.deletedUDPClusterIPs) {
    // Another UDP port of the same service may still use the IP; its flows are reconciled below instead.
    if (!liveClusterIPs.has(ip)) add({ origDst: ip });
  }

  // (service IP, port) and nodePort -> serving endpoint IPs.
  const byIPPort = new Map<string, ReadonlySet<string>>();
  const byNodePort = new Map<number, ReadonlySet<string>>();
  for (const sp of state.services.values()) {
    if (sp.info.protocol !== 'UDP') continue;
    const serving = new Set<string>();
    for (const ep of sp.endpoints) if (ep.ready || (ep.serving && ep.terminating)) serving.add(ep.ip);
    // No serving endpoint: the empty set still applies. A flow DNATed to a removed endpoint would
    // otherwise bypass the no-endpoints REJECT forever while a one-way sender keeps it alive
    // (kubernetes#139628).
    for (const ip of frontendIPs(sp.info)) byIPPort.set(`${ip}|${sp.info.port}`, serving);
    if (sp.info.nodePort !== 0) byNodePort.set(sp.info.nodePort, serving);
  }
  // Frontends a service port no longer has (deleted service, removed external IP, changed nodePort):
  // every flow to them is stale, unless a live UDP service port now uses the same frontend.
  const none: ReadonlySet<string> = new Set();
  for (const k of state.conntrack.goneUDPFrontends?.ipPorts ?? [])
    if (!byIPPort.has(k)) byIPPort.set(k, none);
  for (const np of state.conntrack.goneUDPFrontends?.nodePorts ?? [])
    if (!byNodePort.has(np)) byNodePort.set(np, none);
  for (const f of flows) {
    const serving = byIPPort.get(`${f.origDst}|${f.origDport}`);
    if (serving && !serving.has(f.replySrc)) {
      add({ origDst: f.origDst, origDport: f.origDport, replySrc: f.replySrc });
      continue;
    }
    const np = byNodePort.get(f.origDport);
    if (!serving && np && !np.has(f.replySrc))
      add({ origDst: f.origDst, origDport: f.origDport, replySrc: f.replySrc });
  }
  return { required: true, deletions: valuesByKey(out) };
}

/**
 * After a full sync, or one that gave a TCP frontend its first rules: the TCP flows stuck outside the rules. A SYN to a service frontend sent while the
 * node had no rules for it (before the first sync after boot, or after the tables were flushed)
 * leaves un-DNATed, and conntrack keeps its flow in SYN_SENT, un-NATed, for 120 s: the client's SYN
 * retransmissions (same tuple) match that flow and never meet the rules that now exist, so the
 * connection hangs until the client gives up. `flows` are the TCP flows in SYN_SENT (`conntrack -L -p
 * tcp --state SYN_SENT`); a flow is stuck when its reply source is its original destination (nobody
 * translated it) and that destination is a TCP frontend of the state (a cluster IP, external IP or
 * load-balancer IP on the port's port). One deletion per frontend; each also names the state and the
 * un-NATed reply, so a flow that the rules did translate is never touched. (Upstream leaves these
 * flows alone.)
 */
export function planStuckTCPSyns(state: DesiredState, flows: readonly UdpFlow[]): FlowFilter[] {
  // Nobody translated them; usually none, and then no service is looked at.
  const untranslated = flows.filter((f) => f.replySrc === f.origDst);
  if (untranslated.length === 0) return [];
  const frontends = new Set<string>();
  for (const sp of state.services.values())
    if (sp.info.protocol === 'TCP')
      for (const ip of frontendIPs(sp.info)) frontends.add(`${ip}|${sp.info.port}`);
  const out = new Map<string, FlowFilter>();
  for (const f of untranslated) {
    const k = `${f.origDst}|${f.origDport}`;
    if (!frontends.has(k) || out.has(k)) continue;
    out.set(k, {
      protocol: 'tcp',
      origDst: f.origDst,
      origDport: f.origDport,
      replySrc: f.origDst,
      state: 'SYN_SENT',
    });
  }
  return valuesByKey(out);
}

/** The values of `m` in the order of their keys. */
function valuesByKey<T>(m: ReadonlyMap<string, T>): T[] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}
