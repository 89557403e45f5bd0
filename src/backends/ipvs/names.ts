/**
 * Names IPVS mode shares with upstream kube-proxy (pkg/proxy/ipvs): the dummy device, the ipsets
 * (name, type, comment) and the iptables chains. Names and comments must match upstream exactly so
 * that `--cleanup` of either implementation removes the other's leftovers.
 */
import type { IPFamily } from '../../model/types.js';

/** The dummy interface every service address is bound to. */
export const DUMMY_DEVICE = 'kube-ipvs0';

export type IPSetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

/** One ipset IPVS mode owns (upstream ipsetInfo). */
export interface IPSetInfo {
  /** The IPv4 name; IPv6 uses {@link familySetName}. */
  readonly name: string;
  readonly type: IPSetType;
  /** Upstream's comment, used in the iptables rules that match the set. */
  readonly comment: string;
}

export const LOOP_BACK = 'KUBE-LOOP-BACK';
export const CLUSTER_IP = 'KUBE-CLUSTER-IP';
export const EXTERNAL_IP = 'KUBE-EXTERNAL-IP';
export const EXTERNAL_IP_LOCAL = 'KUBE-EXTERNAL-IP-LOCAL';
export const LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const LOAD_BALANCER_FW = 'KUBE-LOAD-BALANCER-FW';
export const LOAD_BALANCER_LOCAL = 'KUBE-LOAD-BALANCER-LOCAL';
export const LOAD_BALANCER_SOURCE_IP = 'KUBE-LOAD-BALANCER-SOURCE-IP';
export const LOAD_BALANCER_SOURCE_CIDR = 'KUBE-LOAD-BALANCER-SOURCE-CIDR';
export const NODE_PORT_TCP = 'KUBE-NODE-PORT-TCP';
export const NODE_PORT_LOCAL_TCP = 'KUBE-NODE-PORT-LOCAL-TCP';
export const NODE_PORT_UDP = 'KUBE-NODE-PORT-UDP';
export const NODE_PORT_LOCAL_UDP = 'KUBE-NODE-PORT-LOCAL-UDP';
export const NODE_PORT_SCTP = 'KUBE-NODE-PORT-SCTP-HASH';
export const NODE_PORT_LOCAL_SCTP = 'KUBE-NODE-PORT-LOCAL-SCTP-HASH';
export const HEALTH_CHECK_NODE_PORT = 'KUBE-HEALTH-CHECK-NODE-PORT';
export const IPVS_IPS = 'KUBE-IPVS-IPS';

/** Every set, in upstream's order (which is also the order they are created and rendered). */
export const IPSETS: readonly IPSetInfo[] = [
  {
    name: LOOP_BACK,
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose',
  },
  {
    name: CLUSTER_IP,
    type: 'hash:ip,port',
    comment: 'Kubernetes service cluster ip + port for masquerade purpose',
  },
  {
    name: EXTERNAL_IP,
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port for masquerade and filter purpose',
  },
  {
    name: EXTERNAL_IP_LOCAL,
    type: 'hash:ip,port',
    comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local',
  },
  { name: LOAD_BALANCER, type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  {
    name: LOAD_BALANCER_FW,
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange',
  },
  {
    name: LOAD_BALANCER_LOCAL,
    type: 'hash:ip,port',
    comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local',
  },
  {
    name: LOAD_BALANCER_SOURCE_IP,
    type: 'hash:ip,port,ip',
    comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose',
  },
  {
    name: LOAD_BALANCER_SOURCE_CIDR,
    type: 'hash:ip,port,net',
    comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose',
  },
  {
    name: NODE_PORT_TCP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port for masquerade purpose',
  },
  {
    name: NODE_PORT_LOCAL_TCP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local',
  },
  {
    name: NODE_PORT_UDP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port for masquerade purpose',
  },
  {
    name: NODE_PORT_LOCAL_UDP,
    type: 'bitmap:port',
    comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local',
  },
  {
    name: NODE_PORT_SCTP,
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
  },
  {
    name: NODE_PORT_LOCAL_SCTP,
    type: 'hash:ip,port',
    comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
  },
  { name: HEALTH_CHECK_NODE_PORT, type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  { name: IPVS_IPS, type: 'hash:ip', comment: 'IPVS virtual server IP addresses' },
];

/**
 * The set's name in `family`: IPv6 sets are `KUBE-6-…` (cut to ipset's 31 characters), so both
 * families' sets coexist, as upstream does.
 */
export function familySetName(name: string, family: IPFamily): string {
  if (family === 'IPv4' || !name.startsWith('KUBE-')) return name;
  return `KUBE-6-${name.slice(5)}`.slice(0, 31);
}

/** Every set name this mode may have created, both families (for cleanup). */
export function allSetNames(): string[] {
  return IPSETS.flatMap((s) => [s.name, familySetName(s.name, 'IPv6')]);
}

// iptables chains (upstream proxier.go constants).
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';

/** Our chains per table, in upstream's declaration order (iptablesChains). */
export const NAT_CHAINS = [
  KUBE_SERVICES,
  KUBE_POSTROUTING,
  KUBE_NODE_PORT,
  KUBE_LOAD_BALANCER,
  KUBE_MARK_MASQ,
] as const;
export const FILTER_CHAINS = [
  KUBE_FORWARD,
  KUBE_NODE_PORT,
  KUBE_PROXY_FIREWALL,
  KUBE_SOURCE_RANGES_FIREWALL,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
] as const;

/** A jump from a built-in chain into ours (upstream iptablesJumpChain), inserted at position 1. */
export interface IPVSJump {
  readonly table: 'nat' | 'filter';
  readonly from: 'OUTPUT' | 'PREROUTING' | 'POSTROUTING' | 'FORWARD' | 'INPUT';
  readonly to: string;
  readonly comment: string;
}

export const JUMPS: readonly IPVSJump[] = [
  { table: 'nat', from: 'OUTPUT', to: KUBE_SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'PREROUTING', to: KUBE_SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'POSTROUTING', to: KUBE_POSTROUTING, comment: 'kubernetes postrouting rules' },
  { table: 'filter', from: 'FORWARD', to: KUBE_FORWARD, comment: 'kubernetes forwarding rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_NODE_PORT, comment: 'kubernetes health check rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'FORWARD', to: KUBE_PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_IPVS_FILTER, comment: 'kubernetes ipvs access filter' },
  { table: 'filter', from: 'OUTPUT', to: KUBE_IPVS_OUT_FILTER, comment: 'kubernetes ipvs access filter' },
];

/** Schedulers the kernel ships (`--ipvs-scheduler`); anything else is rejected before rendering. */
export const SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'sh',
  'dh',
  'sed',
  'nq',
  'mh',
  'fo',
  'ovf',
  'twos',
] as const;
