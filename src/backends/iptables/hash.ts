/**
 * iptables chain names for service ports and endpoints, bit-compatible with upstream kube-proxy
 * (upstream pkg/proxy/iptables/proxier.go): the names must match exactly so that a kube-proxy-ts node and an upstream node
 * agree on which chains are stale, and so upstream's test expectations apply verbatim.
 */
import { createHash } from 'node:crypto';
import { prefixedBase32 } from '../common/base32.js';

/** `prefix` + base32(sha256(input))[:16], one flat string (see prefixedBase32). */
function hash16(prefix: string, input: string): string {
  return prefixedBase32(prefix, createHash('sha256').update(input, 'utf8').digest(), 16);
}

/**
 * Upstream portProtoHash: first 16 chars of base32(sha256(nameString + protocol)), where nameString is
 * "ns/svc:port" (or "ns/svc" for an unnamed port) and protocol is lowercased here ("tcp").
 */
export function servicePortChainHash(nameString: string, protocol: string): string {
  return hash16('', nameString + protocol.toLowerCase());
}

/** Prefixes of the per-service chains; all four service-port prefixes share one hash. */
export type ServiceChainPrefix = 'KUBE-SVC-' | 'KUBE-SVL-' | 'KUBE-EXT-' | 'KUBE-FW-';

/** `prefix + servicePortChainHash(nameString, protocol)`, e.g. KUBE-SVC-XPGD46QRK7WJZT7O. */
export function servicePortChainName(
  prefix: ServiceChainPrefix,
  nameString: string,
  protocol: string,
): string {
  return hash16(prefix, nameString + protocol.toLowerCase());
}

/**
 * KUBE-SEP- + base32(sha256(nameString + protocol + endpoint))[:16]; `endpoint` is the endpoint string
 * "ip:port" or "[ip]:port" for IPv6, exactly as upstream's BaseEndpointInfo.String().
 */
export function endpointChainName(nameString: string, protocol: string, endpoint: string): string {
  return hash16('KUBE-SEP-', nameString + protocol.toLowerCase() + endpoint);
}

const SERVICE_CHAIN_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'] as const;

/** True for the per-service chains a sync owns and may delete when stale (upstream isServiceChainName). */
export function isServiceChainName(chain: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => chain.startsWith(p));
}
