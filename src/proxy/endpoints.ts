/**
 * EndpointSlice merging (upstream endpointslicecache.go semantics): the endpoints of each service
 * port of one service, for one IP family.
 */
import { familyOfValid } from '../net/ip.js';
import type { EndpointSlice, IPFamily, ServicePortName } from '../model/types.js';
import { servicePortKey } from '../model/types.js';
import type { Endpoint } from './types.js';

/** Compares endpoint strings as upstream sorts them: plain lexicographic string order. */
export function compareEndpointStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Merges the slices of one service ("ns/name") into endpoints per service port key (one slice may
 * be passed as itself).
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
  slices: Iterable<EndpointSlice> | EndpointSlice,
  family: IPFamily,
  nodeName: string,
): Map<string, Endpoint[]> {
  if (!isIterable(slices)) return mergeOne(namespace, serviceName, slices, family, nodeName);
  const list = Array.isArray(slices) ? (slices as EndpointSlice[]) : [...slices];
  if (list.length === 1) return mergeOne(namespace, serviceName, list[0]!, family, nodeName);
  const byPort = new Map<string, Map<string, Endpoint>>();
  const sorted =
    list.length > 1 ? [...list].sort((a, b) => compareEndpointStrings(a.meta.name, b.meta.name)) : list;
  for (const slice of sorted) {
    if (slice.addressType !== family) continue;
    for (const sp of slice.ports) {
      if (sp.name === undefined || sp.port === undefined || sp.port === 0 || sp.protocol === undefined)
        continue;
      const spn: ServicePortName = { namespace, name: serviceName, port: sp.name, protocol: sp.protocol };
      const key = servicePortKey(spn);
      let set = byPort.get(key);
      if (!set) byPort.set(key, (set = new Map<string, Endpoint>()));
      const v6 = family === 'IPv6';
      for (const ep of slice.endpoints) {
        const addr = ep.addresses[0];
        if (addr === undefined || familyOfValid(addr) !== family) continue;
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        const endpoint = v6 ? `[${addr}]:${sp.port}` : `${addr}:${sp.port}`;
        if (!isLocal && set.has(endpoint)) continue;
        set.set(endpoint, makeEndpoint(addr, sp.port, endpoint, isLocal, ep));
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

function isIterable(s: Iterable<EndpointSlice> | EndpointSlice): s is Iterable<EndpointSlice> {
  return (s as EndpointSlice).kind !== 'EndpointSlice';
}

function makeEndpoint(
  addr: string,
  port: number,
  endpoint: string,
  isLocal: boolean,
  ep: EndpointSlice['endpoints'][number],
): Endpoint {
  const c = ep.conditions;
  const ready = c.ready ?? true;
  const zh = ep.hints?.forZones;
  const nh = ep.hints?.forNodes;
  // One fixed object shape (no spreads): cheap to build at 10^5 endpoints.
  return {
    ip: addr,
    port,
    endpoint,
    isLocal,
    ready,
    serving: c.serving ?? ready,
    terminating: c.terminating ?? false,
    zoneHints: zh && zh.length > 0 ? new Set(zh) : undefined,
    nodeHints: nh && nh.length > 0 ? new Set(nh) : undefined,
    nodeName: ep.nodeName ?? '',
    zone: ep.zone ?? '',
  };
}

function allOfFamily(endpoints: EndpointSlice['endpoints'], family: IPFamily): boolean {
  for (const ep of endpoints) {
    const addr = ep.addresses[0];
    if (addr === undefined || familyOfValid(addr) !== family) return false;
  }
  return true;
}

const COLON = 0x3a;
const BRACKET = 0x5d;

/**
 * The order of `${a}:${port}` and `${b}:${port}` (IPv4; `[${a}]:${port}` for IPv6, `term` the
 * character after the address) as compareEndpointStrings gives it, for one port, without building
 * the strings: the address strings compared as if `term` followed each.
 */
function compareAddresses(a: string, b: string, term: number): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  if (a.length === b.length) return 0;
  return a.length < b.length ? term - b.charCodeAt(n) : a.charCodeAt(n) - term;
}

/** The common case, one slice per service: no cross-slice dedupe maps unless the slice repeats itself. */
function mergeOne(
  namespace: string,
  serviceName: string,
  slice: EndpointSlice,
  family: IPFamily,
  nodeName: string,
): Map<string, Endpoint[]> {
  const out = new Map<string, Endpoint[]>();
  if (slice.addressType !== family) return out;
  const v6 = family === 'IPv6';
  for (const sp of slice.ports) {
    if (sp.name === undefined || sp.port === undefined || sp.port === 0 || sp.protocol === undefined)
      continue;
    const key = servicePortKey({ namespace, name: serviceName, port: sp.name, protocol: sp.protocol });
    const prev = out.get(key);
    const fresh = prev === undefined || prev.length === 0;
    // "ip:port" / "[ip]:port" as the address joined to one suffix string per port: one string
    // object per endpoint where a template literal makes two.
    const port = sp.port;
    const suffix = v6 ? `]:${port}` : `:${port}`;
    let list: Endpoint[];
    if (fresh && allOfFamily(slice.endpoints, family)) {
      // Usually every endpoint counts: map() gives a list of exactly that length (pushes would
      // leave room for 17, kept for as long as the state lives).
      list = slice.endpoints.map((ep) => {
        const addr = ep.addresses[0]!;
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        return makeEndpoint(addr, port, v6 ? '[' + addr + suffix : addr + suffix, isLocal, ep);
      });
    } else {
      list = prev ?? [];
      for (const ep of slice.endpoints) {
        const addr = ep.addresses[0];
        if (addr === undefined || familyOfValid(addr) !== family) continue;
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        const endpoint = v6 ? '[' + addr + suffix : addr + suffix;
        list.push(makeEndpoint(addr, port, endpoint, isLocal, ep));
      }
    }
    // Slices usually list their endpoints in order already: sort only when they are not. The check
    // compares addresses, not the endpoint strings: comparing a concatenated string makes V8 flatten
    // it into a copy (50,000 copies at 10k Services), and within one list the port is the same.
    // (A second slice port of the same name and protocol appends to the list: that list, whose ports
    // may differ, is sorted and deduplicated by endpoint string below.)
    const term = v6 ? BRACKET : COLON;
    let sorted = true;
    let dup = false;
    for (let i = 1; i < list.length && fresh; i++) {
      const c = compareAddresses(list[i - 1]!.ip, list[i]!.ip, term);
      if (c > 0) sorted = false;
      else if (c === 0) dup = true;
    }
    if (!sorted && fresh) {
      list.sort((a, b) => compareAddresses(a.ip, b.ip, term));
      dup = false;
      for (let i = 1; i < list.length; i++) if (list[i]!.ip === list[i - 1]!.ip) dup = true;
    }
    // A slice listing the same ip:port twice (or a port name twice) is rare: dedupe only then.
    if (dup || !fresh) {
      const m = new Map<string, Endpoint>();
      for (const e of list) if (!m.has(e.endpoint) || e.isLocal) m.set(e.endpoint, e);
      out.set(
        key,
        [...m.values()].sort((a, b) => compareEndpointStrings(a.endpoint, b.endpoint)),
      );
    } else out.set(key, list);
  }
  return out;
}
