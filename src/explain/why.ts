/**
 * The "why" of an explain: what the desired state says about a packet, independent of any rules.
 * Which service port and frontend its destination names, which traffic-policy branch applies to
 * its source, the LoadBalancer source-range verdict, and for every endpoint of the service port
 * whether it is kept and, if not, why (upstream CategorizeEndpoints' reasons). Pure.
 */
import { frontendIPs } from '../proxy/service-port.js';
import { cidrContains, isLoopback, parseCIDR } from '../net/ip.js';
import type { ProxyMode } from '../model/proxy-mode.js';
import { nodePortIPs } from '../backends/nftables/render-layout.js';
import { ipvsContext, type LocalAddress } from '../backends/ipvs/render.js';
import { nodePortListenAddresses } from '../backends/userspace/render.js';
import { topologyModeFromHints } from '../proxy/topology.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState, Endpoint, ServicePortState } from '../proxy/types.js';
import type { Packet, SourceKind } from './packet.js';

export type Frontend = 'clusterIP' | 'nodePort' | 'externalIP' | 'loadBalancer';

/** An endpoint the desired state does not send this connection to, and why. */
export interface Excluded {
  readonly endpoint: string;
  readonly reason: string;
}

/** What the desired state says about one packet. */
export interface Why {
  readonly service: ServicePortState | undefined;
  readonly frontend: Frontend | undefined;
  /** One sentence per decision, in the order the data path takes them. */
  readonly reasons: readonly string[];
  /** The endpoints the state allows for this packet (empty when it is dropped or rejected). */
  readonly kept: readonly Endpoint[];
  readonly excluded: readonly Excluded[];
  /** What the rules should do, by the state alone (for `--live` comparisons). */
  readonly expected: 'DNAT' | 'REJECT' | 'DROP' | 'ACCEPT' | 'NONE';
  readonly masquerade: boolean;
}

function inAny(cidrs: readonly string[], ip: string): boolean {
  return cidrs.some((c) => {
    const p = parseCIDR(c);
    try {
      return p !== undefined && cidrContains(p, ip);
    } catch {
      return false;
    }
  });
}

/** Whether `ip` takes NodePort traffic in `mode` (the renderers' node-port address rules). */
function isNodePortAddress(
  mode: ProxyMode,
  state: DesiredState,
  opts: FamilyOptions,
  ip: string,
  isLocal: (ip: string) => boolean,
  localAddresses?: readonly LocalAddress[],
): boolean {
  if (mode === 'nftables') {
    const ips = nodePortIPs(state, opts);
    return ips === 'all' ? isLocal(ip) && !isLoopback(ip) : ips.includes(ip);
  }
  // IPVS: a virtual server per node-port address, picked as the renderer does: when
  // nodePortAddresses matches all, the machine's addresses but kube-ipvs0's (the node IPs when they
  // are not known, as in `kube-proxy render`).
  if (mode === 'ipvs') return ipvsContext(state, opts, localAddresses).nodePortIPs.includes(ip);
  if (mode === 'userspace') return nodePortListenAddresses(state, opts).includes(ip);
  const npa = opts.nodePortAddresses;
  if (isLoopback(ip) && (state.family === 'IPv6' || !opts.localhostNodePorts || mode !== 'iptables'))
    return false;
  return npa.matchAll ? isLocal(ip) : npa.ips.includes(ip);
}

/** Finds the service port and frontend `p` is addressed to, as the dispatch rules look them up. */
export function findFrontend(
  mode: ProxyMode,
  state: DesiredState,
  opts: FamilyOptions,
  p: Packet,
  isLocal: (ip: string) => boolean,
  localAddresses?: readonly LocalAddress[],
): { sp: ServicePortState; frontend: Frontend } | undefined {
  let byNodePort: ServicePortState | undefined;
  const np = isNodePortAddress(mode, state, opts, p.dst, isLocal, localAddresses);
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key)!;
    const i = sp.info;
    if (i.protocol !== p.protocol) continue;
    if (i.port === p.dstPort) {
      if (i.clusterIP === p.dst) return { sp, frontend: 'clusterIP' };
      if (i.externalIPs.includes(p.dst)) return { sp, frontend: 'externalIP' };
      if (i.loadBalancerVIPs.includes(p.dst)) return { sp, frontend: 'loadBalancer' };
    }
    if (np && i.nodePort !== 0 && i.nodePort === p.dstPort) byNodePort ??= sp;
  }
  return byNodePort ? { sp: byNodePort, frontend: 'nodePort' } : undefined;
}

