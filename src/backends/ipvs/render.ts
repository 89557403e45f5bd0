/**
 * The pure IPVS renderer: DesiredState + FamilyOptions -> the whole IPVS-mode layout of one family
 * (addresses on kube-ipvs0, virtual and real servers, ipset contents, the constant iptables rules
 * that match those sets, sysctls), laid out as upstream pkg/proxy/ipvs syncProxyRules builds it
 * (upstream pkg/proxy/ipvs/proxier.go). No I/O, no clock, no logger. The layout is the sum of one fragment per service
 * port ({@link serviceFragment}) and the constant rules ({@link renderIPVSTables}), so the executor
 * can keep fragments between syncs and rebuild only the changed ones (incremental.ts); full syncs
 * diff the whole layout against what was read from the kernel. `render --proxy-mode ipvs` prints
 * {@link renderIPVSText}.
 */
import { canonicalIP, cidrContains, ipFamily, joinHostPort, parseCIDR } from '../../net/ip.js';
import type { IPFamily, Protocol } from '../../model/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState, Endpoint, ServicePortState } from '../../proxy/types.js';
import { localMatch, masqueradeMark } from '../common/iptables-match.js';
import * as N from './names.js';

/** One real server (an endpoint) of a virtual server; always masqueraded (-m). */
export interface RealServer {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
}

/** One IPVS virtual server: (protocol, address, port). */
export interface VirtualServer {
  /** `tcp 10.0.0.1:80` / `udp [fd00::1]:53`: unique per family. */
  readonly key: string;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  /** Persistence (ClientIP affinity) timeout in seconds; 0 = none. */
  readonly persistence: number;
  /** Sorted by `ip:port`. */
  readonly realServers: readonly RealServer[];
  /** `ns/svc:port` of the service port that owns it. */
  readonly service: string;
}

/** One ipset with its desired members. */
export interface IPSetContent {
  /** Family-specific name (KUBE-6-… for IPv6). */
  readonly name: string;
  readonly info: N.IPSetInfo;
  /** Sorted, in `ipset save` spelling. */
  readonly entries: readonly string[];
}

export interface Sysctl {
  /** Dotted name, e.g. `net.ipv4.vs.conntrack`. */
  readonly key: string;
  readonly value: string;
}

/** A service port left out because a field cannot be programmed safely. */
export interface SkippedServicePort {
  readonly service: string;
  readonly field: string;
  readonly value: string;
}

/** Everything one family's IPVS mode programs. */
export interface IPVSLayout {
  readonly family: IPFamily;
  /** Addresses bound to kube-ipvs0 (service VIPs), sorted. */
  readonly addresses: readonly string[];
  /** By key, inserted in sorted key order. */
  readonly virtualServers: ReadonlyMap<string, VirtualServer>;
  /** In upstream's set order. */
  readonly sets: readonly IPSetContent[];
  /** iptables-restore input for `*nat` … `COMMIT\n`, our chains only (use with --noflush). */
  readonly nat: string;
  /** iptables-restore input for `*filter` … `COMMIT\n`. */
  readonly filter: string;
  readonly sysctls: readonly Sysctl[];
  readonly skipped: readonly SkippedServicePort[];
}

const lower = (p: Protocol): 'tcp' | 'udp' | 'sctp' => p.toLowerCase() as 'tcp' | 'udp' | 'sctp';

/** The virtual server key for (protocol, address, port). */
export function vsKey(protocol: Protocol, address: string, port: number): string {
  return `${lower(protocol)} ${joinHostPort(address, port)}`;
}

/** Throws RangeError naming the value when `scheduler` is not one the kernel ships. */
export function assertScheduler(scheduler: string): void {
  if (!(N.SCHEDULERS as readonly string[]).includes(scheduler))
    throw new RangeError(
      `ipvs scheduler must be one of ${N.SCHEDULERS.join(', ')}; got ${JSON.stringify(scheduler)}`,
    );
}

