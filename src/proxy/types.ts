/**
 * The backend-independent desired state: what every proxy mode consumes. Immutable per sync.
 * Names follow upstream pkg/proxy (ServicePortInfo ~ BaseServicePortInfo, Endpoint ~ BaseEndpointInfo).
 */
import type { IPFamily, Protocol, ServicePortName } from '../model/types.js';

/** One port of one Service, seen by one IP family (upstream BaseServicePortInfo). */
export interface ServicePortInfo {
  readonly name: ServicePortName;
  /** "ns/svc:port" or "ns/svc": the comment / hash input. */
  readonly nameString: string;
  /** "ns/svc": the service this port belongs to. */
  readonly serviceName: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** 0 when none. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  /** LB ingress IPs of this family with ipMode VIP (or unset). */
  readonly loadBalancerVIPs: readonly string[];
  /** Trimmed, this family only; empty means allow all (a zero CIDR empties it, as upstream). */
  readonly loadBalancerSourceRanges: readonly string[];
  /** ClientIP affinity timeout in seconds; 0 means no affinity. */
  readonly stickyMaxAgeSeconds: number;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** 0 when none; only for LoadBalancer + eTP=Local. */
  readonly healthCheckNodePort: number;
  /** NodePort, externalIP or LB VIP exists. */
  readonly externallyAccessible: boolean;
  readonly usesClusterEndpoints: boolean;
  readonly usesLocalEndpoints: boolean;
  readonly hintsAnnotation: string;
  readonly trafficDistribution: string;
}

/** One endpoint of one service port (upstream BaseEndpointInfo). */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  /** "ip:port" or "[ip]:port": sort key and hash input. */
  readonly endpoint: string;
  readonly isLocal: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** undefined = no zone hints. */
  readonly zoneHints: ReadonlySet<string> | undefined;
  /** undefined = no node hints. */
  readonly nodeHints: ReadonlySet<string> | undefined;
  readonly nodeName: string;
  readonly zone: string;
}

/** A service port with its endpoints categorised (upstream CategorizeEndpoints, plus the derived flags). */
export interface ServicePortState {
  /** Unique within a family: servicePortKey(name). */
  readonly key: string;
  readonly info: ServicePortInfo;
  /** Merged from all slices, deduplicated, sorted by endpoint string. */
  readonly endpoints: readonly Endpoint[];
  readonly clusterEndpoints: readonly Endpoint[];
  readonly localEndpoints: readonly Endpoint[];
  readonly allReachableEndpoints: readonly Endpoint[];
  readonly hasAnyEndpoints: boolean;
  /** = hasAnyEndpoints. */
  readonly hasEndpoints: boolean;
  /** False when iTP=Local and no local endpoints. */
  readonly hasInternalEndpoints: boolean;
  /** False when eTP=Local and no local endpoints. */
  readonly hasExternalEndpoints: boolean;
  readonly usesExternalTrafficChain: boolean;
}

/** Stale UDP state for conntrack cleanup after a sync (upstream pkg/proxy/conntrack/cleanup.go). */
export interface ConntrackWork {
  /** Service port keys whose UDP flows must be reconciled. */
  readonly udpServicePorts: ReadonlySet<string>;
  /** UDP cluster IPs of deleted services (old-style cleanup: conntrack -D --orig-dst). */
  readonly deletedUDPClusterIPs: ReadonlySet<string>;
  /**
   * UDP frontends a changed or deleted service port no longer has ("ip|port" of cluster, external and
   * load-balancer IPs, and nodePorts): their flows are DNATed to endpoints nothing routes to any more.
   * Absent means none.
   */
  readonly goneUDPFrontends?: {
    readonly ipPorts: ReadonlySet<string>;
    readonly nodePorts: ReadonlySet<number>;
  };
  /**
   * A changed service port has a TCP frontend (cluster, external or load-balancer IP on its port) it
   * did not have at the last successful sync: a SYN sent to it before this sync may have left
   * un-DNATed (conntrack.ts `releaseStuckTCPSyns`). Absent means false.
   */
  readonly tcpFrontendsAdded?: boolean;
}

/** Everything a backend needs to program one IP family; built by the core for every sync. */
export interface DesiredState {
  readonly family: IPFamily;
  readonly nodeName: string;
  /** Node IPs of this family; the first is the primary. */
  readonly nodeIPs: readonly string[];
  readonly nodeZone: string;
  /** All service ports of this family, by key. */
  readonly services: ReadonlyMap<string, ServicePortState>;
  /** Keys of `services`, sorted: renderers iterate this for stable output. */
  readonly sortedKeys: readonly string[];
  /** "ns/name" of services whose ports or endpoints changed since the previous successful sync. */
  readonly changedServices: ReadonlySet<string>;
  /** "ns/name" -> healthCheckNodePort. */
  readonly healthCheckNodePorts: ReadonlyMap<string, number>;
  /** "ns/name" -> unique local Ready endpoint IPs (for the service health servers). */
  readonly localReadyEndpoints: ReadonlyMap<string, number>;
  /**
   * Service ports with a Local policy and no local endpoints, per policy (upstream's
   * sync_proxy_rules_no_local_endpoints_total gauges). Kept incrementally by the tracker.
   */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  /** ServiceCIDR ranges of this family (nftables drops unallocated cluster IPs in them). */
  readonly serviceCIDRs: readonly string[];
  readonly conntrack: ConntrackWork;
  /** Endpoint changes' trigger times (ms since epoch), for network-programming latency. */
  readonly lastChangeTriggerTimes: readonly number[];
  /** Pod CIDRs from the Node object (detect-local-mode=NodeCIDR). */
  readonly nodePodCIDRs: readonly string[];
}
