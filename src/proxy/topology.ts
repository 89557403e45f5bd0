/**
 * Endpoint selection (upstream pkg/proxy/topology.go CategorizeEndpoints).
 */
import type { Endpoint, ServicePortInfo } from './types.js';

export interface CategorizedEndpoints {
  readonly clusterEndpoints: readonly Endpoint[];
  readonly localEndpoints: readonly Endpoint[];
  readonly allReachableEndpoints: readonly Endpoint[];
  readonly hasAnyEndpoints: boolean;
}

type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

/** filter() that returns the input array itself when every element passes (the common case): no garbage. */
function keepIf(list: readonly Endpoint[], pred: (ep: Endpoint) => boolean): readonly Endpoint[] {
  let i = 0;
  while (i < list.length && pred(list[i]!)) i++;
  if (i === list.length) return list;
  const out = list.slice(0, i);
  for (i++; i < list.length; i++) if (pred(list[i]!)) out.push(list[i]!);
  return out;
}

/**
 * Which hints to honour. Hints are trusted only when every ready endpoint carries them (a partly
 * hinted slice is mid-rollout) and at least one is meant for us; node hints beat zone hints.
 */
export function topologyModeFromHints(
  endpoints: readonly Endpoint[],
  nodeName: string,
  zone: string,
): TopologyMode {
  let allNode = true;
  let forNode = false;
  let allZone = true;
  let forZone = false;
  let anyReady = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    anyReady = true;
    if (!ep.nodeHints) allNode = false;
    else if (ep.nodeHints.has(nodeName)) forNode = true;
    if (!ep.zoneHints) allZone = false;
    else if (zone !== '' && ep.zoneHints.has(zone)) forZone = true;
  }
  if (!anyReady) return '';
  if (allNode && forNode) return 'PreferSameNode';
  if (allZone && forZone) return 'PreferSameZone';
  return '';
}

const isReady = (ep: Endpoint): boolean => ep.ready;

const NONE: readonly Endpoint[] = Object.freeze([]);

function availableForTopology(ep: Endpoint, mode: TopologyMode, nodeName: string, zone: string): boolean {
  if (mode === 'PreferSameNode') return ep.nodeHints?.has(nodeName) ?? false;
  if (mode === 'PreferSameZone') return ep.zoneHints?.has(zone) ?? false;
  return true;
}

/**
 * Splits a service port's endpoints into the set used for cluster-wide traffic and the set used for
 * Local-policy traffic, each with its own terminating fallback (Ready endpoints win; Serving and
 * Terminating ones are used only when the set has no Ready endpoint; non-serving ones never).
 * hasAnyEndpoints is true when any usable endpoint exists anywhere, which makes "no local endpoints"
 * a DROP rather than a REJECT.
 */
export function categorizeEndpoints(
  endpoints: readonly Endpoint[],
  info: ServicePortInfo,
  nodeName: string,
  zone: string,
): CategorizedEndpoints {
  // None yet: the shared frozen empty list (a service port keeps these lists for its life).
  let clusterEndpoints: readonly Endpoint[] = NONE;
  let localEndpoints: readonly Endpoint[] = NONE;
  let hasAnyEndpoints = false;

  if (info.usesClusterEndpoints) {
    const mode = topologyModeFromHints(endpoints, nodeName, zone);
    clusterEndpoints =
      mode === ''
        ? keepIf(endpoints, isReady)
        : keepIf(endpoints, (ep) => ep.ready && availableForTopology(ep, mode, nodeName, zone));
    if (clusterEndpoints.length === 0)
      clusterEndpoints = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!info.usesLocalEndpoints) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  }

  let localReady = false;
  let localServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.isLocal) localReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAnyEndpoints = true;
      if (ep.isLocal) localServingTerminating = true;
    }
  }
  if (localReady) localEndpoints = endpoints.filter((ep) => ep.ready && ep.isLocal);
  else if (localServingTerminating)
    localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);

  if (!info.usesClusterEndpoints) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints };
  }
  // The union, in the endpoints' sorted order (upstream's order here comes from a map; sorted is stable).
  if (clusterEndpoints === endpoints || localEndpoints.length === 0) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  }
  const inUnion = new Set<Endpoint>([...clusterEndpoints, ...localEndpoints]);
  const allReachableEndpoints = keepIf(endpoints, (ep) => inUnion.has(ep));
  return { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints };
}
