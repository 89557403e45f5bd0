/**
 * The nftables layout: what one family's `kube-proxy` table should contain, as data (chains with
 * their rules, sets and maps with their elements). Pure. Behaviour follows upstream's nftables mode
 * (upstream pkg/proxy/nftables/proxier.go); the shape is built for 10,000+ services (docs/nftables-layout.md):
 *  - dispatch through the shared verdict maps, as upstream;
 *  - endpoint choice by `numgen random mod N offset BASE` into ONE shared data map (slot -> ip . port),
 *    so there is no per-endpoint chain and no anonymous set per service (quadratic in the kernel);
 *  - hairpin masquerade by one postrouting rule on a set of (endpoint ip . endpoint ip);
 *  - LoadBalancerSourceRanges by one pre-DNAT rule on a concatenated interval set;
 *  - ClientIP affinity keeps upstream's per-endpoint chains and dynamic sets, for those services only.
 */
import type { FamilyOptions, LocalDetector } from '../../proxy/options.js';
import type { DesiredState, Endpoint, ServicePortState } from '../../proxy/types.js';
import { cidrContains, isLoopback, parseCIDR, type CIDR } from '../../net/ip.js';
import { endpointObjectNames, servicePortChainNames } from './names.js';
import { SlotAllocator } from './slots.js';

export const TABLE_NAME = 'kube-proxy';
export const TABLE_COMMENT = 'rules for kube-proxy';

/** A chain: `hook` is the base-chain spec ("type nat hook output priority dstnat ;") or undefined. */
export interface NftChain {
  readonly name: string;
  readonly hook?: string;
  readonly rules: readonly string[];
}

/** A named set or map: `spec` is the text inside the braces of `add set|map`. */
export interface NftSet {
  readonly name: string;
  readonly kind: 'set' | 'map';
  readonly spec: string;
}

/** One family's table content. Iteration order of every map is the script order. */
export interface NftLayout {
  /** nft family: "ip" or "ip6". */
  readonly family: 'ip' | 'ip6';
  readonly chains: ReadonlyMap<string, NftChain>;
  readonly sets: ReadonlyMap<string, NftSet>;
  /** set/map name -> element key -> value ("" for a set). Only sets the proxier owns the elements of. */
  readonly elements: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Service ports left out because a field could not be rendered safely (validated input has none). */
  readonly skipped: readonly { readonly service: string; readonly field: string; readonly value: string }[];
}

/** nft text characters allowed in a field that reaches the script (no spaces, quotes, braces, ';', '#'). */
const SAFE = /^[A-Za-z0-9._:/-]+$/;

class Builder {
  readonly chains = new Map<string, { name: string; hook?: string; rules: string[] }>();
  readonly sets = new Map<string, NftSet>();
  readonly elements = new Map<string, Map<string, string>>();

  chain(name: string, hook?: string): string[] {
    let c = this.chains.get(name);
    if (!c) this.chains.set(name, (c = hook === undefined ? { name, rules: [] } : { name, hook, rules: [] }));
    return c.rules;
  }
  set(name: string, kind: 'set' | 'map', spec: string): void {
    this.sets.set(name, { name, kind, spec });
    if (!this.elements.has(name) && !spec.includes('dynamic')) this.elements.set(name, new Map());
  }
  elem(set: string, key: string, value = ''): void {
    this.elements.get(set)!.set(key, value);
  }
}

function detectorRules(d: LocalDetector, ip: string): { ifLocal: string; ifNotLocal: string } | undefined {
  switch (d.kind) {
    case 'none':
      return undefined;
    case 'cidr': {
      if (d.cidrs.length === 0) return undefined;
      // One CIDR stays a literal (upstream's text); several go through the shared named set.
      const m = d.cidrs.length === 1 ? d.cidrs[0]! : '@pod-cidrs';
      return { ifLocal: `${ip} saddr ${m}`, ifNotLocal: `${ip} saddr != ${m}` };
    }
    case 'bridge':
      return { ifLocal: `iifname ${d.iface}`, ifNotLocal: `iifname != ${d.iface}` };
    case 'prefix':
      return { ifLocal: `iifname ${d.prefix}*`, ifNotLocal: `iifname != ${d.prefix}*` };
  }
}