/** Why `ep` is not among `kept` for this service port. */
function exclusionReason(
  ep: Endpoint,
  sp: ServicePortState,
  state: DesiredState,
  local: boolean,
  kept: readonly Endpoint[],
): string {
  if (local && !ep.isLocal) return `not on this node (${ep.nodeName || 'no node'}) under a Local policy`;
  if (!ep.ready && !(ep.serving && ep.terminating)) return 'not ready';
  if (!ep.ready) return 'terminating while ready ones exist';
  if (!local) {
    const mode = topologyModeFromHints(sp.endpoints, state.nodeName, state.nodeZone);
    const by =
      sp.info.trafficDistribution !== ''
        ? `trafficDistribution=${sp.info.trafficDistribution}`
        : 'topology-aware hints';
    if (mode === 'PreferSameZone')
      return `another zone (${ep.zone || 'unknown'}) under ${by}: hinted for ${[...(ep.zoneHints ?? [])].sort().join(',') || 'none'}, this node is in ${state.nodeZone}`;
    if (mode === 'PreferSameNode') return `another node (${ep.nodeName || 'unknown'}) under ${by}`;
  }
  return kept.length > 0 ? 'not selected' : 'not usable';
}

/**
 * What the desired state says about `p` from `source`. `srcIsPod` is the local-traffic detector's
 * verdict on the source; `mode` picks the node-port address rules of that mode.
 */
export function explainFromState(
  mode: ProxyMode,
  state: DesiredState,
  opts: FamilyOptions,
  p: Packet,
  source: SourceKind,
  isLocal: (ip: string) => boolean,
  localAddresses?: readonly LocalAddress[],
): Why {
  if (mode === 'ipvs') return explainIPVS(state, opts, p, source, isLocal, localAddresses);
  if (mode === 'userspace') return explainUserspace(state, opts, p, source, isLocal);
  const found = findFrontend(mode, state, opts, p, isLocal);
  const srcText = sourceText(source);
  if (!found) {
    const reasons = [
      `no service port of this family has ${p.protocol} ${p.dst}:${p.dstPort} as a frontend; source is ${srcText}`,
    ];
    let expected: Why['expected'] = 'NONE';
    let hc: ServicePortState | undefined;
    let cip: ServicePortState | undefined;
    for (const key of state.sortedKeys) {
      const sp = state.services.get(key)!;
      if (sp.info.clusterIP === p.dst) cip ??= sp;
      if (p.protocol === 'TCP' && sp.info.healthCheckNodePort === p.dstPort && isLocal(p.dst)) hc ??= sp;
    }
    if (hc && mode === 'iptables')
      reasons.push(
        `${p.dstPort} is the healthCheckNodePort of ${hc.info.serviceName}: accepted for its health check server`,
      );
    if (cip) {
      if (mode === 'nftables') {
        expected = 'REJECT';
        reasons.push(
          `${p.dst} is the cluster IP of ${cip.info.serviceName}, which has no such port: rejected`,
        );
      } else reasons.push(`${p.dst} is the cluster IP of ${cip.info.serviceName}, which has no such port`);
    }
    return {
      service: undefined,
      frontend: undefined,
      reasons,
      kept: [],
      excluded: [],
      expected,
      masquerade: false,
    };
  }
  const { sp, frontend } = found;
  const i = sp.info;
  const reasons: string[] = [
    `${p.protocol} ${p.dst}:${p.dstPort} is the ${frontend} frontend of service port ${i.nameString}; source ${p.src} is ${srcText}`,
  ];
  const external = frontend !== 'clusterIP';
  let local = false;
  let masquerade = false;
  if (!external) {
    local = i.internalPolicyLocal;
    reasons.push(
      local
        ? 'internalTrafficPolicy=Local: only endpoints on this node'
        : 'internalTrafficPolicy=Cluster: every usable endpoint (after topology)',
    );
    masquerade = internalMasquerade(opts, source, reasons);
  } else if (!i.externalPolicyLocal) {
    masquerade = true;
    reasons.push('externalTrafficPolicy=Cluster: masqueraded, every usable endpoint (after topology)');
  } else if (source === 'pod' && opts.localDetector.kind !== 'none') {
    reasons.push('externalTrafficPolicy=Local, but pod traffic short-circuits to the cluster endpoints');
  } else if (source === 'node') {
    masquerade = true;
    reasons.push(
      'externalTrafficPolicy=Local, but traffic from the node is masqueraded and goes to the cluster endpoints',
    );
  } else {
    local = true;
    reasons.push('externalTrafficPolicy=Local: only endpoints on this node, the client address is kept');
  }

  // iptables filters by source range only while there are endpoints (its KUBE-FW chain needs some);
  // nftables checks before DNAT whatever the endpoints (upstream's firewall-ips element is always there).
  if (
    frontend === 'loadBalancer' &&
    i.loadBalancerSourceRanges.length > 0 &&
    (sp.hasEndpoints || mode === 'nftables')
  ) {
    const nodeIP = state.nodeIPs[0];
    const ok =
      inAny(i.loadBalancerSourceRanges, p.src) ||
      (nodeIP !== undefined &&
        inAny(i.loadBalancerSourceRanges, nodeIP) &&
        i.loadBalancerVIPs.includes(p.src));
    if (!ok) {
      return sourceRangeDenied(sp, frontend, reasons, p.src);
    }
    reasons.push(`loadBalancerSourceRanges ${i.loadBalancerSourceRanges.join(',')} admit ${p.src}`);
  }

  const kept = local ? sp.localEndpoints : sp.clusterEndpoints;
  const keptSet = new Set(kept);
  const excluded = sp.endpoints
    .filter((e) => !keptSet.has(e))
    .map((e) => ({ endpoint: e.endpoint, reason: exclusionReason(e, sp, state, local, kept) }));
  let expected: Why['expected'] = 'DNAT';
  if (
    kept.length === 0 &&
    mode === 'iptables' &&
    source === 'node' &&
    (frontend === 'externalIP' || frontend === 'loadBalancer')
  ) {
    // KUBE-EXTERNAL-SERVICES hangs off INPUT and FORWARD only (upstream); the node's own packet to a
    // non-local external address passes OUTPUT and leaves.
    expected = 'NONE';
    reasons.push(
      `no ${sp.hasEndpoints ? 'local ' : ''}endpoints, but iptables mode filters external IPs and load balancer IPs only for traffic arriving at the node: the node's own connection passes untouched`,
    );
  } else if (!sp.hasEndpoints) {
    expected = 'REJECT';
    reasons.push('the service port has no usable endpoints: rejected');
  } else if (kept.length === 0) {
    expected = 'DROP';
    reasons.push('no local endpoints under the Local policy: dropped');
  }
  // Hairpin: a backend reaching itself through the service is masqueraded so the reply returns.
  if (expected === 'DNAT' && kept.some((e) => e.ip === p.src) && !masquerade) {
    reasons.push('the client is one of the endpoints: a hairpin connection to itself is masqueraded');
  }
  return {
    service: sp,
    frontend,
    reasons,
    kept: expected === 'DNAT' ? kept : [],
    excluded,
    expected,
    masquerade: expected === 'DNAT' && masquerade,
  };
}

