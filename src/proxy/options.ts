/**
 * Per-family options that shape rendering: the parts of the configuration a renderer reads.
 * Resolved once from the config and the machine (node IPs, interface addresses); pure data.
 */
import type { IPFamily } from '../model/types.js';

export type LocalDetector =
  | { readonly kind: 'none' }
  | { readonly kind: 'cidr'; readonly cidrs: readonly string[] }
  | { readonly kind: 'bridge'; readonly iface: string }
  | { readonly kind: 'prefix'; readonly prefix: string };

export interface NodePortAddresses {
  /** True when nodePortAddresses is unset or contains a zero CIDR of this family. */
  readonly matchAll: boolean;
  /** When !matchAll: the local IPs of this family that fall inside the configured CIDRs (sorted). */
  readonly ips: readonly string[];
  /** The configured CIDRs of this family ("primary" resolved to node IP /32 or /128). */
  readonly cidrs: readonly string[];
}

export interface FamilyOptions {
  readonly family: IPFamily;
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  /** Effective: only IPv4, and only when nodePortAddresses admits loopback. */
  readonly localhostNodePorts: boolean;
  readonly localDetector: LocalDetector;
  readonly nodePortAddresses: NodePortAddresses;
  /** MASQUERADE --random-fully is available (iptables >= 1.6.2). */
  readonly randomFully: boolean;
  /** IPVS scheduler (ipvs mode). */
  readonly ipvsScheduler: string;
  readonly ipvsStrictARP: boolean;
  readonly ipvsExcludeCIDRs: readonly string[];
  /** IPVS connection timeouts (ms; 0 leaves the kernel's value). */
  readonly ipvsTcpTimeoutMs?: number;
  readonly ipvsTcpFinTimeoutMs?: number;
  readonly ipvsUdpTimeoutMs?: number;
  /** Userspace mode: UDP session idle timeout, ms. */
  readonly udpIdleTimeoutMs: number;
}