/** Drops CIDRs contained in another one of the list: the interval set rejects overlaps. */
function disjointCIDRs(list: readonly CIDR[]): CIDR[] {
  const sorted = [...list].sort(
    (a, b) => a.prefix - b.prefix || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0),
  );
  const out: CIDR[] = [];
  for (const c of sorted) if (!out.some((o) => cidrContains(o, c.ip))) out.push(c);
  return out.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

function unsafeField(sp: ServicePortState): { field: string; value: string } | undefined {
  const i = sp.info;
  const pairs: [string, string][] = [
    ['namespace', i.name.namespace],
    ['name', i.name.name],
    ['port name', i.name.port === '' ? 'x' : i.name.port],
    ['clusterIP', i.clusterIP],
    ...i.externalIPs.map((v): [string, string] => ['externalIPs', v]),
    ...i.loadBalancerVIPs.map((v): [string, string] => ['loadBalancerVIPs', v]),
    ...i.loadBalancerSourceRanges.map((v): [string, string] => ['loadBalancerSourceRanges', v]),
    ...sp.endpoints.map((e): [string, string] => ['endpoint', e.ip]),
  ];
  for (const [field, value] of pairs) if (!SAFE.test(value)) return { field, value };
  for (const r of i.loadBalancerSourceRanges)
    if (!parseCIDR(r)) return { field: 'loadBalancerSourceRanges', value: r };
  for (const n of [i.port, i.nodePort, i.stickyMaxAgeSeconds, ...sp.endpoints.map((e) => e.port)])
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return { field: 'port', value: String(n) };
  return undefined;
}

function assertSafeOption(what: string, v: string): void {
  if (!SAFE.test(v)) throw new RangeError(`nftables: unsafe ${what} ${JSON.stringify(v)}`);
}

/**
 * The IPs NodePorts answer on, or 'all' for upstream's match-all form (every local address but
 * loopback). nftables mode defaults to the node's primary IP when nodePortAddresses was not given
 * (upstream server.go sets "primary" for this mode); FamilyOptions marks "not given" as matchAll
 * with no CIDRs, while an explicit zero CIDR keeps match-all.
 */
export function nodePortIPs(state: DesiredState, opts: FamilyOptions): readonly string[] | 'all' {
  const npa = opts.nodePortAddresses;
  if (npa.matchAll) {
    if (npa.cidrs.length > 0) return 'all';
    const primary = state.nodeIPs[0];
    return primary === undefined ? 'all' : [primary];
  }
  // Loopback never works for NodePorts in this mode (no route_localnet).
  return npa.ips.filter((ip) => !isLoopback(ip));
}

/** What every service fragment needs from the family-wide context. */
export interface LayoutContext {
  readonly v6: boolean;
  /** "ip" or "ip6": the nft family and the address match keyword. */
  readonly fam: 'ip' | 'ip6';
  readonly addrType: string;
  readonly masqueradeAll: boolean;
  readonly detector: { readonly ifLocal: string; readonly ifNotLocal: string } | undefined;
  readonly nodeIP: string | undefined;
}

/** One service port's share of the table: its own chains and sets, shared chains it needs, its elements. */
export interface ServiceFragment {
  readonly key: string;
  /** Chains only this service port uses (names are hashed from it). */
  readonly chains: readonly NftChain[];
  /** Chains shared by many service ports (the ClusterIP classes); identical content whoever builds them. */
  readonly sharedChains: readonly NftChain[];
  readonly sets: readonly NftSet[];
  /**
   * The elements as one flat list of triples: set, key, value, set, key, value, ... (a [set, key,
   * value] array per element costs 72 bytes more; at 50,000 services the fragments hold 600,000).
   */
  readonly elements: readonly string[];
  /** Slot blocks this fragment holds: [owner, endpoint count]. */
  readonly slotOwners: readonly (readonly [string, number])[];
  readonly skipped?: { readonly service: string; readonly field: string; readonly value: string };
}

/**
 * The family-wide part of the layout (base chains, static chains, every named set and map, the
 * node-port and pod-CIDR elements) and the context fragments are built with. Pure.
 */