/** Canonical IP of `family`, or undefined (an address of the other family or garbage). */
function famIP(ip: string, family: IPFamily): string | undefined {
  if (ipFamily(ip) !== family) return undefined;
  return canonicalIP(ip);
}

/** `ipset save` spelling of a CIDR member: network address, and no /32 (/128) suffix. */
function setNet(cidr: string, family: IPFamily): string | undefined {
  const c = parseCIDR(cidr);
  if (!c || c.family !== family) return undefined;
  const full = family === 'IPv4' ? 32 : 128;
  return c.prefix === full ? c.ip : c.text;
}

/** Upstream: use local endpoints when asked and there are some, otherwise the cluster endpoints (PR 97081). */
function realServersFor(sp: ServicePortState, onlyLocal: boolean): RealServer[] {
  const eps: readonly Endpoint[] =
    onlyLocal && sp.localEndpoints.length > 0 ? sp.localEndpoints : sp.clusterEndpoints;
  const seen = new Set<string>();
  const out: RealServer[] = [];
  for (const e of [...eps].sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0))) {
    if (seen.has(e.endpoint)) continue;
    seen.add(e.endpoint);
    out.push({ ip: canonicalIP(e.ip) ?? e.ip, port: e.port, weight: 1 });
  }
  return out;
}

/** What every service port's fragment depends on besides the port itself: fixed per family until the node's addresses change. */
export interface IPVSContext {
  readonly family: IPFamily;
  readonly scheduler: string;
  /** Node IPs of this family, canonical. */
  readonly nodeIPs: readonly string[];
  /**
   * Addresses NodePort virtual servers are created on: nodePortAddresses' matches; when it matches all,
   * every local address of the family but kube-ipvs0's (as upstream), or the node IPs when the local
   * addresses are not known (`kube-proxy render`).
   */
  readonly nodePortIPs: readonly string[];
}

/** One address on one of the machine's interfaces. */
export interface LocalAddress {
  readonly iface: string;
  readonly address: string;
}

/**
 * The local addresses of `family` a NodePort answers on when nodePortAddresses matches all, as
 * upstream's IPVS mode picks them: every interface but kube-ipvs0 (whose addresses are the Services'
 * own), without loopback and IPv6 link-local addresses. Canonical, sorted, no duplicates. Pure.
 */
export function nodePortLocalAddresses(addrs: readonly LocalAddress[], family: IPFamily): string[] {
  const out = new Set<string>();
  for (const a of addrs) {
    if (a.iface === N.DUMMY_DEVICE) continue;
    const ip = famIP(a.address.split('%')[0] ?? '', family);
    if (ip === undefined) continue;
    if (family === 'IPv4' ? ip.startsWith('127.') : ip === '::1' || /^fe[89ab][0-9a-f]:/i.test(ip)) continue;
    out.add(ip);
  }
  return [...out].sort();
}

/**
 * The context of `state` under `opts`; `localAddresses` (the machine's, see
 * {@link nodePortLocalAddresses}) decide NodePort addresses when nodePortAddresses matches all.
 * Throws RangeError on a bad scheduler.
 */
export function ipvsContext(
  state: Pick<DesiredState, 'family' | 'nodeIPs'>,
  opts: FamilyOptions,
  localAddresses?: readonly LocalAddress[],
): IPVSContext {
  const family = state.family;
  const scheduler = opts.ipvsScheduler === '' ? 'rr' : opts.ipvsScheduler;
  assertScheduler(scheduler);
  const nodeIPs = state.nodeIPs.map((ip) => famIP(ip, family)).filter((ip): ip is string => ip !== undefined);
  const all = localAddresses ? nodePortLocalAddresses(localAddresses, family) : nodeIPs;
  const nodePortIPs = (opts.nodePortAddresses.matchAll ? all : opts.nodePortAddresses.ips)
    .map((ip) => famIP(ip, family))
    .filter((ip): ip is string => ip !== undefined);
  return { family, scheduler, nodeIPs, nodePortIPs };
}

