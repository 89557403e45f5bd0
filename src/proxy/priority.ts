/**
 * Important Services first (kubernetes/kubernetes#133773): on a big cluster a new node's first full
 * sync can take seconds to minutes, and until it lands even the API server's Service is unreachable
 * from the node's pods. The sync loop therefore programs a small state holding only the priority
 * Services (always `default/kubernetes`, plus --priority-services) before the bulk.
 *
 * Pure: no I/O.
 */
import type { DesiredState, ServicePortState } from './types.js';
export { priorityServiceError } from '../model/extensions.js';

/** Always first, whatever the flag says: the API server's Service. */
export const API_SERVER_SERVICE = 'default/kubernetes';

/** --priority-services' default. */
export const DEFAULT_PRIORITY_SERVICES: readonly string[] = ['kube-system/kube-dns'];

/** The Services to program first: the API server's Service, then `configured`, without repeats. */
export function prioritySet(configured: readonly string[]): ReadonlySet<string> {
  return new Set([API_SERVER_SERVICE, ...configured]);
}

/**
 * The part of `state` that belongs to the Services in `names`: their service ports, health check
 * node ports and local-endpoint counts; node-level fields as they are. It carries no conntrack work
 * and no trigger times: the bulk sync that follows does that cleanup and measures the latency.
 * Returns undefined when none of the Services exists in `state` (nothing worth a separate sync).
 * The result does not alias `state`'s live maps, so it stays valid after the next build.
 */
export function restrictState(state: DesiredState, names: ReadonlySet<string>): DesiredState | undefined {
  const services = new Map<string, ServicePortState>();
  const sortedKeys: string[] = [];
  const present = new Set<string>();
  const noLocal = { internal: 0, external: 0 };
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key);
    if (!sp || !names.has(sp.info.serviceName)) continue;
    services.set(key, sp);
    sortedKeys.push(key);
    present.add(sp.info.serviceName);
    if (sp.localEndpoints.length === 0) {
      if (sp.info.internalPolicyLocal) noLocal.internal++;
      if (sp.info.externalPolicyLocal) noLocal.external++;
    }
  }
  if (present.size === 0) return undefined;
  const pick = (m: ReadonlyMap<string, number>): Map<string, number> =>
    new Map([...m].filter(([nsn]) => present.has(nsn)));
  return {
    ...state,
    services,
    sortedKeys,
    changedServices: present,
    healthCheckNodePorts: pick(state.healthCheckNodePorts),
    localReadyEndpoints: pick(state.localReadyEndpoints),
    noLocalEndpoints: noLocal,
    conntrack: { udpServicePorts: new Set(), deletedUDPClusterIPs: new Set() },
    lastChangeTriggerTimes: [],
  };
}