export function layoutBase(
  state: DesiredState,
  opts: FamilyOptions,
): { ctx: LayoutContext; base: NftLayout } {
  const v6 = state.family === 'IPv6';
  const fam = v6 ? 'ip6' : 'ip';
  const ip = fam;
  const addrType = v6 ? 'ipv6_addr' : 'ipv4_addr';
  const loopback = v6 ? '::1' : '127.0.0.0/8';
  const mark = `0x${(1 << opts.masqueradeBit).toString(16).padStart(8, '0')}`;
  const b = new Builder();
  const detector = detectorRules(opts.localDetector, ip);
  if (opts.localDetector.kind === 'bridge') assertSafeOption('bridge interface', opts.localDetector.iface);
  if (opts.localDetector.kind === 'prefix') assertSafeOption('interface prefix', opts.localDetector.prefix);
  const podCIDRs = opts.localDetector.kind === 'cidr' ? opts.localDetector.cidrs : [];
  for (const c of podCIDRs) assertSafeOption('pod CIDR', c);
  for (const c of state.serviceCIDRs) assertSafeOption('service CIDR', c);
  const npIPs = nodePortIPs(state, opts);
  if (npIPs !== 'all') for (const x of npIPs) assertSafeOption('node port address', x);

  // Base chains (upstream's names, types, hooks and priorities; nft 1.0.6 accepts the symbolic
  // dstnat priority only on prerouting, so the output hooks say -110 / -100).
  const base = (name: string, type: string, hook: string, prio: string) =>
    b.chain(name, `type ${type} hook ${hook} priority ${prio} ;`);
  base('filter-prerouting-pre-dnat', 'filter', 'prerouting', 'dstnat - 10').push(
    'ct state new jump firewall-check',
  );
  base('filter-output-pre-dnat', 'filter', 'output', '-110').push('ct state new jump firewall-check');
  base('filter-input', 'filter', 'input', 'filter').push(
    'ct state new jump nodeport-endpoints-check',
    'ct state new jump service-endpoints-check',
  );
  base('filter-forward', 'filter', 'forward', 'filter').push(
    'ct state new jump service-endpoints-check',
    'ct state new jump cluster-ips-check',
  );
  base('filter-output', 'filter', 'output', 'filter').push(
    'ct state new jump service-endpoints-check',
    'ct state new jump cluster-ips-check',
  );
  base('nat-prerouting', 'nat', 'prerouting', 'dstnat').push('jump services');
  base('nat-output', 'nat', 'output', '-100').push('jump services');
  base('nat-postrouting', 'nat', 'postrouting', 'srcnat').push('jump masquerading');

  // Sets and maps.
  const svcKey = `${addrType} . inet_proto . inet_service`;
  b.set('cluster-ips', 'set', `type ${addrType} ; comment "Active ClusterIPs" ;`);
  if (npIPs !== 'all')
    b.set('nodeport-ips', 'set', `type ${addrType} ; comment "IPs that accept NodePort traffic" ;`);
  if (podCIDRs.length > 1)
    b.set('pod-cidrs', 'set', `type ${addrType} ; flags interval ; comment "Local pod CIDRs" ;`);
  b.set(
    'service-ips',
    'map',
    `type ${svcKey} : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ;`,
  );
  b.set(
    'service-nodeports',
    'map',
    `type inet_proto . inet_service : verdict ; comment "NodePort traffic" ;`,
  );
  b.set(
    'no-endpoint-services',
    'map',
    `type ${svcKey} : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ;`,
  );
  b.set(
    'no-endpoint-nodeports',
    'map',
    `type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ;`,
  );
  b.set('firewall-ips', 'set', `type ${svcKey} ; comment "LoadBalancer IPs with source ranges" ;`);
  b.set(
    'firewall-allow',
    'set',
    `type ${svcKey} . ${addrType} ; flags interval ; comment "LoadBalancer IP and source range pairs to accept" ;`,
  );
  // Maps are per protocol: nft 1.0.6 cannot re-read a `th dport` typeof map from the kernel when a
  // later transaction adds a rule using it ("conflicting protocols specified: tcp vs. th").
  for (const p of PROTOCOLS) {
    b.set(
      TARGET_MAPS[p]!.cluster,
      'map',
      `typeof ${ip} daddr . ${p} dport . numgen random mod 1 : ${ip} daddr . ${p} dport ; comment "cluster IP . port . slot -> ${p} DNAT destination" ;`,
    );
    b.set(
      TARGET_MAPS[p]!.endpoint,
      'map',
      `typeof numgen random mod 1 : ${ip} daddr . ${p} dport ; comment "endpoint slot -> ${p} DNAT destination" ;`,
    );
  }
  b.set(
    'endpoint-chains',
    'map',
    `typeof numgen random mod 1 : verdict ; comment "endpoint slot -> endpoint chain (ClientIP affinity)" ;`,
  );
  b.set(
    'endpoint-hairpin',
    'set',
    `type ${addrType} . ${addrType} ; comment "endpoint IP . same IP: a pod reaching itself through a service" ;`,
  );
  for (const c of podCIDRs.length > 1 ? disjointCIDRs(podCIDRs.map((c) => parseCIDR(c)!)) : [])
    b.elem('pod-cidrs', c.text);
  if (npIPs !== 'all') for (const x of npIPs) b.elem('nodeport-ips', x);

  // Regular static chains.
  b.chain('mark-for-masquerade').push(`meta mark set meta mark or ${mark}`);
  b.chain('masquerading').push(
    `ct status dnat ${ip} saddr . ${ip} daddr @endpoint-hairpin jump mark-for-masquerade`,
    `meta mark & ${mark} == 0x00000000 return`,
    `meta mark set meta mark xor ${mark}`,
    'masquerade fully-random',
  );
  const cip = b.chain('cluster-ips-check');
  cip.push(`${ip} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`);
  if (state.serviceCIDRs.length > 0) {
    const m =
      state.serviceCIDRs.length === 1 ? state.serviceCIDRs[0]! : `{ ${state.serviceCIDRs.join(', ')} }`;
    cip.push(`${ip} daddr ${m} drop comment "Drop traffic to unallocated ClusterIPs"`);
  }
  b.chain('reject-chain').push('reject');
  b.chain('service-endpoints-check').push(`${ip} daddr . meta l4proto . th dport vmap @no-endpoint-services`);
  b.chain('nodeport-endpoints-check').push(
    npIPs === 'all'
      ? `${ip} daddr != ${loopback} meta l4proto . th dport vmap @no-endpoint-nodeports`
      : `${ip} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
  );
  b.chain('firewall-check').push(
    `${ip} daddr . meta l4proto . th dport @firewall-ips ${ip} daddr . meta l4proto . th dport . ${ip} saddr != @firewall-allow drop`,
  );
  b.chain('services').push(
    `${ip} daddr . meta l4proto . th dport vmap @service-ips`,
    npIPs === 'all'
      ? `fib daddr type local ${ip} daddr != ${loopback} meta l4proto . th dport vmap @service-nodeports`
      : `${ip} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
  );

  const ctx: LayoutContext = {
    v6,
    fam,
    addrType,
    masqueradeAll: opts.masqueradeAll,
    detector,
    nodeIP: state.nodeIPs[0],
  };
  return { ctx, base: { family: fam, chains: b.chains, sets: b.sets, elements: b.elements, skipped: [] } };
}

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