/**
 * What one service port contributes to the layout. Fragments add up: a virtual server claimed by
 * several service ports goes to the first in sorted key order, set entries and addresses are a union
 * (two service ports may share a VIP, a hairpin entry or a health check node port).
 */
export interface IPVSFragment {
  /** Virtual servers this port claims, each key once (the first claim within the port wins). */
  readonly vss: readonly VirtualServer[];
  /** `[set, entry]` with the set's IPv4 name; every bound address is also a KUBE-IPVS-IPS entry. May repeat. */
  readonly entries: readonly (readonly [string, string])[];
  /** KUBE-IPVS-OUT-FILTER rules (LB VIPs whose source ranges exclude the node). */
  readonly noNodeAccess: readonly string[];
  readonly skipped: readonly SkippedServicePort[];
}

const NO_STRINGS: readonly string[] = [];
const NO_SKIPS: readonly SkippedServicePort[] = [];

/** One service port's fragment. Pure: a function of `sp` and `ctx` only. */
export function serviceFragment(sp: ServicePortState, ctx: IPVSContext): IPVSFragment {
  const family = ctx.family;
  const info = sp.info;
  const skipped: SkippedServicePort[] = [];
  const cip = famIP(info.clusterIP, family);
  if (!cip) {
    skipped.push({ service: info.nameString, field: 'clusterIP', value: info.clusterIP });
    return { vss: [], entries: [], noNodeAccess: NO_STRINGS, skipped };
  }
  const p = lower(info.protocol);
  const entries: (readonly [string, string])[] = [];
  const vss: VirtualServer[] = [];
  let noNodeAccess: string[] | undefined;
  const persistence = info.stickyMaxAgeSeconds > 0 ? info.stickyMaxAgeSeconds : 0;
  const pushVS = (address: string, port: number, realServers: readonly RealServer[]): void => {
    const key = vsKey(info.protocol, address, port);
    // Two claims of one (ip, proto, port) within the port: the first wins, as a kernel VS is unique.
    for (const v of vss) if (v.key === key) return;
    vss.push({
      key,
      protocol: info.protocol,
      address,
      port,
      scheduler: ctx.scheduler,
      persistence,
      realServers,
      service: info.nameString,
    });
  };
  const ipPort = (ip: string): string => `${ip},${p}:${info.port}`;
  // Hairpin: a local endpoint reaching its own service must be masqueraded.
  for (const e of sp.endpoints) {
    if (!e.isLocal) continue;
    const ip = famIP(e.ip, family);
    if (ip) entries.push([N.LOOP_BACK, `${ip},${p}:${e.port},${ip}`]);
  }
  const internal = realServersFor(sp, info.internalPolicyLocal);
  const external =
    info.externalPolicyLocal === info.internalPolicyLocal
      ? internal
      : realServersFor(sp, info.externalPolicyLocal);

  entries.push([N.CLUSTER_IP, ipPort(cip)], [N.IPVS_IPS, cip]);
  pushVS(cip, info.port, internal);

  for (const raw of info.externalIPs) {
    const ip = famIP(raw, family);
    if (!ip) {
      skipped.push({ service: info.nameString, field: 'externalIPs', value: raw });
      continue;
    }
    entries.push(
      [info.externalPolicyLocal ? N.EXTERNAL_IP_LOCAL : N.EXTERNAL_IP, ipPort(ip)],
      [N.IPVS_IPS, ip],
    );
    pushVS(ip, info.port, external);
  }

  for (const raw of info.loadBalancerVIPs) {
    const ip = famIP(raw, family);
    if (!ip) {
      skipped.push({ service: info.nameString, field: 'loadBalancerVIPs', value: raw });
      continue;
    }
    entries.push([N.LOAD_BALANCER, ipPort(ip)]);
    if (info.externalPolicyLocal) entries.push([N.LOAD_BALANCER_LOCAL, ipPort(ip)]);
    if (info.loadBalancerSourceRanges.length > 0) {
      entries.push([N.LOAD_BALANCER_FW, ipPort(ip)]);
      let allowFromNode = false;
      for (const src of info.loadBalancerSourceRanges) {
        const net = setNet(src, family);
        if (!net) {
          skipped.push({ service: info.nameString, field: 'loadBalancerSourceRanges', value: src });
          continue;
        }
        entries.push([N.LOAD_BALANCER_SOURCE_CIDR, `${ipPort(ip)},${net}`]);
        const c = parseCIDR(src);
        if (c && ctx.nodeIPs.some((n) => cidrContains(c, n))) allowFromNode = true;
      }
      // Node-originated traffic to an LB VIP leaves with the VIP as source (it is bound to kube-ipvs0).
      if (allowFromNode) entries.push([N.LOAD_BALANCER_SOURCE_IP, `${ipPort(ip)},${ip}`]);
      else
        (noNodeAccess ??= []).push(
          `-A ${N.KUBE_IPVS_OUT_FILTER} -s ${ip} -m ipvs --vaddr ${ip} --vproto ${p} --vport ${info.port} -j DROP`,
        );
    }
    entries.push([N.IPVS_IPS, ip]);
    pushVS(ip, info.port, external);
  }

  if (info.nodePort !== 0) {
    if (info.protocol === 'SCTP') {
      for (const ip of ctx.nodePortIPs) {
        entries.push([N.NODE_PORT_SCTP, `${ip},sctp:${info.nodePort}`]);
        if (info.externalPolicyLocal) entries.push([N.NODE_PORT_LOCAL_SCTP, `${ip},sctp:${info.nodePort}`]);
      }
    } else {
      const [all, local] =
        info.protocol === 'TCP'
          ? [N.NODE_PORT_TCP, N.NODE_PORT_LOCAL_TCP]
          : [N.NODE_PORT_UDP, N.NODE_PORT_LOCAL_UDP];
      entries.push([all, String(info.nodePort)]);
      if (info.externalPolicyLocal) entries.push([local, String(info.nodePort)]);
    }
    for (const ip of ctx.nodePortIPs) pushVS(ip, info.nodePort, external);
  }
  if (info.healthCheckNodePort !== 0)
    entries.push([N.HEALTH_CHECK_NODE_PORT, String(info.healthCheckNodePort)]);
  return {
    vss,
    entries,
    noNodeAccess: noNodeAccess ?? NO_STRINGS,
    skipped: skipped.length ? skipped : NO_SKIPS,
  };
}

