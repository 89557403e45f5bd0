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

/** Modes that program the kernel; only they touch sysctls (userspace and state run unprivileged). */
export function isKernelMode(mode: ProxyConfig['mode']): boolean {
  return mode === 'iptables' || mode === 'nftables' || mode === 'ipvs';
}