/*
 * Memory: the proxier keeps every fragment (and its strings) between syncs, so what a fragment holds
 * is paid per service port for the life of the daemon. Strings built with `+` or a template are
 * ropes in V8 (a 32-byte header per concatenation, kept beside the flat copy once something reads
 * them): the element keys and values are built with `join`, which makes one flat string (40 vs 129
 * bytes for "172.30.1.5 . 80 . 0", bench/memory/strings.ts). Names that repeat for every service
 * (set names, the shared class chains and their verdicts) are one object each, not one per fragment.
 */
const cat = (...parts: (string | number)[]): string => parts.join('');

/** The per-protocol DNAT maps' names: one string object each, however many fragments name them. */
const TARGET_MAPS: Readonly<Record<string, { readonly cluster: string; readonly endpoint: string }>> =
  Object.fromEntries(
    PROTOCOLS.map((p) => [p, { cluster: `cluster-targets-${p}`, endpoint: `endpoint-targets-${p}` }]),
  );

/**
 * The shared ClusterIP class chains and their `goto` verdicts, one object per distinct content
 * (protocol, endpoint count and the masquerade rule); bounded: cleared when it passes 4096 entries.
 */
const CLASS_CHAINS = new Map<string, { readonly chain: NftChain; readonly verdict: string }>();
function classChain(proto: string, n: number, fam: string, masq: string | undefined) {
  const k = `${proto}\0${n}\0${fam}\0${masq ?? ''}`;
  let v = CLASS_CHAINS.get(k);
  if (v === undefined) {
    if (CLASS_CHAINS.size >= 4096) CLASS_CHAINS.clear();
    const name = clusterClassChain(proto, n);
    const rules: string[] = [];
    if (masq !== undefined) rules.push(masq);
    rules.push(
      cat(
        `meta l4proto ${proto} dnat ${fam} to ${fam} daddr . ${proto} dport . numgen random mod ${n} map @`,
        TARGET_MAPS[proto]!.cluster,
      ),
    );
    v = { chain: Object.freeze({ name, rules: Object.freeze(rules) }), verdict: cat('goto ', name) };
    CLASS_CHAINS.set(k, v);
  }
  return v;
}