/**
 * Builds the whole layout of one family; `localAddresses` as in {@link ipvsContext}. Pure and
 * deterministic. Throws RangeError on a bad scheduler or mark bit.
 */
export function buildIPVSLayout(
  state: DesiredState,
  opts: FamilyOptions,
  localAddresses?: readonly LocalAddress[],
): IPVSLayout {
  const ctx = ipvsContext(state, opts, localAddresses);
  const frags: IPVSFragment[] = [];
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key);
    if (sp) frags.push(serviceFragment(sp, ctx));
  }
  return assembleIPVSLayout(ctx, opts, frags);
}

/**
 * The layout the fragments add up to, given in sorted service-port key order (the order decides
 * which port gets a virtual server two of them claim). Pure.
 */
export function assembleIPVSLayout(
  ctx: IPVSContext,
  opts: FamilyOptions,
  frags: Iterable<IPVSFragment>,
): IPVSLayout {
  const family = ctx.family;
  const members = new Map<string, Set<string>>(N.IPSETS.map((s) => [s.name, new Set<string>()]));
  const claimed = new Map<string, VirtualServer>();
  const skipped: SkippedServicePort[] = [];
  const noNodeAccess: string[] = [];
  for (const f of frags) {
    for (const [set, entry] of f.entries) members.get(set)!.add(entry);
    for (const vs of f.vss) if (!claimed.has(vs.key)) claimed.set(vs.key, vs);
    if (f.noNodeAccess.length) noNodeAccess.push(...f.noNodeAccess);
    if (f.skipped.length) skipped.push(...f.skipped);
  }
  const sets: IPSetContent[] = N.IPSETS.map((info) => ({
    name: N.familySetName(info.name, family),
    info,
    entries: [...members.get(info.name)!].sort(),
  }));
  const { nat, filter } = renderIPVSTables(family, opts, (name) => members.get(name)!.size > 0, noNodeAccess);
  const virtualServers = new Map<string, VirtualServer>();
  for (const key of [...claimed.keys()].sort()) virtualServers.set(key, claimed.get(key)!);
  return {
    family,
    addresses: [...members.get(N.IPVS_IPS)!].sort(compareIP),
    virtualServers,
    sets,
    nat,
    filter,
    sysctls: ipvsSysctls(family, opts),
    skipped,
  };
}