/** The answer when loadBalancerSourceRanges do not admit `src`: dropped, every endpoint excluded. */
function sourceRangeDenied(sp: ServicePortState, frontend: Frontend, reasons: string[], src: string): Why {
  reasons.push(
    `loadBalancerSourceRanges ${sp.info.loadBalancerSourceRanges.join(',')} do not admit ${src}: dropped`,
  );
  return {
    service: sp,
    frontend,
    reasons,
    kept: [],
    excluded: sp.endpoints.map((e) => ({ endpoint: e.endpoint, reason: 'source range denies the client' })),
    expected: 'DROP',
    masquerade: false,
  };
}

/** Whether cluster-internal traffic from `source` is masqueraded (masqueradeAll, or not from a local pod); says why. */
function internalMasquerade(opts: FamilyOptions, source: SourceKind, reasons: string[]): boolean {
  if (opts.masqueradeAll) {
    reasons.push('masqueradeAll: the connection is masqueraded');
    return true;
  }
  if (source !== 'pod' && opts.localDetector.kind !== 'none') {
    reasons.push('the source is not a local pod: masqueraded (the backend sees a node address)');
    return true;
  }
  return false;
}

function sourceText(source: SourceKind): string {
  return source === 'node'
    ? 'the node itself'
    : source === 'pod'
      ? 'a local pod (local-traffic detector)'
      : 'outside the node';
}

function noFrontend(p: Packet, source: SourceKind): string {
  return `no service port of this family has ${p.protocol} ${p.dst}:${p.dstPort} as a frontend; source is ${sourceText(source)}`;
}

const NOTHING = {
  service: undefined,
  frontend: undefined,
  kept: [],
  excluded: [],
  masquerade: false,
} as const;