/** Name of the shared ClusterIP chain for `n` endpoints of protocol `proto`. */
export function clusterClassChain(proto: string, n: number): string {
  return `cluster-${proto}-${n}`;
}

/**
 * The objects of one service port. ClusterIP traffic of a service without affinity goes to a shared
 * class chain (one per protocol and endpoint count) that DNATs through `cluster-targets-<proto>`,
 * keyed by the packet's own destination: no per-service chain at all. External traffic (NodePort,
 * LB, externalIPs) and ClientIP affinity keep per-service chains, as upstream.
 */
export function serviceFragment(
  sp: ServicePortState,
  ctx: LayoutContext,
  slots: SlotAllocator,
): ServiceFragment {
  const chains = new Map<string, string[]>();
  const sharedChains: NftChain[] = [];
  const sets: NftSet[] = [];
  const elements: string[] = [];
  const slotOwners: [string, number][] = [];
  const bad = unsafeField(sp);
  if (bad)
    return {
      key: sp.key,
      chains: [],
      sharedChains,
      sets,
      elements,
      slotOwners,
      skipped: { service: sp.info.nameString, ...bad },
    };

  const { fam, v6, addrType, detector } = ctx;
  const ip = fam;
  const info = sp.info;
  const proto = info.protocol.toLowerCase();
  const affinity = info.stickyMaxAgeSeconds > 0;
  const internalEndpoints = info.internalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints;
  // Hashing the names costs a sha256; the data-only ClusterIP path never needs them.
  const needNames =
    affinity ||
    sp.usesExternalTrafficChain ||
    info.externalIPs.length > 0 ||
    info.loadBalancerVIPs.length > 0 ||
    info.nodePort !== 0 ||
    internalEndpoints.length === 0;
  const names = needNames ? servicePortChainNames(info.name) : { service: '', local: '', external: '' };
  const internalChain = info.internalPolicyLocal ? names.local : names.service;
  const externalPolicyChain = info.externalPolicyLocal ? names.local : names.service;
  const noEpVerdict = !sp.hasEndpoints ? 'goto reject-chain' : 'drop';
  const svcElem = (addr: string) => cat(addr, ' . ', proto, ' . ', info.port);
  const elem = (set: string, key: string, value = '') => elements.push(set, key, value);
  const chain = (name: string) => {
    let r = chains.get(name);
    if (!r) chains.set(name, (r = []));
    return r;
  };
  const masqRule = () =>
    ctx.masqueradeAll
      ? `${ip} daddr ${info.clusterIP} jump mark-for-masquerade`
      : detector
        ? `${ip} daddr ${info.clusterIP} ${detector.ifNotLocal} jump mark-for-masquerade`
        : undefined;
  // Per-service chains that load-balance (external traffic, affinity), with their endpoint lists.
  const policyChains = new Map<string, readonly Endpoint[]>();

  elem('cluster-ips', info.clusterIP);
  if (sp.hasInternalEndpoints) {
    if (!affinity && internalEndpoints.length > 0) {
      // Data-only path: the class chain masquerades like upstream's first service-chain rule (it is
      // reached from cluster IP elements only, so `ip daddr CIP` holds) and picks by numgen.
      const n = internalEndpoints.length;
      const cls = classChain(
        proto,
        n,
        fam,
        ctx.masqueradeAll
          ? 'jump mark-for-masquerade'
          : detector
            ? `${detector.ifNotLocal} jump mark-for-masquerade`
            : undefined,
      );
      sharedChains.push(cls.chain);
      elem('service-ips', svcElem(info.clusterIP), cls.verdict);
      const targets = TARGET_MAPS[proto]!.cluster;
      internalEndpoints.forEach((e, i) =>
        elem(targets, cat(info.clusterIP, ' . ', info.port, ' . ', i), cat(e.ip, ' . ', e.port)),
      );
    } else {
      elem('service-ips', svcElem(info.clusterIP), `goto ${internalChain}`);
      policyChains.set(internalChain, internalEndpoints);
      const m = masqRule();
      if (m) chain(internalChain).push(m);
    }
  } else elem('no-endpoint-services', svcElem(info.clusterIP), noEpVerdict);

  for (const e of info.externalIPs) {
    if (sp.hasEndpoints) elem('service-ips', svcElem(e), `goto ${names.external}`);
    if (!sp.hasExternalEndpoints) elem('no-endpoint-services', svcElem(e), noEpVerdict);
  }
  const ranges = info.loadBalancerSourceRanges.map((r) => parseCIDR(r)!);
  for (const lb of info.loadBalancerVIPs) {
    if (sp.hasEndpoints) elem('service-ips', svcElem(lb), `goto ${names.external}`);
    if (ranges.length > 0) {
      // Upstream adds the firewall element whether or not there are endpoints.
      elem('firewall-ips', svcElem(lb));
      const allowed = [...ranges];
      // The node reaching its own LB VIP is seen with the VIP as source.
      if (ctx.nodeIP !== undefined && ranges.some((r) => cidrContains(r, ctx.nodeIP!)))
        for (const v of info.loadBalancerVIPs) allowed.push(parseCIDR(`${v}/${v6 ? 128 : 32}`)!);
      for (const c of disjointCIDRs(allowed)) elem('firewall-allow', `${svcElem(lb)} . ${c.text}`);
    }
    if (!sp.hasExternalEndpoints) elem('no-endpoint-services', svcElem(lb), noEpVerdict);
  }
  if (info.nodePort !== 0) {
    const k = `${proto} . ${info.nodePort}`;
    if (sp.hasEndpoints) elem('service-nodeports', k, `goto ${names.external}`);
    if (!sp.hasExternalEndpoints) elem('no-endpoint-nodeports', k, noEpVerdict);
  }

  if (sp.usesExternalTrafficChain) {
    const ext = chain(names.external);
    if (!info.externalPolicyLocal) ext.push('jump mark-for-masquerade');
    else {
      if (detector) ext.push(`${detector.ifLocal} goto ${names.service} comment "short-circuit pod traffic"`);
      ext.push('fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"');
      ext.push(`fib saddr type local goto ${names.service} comment "short-circuit local traffic"`);
      if (!policyChains.has(names.service)) policyChains.set(names.service, sp.clusterEndpoints);
    }
    if (sp.hasExternalEndpoints) {
      ext.push(`goto ${externalPolicyChain}`);
      if (!policyChains.has(externalPolicyChain))
        policyChains.set(
          externalPolicyChain,
          info.externalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints,
        );
    }
  }

  const endpointChains: [string, string[]][] = [];
  for (const name of [names.service, names.local]) {
    const eps = policyChains.get(name);
    if (eps === undefined) continue;
    const rules = chain(name);
    if (eps.length === 0) continue;
    const slot = slots.get(name, eps.length);
    slotOwners.push([name, eps.length]);
    const pick = `numgen random mod ${eps.length} offset ${slot.base}`;
    if (affinity) {
      const objs = eps.map((e) => endpointObjectNames(info.name, e.ip, e.port));
      objs.forEach((o) => rules.push(`${ip} saddr @${o.affinitySet} goto ${o.chain}`));
      rules.push(`${pick} vmap @endpoint-chains`);
      eps.forEach((e, i) => {
        const o = objs[i]!;
        elem('endpoint-chains', String(slot.base + i), `goto ${o.chain}`);
        if (!sets.some((s) => s.name === o.affinitySet))
          sets.push({
            name: o.affinitySet,
            kind: 'set',
            spec: `type ${addrType} ; flags dynamic,timeout ; timeout ${info.stickyMaxAgeSeconds}s ;`,
          });
        const target = v6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
        endpointChains.push([
          o.chain,
          [`update @${o.affinitySet} { ${ip} saddr }`, `meta l4proto ${proto} dnat ${fam} to ${target}`],
        ]);
      });
    } else {
      rules.push(`meta l4proto ${proto} dnat ${fam} to ${pick} map @endpoint-targets-${proto}`);
      const targets = TARGET_MAPS[proto]!.endpoint;
      eps.forEach((e, i) => elem(targets, String(slot.base + i), cat(e.ip, ' . ', e.port)));
    }
  }
  for (const [name, rules] of endpointChains) if (!chains.has(name)) chains.set(name, rules);
  for (const e of sp.allReachableEndpoints) elem('endpoint-hairpin', cat(e.ip, ' . ', e.ip));
  // Exact-size copies (a pushed-to array keeps spare capacity) and one shared empty list.
  return {
    key: sp.key,
    chains: chains.size === 0 ? NONE : [...chains].map(([name, rules]) => ({ name, rules })),
    sharedChains: sharedChains.length === 0 ? NONE : sharedChains.slice(),
    sets: sets.length === 0 ? NONE : sets,
    elements: elements.slice(),
    slotOwners: slotOwners.length === 0 ? NONE : slotOwners,
  };
}

