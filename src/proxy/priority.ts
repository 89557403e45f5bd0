/**
 * Important Services first (kubernetes/kubernetes#133773): on a big cluster a new node's first full
 * sync can take seconds to minutes, and until it lands even the API server's Service is unreachable
 * from the node's pods. The sync loop therefore programs a small state holding only the priority
 * Services (always `default/kubernetes`, plus --priority-services) before the bulk; the tracker
 * builds that small state (StateTracker.buildSubset) without building the whole one first.
 *
 * Pure: no I/O.
 */
export { priorityServiceError } from '../model/extensions.js';

/** Always first, whatever the flag says: the API server's Service. */
export const API_SERVER_SERVICE = 'default/kubernetes';

/** --priority-services' default. */
export const DEFAULT_PRIORITY_SERVICES: readonly string[] = ['kube-system/kube-dns'];

/** The Services to program first: the API server's Service, then `configured`, without repeats. */
export function prioritySet(configured: readonly string[]): ReadonlySet<string> {
  return new Set([API_SERVER_SERVICE, ...configured]);
}
