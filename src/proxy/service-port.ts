/**
 * Service -> per-family ServicePortInfo (upstream servicechangetracker.go / serviceport.go semantics).
 */
import { familyOfValid, isZeroCIDR, parseCIDR } from '../net/ip.js';
import type { IPFamily, Service, ServicePortName } from '../model/types.js';
import {
  ANNOTATION_TOPOLOGY_AWARE_HINTS,
  ANNOTATION_TOPOLOGY_MODE,
  namespacedName,
  servicePortNameString,
} from '../model/types.js';
import type { ServicePortInfo } from './types.js';
import { flat } from '../model/flat-string.js';

const NONE: readonly string[] = Object.freeze([]);

/** Upstream apiservice.ExternallyAccessible: a service that can be reached from outside the cluster. */
function serviceExternallyAccessible(svc: Service): boolean {
  return (
    svc.type === 'LoadBalancer' ||
    svc.type === 'NodePort' ||
    (svc.type === 'ClusterIP' && svc.externalIPs.length > 0)
  );
}

/** The addresses a service port answers on as a frontend: its cluster IP, external IPs and LB VIPs. */
export function frontendIPs(i: ServicePortInfo): string[] {
  const out = i.clusterIP === '' ? [] : [i.clusterIP];
  for (const ip of i.externalIPs) out.push(ip);
  for (const ip of i.loadBalancerVIPs) out.push(ip);
  return out;
}

/** The cluster IP of `family` for a service: first matching clusterIPs entry, else spec.clusterIP. */
export function clusterIPForFamily(svc: Service, family: IPFamily): string | undefined {
  for (const ip of svc.clusterIPs) if (ip !== 'None' && familyOfValid(ip) === family) return ip;
  if (svc.clusterIP !== '' && svc.clusterIP !== 'None' && familyOfValid(svc.clusterIP) === family)
    return svc.clusterIP;
  return undefined;
}

/**
 * The service ports one family's proxier handles for `svc`, keyed by servicePortKey. Empty when the
 * service is ignored: headless or unset ClusterIP, ExternalName, or no ClusterIP of this family.
 */
export function serviceToServicePorts(svc: Service, family: IPFamily): Map<string, ServicePortInfo> {
  const out = new Map<string, ServicePortInfo>();
  if (svc.type === 'ExternalName') return out;
  if (svc.clusterIP === '' || svc.clusterIP === 'None') return out;
  const clusterIP = clusterIPForFamily(svc, family);
  if (clusterIP === undefined) return out;

  const serviceName = namespacedName(svc.meta);
  // Most Services have no external IPs, ingress or source ranges: they share one frozen empty list.
  const externalIPs =
    svc.externalIPs.length === 0 ? NONE : svc.externalIPs.filter((ip) => familyOfValid(ip) === family);
  const loadBalancerVIPs =
    svc.loadBalancerIngress.length === 0
      ? NONE
      : svc.loadBalancerIngress
          .filter(
            (i) =>
              i.ip !== '' && familyOfValid(i.ip) === family && (i.ipMode === undefined || i.ipMode === 'VIP'),
          )
          .map((i) => i.ip);
  let lbsr: readonly string[] = NONE;
  if (svc.loadBalancerSourceRanges.length > 0) {
    const ranges: string[] = [];
    let allowAll = false;
    for (const raw of svc.loadBalancerSourceRanges) {
      const c = parseCIDR(raw.trim());
      if (!c || c.family !== family) continue;
      if (isZeroCIDR(c)) allowAll = true;
      ranges.push(raw.trim());
    }
    if (!allowAll) lbsr = ranges;
  }
  const externalPolicyLocal = serviceExternallyAccessible(svc) && svc.externalTrafficPolicy === 'Local';
  const internalPolicyLocal = svc.internalTrafficPolicy === 'Local';
  const needsHealthCheck = svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local';
  const hintsAnnotation =
    svc.meta.annotations[ANNOTATION_TOPOLOGY_AWARE_HINTS] ??
    svc.meta.annotations[ANNOTATION_TOPOLOGY_MODE] ??
    '';
  const usesNodePorts = svc.type === 'NodePort' || svc.type === 'LoadBalancer';

  for (const p of svc.ports) {
    const name: ServicePortName = {
      namespace: svc.meta.namespace,
      name: svc.meta.name,
      port: p.name,
      protocol: p.protocol,
    };
    const nodePort = usesNodePorts ? p.nodePort : 0;
    const externallyAccessible = nodePort !== 0 || loadBalancerVIPs.length > 0 || externalIPs.length > 0;
    const nameString = servicePortNameString(name);
    // servicePortKey(name), from the string already built.
    out.set(flat(`${nameString}/${p.protocol}`), {
      name,
      nameString,
      serviceName,
      clusterIP,
      port: p.port,
      protocol: p.protocol,
      nodePort,
      externalIPs,
      loadBalancerVIPs,
      loadBalancerSourceRanges: lbsr,
      stickyMaxAgeSeconds: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeoutSeconds : 0,
      externalPolicyLocal,
      internalPolicyLocal,
      healthCheckNodePort: needsHealthCheck ? svc.healthCheckNodePort : 0,
      externallyAccessible,
      usesClusterEndpoints: !internalPolicyLocal || externallyAccessible,
      usesLocalEndpoints: internalPolicyLocal || (externalPolicyLocal && externallyAccessible),
      hintsAnnotation,
      trafficDistribution: svc.trafficDistribution ?? '',
    });
  }
  return out;
}