const NONE: readonly never[] = Object.freeze([]);

/** Merges the base and the fragments into one layout (later fragments win on a key clash). */
export function assembleLayout(base: NftLayout, fragments: Iterable<ServiceFragment>): NftLayout {
  const chains = new Map(base.chains);
  const sets = new Map(base.sets);
  const elements = new Map([...base.elements].map(([k, v]) => [k, new Map(v)]));
  const skipped: { service: string; field: string; value: string }[] = [];
  for (const f of fragments) {
    if (f.skipped) skipped.push(f.skipped);
    for (const c of f.sharedChains) if (!chains.has(c.name)) chains.set(c.name, c);
    for (const c of f.chains) chains.set(c.name, c);
    for (const s of f.sets) sets.set(s.name, s);
    const el = f.elements;
    for (let i = 0; i < el.length; i += 3) elements.get(el[i]!)!.set(el[i + 1]!, el[i + 2]!);
  }
  return { family: base.family, chains, sets, elements, skipped };
}

/**
 * The endpoint counts `serviceFragment` asks slot blocks for, in its order, without building the
 * fragment: the per-service chains that load-balance (affinity, external traffic) with endpoints.
 * A render of part of a state reserves these for the service ports it leaves out, so every slot
 * number is the whole render's (see buildLayout's `whole`).
 */
