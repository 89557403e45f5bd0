/**
 * The pure iptables renderer: DesiredState + FamilyOptions -> iptables-restore input, laid out exactly
 * as upstream kube-proxy's syncProxyRules writes it (upstream pkg/proxy/iptables/proxier.go). No I/O, no clock, no logger:
 * everything the machine decides (nfacct counters, tcp_be_liberal, chains already in the kernel) comes
 * in through RenderMode.
 */
import { cidrContains, isLoopback, parseCIDR } from '../../net/ip.js';
import type { IPFamily } from '../../model/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState, Endpoint, ServicePortState } from '../../proxy/types.js';
import { endpointChainName, isServiceChainName, servicePortChainHash } from './hash.js';
import { chainContent, detach } from './chain-diff.js';
import { SAFE_FIELD, assertSafe, localMatch, masqueradeMark } from '../common/iptables-match.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain, duplicated by kube-proxy (never deleted by cleanup). */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';
/**
 * Empty chain the executor creates in mangle, nat and filter and monitors: when it disappears the
 * tables were flushed and a full sync is needed. Never written in the restore input.
 */
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';

/** nfacct counter names upstream uses (metrics.go). */
export const NFACCT_CT_STATE_INVALID = 'ct_state_invalid_dropped_pkts';
export const NFACCT_LOCALHOST_NODEPORTS = 'localhost_nps_accepted_pkts';

/** Top-level chains in the order upstream declares them (the order matters only for byte-compat). */
export const FILTER_TOP_CHAINS = [
  KUBE_SERVICES,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_PROXY_FIREWALL,
] as const;
export const NAT_TOP_CHAINS = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ] as const;

export type IPTablesTable = 'filter' | 'nat';
export type BuiltinChain = 'INPUT' | 'FORWARD' | 'OUTPUT' | 'PREROUTING' | 'POSTROUTING';

/** One jump from a built-in chain into a kube-proxy chain (upstream pkg/proxy/iptables/proxier.go). */
export interface JumpRule {
  readonly table: IPTablesTable;
  readonly chain: BuiltinChain;
  readonly target: string;
  /**
   * The rule spec as argv, everything after the chain name (the comment is one unquoted element),
   * ending in `-j target`: for `iptables -w -t T -C CHAIN ...args` then `-I CHAIN 1 ...args`.
   */
  readonly args: readonly string[];
  /** The same rule in iptables-restore syntax: `-A CHAIN ... -j TARGET`, comment quoted. */
  readonly rule: string;
  /** kubelet's KUBE-FIREWALL jumps: ensured like the others, but never removed by cleanup. */
  readonly kubeletOwned: boolean;
}

export interface RuleCount {
  /** Rules in the table after this sync (upstream sync_proxy_rules_iptables_total). */
  readonly total: number;
  /** Rules written by this restore (upstream sync_proxy_rules_iptables_last). */
  readonly written: number;
}

/** A service port skipped because one of its fields is unsafe to put in a rule (never expected after validation). */
export interface SkippedServicePort {
  readonly key: string;
  readonly field: string;
  readonly value: string;
}

