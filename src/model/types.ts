/**
 * Readonly domain types: the validated, normalised form of the Kubernetes objects kube-proxy reads.
 * Everything here has passed model/validate.ts, so every string that can reach a rule script is safe.
 */
import type { IPFamily } from '../net/ip.js';
import { flat } from './flat-string.js';

export type { IPFamily };
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type TrafficPolicy = 'Cluster' | 'Local';

export interface ObjectMeta {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Present when the object is being deleted. */
  readonly deletionTimestamp?: string;
}

export interface ServicePortSpec {
  /** "" for an unnamed port (only allowed when the Service has a single port). */
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
  /** 0 when none. */
  readonly nodePort: number;
}

export interface LoadBalancerIngress {
  readonly ip: string;
  readonly hostname: string;
  /** Undefined means VIP. */
  readonly ipMode?: 'VIP' | 'Proxy';
}

export interface Service {
  readonly kind: 'Service';
  readonly meta: ObjectMeta;
  readonly type: ServiceType;
  /** "" (unset), "None" (headless) or a canonical IP. */
  readonly clusterIP: string;
  /** Canonical IPs; clusterIPs[0] === clusterIP when both are set. */
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePortSpec[];
  readonly externalIPs: readonly string[];
  readonly loadBalancerIngress: readonly LoadBalancerIngress[];
  /** Raw entries as written (upstream trims whitespace at use); each trims to a valid CIDR. */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly externalTrafficPolicy: TrafficPolicy;
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly sessionAffinity: 'None' | 'ClientIP';
  /** ClientIP affinity timeout; 10800 when unset. */
  readonly sessionAffinityTimeoutSeconds: number;
  /** 0 when none. */
  readonly healthCheckNodePort: number;
  readonly trafficDistribution?: string;
  readonly externalName?: string;
}

export interface EndpointConditions {
  /** Undefined is kept distinct: upstream reads nil ready as true and nil serving as ready. */
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface SliceEndpoint {
  readonly addresses: readonly string[];
  readonly conditions: EndpointConditions;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly hints?: { readonly forZones?: readonly string[]; readonly forNodes?: readonly string[] };
}

export interface SlicePort {
  /** Undefined when the slice omits it (upstream skips such ports); "" is an unnamed port. */
  readonly name?: string;
  readonly protocol?: Protocol;
  readonly port?: number;
}

export interface EndpointSlice {
  readonly kind: 'EndpointSlice';
  readonly meta: ObjectMeta;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly SliceEndpoint[];
  readonly ports: readonly SlicePort[];
}

export interface NodeAddress {
  readonly type: string;
  readonly address: string;
}

export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

export interface Node {
  readonly kind: 'Node';
  readonly meta: ObjectMeta;
  readonly addresses: readonly NodeAddress[];
  readonly podCIDRs: readonly string[];
  readonly taints: readonly Taint[];
}

export interface ServiceCIDR {
  readonly kind: 'ServiceCIDR';
  readonly meta: ObjectMeta;
  readonly cidrs: readonly string[];
}

export type KubeObject = Service | EndpointSlice | Node | ServiceCIDR;
export type Kind = KubeObject['kind'];

/** Label and annotation keys kube-proxy reads. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const ANNOTATION_LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';
export const ANNOTATION_TOPOLOGY_AWARE_HINTS = 'service.kubernetes.io/topology-aware-hints';
export const ANNOTATION_TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode';
export const TAINT_TO_BE_DELETED = 'ToBeDeletedByClusterAutoscaler';
export const DEFAULT_STICKY_SECONDS = 10800;

/** "ns/name": the key of a namespaced object. */
export function namespacedName(meta: { namespace: string; name: string }): string {
  return flat(`${meta.namespace}/${meta.name}`);
}

/** Upstream's ServicePortName: a service plus one of its ports (by name) and protocol. */
export interface ServicePortName {
  readonly namespace: string;
  readonly name: string;
  readonly port: string;
  readonly protocol: Protocol;
}

/** "ns/svc:port", or "ns/svc" for an unnamed port: the string upstream hashes and comments with. */
export function servicePortNameString(spn: ServicePortName): string {
  return flat(spn.port === '' ? `${spn.namespace}/${spn.name}` : `${spn.namespace}/${spn.name}:${spn.port}`);
}

/** Unique key for a service port within one family (the string plus protocol). */
export function servicePortKey(spn: ServicePortName): string {
  return flat(`${servicePortNameString(spn)}/${spn.protocol}`);
}
