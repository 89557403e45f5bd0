/**
 * What upstream kube-proxy writes to the kernel at startup (server_linux.go): its own oom_score_adj and
 * the conntrack sysctls. Pure: the caller reads the current values and applies the plan.
 */
import type { ProxyConfig } from '../config/types.js';

export interface SysctlWrite {
  /** Path under /proc/sys, e.g. net/netfilter/nf_conntrack_max. */
  readonly path: string;
  readonly value: number;
  /** Only write when the current value is lower (nf_conntrack_max is only ever raised). */
  readonly onlyRaise?: boolean;
}

/**
 * The conntrack sysctls for `config` on a machine with `cpus` CPUs. A zero setting means "leave the
 * kernel's value", as upstream: nf_conntrack_max = max(maxPerCore*cpus, min) when maxPerCore > 0.
 */
export function conntrackSysctls(config: ProxyConfig, cpus: number): SysctlWrite[] {
  const c = config.conntrack;
  const out: SysctlWrite[] = [];
  if (c.maxPerCore > 0)
    out.push({
      path: 'net/netfilter/nf_conntrack_max',
      value: Math.max(c.maxPerCore * cpus, c.min),
      onlyRaise: true,
    });
  const secs = (ms: number) => Math.floor(ms / 1000);
  if (c.tcpEstablishedTimeoutMs > 0)
    out.push({
      path: 'net/netfilter/nf_conntrack_tcp_timeout_established',
      value: secs(c.tcpEstablishedTimeoutMs),
    });
  if (c.tcpCloseWaitTimeoutMs > 0)
    out.push({
      path: 'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
      value: secs(c.tcpCloseWaitTimeoutMs),
    });
  if (c.tcpBeLiberal) out.push({ path: 'net/netfilter/nf_conntrack_tcp_be_liberal', value: 1 });
  if (c.udpTimeoutMs > 0)
    out.push({ path: 'net/netfilter/nf_conntrack_udp_timeout', value: secs(c.udpTimeoutMs) });
  if (c.udpStreamTimeoutMs > 0)
    out.push({ path: 'net/netfilter/nf_conntrack_udp_timeout_stream', value: secs(c.udpStreamTimeoutMs) });
  return out;
}

/**
 * The sysctls the chosen mode's proxier needs before it can program the kernel, as upstream's proxiers
 * set them when they are created: iptables with localhost NodePorts needs route_localnet; IPVS needs
 * its connection-tracking and expiry knobs, IPv4 forwarding, and with strictARP the ARP settings.
 * nftables and userspace need none.
 */
export function modeSysctls(config: ProxyConfig): SysctlWrite[] {
  switch (config.mode) {
    case 'iptables':
      return config.iptables.localhostNodePorts
        ? [{ path: 'net/ipv4/conf/all/route_localnet', value: 1 }]
        : [];
    case 'ipvs':
      return [
        { path: 'net/ipv4/vs/conntrack', value: 1 },
        { path: 'net/ipv4/vs/expire_nodest_conn', value: 1 },
        { path: 'net/ipv4/vs/expire_quiescent_template', value: 1 },
        { path: 'net/ipv4/ip_forward', value: 1 },
        ...(config.ipvs.strictARP
          ? [
              { path: 'net/ipv4/conf/all/arp_ignore', value: 1 },
              { path: 'net/ipv4/conf/all/arp_announce', value: 2 },
            ]
          : []),
      ];
    default:
      return [];
  }
}
