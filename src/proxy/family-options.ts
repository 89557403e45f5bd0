/**
 * Resolves the per-family rendering options from the configuration and the machine's addresses
 * (upstream NewNodePortAddresses + the local-traffic detector choice). Pure: the caller passes the
 * interface addresses it read.
 */
import { cidrContains, familyOfValid, parseCIDR, type CIDR } from '../net/ip.js';
import type { IPFamily } from '../model/types.js';
import type { ProxyConfig } from '../config/types.js';
import type { FamilyOptions, LocalDetector, NodePortAddresses } from './options.js';

export interface MachineFacts {
  /** Every address on the machine's interfaces (any family), canonical. */
  readonly interfaceAddresses: readonly string[];
  /** This family's node IPs, primary first. */
  readonly nodeIPs: readonly string[];
  /** The Node object's pod CIDRs (detect-local-mode=NodeCIDR). */
  readonly nodePodCIDRs: readonly string[];
  /** MASQUERADE --random-fully support. */
  readonly randomFully: boolean;
}

/**
 * nodePortAddresses for one family: the configured CIDRs of that family ("primary" becomes the
 * node's primary IP); none of this family, or a zero CIDR, means match-all. `ips` are the machine's
 * addresses inside those CIDRs. Also reports whether the CIDRs admit IPv4 loopback.
 */
export function resolveNodePortAddresses(
  configured: readonly string[],
  family: IPFamily,
  facts: Pick<MachineFacts, 'interfaceAddresses' | 'nodeIPs'>,
): NodePortAddresses & { containsIPv4Loopback: boolean } {
  const cidrs: CIDR[] = [];
  for (const raw of configured) {
    if (raw === 'primary') {
      const ip = facts.nodeIPs[0];
      if (ip && familyOfValid(ip) === family) cidrs.push(parseCIDR(`${ip}/${family === 'IPv4' ? 32 : 128}`)!);
      continue;
    }
    const c = parseCIDR(raw);
    if (c && c.family === family) cidrs.push(c);
  }
  const matchAll = cidrs.length === 0 || cidrs.some((c) => c.prefix === 0);
  const containsIPv4Loopback =
    family === 'IPv4' && (matchAll || cidrs.some((c) => cidrContains(c, '127.0.0.1')));
  const ips = matchAll
    ? []
    : [
        ...new Set(
          facts.interfaceAddresses.filter(
            (ip) => familyOfValid(ip) === family && cidrs.some((c) => cidrContains(c, ip)),
          ),
        ),
      ].sort();
  return { matchAll, ips, cidrs: cidrs.map((c) => c.text), containsIPv4Loopback };
}

/** The local-traffic detector for one family (upstream pkg/proxy/util/localdetector.go); none when its input is missing. */
export function resolveLocalDetector(
  config: ProxyConfig,
  family: IPFamily,
  nodePodCIDRs: readonly string[],
): LocalDetector {
  const ofFamily = (list: readonly string[]) =>
    list.filter((c) => parseCIDR(c)?.family === family).map((c) => parseCIDR(c)!.text);
  switch (config.detectLocalMode) {
    case '':
    case 'ClusterCIDR': {
      const cidrs = ofFamily(config.clusterCIDRs);
      return cidrs.length ? { kind: 'cidr', cidrs } : { kind: 'none' };
    }
    case 'NodeCIDR': {
      const cidrs = ofFamily(nodePodCIDRs);
      return cidrs.length ? { kind: 'cidr', cidrs } : { kind: 'none' };
    }
    case 'BridgeInterface':
      return config.detectLocal.bridgeInterface
        ? { kind: 'bridge', iface: config.detectLocal.bridgeInterface }
        : { kind: 'none' };
    case 'InterfaceNamePrefix':
      return config.detectLocal.interfaceNamePrefix
        ? { kind: 'prefix', prefix: config.detectLocal.interfaceNamePrefix }
        : { kind: 'none' };
  }
}

/** All rendering options of one family. */
export function resolveFamilyOptions(
  config: ProxyConfig,
  family: IPFamily,
  facts: MachineFacts,
): FamilyOptions {
  const nft = config.mode === 'nftables';
  const npa = resolveNodePortAddresses(config.nodePortAddresses, family, facts);
  const { containsIPv4Loopback, ...nodePortAddresses } = npa;
  return {
    family,
    masqueradeBit: nft ? config.nftables.masqueradeBit : config.iptables.masqueradeBit,
    masqueradeAll: nft ? config.nftables.masqueradeAll : config.iptables.masqueradeAll,
    localhostNodePorts:
      !nft && family === 'IPv4' && config.iptables.localhostNodePorts && containsIPv4Loopback,
    localDetector: resolveLocalDetector(config, family, facts.nodePodCIDRs),
    nodePortAddresses,
    randomFully: facts.randomFully,
    ipvsScheduler: config.ipvs.scheduler || 'rr',
    ipvsStrictARP: config.ipvs.strictARP,
    ipvsExcludeCIDRs: config.ipvs.excludeCIDRs,
    ipvsTcpTimeoutMs: config.ipvs.tcpTimeoutMs,
    ipvsTcpFinTimeoutMs: config.ipvs.tcpFinTimeoutMs,
    ipvsUdpTimeoutMs: config.ipvs.udpTimeoutMs,
    udpIdleTimeoutMs: config.udpIdleTimeoutMs,
  };
}