/**
 * The constant iptables rules of IPVS mode (upstream writeIptablesRules): `*nat` and `*filter`
 * restore input. They depend on the options, on which sets are non-empty and on the LB VIPs the
 * node may not reach (`noNodeAccess`, in sorted service-port order). Throws RangeError on a bad mark bit.
 */
export function renderIPVSTables(
  family: IPFamily,
  opts: FamilyOptions,
  nonEmpty: (set: string) => boolean,
  noNodeAccess: readonly string[],
): { nat: string; filter: string } {
  const mark = masqueradeMark(opts.masqueradeBit);
  const setName = (name: string): string => N.familySetName(name, family);
  const comment = (name: string): string => `"${N.IPSETS.find((s) => s.name === name)!.comment}"`;

  const nat: string[] = ['*nat', ...N.NAT_CHAINS.map((c) => `:${c} - [0:0]`)];
  nat.push(`-A ${N.KUBE_SERVICES} -s ${family === 'IPv6' ? '::1/128' : '127.0.0.0/8'} -j RETURN`);
  const filter: string[] = ['*filter', ...N.FILTER_CHAINS.map((c) => `:${c} - [0:0]`)];
  for (const r of SET_RULES) {
    if (!nonEmpty(r.set)) continue;
    const proto = r.proto ? ` -p ${r.proto}` : '';
    const line = `-A ${r.from}${proto} -m comment --comment ${comment(r.set)} -m set --match-set ${setName(r.set)} ${r.match} -j ${r.to}`;
    (r.table === 'nat' ? nat : filter).push(line);
  }
  if (nonEmpty(N.CLUSTER_IP)) {
    const base = `-A ${N.KUBE_SERVICES} -m comment --comment ${comment(N.CLUSTER_IP)} -m set --match-set ${setName(N.CLUSTER_IP)}`;
    const notLocal = localMatch(opts)?.ifNotLocal;
    if (opts.masqueradeAll) nat.push(`${base} dst,dst -j ${N.KUBE_MARK_MASQ}`);
    else if (notLocal) nat.push(`${base} dst,dst ${notLocal} -j ${N.KUBE_MARK_MASQ}`);
    // Without a detector, masquerade node-originated traffic whose source is a VIP (bound to kube-ipvs0).
    else nat.push(`${base} src,dst -j ${N.KUBE_MARK_MASQ}`);
  }
  const externalAccept = (base: string): void => {
    nat.push(`${base} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
    nat.push(`${base} -m addrtype --dst-type LOCAL -j ACCEPT`);
  };
  if (nonEmpty(N.EXTERNAL_IP)) {
    const base = `-A ${N.KUBE_SERVICES} -m comment --comment ${comment(N.EXTERNAL_IP)} -m set --match-set ${setName(N.EXTERNAL_IP)} dst,dst`;
    nat.push(`${base} -j ${N.KUBE_MARK_MASQ}`);
    externalAccept(base);
  }
  if (nonEmpty(N.EXTERNAL_IP_LOCAL))
    externalAccept(
      `-A ${N.KUBE_SERVICES} -m comment --comment ${comment(N.EXTERNAL_IP_LOCAL)} -m set --match-set ${setName(N.EXTERNAL_IP_LOCAL)} dst,dst`,
    );
  nat.push(`-A ${N.KUBE_SERVICES} -m addrtype --dst-type LOCAL -j ${N.KUBE_NODE_PORT}`);
  nat.push(`-A ${N.KUBE_LOAD_BALANCER} -j ${N.KUBE_MARK_MASQ}`);
  filter.push(`-A ${N.KUBE_SOURCE_RANGES_FIREWALL} -j DROP`);
  filter.push(...noNodeAccess);
  // IPVS traffic must not be dropped by later rules: accept it at the end of KUBE-SERVICES.
  for (const s of [N.CLUSTER_IP, N.LOAD_BALANCER])
    if (nonEmpty(s)) nat.push(`-A ${N.KUBE_SERVICES} -m set --match-set ${setName(s)} dst,dst -j ACCEPT`);
  filter.push(
    `-A ${N.KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
  );
  filter.push(
    `-A ${N.KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );
  filter.push(
    `-A ${N.KUBE_NODE_PORT} -m comment --comment ${comment(N.HEALTH_CHECK_NODE_PORT)} -m set --match-set ${setName(N.HEALTH_CHECK_NODE_PORT)} dst -j ACCEPT`,
  );
  // Service VIPs are local addresses: without this, any host port would answer on them (issue #72236).
  for (const [s, m] of [
    [N.LOAD_BALANCER, 'dst,dst'],
    [N.CLUSTER_IP, 'dst,dst'],
    [N.EXTERNAL_IP, 'dst,dst'],
    [N.EXTERNAL_IP_LOCAL, 'dst,dst'],
    [N.HEALTH_CHECK_NODE_PORT, 'dst'],
  ] as const)
    filter.push(`-A ${N.KUBE_IPVS_FILTER} -m set --match-set ${setName(s)} ${m} -j RETURN`);
  filter.push(
    `-A ${N.KUBE_IPVS_FILTER} -m conntrack --ctstate NEW -m set --match-set ${setName(N.IPVS_IPS)} dst -j REJECT`,
  );
  nat.push(`-A ${N.KUBE_POSTROUTING} -m mark ! --mark ${mark}/${mark} -j RETURN`);
  nat.push(`-A ${N.KUBE_POSTROUTING} -j MARK --xor-mark ${mark}`);
  nat.push(
    `-A ${N.KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${opts.randomFully ? ' --random-fully' : ''}`,
  );
  nat.push(`-A ${N.KUBE_MARK_MASQ} -j MARK --or-mark ${mark}`);
  nat.push('COMMIT');
  filter.push('COMMIT');
  return { nat: nat.join('\n') + '\n', filter: filter.join('\n') + '\n' };
}

/** The sysctls IPVS mode sets for `family`. */
export function ipvsSysctls(family: IPFamily, opts: FamilyOptions): Sysctl[] {
  const sysctls: Sysctl[] = [];
  if (family === 'IPv4') {
    sysctls.push({ key: 'net.ipv4.vs.conntrack', value: '1' });
    sysctls.push({ key: 'net.ipv4.vs.expire_nodest_conn', value: '1' });
    sysctls.push({ key: 'net.ipv4.vs.expire_quiescent_template', value: '1' });
    sysctls.push({ key: 'net.ipv4.ip_forward', value: '1' });
    if (opts.ipvsStrictARP) {
      sysctls.push({ key: 'net.ipv4.conf.all.arp_ignore', value: '1' });
      sysctls.push({ key: 'net.ipv4.conf.all.arp_announce', value: '2' });
    }
  } else {
    // The vs.* sysctls live under net.ipv4 for both families; the IPv4 proxier sets them.
    sysctls.push({ key: 'net.ipv6.conf.all.forwarding', value: '1' });
  }
  return sysctls;
}

/** Upstream ipsetWithIptablesChain: a set matched in `from`, jumping to `to`, when the set is non-empty. */
const SET_RULES: readonly {
  set: string;
  table: 'nat' | 'filter';
  from: string;
  to: string;
  match: string;
  proto?: string;
}[] = [
  { set: N.LOOP_BACK, table: 'nat', from: N.KUBE_POSTROUTING, to: 'MASQUERADE', match: 'dst,dst,src' },
  { set: N.LOAD_BALANCER, table: 'nat', from: N.KUBE_SERVICES, to: N.KUBE_LOAD_BALANCER, match: 'dst,dst' },
  { set: N.LOAD_BALANCER_LOCAL, table: 'nat', from: N.KUBE_LOAD_BALANCER, to: 'RETURN', match: 'dst,dst' },
  {
    set: N.NODE_PORT_LOCAL_TCP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst',
    proto: 'tcp',
  },
  {
    set: N.NODE_PORT_TCP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: N.KUBE_MARK_MASQ,
    match: 'dst',
    proto: 'tcp',
  },
  {
    set: N.NODE_PORT_LOCAL_UDP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst',
    proto: 'udp',
  },
  {
    set: N.NODE_PORT_UDP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: N.KUBE_MARK_MASQ,
    match: 'dst',
    proto: 'udp',
  },
  {
    set: N.NODE_PORT_LOCAL_SCTP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: 'RETURN',
    match: 'dst,dst',
    proto: 'sctp',
  },
  {
    set: N.NODE_PORT_SCTP,
    table: 'nat',
    from: N.KUBE_NODE_PORT,
    to: N.KUBE_MARK_MASQ,
    match: 'dst,dst',
    proto: 'sctp',
  },
  {
    set: N.LOAD_BALANCER_FW,
    table: 'filter',
    from: N.KUBE_PROXY_FIREWALL,
    to: N.KUBE_SOURCE_RANGES_FIREWALL,
    match: 'dst,dst',
  },
  {
    set: N.LOAD_BALANCER_SOURCE_CIDR,
    table: 'filter',
    from: N.KUBE_SOURCE_RANGES_FIREWALL,
    to: 'RETURN',
    match: 'dst,dst,src',
  },
  {
    set: N.LOAD_BALANCER_SOURCE_IP,
    table: 'filter',
    from: N.KUBE_SOURCE_RANGES_FIREWALL,
    to: 'RETURN',
    match: 'dst,dst,src',
  },
];

/** Numeric-ish order for IPs (stable, family-aware enough for display). */
function compareIP(a: string, b: string): number {
  const ka = ipSortKey(a);
  const kb = ipSortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function ipSortKey(ip: string): string {
  if (ip.includes(':')) return `6${ip}`;
  return `4${ip
    .split('.')
    .map((o) => o.padStart(3, '0'))
    .join('.')}`;
}

// ------------------------------------------------------------------------------------------------
// Text forms (the executor feeds these to the tools; `render` prints them).

/** `ipvsadm` service-address option for a VS. */
export function vsArgs(vs: Pick<VirtualServer, 'protocol' | 'address' | 'port'>): string {
  const flag = vs.protocol === 'TCP' ? '-t' : vs.protocol === 'UDP' ? '-u' : '--sctp-service';
  return `${flag} ${joinHostPort(vs.address, vs.port)}`;
}

/** `-A` line (ipvsadm-restore syntax) creating `vs`; `-E` with `edit`. */
export function vsLine(vs: VirtualServer, edit = false): string {
  return `${edit ? '-E' : '-A'} ${vsArgs(vs)} -s ${vs.scheduler}${vs.persistence > 0 ? ` -p ${vs.persistence}` : ''}`;
}

/** `-a` / `-e` line adding or editing a masqueraded real server. */
export function rsLine(
  vs: Pick<VirtualServer, 'protocol' | 'address' | 'port'>,
  rs: RealServer,
  edit = false,
): string {
  return `${edit ? '-e' : '-a'} ${vsArgs(vs)} -r ${joinHostPort(rs.ip, rs.port)} -m -w ${rs.weight}`;
}

/** `ipset restore` create line. */
export function setCreateLine(set: Pick<IPSetContent, 'name' | 'info'>, family: IPFamily): string {
  if (set.info.type === 'bitmap:port') return `create ${set.name} bitmap:port range 0-65535`;
  return `create ${set.name} ${set.info.type} family ${family === 'IPv6' ? 'inet6' : 'inet'} hashsize 1024 maxelem 65536`;
}

/** ipvsadm-restore input creating every virtual and real server (what a fresh proxier programs). */
export function ipvsRestoreText(layout: IPVSLayout): string {
  const out: string[] = [];
  for (const vs of layout.virtualServers.values()) {
    out.push(vsLine(vs));
    for (const rs of vs.realServers) out.push(rsLine(vs, rs));
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** `ipset restore` input creating and filling every set. */
export function ipsetRestoreText(layout: IPVSLayout): string {
  const out: string[] = [];
  for (const s of layout.sets) {
    out.push(setCreateLine(s, layout.family));
    for (const e of s.entries) out.push(`add ${s.name} ${e}`);
  }
  return out.join('\n') + '\n';
}

/** `ip -batch` input creating kube-ipvs0 and binding every address. */
export function linkBatchText(layout: IPVSLayout): string {
  const bits = layout.family === 'IPv6' ? 128 : 32;
  return (
    [
      `link add ${N.DUMMY_DEVICE} type dummy`,
      ...layout.addresses.map((a) => `address add ${a}/${bits} dev ${N.DUMMY_DEVICE}`),
    ].join('\n') + '\n'
  );
}

/**
 * The `render --proxy-mode ipvs` text of one family: `# family:`, then `# link`, `# sysctl`,
 * `# ipset`, `# ipvs` and `# iptables` sections, each exactly what a fresh proxier's full sync feeds
 * to `ip -batch`, sysctl, `ipset restore`, `ipvsadm-restore` and `iptables-restore --noflush`.
 */
export function renderIPVSFamily(layout: IPVSLayout): string {
  let text = `# family: ${layout.family.toLowerCase()}\n`;
  for (const s of layout.skipped)
    text += `# skipped: ${JSON.stringify(s.service)}: ${s.field} ${JSON.stringify(s.value)}\n`;
  text += '# link\n' + linkBatchText(layout);
  text += '# sysctl\n' + layout.sysctls.map((s) => `${s.key} = ${s.value}\n`).join('');
  text += '# ipset\n' + ipsetRestoreText(layout);
  text += '# ipvs\n' + ipvsRestoreText(layout);
  text += '# iptables\n' + layout.nat + layout.filter;
  return text;
}

/**
 * `kube-proxy render --proxy-mode ipvs`: every family's section. Byte-identical for the same input.
 * NodePorts are on the node IPs when nodePortAddresses matches all, unless `localAddresses` (the
 * machine's, as the proxier reads them at each sync) are given: explain passes them, to agree with
 * the daemon.
 */
export function renderIPVSText(
  states: readonly DesiredState[],
  options: readonly FamilyOptions[],
  localAddresses?: readonly LocalAddress[],
): string {
  return states
    .map((state) => {
      const opts = options.find((o) => o.family === state.family);
      if (!opts) throw new RangeError(`ipvs render: no options for family ${state.family}`);
      return renderIPVSFamily(buildIPVSLayout(state, opts, localAddresses));
    })
    .join('');
}