/** Every address IPVS mode binds to kube-ipvs0 for `state` (cluster, external and LB IPs). */
export function ipvsServiceAddresses(state: DesiredState): Set<string> {
  const out = new Set<string>();
  for (const sp of state.services.values()) {
    for (const ip of frontendIPs(sp.info)) out.add(ip);
  }
  return out;
}

function unique(eps: readonly Endpoint[]): Endpoint[] {
  const seen = new Set<string>();
  return eps.filter((e) => !seen.has(e.endpoint) && seen.add(e.endpoint));
}

/**
 * IPVS mode (upstream pkg/proxy/ipvs): one virtual server per frontend address, whatever the source;
 * a Local policy with no endpoint on this node falls back to the cluster endpoints; the *-LOCAL sets
 * skip the masquerade mark; source ranges are checked in filter INPUT/FORWARD whatever the endpoints.
 */
function explainIPVS(
  state: DesiredState,
  opts: FamilyOptions,
  p: Packet,
  source: SourceKind,
  isLocal: (ip: string) => boolean,
  localAddresses?: readonly LocalAddress[],
): Why {
  const found = findFrontend('ipvs', state, opts, p, isLocal, localAddresses);
  if (!found) {
    const reasons = [noFrontend(p, source)];
    let expected: Why['expected'] = 'NONE';
    const hc = [...state.services.values()].find((sp) => sp.info.healthCheckNodePort === p.dstPort);
    if (hc && isLocal(p.dst)) {
      expected = 'ACCEPT';
      reasons.push(
        `${p.dstPort} is the healthCheckNodePort of ${hc.info.serviceName}: accepted for its health check server`,
      );
    } else if (ipvsServiceAddresses(state).has(p.dst)) {
      expected = 'REJECT';
      reasons.push(
        `${p.dst} is a service address bound to kube-ipvs0 with no such ${p.protocol} port: KUBE-IPVS-FILTER rejects it`,
      );
    }
    return { ...NOTHING, reasons, expected };
  }
  const { sp, frontend } = found;
  const i = sp.info;
  const reasons = [
    `${p.protocol} ${p.dst}:${p.dstPort} is the ${frontend} frontend of service port ${i.nameString} (IPVS virtual server); source ${p.src} is ${sourceText(source)}`,
  ];
  const external = frontend !== 'clusterIP';
  const policy = external ? 'externalTrafficPolicy' : 'internalTrafficPolicy';
  const policyLocal = external ? i.externalPolicyLocal : i.internalPolicyLocal;
  const local = policyLocal && sp.localEndpoints.length > 0;
  if (!policyLocal)
    reasons.push(`${policy}=Cluster: every usable endpoint (after topology) is a real server`);
  else if (local) reasons.push(`${policy}=Local: the real servers are the endpoints on this node`);
  else
    reasons.push(
      `${policy}=Local but no usable endpoint is on this node: IPVS mode falls back to the cluster endpoints`,
    );
  if (external && policyLocal && source !== 'outside')
    reasons.push(
      `traffic from ${source === 'pod' ? 'a local pod' : 'the node'} takes the same virtual server (IPVS mode has no short-circuit to the cluster endpoints)`,
    );
  let masquerade = false;
  if (!external) {
    masquerade = internalMasquerade(opts, source, reasons);
  } else if (!i.externalPolicyLocal) {
    masquerade = true;
    reasons.push('externalTrafficPolicy=Cluster: masqueraded');
  } else reasons.push('externalTrafficPolicy=Local: not masqueraded, the client address is kept');

  if (frontend === 'loadBalancer' && i.loadBalancerSourceRanges.length > 0) {
    const nodeAllowed = state.nodeIPs.some((n) => inAny(i.loadBalancerSourceRanges, n));
    // The node's own connection passes filter OUTPUT only: KUBE-IPVS-OUT-FILTER drops it when its
    // source is the VIP itself and no node IP is in the ranges.
    const ok =
      source === 'node'
        ? p.src !== p.dst || nodeAllowed
        : inAny(i.loadBalancerSourceRanges, p.src) || (nodeAllowed && p.src === p.dst);
    if (!ok) {
      return sourceRangeDenied(sp, frontend, reasons, p.src);
    }
    reasons.push(
      source === 'node'
        ? `loadBalancerSourceRanges ${i.loadBalancerSourceRanges.join(',')} are checked in filter INPUT and FORWARD only: the node's own connection from ${p.src} passes`
        : `loadBalancerSourceRanges ${i.loadBalancerSourceRanges.join(',')} admit ${p.src}`,
    );
  }
  const kept = unique(local ? sp.localEndpoints : sp.clusterEndpoints);
  const keptSet = new Set(kept.map((e) => e.endpoint));
  const excluded = sp.endpoints
    .filter((e) => !keptSet.has(e.endpoint))
    .map((e) => ({ endpoint: e.endpoint, reason: exclusionReason(e, sp, state, local, kept) }));
  if (i.stickyMaxAgeSeconds > 0)
    reasons.push(
      `ClientIP affinity is IPVS persistence (${i.stickyMaxAgeSeconds}s); affinity entries never match a NEW connection: every real server is listed`,
    );
  if (kept.length === 0) {
    reasons.push('the virtual server has no real servers: IPVS answers ICMP port unreachable (rejected)');
    return { service: sp, frontend, reasons, kept: [], excluded, expected: 'REJECT', masquerade: false };
  }
  reasons.push(`scheduler ${opts.ipvsScheduler || 'rr'} picks one of ${kept.length} real server(s)`);
  // KUBE-LOOP-BACK holds ip,proto:port,ip of every local endpoint of every service port.
  const loopBack = (e: Endpoint): boolean =>
    [...state.services.values()].some(
      (o) =>
        o.info.protocol === i.protocol &&
        o.endpoints.some((x) => x.isLocal && x.ip === e.ip && x.port === e.port),
    );
  if (kept.some((e) => e.ip === p.src && loopBack(e)) && !masquerade) {
    masquerade = true;
    reasons.push('the client is one of the endpoints: KUBE-LOOP-BACK masquerades the hairpin connection');
  }
  return { service: sp, frontend, reasons, kept, excluded, expected: 'DNAT', masquerade };
}