export function slotDemand(sp: ServicePortState): number[] {
  if (unsafeField(sp)) return [];
  const info = sp.info;
  const affinity = info.stickyMaxAgeSeconds > 0;
  const internalEndpoints = info.internalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints;
  // Chains by role: 'service' and 'local', in the order serviceFragment walks them.
  const policy = new Map<'service' | 'local', readonly Endpoint[]>();
  if (sp.hasInternalEndpoints && (affinity || internalEndpoints.length === 0))
    policy.set(info.internalPolicyLocal ? 'local' : 'service', internalEndpoints);
  if (sp.usesExternalTrafficChain) {
    if (info.externalPolicyLocal && !policy.has('service')) policy.set('service', sp.clusterEndpoints);
    const ext = info.externalPolicyLocal ? 'local' : 'service';
    if (sp.hasExternalEndpoints && !policy.has(ext))
      policy.set(ext, info.externalPolicyLocal ? sp.localEndpoints : sp.clusterEndpoints);
  }
  const out: number[] = [];
  for (const role of ['service', 'local'] as const) {
    const n = policy.get(role)?.length ?? 0;
    if (n > 0) out.push(n);
  }
  return out;
}

/**
 * Builds one family's layout from the desired state. `slots` hands out endpoint slot numbers and
 * remembers them across builds (the proxier keeps one; render uses a fresh one, so the output is a
 * function of the input alone). With `whole` (a state `state` is part of; a fresh allocator), the
 * service ports of `whole` that `state` leaves out reserve their slot blocks in turn, so the part's
 * slot numbers are the whole render's.
 */
export function buildLayout(
  state: DesiredState,
  opts: FamilyOptions,
  slots: SlotAllocator = new SlotAllocator(),
  whole?: DesiredState,
): NftLayout {
  const { ctx, base } = layoutBase(state, opts);
  slots.begin();
  const frags: ServiceFragment[] = [];
  for (const key of (whole ?? state).sortedKeys) {
    const sp = state.services.get(key);
    if (sp) frags.push(serviceFragment(sp, ctx, slots));
    else {
      const other = whole?.services.get(key);
      if (other) slotDemand(other).forEach((n, i) => slots.get(`\u0000${key}\u0000${i}`, n));
    }
  }
  slots.end();
  return assembleLayout(base, frags);
}
