/**
 * The `state` pseudo-mode: prints the desired state the core computed, as sorted JSON.
 * Used by `kube-proxy render --proxy-mode=state` and by the demo before a data plane exists.
 */
import type { DesiredState, Endpoint, ServicePortState } from '../../proxy/types.js';

function endpointView(e: Endpoint): Record<string, unknown> {
  return {
    endpoint: e.endpoint,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
    isLocal: e.isLocal,
    ...(e.nodeName ? { nodeName: e.nodeName } : {}),
    ...(e.zone ? { zone: e.zone } : {}),
    ...(e.zoneHints ? { zoneHints: [...e.zoneHints].sort() } : {}),
    ...(e.nodeHints ? { nodeHints: [...e.nodeHints].sort() } : {}),
  };
}

function portView(sp: ServicePortState): Record<string, unknown> {
  const i = sp.info;
  return {
    servicePort: i.nameString,
    protocol: i.protocol,
    clusterIP: i.clusterIP,
    port: i.port,
    ...(i.nodePort ? { nodePort: i.nodePort } : {}),
    ...(i.externalIPs.length ? { externalIPs: i.externalIPs } : {}),
    ...(i.loadBalancerVIPs.length ? { loadBalancerVIPs: i.loadBalancerVIPs } : {}),
    ...(i.loadBalancerSourceRanges.length ? { loadBalancerSourceRanges: i.loadBalancerSourceRanges } : {}),
    ...(i.stickyMaxAgeSeconds ? { sessionAffinityClientIPTimeoutSeconds: i.stickyMaxAgeSeconds } : {}),
    externalTrafficPolicy: i.externalPolicyLocal ? 'Local' : 'Cluster',
    internalTrafficPolicy: i.internalPolicyLocal ? 'Local' : 'Cluster',
    ...(i.healthCheckNodePort ? { healthCheckNodePort: i.healthCheckNodePort } : {}),
    hasEndpoints: sp.hasEndpoints,
    hasInternalEndpoints: sp.hasInternalEndpoints,
    hasExternalEndpoints: sp.hasExternalEndpoints,
    clusterEndpoints: sp.clusterEndpoints.map((e) => e.endpoint),
    localEndpoints: sp.localEndpoints.map((e) => e.endpoint),
    endpoints: sp.endpoints.map(endpointView),
  };
}

/** The desired state of each family as stable, sorted, pretty JSON (one document). */
export function renderState(states: readonly DesiredState[]): string {
  const doc = states.map((s) => ({
    family: s.family,
    nodeName: s.nodeName,
    nodeIPs: s.nodeIPs,
    ...(s.nodeZone ? { nodeZone: s.nodeZone } : {}),
    ...(s.serviceCIDRs.length ? { serviceCIDRs: s.serviceCIDRs } : {}),
    services: s.sortedKeys.map((k) => portView(s.services.get(k)!)),
    healthCheckNodePorts: Object.fromEntries([...s.healthCheckNodePorts].sort()),
  }));
  return JSON.stringify(doc, null, 2) + '\n';
}
