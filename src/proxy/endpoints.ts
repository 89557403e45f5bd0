/**
 * EndpointSlice merging (upstream endpointslicecache.go semantics): the endpoints of each service
 * port of one service, for one IP family.
 */
import { familyOfValid } from '../net/ip.js';
import type { EndpointSlice, IPFamily, ServicePortName, SliceEndpoint } from '../model/types.js';
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
        set.set(endpoint, makeEndpoint(sp.port, isLocal, ep));
      }
    }
  }
  const out = new Map<string, Endpoint[]>();
  for (const [key, set] of byPort) out.set(key, sortedByEndpoint(set));
  return out;
}

/** The values of `byText` ("ip:port" -> endpoint) sorted by their key: each text built once. */
function sortedByEndpoint(byText: ReadonlyMap<string, Endpoint>): Endpoint[] {
  return [...byText].sort((a, b) => compareEndpointStrings(a[0], b[0])).map((kv) => kv[1]);
}

function isIterable(s: Iterable<EndpointSlice> | EndpointSlice): s is Iterable<EndpointSlice> {
  return (s as EndpointSlice).kind !== 'EndpointSlice';
}

/** Hints as sets, once per validated slice endpoint's hint list (hints are rare; the lists are shared). */
const hintSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function hintSet(names: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (names === undefined || names.length === 0) return undefined;
  let set = hintSets.get(names);
  if (set === undefined) hintSets.set(names, (set = new Set(names)));
  return set;
}

/**
 * An endpoint of one service port as the state holds it: its port and locality, and the validated
 * slice endpoint it came from, which the tracker keeps anyway; the address, conditions, node, zone,
 * hints and the "ip:port" text are read from there (or built) when asked for. Three fields where a
 * copy of every field and a rope for the "ip:port" took 144 bytes per endpoint (48 here): 250,000
 * endpoints at 50,000 Services.
 */
class SliceEndpointRef implements Endpoint {
  constructor(
    readonly port: number,
    readonly isLocal: boolean,
    private readonly from: SliceEndpoint,
  ) {}
  /** The slice endpoint's first address (the only one that counts, as upstream). */
  get ip(): string {
    return this.from.addresses[0]!;
  }
  get endpoint(): string {
    return endpointString(this.ip, this.port);
  }
  get ready(): boolean {
    return this.from.conditions.ready ?? true;
  }
  get serving(): boolean {
    const c = this.from.conditions;
    return c.serving ?? c.ready ?? true;
  }
  get terminating(): boolean {
    return this.from.conditions.terminating ?? false;
  }
  get zoneHints(): ReadonlySet<string> | undefined {
    return hintSet(this.from.hints?.forZones);
  }
  get nodeHints(): ReadonlySet<string> | undefined {
    return hintSet(this.from.hints?.forNodes);
  }
  get nodeName(): string {
    return this.from.nodeName ?? '';
  }
  get zone(): string {
    return this.from.zone ?? '';
  }
  /** The Endpoint's fields, as JSON (the tracker's change fingerprint, the state render). */
  toJSON(): Endpoint {
    return {
      ip: this.ip,
      port: this.port,
      endpoint: this.endpoint,
      isLocal: this.isLocal,
      ready: this.ready,
      serving: this.serving,
      terminating: this.terminating,
      zoneHints: this.zoneHints,
      nodeHints: this.nodeHints,
      nodeName: this.nodeName,
      zone: this.zone,
    };
  }
}

/** "ip:port", or "[ip]:port" for an IPv6 address. */
export function endpointString(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function makeEndpoint(port: number, isLocal: boolean, ep: SliceEndpoint): Endpoint {
  return new SliceEndpointRef(port, isLocal, ep);
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
    const port = sp.port;
    let list: Endpoint[];
    if (fresh && allOfFamily(slice.endpoints, family)) {
      // Usually every endpoint counts: map() gives a list of exactly that length (pushes would
      // leave room for 17, kept for as long as the state lives).
      list = slice.endpoints.map((ep) => {
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        return makeEndpoint(port, isLocal, ep);
      });
    } else {
      list = prev ?? [];
      for (const ep of slice.endpoints) {
        const addr = ep.addresses[0];
        if (addr === undefined || familyOfValid(addr) !== family) continue;
        const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
        list.push(makeEndpoint(port, isLocal, ep));
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
      for (const e of list) {
        const text = e.endpoint;
        if (!m.has(text) || e.isLocal) m.set(text, e);
      }
      out.set(key, sortedByEndpoint(m));
    } else out.set(key, list);
  }
  return out;
}