/**
 * Userspace mode: the relay's listener on the frontend address takes the connection and opens its
 * own to an endpoint of the policy set (internal for the cluster IP, external for the rest),
 * whatever the source. It does not filter by loadBalancerSourceRanges, and carries no SCTP.
 */
function explainUserspace(
  state: DesiredState,
  opts: FamilyOptions,
  p: Packet,
  source: SourceKind,
  isLocal: (ip: string) => boolean,
): Why {
  const found = findFrontend('userspace', state, opts, p, isLocal);
  if (!found) return { ...NOTHING, reasons: [noFrontend(p, source)], expected: 'NONE' };
  const { sp, frontend } = found;
  const i = sp.info;
  const reasons = [
    `${p.protocol} ${p.dst}:${p.dstPort} is the ${frontend} frontend of service port ${i.nameString} (a relay listener); source ${p.src} is ${sourceText(source)}`,
  ];
  if (i.protocol === 'SCTP') {
    reasons.push('SCTP is not supported in userspace mode: no listener');
    return { ...NOTHING, reasons, expected: 'NONE' };
  }
  const external = frontend !== 'clusterIP';
  const policy = external ? 'externalTrafficPolicy' : 'internalTrafficPolicy';
  const local = external ? i.externalPolicyLocal : i.internalPolicyLocal;
  reasons.push(
    local
      ? `${policy}=Local: the balancer holds only endpoints on this node`
      : `${policy}=Cluster: the balancer holds every usable endpoint (after topology)`,
  );
  if (frontend === 'loadBalancer' && i.loadBalancerSourceRanges.length > 0)
    reasons.push('userspace mode does not filter by loadBalancerSourceRanges');
  const kept = local ? sp.localEndpoints : sp.clusterEndpoints;
  const keptSet = new Set(kept);
  const excluded = sp.endpoints
    .filter((e) => !keptSet.has(e))
    .map((e) => ({ endpoint: e.endpoint, reason: exclusionReason(e, sp, state, local, kept) }));
  if (kept.length === 0) {
    const tcp = p.protocol === 'TCP';
    reasons.push(
      `the listener has no usable endpoint: the relay ${tcp ? 'resets the TCP connection (rejected)' : 'drops the datagram'}`,
    );
    return {
      service: sp,
      frontend,
      reasons,
      kept: [],
      excluded,
      expected: tcp ? 'REJECT' : 'DROP',
      masquerade: false,
    };
  }
  if (i.stickyMaxAgeSeconds > 0)
    reasons.push(
      `ClientIP affinity (${i.stickyMaxAgeSeconds}s) needs an entry from an earlier connection: a NEW one can get any endpoint`,
    );
  reasons.push(
    `round robin picks one of ${kept.length} endpoint(s) in rotation order; the relay connects from a node address`,
  );
  return { service: sp, frontend, reasons, kept, excluded, expected: 'DNAT', masquerade: true };
}