/** What one iptables sync must apply for one family. */
export interface IPTablesPlan {
  readonly family: IPFamily;
  readonly full: boolean;
  /** `*filter` ... `COMMIT\n`: iptables-restore input for the filter table. */
  readonly filter: string;
  /** `*nat` ... `COMMIT\n`: iptables-restore input for the nat table. */
  readonly nat: string;
  /** filter + nat: feed to `iptables-restore --noflush --counters` (ip6tables-restore for IPv6). */
  readonly restore: string;
  /**
   * The same documents as lines without '\n' (chain declarations, then rules; no `*table`/COMMIT),
   * for callers that split them by chain (chain-diff.ts splitLines) rather than read the text. The
   * texts above are joined only when read: at 10,000 Services the nat one is ~18 MB.
   */
  readonly lines: Readonly<Record<IPTablesTable, readonly (readonly string[])[]>>;
  /** With mode.groupServiceChains: the nat service chains' rules, one content per chain (not in `lines`). */
  readonly serviceChainContents: ReadonlyMap<string, string>;
  /** With mode.settle: the service chains it settled (declared in `lines`, their rules left out). */
  readonly settledChains: ReadonlySet<string>;
  /**
   * Jumps to ensure in built-in chains, in upstream's ensure order; each is inserted at position 1 if
   * missing (so the last one ends up first). Only needed on full syncs; the chains they target must
   * exist first (`-N`, or after the restore, which declares every target but KUBE-FIREWALL on IPv6 /
   * without localhost NodePorts: the executor creates that one empty, as upstream's EnsureChain does).
   */
  readonly jumps: readonly JumpRule[];
  readonly ruleCounts: Readonly<Record<IPTablesTable, RuleCount>>;
  /** Every nat chain this sync keeps (top-level and per-service); others with service prefixes are stale. */
  readonly activeNatChains: ReadonlySet<string>;
  /** filter chains this sync declares. */
  readonly filterChains: readonly string[];
  /** Stale service chains flushed and deleted by this restore (from mode.existingNatChains). */
  readonly deletedChains: readonly string[];
  readonly largeClusterMode: boolean;
  /** Services whose internal / external traffic has no local endpoints (sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  readonly skipped: readonly SkippedServicePort[];
  readonly canaryChain: typeof KUBE_PROXY_CANARY;
}

/** Per-sync knobs that come from the machine or the runner, not from the configuration. */
export interface RenderMode {
  /** Full sync: write every service's chains. Partial: only services in state.changedServices. */
  readonly full: boolean;
  /**
   * nat chains the kernel has now (from iptables-save -t nat, see natChainsFromSave). When given, every
   * service chain among them that is not active is flushed and deleted. Omit to skip deletion (upstream
   * skips it in large clusters until syncPeriod has passed since the last cleanup).
   */
  readonly existingNatChains?: ReadonlySet<string>;
  /** Total endpoints above which comments are dropped from SVC/SVL->SEP and SEP rules. Default 1000. */
  readonly largeClusterThreshold?: number;
  /** 'production' prints the mark as Go's %#08x (0x00004000); 'upstream-test' as upstream's tests do (0x4000). */
  readonly markFormat?: 'production' | 'upstream-test';
  /** nfacct counters exist (both upstream counters); adds the `-m nfacct` matches. Default false. */
  readonly nfacct?: boolean;
  /**
   * For the proxier (it splits the output by chain, chain-diff.ts): each service port's own chains
   * (KUBE-SVC/SVL/EXT/FW/SEP) are joined into one content per chain as soon as that service port is
   * rendered (`serviceChainContents`), so the ~180,000 rule strings of 10,000 Services are never all
   * alive at once. The texts then list those chains' rules after the others, grouped by chain (the
   * same restore, in another order). Default false: document order, as upstream writes it.
   */
  readonly groupServiceChains?: boolean;
  /**
   * With groupServiceChains, for the proxier's full syncs over a programmed node: called with each
   * service chain and its content as soon as it is joined. When it returns true (the kernel already
   * holds exactly that chain, and the proxier has recorded it), the content is not kept: the chain
   * is listed in `settledChains` instead of `serviceChainContents`, and the texts lack its rules.
   * At 50,000 Services this is what keeps a full sync that rewrites nothing from holding ~120 MB of
   * contents it would only compare.
   */
  readonly settle?: (chain: string, content: string) => boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal != 0: omit the KUBE-FORWARD INVALID drop. Default false. */
  readonly conntrackTCPLiberal?: boolean;
}

/** Upstream's largeClusterEndpointsThreshold: above this many endpoints, SEP rules lose their comments. */
export const LARGE_CLUSTER_ENDPOINTS = 1000;
const DEFAULT_LARGE_CLUSTER_THRESHOLD = LARGE_CLUSTER_ENDPOINTS;

const probabilityCache: string[] = [];

/**
 * 1/k printed like Go's `%0.10f`: exact decimal expansion rounded half-to-even (JS toFixed rounds
 * exact ties up, which differs at k = 2048).
 */
export function probability(k: number): string {
  const cached = probabilityCache[k];
  if (cached !== undefined) return cached;
  const exact = (1 / k).toFixed(100);
  const dot = exact.indexOf('.');
  const intPart = exact.slice(0, dot);
  const head = exact.slice(dot + 1, dot + 11);
  const rest = exact.slice(dot + 11);
  let roundUp = false;
  if (rest[0] !== undefined && rest[0] > '5') roundUp = true;
  else if (rest[0] === '5') roundUp = /[1-9]/.test(rest.slice(1)) || Number(head[head.length - 1]) % 2 === 1;
  let digits = intPart + head;
  if (roundUp) digits = (BigInt(digits) + 1n).toString().padStart(digits.length, '0');
  const out = `${digits.slice(0, digits.length - 10)}.${digits.slice(-10)}`;
  probabilityCache[k] = out;
  return out;
}

/** Chain names declared in an iptables-save (or restore) text: the `:NAME POLICY [p:b]` lines. */
export function natChainsFromSave(saveText: string): Set<string> {
  const out = new Set<string>();
  for (const line of saveText.split('\n')) {
    if (line.startsWith(':')) {
      const sp = line.indexOf(' ');
      out.add(sp < 0 ? line.slice(1) : line.slice(1, sp));
    }
  }
  return out;
}

interface JumpSpec {
  readonly table: IPTablesTable;
  readonly target: string;
  readonly chain: BuiltinChain;
  readonly comment: string;
  readonly ctNew: boolean;
}

const JUMP_SPECS: readonly JumpSpec[] = [
  {
    table: 'filter',
    target: KUBE_EXTERNAL_SERVICES,
    chain: 'INPUT',
    comment: 'kubernetes externally-visible service portals',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_EXTERNAL_SERVICES,
    chain: 'FORWARD',
    comment: 'kubernetes externally-visible service portals',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_NODEPORTS,
    chain: 'INPUT',
    comment: 'kubernetes health check service ports',
    ctNew: false,
  },
  {
    table: 'filter',
    target: KUBE_SERVICES,
    chain: 'FORWARD',
    comment: 'kubernetes service portals',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_SERVICES,
    chain: 'OUTPUT',
    comment: 'kubernetes service portals',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_FORWARD,
    chain: 'FORWARD',
    comment: 'kubernetes forwarding rules',
    ctNew: false,
  },
  {
    table: 'filter',
    target: KUBE_PROXY_FIREWALL,
    chain: 'INPUT',
    comment: 'kubernetes load balancer firewall',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_PROXY_FIREWALL,
    chain: 'OUTPUT',
    comment: 'kubernetes load balancer firewall',
    ctNew: true,
  },
  {
    table: 'filter',
    target: KUBE_PROXY_FIREWALL,
    chain: 'FORWARD',
    comment: 'kubernetes load balancer firewall',
    ctNew: true,
  },
  {
    table: 'nat',
    target: KUBE_SERVICES,
    chain: 'OUTPUT',
    comment: 'kubernetes service portals',
    ctNew: false,
  },
  {
    table: 'nat',
    target: KUBE_SERVICES,
    chain: 'PREROUTING',
    comment: 'kubernetes service portals',
    ctNew: false,
  },
  {
    table: 'nat',
    target: KUBE_POSTROUTING,
    chain: 'POSTROUTING',
    comment: 'kubernetes postrouting rules',
    ctNew: false,
  },
  { table: 'filter', target: KUBE_FIREWALL, chain: 'INPUT', comment: '', ctNew: false },
  { table: 'filter', target: KUBE_FIREWALL, chain: 'OUTPUT', comment: '', ctNew: false },
];

function makeJump(s: JumpSpec): JumpRule {
  const args: string[] = [];
  const text: string[] = [`-A ${s.chain}`];
  if (s.ctNew) {
    args.push('-m', 'conntrack', '--ctstate', 'NEW');
    text.push('-m conntrack --ctstate NEW');
  }
  if (s.comment !== '') {
    args.push('-m', 'comment', '--comment', s.comment);
    text.push(`-m comment --comment "${s.comment}"`);
  }
  args.push('-j', s.target);
  text.push(`-j ${s.target}`);
  return {
    table: s.table,
    chain: s.chain,
    target: s.target,
    args,
    rule: text.join(' '),
    kubeletOwned: s.target === KUBE_FIREWALL,
  };
}

/** The jump rules (upstream pkg/proxy/iptables/proxier.go iptablesJumpChains + iptablesKubeletJumpChains), in ensure order. */
export const JUMP_RULES: readonly JumpRule[] = JUMP_SPECS.map(makeJump);

/** First unsafe field of a service port, or undefined: validated input never has one; this is a backstop. */
function unsafeField(sp: ServicePortState): { field: string; value: string } | undefined {
  const i = sp.info;
  const check: [string, string][] = [
    ['nameString', i.nameString],
    ['clusterIP', i.clusterIP],
    ...i.externalIPs.map((v): [string, string] => ['externalIPs', v]),
    ...i.loadBalancerVIPs.map((v): [string, string] => ['loadBalancerVIPs', v]),
    ...i.loadBalancerSourceRanges.map((v): [string, string] => ['loadBalancerSourceRanges', v]),
  ];
  for (const [field, value] of check) if (!SAFE_FIELD.test(value)) return { field, value };
  for (const ep of sp.endpoints) {
    if (!SAFE_FIELD.test(ep.endpoint)) return { field: 'endpoint', value: ep.endpoint };
    if (!SAFE_FIELD.test(ep.ip)) return { field: 'endpoint.ip', value: ep.ip };
  }
  for (const n of [i.port, i.nodePort, i.healthCheckNodePort, i.stickyMaxAgeSeconds]) {
    if (!Number.isInteger(n) || n < 0) return { field: 'port', value: String(n) };
  }
  for (const cidr of i.loadBalancerSourceRanges)
    if (!parseCIDR(cidr)) return { field: 'loadBalancerSourceRanges', value: cidr };
  return undefined;
}

function chainLine(name: string): string {
  return `:${name} - [0:0]`;
}

/** Accumulates lines; a discarding buffer only counts (upstream's DiscardLineBuffer). */
class Lines {
  readonly lines: string[] = [];
  count = 0;
  constructor(readonly keep: boolean) {}
  push(line: string): void {
    this.count++;
    if (!this.keep) return;
    // A rule built by a template literal is a rope of several string nodes; reading a character
    // flattens it into one flat string now, so the nodes die young instead of living (and being
    // promoted) until the whole table is joined: ~180,000 rules at 10,000 Services.
    line.charCodeAt(0);
    this.lines.push(line);
  }
}

/**
 * The nat rules with mode.groupServiceChains: a service chain's rules are held apart and joined into
 * one content per chain at flush() (after each service port); other rules are kept as lines.
 */
class GroupingLines extends Lines {
  readonly contents = new Map<string, string>();
  readonly settled = new Set<string>();
  private readonly open = new Map<string, string[]>();
  constructor(private readonly settle?: (chain: string, content: string) => boolean) {
    super(true);
  }
  override push(line: string): void {
    const sp = line.indexOf(' ', 3);
    const chain = line.startsWith('-A ') && sp > 0 ? line.slice(3, sp) : '';
    if (!isServiceChainName(chain)) {
      super.push(line);
      return;
    }
    this.count++;
    let list = this.open.get(chain);
    // The key outlives the sync's render (contents, the restores): a copy, not a slice of the line,
    // which would keep that whole rule line alive beside the joined content.
    if (!list) this.open.set(detach(chain), (list = []));
    list.push(line);
  }
  flush(): void {
    for (const [chain, list] of this.open) {
      const content = chainContent(list);
      if (this.settle?.(chain, content)) this.settled.add(chain);
      else this.contents.set(chain, content);
    }
    this.open.clear();
  }
}

/**
 * Renders one family's iptables-restore input. Deterministic: services in state.sortedKeys order,
 * endpoints in their (sorted) state order. Throws RangeError only for unusable options (mark bit,
 * detector interface name); a service port with an unsafe field is skipped and reported in `skipped`.
 */
export function renderIPTables(state: DesiredState, opts: FamilyOptions, mode: RenderMode): IPTablesPlan {
  const isIPv6 = state.family === 'IPv6';
  const mark = masqueradeMark(opts.masqueradeBit, mode.markFormat ?? 'production');
  const localhostNodePorts = opts.localhostNodePorts && !isIPv6;
  const nfacct = mode.nfacct ?? false;
  const detector = localMatch(opts);
  const nodeIP = state.nodeIPs[0];

  const filterChains = new Lines(true);
  const filterRules = new Lines(true);
  const natChains = new Lines(true);
  const natRules = mode.groupServiceChains ? new GroupingLines(mode.settle) : new Lines(true);
  const flushService = (): void => {
    if (natRules instanceof GroupingLines) natRules.flush();
  };
  const skippedChains = new Lines(false);
  const skippedRules = new Lines(false);

  for (const c of FILTER_TOP_CHAINS) filterChains.push(chainLine(c));
  for (const c of NAT_TOP_CHAINS) natChains.push(chainLine(c));

  natRules.push(`-A ${KUBE_POSTROUTING} -m mark ! --mark ${mark}/${mark} -j RETURN`);
  natRules.push(`-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${mark}`);
  natRules.push(
    `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${opts.randomFully ? ' --random-fully' : ''}`,
  );
  natRules.push(`-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${mark}`);

  const filterChainNames: string[] = [...FILTER_TOP_CHAINS];
  if (localhostNodePorts) {
    filterChains.push(chainLine(KUBE_FIREWALL));
    filterChainNames.push(KUBE_FIREWALL);
    filterRules.push(
      `-A ${KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    );
  }

  const active = new Set<string>(NAT_TOP_CHAINS);
  const skipped: SkippedServicePort[] = [];

  let totalEndpoints = 0;
  for (const key of state.sortedKeys) totalEndpoints += state.services.get(key)?.endpoints.length ?? 0;
  const largeClusterMode = totalEndpoints > (mode.largeClusterThreshold ?? DEFAULT_LARGE_CLUSTER_THRESHOLD);
  // In large clusters the per-endpoint comments are dropped: they are ~40% of the restore size.
  const svcComment = (text: string): string => (largeClusterMode ? '' : ` -m comment --comment ${text}`);

  let noLocalInternal = 0;
  let noLocalExternal = 0;

  for (const key of state.sortedKeys) {
    // The previous service port's chains are complete.
    flushService();
    const sp = state.services.get(key);
    if (!sp) continue;
    const bad = unsafeField(sp);
    if (bad) {
      skipped.push({ key, ...bad });
      continue;
    }
    const info = sp.info;
    const name = info.nameString;
    const proto = info.protocol.toLowerCase();
    const hash = servicePortChainHash(name, proto);
    const svcChain = `KUBE-SVC-${hash}`;
    const svlChain = `KUBE-SVL-${hash}`;
    const extChain = `KUBE-EXT-${hash}`;
    const fwChain = `KUBE-FW-${hash}`;
    const matchProto = `-m ${proto} -p ${proto}`;
    // An endpoint's chain name is needed up to three times (SVC, SVL, SEP); hash it once.
    const sepNames = new Map<string, string>();
    const sepOf = (ep: Endpoint): string => {
      let n = sepNames.get(ep.endpoint);
      if (n === undefined) sepNames.set(ep.endpoint, (n = endpointChainName(name, proto, ep.endpoint)));
      return n;
    };

    const hasEndpoints = sp.hasEndpoints;
    const usesClusterPolicyChain = sp.clusterEndpoints.length > 0 && info.usesClusterEndpoints;
    const usesLocalPolicyChain = sp.localEndpoints.length > 0 && info.usesLocalEndpoints;
    const internalChain = info.internalPolicyLocal ? svlChain : svcChain;
    const externalPolicyChain = info.externalPolicyLocal ? svlChain : svcChain;
    const hasInternalEndpoints = sp.hasInternalEndpoints;
    const hasExternalEndpoints = sp.hasExternalEndpoints;
    const usesExternalTrafficChain = sp.usesExternalTrafficChain;
    const usesFWChain =
      hasEndpoints && info.loadBalancerVIPs.length > 0 && info.loadBalancerSourceRanges.length > 0;
    const lbChain = usesFWChain ? fwChain : extChain;

    let internalFilterTarget = '';
    let internalFilterComment = '';
    let externalFilterTarget = '';
    let externalFilterComment = '';
    if (!hasEndpoints) {
      internalFilterTarget = externalFilterTarget = 'REJECT';
      internalFilterComment = externalFilterComment = `"${name} has no endpoints"`;
    } else {
      if (!hasInternalEndpoints) {
        internalFilterTarget = 'DROP';
        internalFilterComment = `"${name} has no local endpoints"`;
        noLocalInternal++;
      }
      if (!hasExternalEndpoints) {
        externalFilterTarget = 'DROP';
        externalFilterComment = `"${name} has no local endpoints"`;
        noLocalExternal++;
      }
    }

    const dport = `--dport ${info.port}`;
    if (hasInternalEndpoints) {
      natRules.push(
        `-A ${KUBE_SERVICES} -m comment --comment "${name} cluster IP" ${matchProto} -d ${info.clusterIP} ${dport} -j ${internalChain}`,
      );
    } else {
      filterRules.push(
        `-A ${KUBE_SERVICES} -m comment --comment ${internalFilterComment} ${matchProto} -d ${info.clusterIP} ${dport} -j ${internalFilterTarget}`,
      );
    }

    for (const ip of info.externalIPs) {
      if (hasEndpoints) {
        natRules.push(
          `-A ${KUBE_SERVICES} -m comment --comment "${name} external IP" ${matchProto} -d ${ip} ${dport} -j ${extChain}`,
        );
      }
      if (!hasExternalEndpoints) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${matchProto} -d ${ip} ${dport} -j ${externalFilterTarget}`,
        );
      }
    }

