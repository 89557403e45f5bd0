/**
 * nftables object names for service ports and endpoints, identical to upstream's nftables mode
 * (upstream pkg/proxy/nftables/proxier.go), so an operator reading `nft list table ip kube-proxy` on a kube-proxy-ts node
 * sees the same names as on an upstream node.
 */
import { createHash } from 'node:crypto';
import type { ServicePortName } from '../../model/types.js';
import { prefixedBase32 } from '../common/base32.js';

/** nft names are at most 256 bytes; upstream keeps 16 for the prefix. */
const BASE_LENGTH_MAX = 256 - 16;

/** base32(sha256(s))[:8] + "-" + s, cut to 240 characters with "..." when longer (upstream hashAndTruncate). */
export function hashAndTruncate(s: string): string {
  const h = prefixedBase32('', createHash('sha256').update(s, 'utf8').digest(), 8);
  const name = `${h}-${s}`;
  return name.length > BASE_LENGTH_MAX ? `${name.slice(0, BASE_LENGTH_MAX - 3)}...` : name;
}

/** "ns/svc/proto/portname" (lowercase protocol): the base every per-service-port object is named from. */
export function servicePortBase(spn: ServicePortName): string {
  return `${spn.namespace}/${spn.name}/${spn.protocol.toLowerCase()}/${spn.port}`;
}

/** Base of an endpoint's objects: "<service base>__<ip with ':' as '.'>/<port>". */
export function endpointBase(spn: ServicePortName, ip: string, port: number): string {
  return `${servicePortBase(spn)}__${ip.replaceAll(':', '.')}/${port}`;
}

/** Names of the per-service-port chains (cluster policy, local policy, external). */
export interface ServicePortChainNames {
  readonly service: string;
  readonly local: string;
  readonly external: string;
}

/** The chain names of one service port. */
export function servicePortChainNames(spn: ServicePortName): ServicePortChainNames {
  const h = hashAndTruncate(servicePortBase(spn));
  return { service: `service-${h}`, local: `local-${h}`, external: `external-${h}` };
}

/** The endpoint chain and affinity set of one endpoint (used only by ClientIP-affinity services). */
export function endpointObjectNames(
  spn: ServicePortName,
  ip: string,
  port: number,
): { chain: string; affinitySet: string } {
  const h = hashAndTruncate(endpointBase(spn, ip, port));
  return { chain: `endpoint-${h}`, affinitySet: `affinity-${h}` };
}
