/**
 * EndpointSlice merging (upstream endpointslicecache.go semantics): the endpoints of each service
 * port of one service, for one IP family.
 */
import { ipFamily, joinHostPort } from '../net/ip.js';
import type { EndpointSlice, IPFamily, ServicePortName } from '../model/types.js';
import { servicePortKey } from '../model/types.js';
import type { Endpoint } from './types.js';

/** Compares endpoint strings as upstream sorts them: plain lexicographic string order. */
export function compareEndpointStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Merges the slices of one service ("ns/name") into endpoints per service port key.
 * - slices of another address type are skipped (and FQDN slices);
 * - ports without a name or a port number (or port 0) are skipped; ports match the service by name;
 * - only addresses[0] of each endpoint counts, and only if it is of `family`;
 * - duplicates (same ip:port) across slices collapse; a local copy wins over a non-local one;
 * - the result is sorted by the "ip:port" string.
 * Slices are visited in name order so the result never depends on arrival order.
 */
export function mergeSlices(
  namespace: string,
  serviceName: string,
  slices: Iterable<EndpointSlice>,
  family: IPFamily,
  nodeName: string,
): Map<string, Endpoint[]> {
  const byPort = new Map<string, Map<string, Endpoint>>();
  const sorted = [...slices].sort((a, b) => compareEndpointStrings(a.meta.name, b.meta.name));
  for (const slice of sorted) {
    if (slice.addressType !== family) continue;
    for (const sp of slice.ports) {
      if (sp.name === undefined || sp.port === undefined || sp.port === 0 || sp.protocol === undefined) continue;
      const spn: ServicePortName = { namespace, name: serviceName, port: sp.name, protocol: sp.protocol };
      const key = servicePortKey(spn);
      let set = byPort.get(key);
      if (!set) byPort.set(key, (set = new Map()));
      for (const ep of slice.endpoints) {
        const addr = ep.addresses[0];
        if (addr === undefined || ipFamily(addr) !== family) continue;
        const ready = ep.conditions.ready ?? true;
        const serving = ep.conditions.serving ?? ready;
        const terminating = ep.conditions.terminating ?? false;
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        const endpoint = joinHostPort(addr, sp.port);
        const zh = ep.hints?.forZones;
        const nh = ep.hints?.forNodes;
        const info: Endpoint = {
          ip: addr,
          port: sp.port,
          endpoint,
          isLocal,
          ready,
          serving,
          terminating,
          ...(zh && zh.length > 0 ? { zoneHints: new Set(zh) } : {}),
          ...(nh && nh.length > 0 ? { nodeHints: new Set(nh) } : {}),
          nodeName: ep.nodeName ?? '',
          zone: ep.zone ?? '',
        };
        if (!set.has(endpoint) || isLocal) set.set(endpoint, info);
      }
    }
  }
  const out = new Map<string, Endpoint[]>();
  for (const [key, set] of byPort) {
    out.set(
      key,
      [...set.values()].sort((a, b) => compareEndpointStrings(a.endpoint, b.endpoint)),
    );
  }
  return out;
}