    for (const ip of info.loadBalancerVIPs) {
      if (hasEndpoints) {
        natRules.push(
          `-A ${KUBE_SERVICES} -m comment --comment "${name} loadbalancer IP" ${matchProto} -d ${ip} ${dport} -j ${lbChain}`,
        );
      }
      if (usesFWChain) {
        filterRules.push(
          `-A ${KUBE_PROXY_FIREWALL} -m comment --comment "${name} traffic not accepted by ${fwChain}" ${matchProto} -d ${ip} ${dport} -j DROP`,
        );
      }
    }
    if (!hasExternalEndpoints) {
      for (const ip of info.loadBalancerVIPs) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${matchProto} -d ${ip} ${dport} -j ${externalFilterTarget}`,
        );
      }
    }

    if (info.nodePort !== 0) {
      if (hasEndpoints) {
        if (localhostNodePorts && nfacct) {
          natRules.push(
            `-A ${KUBE_NODEPORTS} -m comment --comment ${name} ${matchProto} -d 127.0.0.0/8 --dport ${info.nodePort} -m nfacct --nfacct-name ${NFACCT_LOCALHOST_NODEPORTS} -j ${extChain}`,
          );
        }
        natRules.push(
          `-A ${KUBE_NODEPORTS} -m comment --comment ${name} ${matchProto} --dport ${info.nodePort} -j ${extChain}`,
        );
      }
      if (!hasExternalEndpoints) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} -m addrtype --dst-type LOCAL ${matchProto} --dport ${info.nodePort} -j ${externalFilterTarget}`,
        );
      }
    }

    if (info.healthCheckNodePort !== 0) {
      filterRules.push(
        `-A ${KUBE_NODEPORTS} -m comment --comment "${name} health check node port" -m tcp -p tcp --dport ${info.healthCheckNodePort} -j ACCEPT`,
      );
    }

    // Unchanged services keep their kernel chains in a partial sync: --noflush leaves unlisted chains alone.
    const write = mode.full || state.changedServices.has(info.serviceName);
    const chains = write ? natChains : skippedChains;
    const rules = write ? natRules : skippedRules;

    if (hasInternalEndpoints) {
      const args = `-m comment --comment "${name} cluster IP" ${matchProto} -d ${info.clusterIP} ${dport}`;
      if (opts.masqueradeAll) rules.push(`-A ${internalChain} ${args} -j ${KUBE_MARK_MASQ}`);
      else if (detector)
        rules.push(`-A ${internalChain} ${args} ${detector.ifNotLocal} -j ${KUBE_MARK_MASQ}`);
    }

    if (usesExternalTrafficChain) {
      chains.push(chainLine(extChain));
      active.add(extChain);
      if (!info.externalPolicyLocal) {
        rules.push(
          `-A ${extChain} -m comment --comment "masquerade traffic for ${name} external destinations" -j ${KUBE_MARK_MASQ}`,
        );
      } else {
        if (detector) {
          rules.push(
            `-A ${extChain} -m comment --comment "pod traffic for ${name} external destinations" ${detector.ifLocal} -j ${svcChain}`,
          );
        }
        rules.push(
          `-A ${extChain} -m comment --comment "masquerade LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`,
        );
        rules.push(
          `-A ${extChain} -m comment --comment "route LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${svcChain}`,
        );
      }
      if (hasExternalEndpoints) rules.push(`-A ${extChain} -j ${externalPolicyChain}`);
    }

    if (usesFWChain) {
      chains.push(chainLine(fwChain));
      active.add(fwChain);
      const head = `-A ${fwChain} -m comment --comment "${name} loadbalancer IP"`;
      let allowFromNode = false;
      for (const raw of info.loadBalancerSourceRanges) {
        const cidr = parseCIDR(raw)!;
        rules.push(`${head} -s ${cidr.text} -j ${extChain}`);
        if (nodeIP !== undefined && cidrContains(cidr, nodeIP)) allowFromNode = true;
      }
      // A node reaching its own LB VIP loops back with the VIP as source address.
      if (allowFromNode)
        for (const ip of info.loadBalancerVIPs) rules.push(`${head} -s ${ip} -j ${extChain}`);
      rules.push(
        `-A ${fwChain} -m comment --comment "other traffic to ${name} will be dropped by ${KUBE_PROXY_FIREWALL}"`,
      );
    }

    if (usesClusterPolicyChain) {
      chains.push(chainLine(svcChain));
      active.add(svcChain);
      writeServiceToEndpointRules(rules, sp, svcChain, sp.clusterEndpoints, sepOf, svcComment);
    }
    if (usesLocalPolicyChain) {
      chains.push(chainLine(svlChain));
      active.add(svlChain);
      writeServiceToEndpointRules(rules, sp, svlChain, sp.localEndpoints, sepOf, svcComment);
    }

    for (const ep of sp.allReachableEndpoints) {
      const sep = sepOf(ep);
      chains.push(chainLine(sep));
      active.add(sep);
      const c = svcComment(name);
      rules.push(`-A ${sep}${c} -s ${ep.ip} -j ${KUBE_MARK_MASQ}`);
      const affinity = info.stickyMaxAgeSeconds > 0 ? ` -m recent --name ${sep} --set` : '';
      rules.push(`-A ${sep}${c}${affinity} ${matchProto} -j DNAT --to-destination ${ep.endpoint}`);
    }
  }

  flushService();
  const serviceChainContents =
    natRules instanceof GroupingLines ? natRules.contents : new Map<string, string>();
  const grouped = [...serviceChainContents.values()];

  const deletedChains: string[] = [];
  if (mode.existingNatChains) {
    for (const c of mode.existingNatChains)
      if (isServiceChainName(c) && !active.has(c)) deletedChains.push(c);
    deletedChains.sort();
    // A chain line flushes the chain, which must be empty before -X can delete it.
    for (const c of deletedChains) natChains.push(chainLine(c));
    for (const c of deletedChains) natRules.push(`-X ${c}`);
  }

  const tailComment =
    '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"';
  if (opts.nodePortAddresses.matchAll) {
    let dst = '-m addrtype --dst-type LOCAL';
    if (isIPv6) dst += ' ! -d ::1/128';
    else if (!localhostNodePorts) dst += ' ! -d 127.0.0.0/8';
    natRules.push(`-A ${KUBE_SERVICES} ${tailComment} ${dst} -j ${KUBE_NODEPORTS}`);
  } else {
    for (const ip of opts.nodePortAddresses.ips) {
      assertSafe('nodePortAddresses ip', ip);
      // Loopback NodePorts never work on IPv6 and need route_localnet on IPv4.
      if (isLoopback(ip) && (isIPv6 || !localhostNodePorts)) continue;
      natRules.push(`-A ${KUBE_SERVICES} ${tailComment} -d ${ip} -j ${KUBE_NODEPORTS}`);
    }
  }

  if (!(mode.conntrackTCPLiberal ?? false)) {
    filterRules.push(
      `-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID${nfacct ? ` -m nfacct --nfacct-name ${NFACCT_CT_STATE_INVALID}` : ''} -j DROP`,
    );
  }
  filterRules.push(
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
  );
  filterRules.push(
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );

  let filter: string | undefined;
  let nat: string | undefined;
  const natWritten = natRules.count - deletedChains.length;

  return {
    family: state.family,
    full: mode.full,
    get filter(): string {
      return (filter ??= `*filter\n${joinLines(filterChains.lines)}${joinLines(filterRules.lines)}COMMIT\n`);
    },
    get nat(): string {
      return (nat ??= `*nat\n${joinLines(natChains.lines)}${joinLines(natRules.lines)}${joinLines(grouped)}COMMIT\n`);
    },
    get restore(): string {
      return this.filter + this.nat;
    },
    lines: { filter: [filterChains.lines, filterRules.lines], nat: [natChains.lines, natRules.lines] },
    serviceChainContents,
    settledChains: natRules instanceof GroupingLines ? natRules.settled : new Set<string>(),
    jumps: JUMP_RULES,
    ruleCounts: {
      filter: { total: filterRules.count, written: filterRules.count },
      nat: { total: natWritten + skippedRules.count, written: natWritten },
    },
    activeNatChains: active,
    filterChains: filterChainNames,
    deletedChains,
    largeClusterMode,
    noLocalEndpoints: { internal: noLocalInternal, external: noLocalExternal },
    skipped,
    canaryChain: KUBE_PROXY_CANARY,
  };
}

function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** Upstream writeServiceToEndpointRules: affinity rchecks first, then the probability cascade. */
function writeServiceToEndpointRules(
  rules: Lines,
  sp: ServicePortState,
  chain: string,
  endpoints: readonly Endpoint[],
  sepOf: (ep: Endpoint) => string,
  svcComment: (text: string) => string,
): void {
  const name = sp.info.nameString;
  const seps = endpoints.map(sepOf);
  if (sp.info.stickyMaxAgeSeconds > 0) {
    endpoints.forEach((ep, i) => {
      const sep = seps[i]!;
      rules.push(
        `-A ${chain}${svcComment(`"${name} -> ${ep.endpoint}"`)} -m recent --name ${sep} --rcheck --seconds ${sp.info.stickyMaxAgeSeconds} --reap -j ${sep}`,
      );
    });
  }
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    rules.push(`-A ${chain}${svcComment(`"${name} -> ${ep.endpoint}"`)}${stat} -j ${seps[i]!}`);
  });
}
