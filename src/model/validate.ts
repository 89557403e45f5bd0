/**
 * Turns wire JSON (from the API server or a manifest file) into the typed model, checking every field
 * kube-proxy reads with Kubernetes' own rules. A failure names the object, the field and the bad value.
 *
 * Why this strict: names, namespaces, port names and addresses end up in iptables comments, chain names
 * and nft scripts. Anything outside the Kubernetes grammar (quotes, spaces, newlines) is refused here,
 * so no renderer ever has to escape.
 */
import { canonicalIP, parseCIDR, parseIPSloppy } from '../net/ip.js';
import type {
  EndpointConditions,
  EndpointSlice,
  KubeObject,
  LoadBalancerIngress,
  Node,
  ObjectMeta,
  Protocol,
  Service,
  ServiceCIDR,
  ServicePortSpec,
  ServiceType,
  SliceEndpoint,
  SlicePort,
  TrafficPolicy,
} from './types.js';
import { DEFAULT_STICKY_SECONDS } from './types.js';
import { KpError } from '../errors.js';

/** Thrown (and returned) when an object fails validation; `field` is a JSON path like spec.ports[1].name. */
export class ValidationError extends KpError {
  declare readonly code: 'KP_ERR_INVALID_OBJECT';
  constructor(
    readonly kind: string,
    readonly namespace: string,
    readonly objectName: string,
    readonly field: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    const who = namespace ? `${namespace}/${objectName}` : objectName;
    super(
      'KP_ERR_INVALID_OBJECT',
      `invalid ${kind} ${who || '<unnamed>'}: ${field}: ${reason} (value: ${preview(value)})`,
    );
  }
}

function preview(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDNS1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}
export function isDNS1035Label(s: string): boolean {
  return s.length <= 63 && DNS1035_LABEL.test(s);
}
export function isDNS1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}
/** IANA_SVC_NAME: the rule for Service port names. */
export function isIANASvcName(s: string): boolean {
  return (
    s.length <= 15 &&
    /^[-a-z0-9]+$/.test(s) &&
    /[a-z]/.test(s) &&
    !s.includes('--') &&
    !s.startsWith('-') &&
    !s.endsWith('-')
  );
}
export function isLabelValue(s: string): boolean {
  return s.length <= 63 && LABEL_VALUE.test(s);
}

type Rec = Record<string, unknown>;
function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The path of a field inside the items of one list ("endpoints[3].conditions.ready",
 * "endpoints[3].addresses[0]"), turned into text only when a check fails: a 10,000-slice load would
 * otherwise build half a million path strings that nothing reads. One per list, re-aimed in place
 * (item(), then at() before each check), so it is only valid until the next at().
 */
class ItemPath {
  private index = 0;
  private rest = '';
  private inner = -1;
  constructor(private readonly list: string) {}
  item(i: number): this {
    this.index = i;
    this.rest = '';
    this.inner = -1;
    return this;
  }
  at(rest: string, inner = -1): this {
    this.rest = rest;
    this.inner = inner;
    return this;
  }
  toString(): string {
    return `${this.list}[${this.index}]${this.rest}${this.inner >= 0 ? `[${this.inner}]` : ''}`;
  }
}

const NO_STRINGS: Readonly<Record<string, string>> = Object.freeze({});
const NO_ITEMS: readonly never[] = Object.freeze([]);

/**
 * Port lists repeat from object to object (most slices list one port named "http", TCP 8080; most
 * ClusterIP Services one port without a node port): equal lists are one frozen list, shared, found
 * by a text key. At most SHARED_LISTS_MAX distinct lists are kept (a list beyond that stays the
 * object's own), so a cluster of distinct ports cannot grow the table without bound.
 */
const SHARED_LISTS_MAX = 4096;
const sharedPortLists = new Map<string, readonly object[]>();
function sharedList<T extends object>(key: string | undefined, list: T[]): readonly T[] {
  if (key === undefined) return list;
  const known = sharedPortLists.get(key);
  if (known !== undefined) return known as readonly T[];
  if (sharedPortLists.size >= SHARED_LISTS_MAX) return list;
  for (const item of list) Object.freeze(item);
  sharedPortLists.set(key, Object.freeze(list));
  return list;
}
/** The key of a Service's port list: up to four ports, none with a node port (those are its own). */
function servicePortsKey(ports: readonly ServicePortSpec[]): string | undefined {
  if (ports.length === 0 || ports.length > 4) return undefined;
  let key = 'S';
  for (const p of ports) {
    if (p.nodePort !== 0) return undefined;
    key += `|${p.name}/${p.protocol}/${p.port}`;
  }
  return key;
}
/** The key of a slice's port list of up to four ports ("\u0000": no name, "-": no port number). */
function slicePortsKey(ports: readonly SlicePort[]): string | undefined {
  if (ports.length === 0 || ports.length > 4) return undefined;
  let key = 'E';
  for (const p of ports) key += `|${p.name ?? '\u0000'}/${p.protocol}/${p.port ?? '-'}`;
  return key;
}

function isPlainStringEntry(this: Rec, k: string): boolean {
  return k !== '__proto__' && typeof this[k] === 'string';
}

/** A field path: text, or an ItemPath read when a check fails. */
type Field = string | ItemPath;

/** Field reader bound to one object, so every error carries kind/namespace/name. */
class Reader {
  constructor(
    readonly kind: string,
    readonly namespace: string,
    readonly name: string,
  ) {}
  fail(field: Field, value: unknown, reason: string): never {
    throw new ValidationError(this.kind, this.namespace, this.name, String(field), value, reason);
  }
  rec(v: unknown, field: Field, optional = true): Rec {
    if (v === undefined || v === null) return optional ? {} : this.fail(field, v, 'required');
    return isRec(v) ? v : this.fail(field, v, 'must be an object');
  }
  arr(v: unknown, field: Field): unknown[] {
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v : this.fail(field, v, 'must be a list');
  }
  str(v: unknown, field: Field, def = ''): string {
    if (v === undefined || v === null) return def;
    return typeof v === 'string' ? v : this.fail(field, v, 'must be a string');
  }
  optStr(v: unknown, field: Field): string | undefined {
    return v === undefined || v === null ? undefined : this.str(v, field);
  }
  bool(v: unknown, field: Field): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'boolean' ? v : this.fail(field, v, 'must be a boolean');
  }
  int(v: unknown, field: Field, min: number, max: number, def?: number): number {
    if ((v === undefined || v === null) && def !== undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.fail(field, v, 'must be an integer');
    if (v < min || v > max) return this.fail(field, v, `must be between ${min} and ${max}`);
    return v;
  }
  ip(v: unknown, field: Field): string {
    const s = this.str(v, field);
    const c = canonicalIP(s);
    return c ?? this.fail(field, v, 'must be a valid IP address');
  }
  enumOf<T extends string>(v: unknown, field: Field, allowed: readonly T[], def: T): T {
    if (v === undefined || v === null || v === '') return def;
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    return this.fail(field, v, `must be one of ${allowed.join(', ')}`);
  }
  stringMap(v: unknown, field: string): Readonly<Record<string, string>> {
    const r = this.rec(v, field);
    const keys = Object.keys(r);
    // No annotations (most objects) or no labels: one shared frozen empty map.
    if (keys.length === 0) return NO_STRINGS;
    // A plain object of strings only (what a parser gives for labels) is kept as it is, not copied:
    // the copy would hold the same entries ("__proto__" aside, which a copy cannot hold as its own).
    if (Object.getPrototypeOf(r) === Object.prototype && keys.every(isPlainStringEntry, r))
      return r as Record<string, string>;
    const out: Record<string, string> = {};
    // The path is built only for a value that is not a string (str() decides what that means).
    for (const k of keys) {
      const val = r[k];
      out[k] = typeof val === 'string' ? val : this.str(val, `${field}[${k}]`);
    }
    return out;
  }
}

function readMeta(
  kind: string,
  raw: Rec,
  namespaced: boolean,
  nameRule: (s: string) => boolean,
  ruleName: string,
): { r: Reader; meta: ObjectMeta } {
  const md = isRec(raw.metadata) ? raw.metadata : {};
  const name = typeof md.name === 'string' ? md.name : '';
  const namespace = namespaced
    ? typeof md.namespace === 'string' && md.namespace !== ''
      ? md.namespace
      : 'default'
    : '';
  const r = new Reader(kind, namespace, name);
  if (!isRec(raw.metadata)) r.fail('metadata', raw.metadata, 'required');
  if (!name) r.fail('metadata.name', md.name, 'required');
  if (!nameRule(name)) r.fail('metadata.name', name, `must be a valid ${ruleName}`);
  if (namespaced && !isDNS1123Label(namespace))
    r.fail('metadata.namespace', namespace, 'must be a valid DNS-1123 label');
  const meta: { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] } = {
    namespace,
    name,
    uid: r.str(md.uid, 'metadata.uid'),
    resourceVersion: r.str(md.resourceVersion, 'metadata.resourceVersion'),
    labels: r.stringMap(md.labels, 'metadata.labels'),
    annotations: r.stringMap(md.annotations, 'metadata.annotations'),
  };
  // Assignment, not a spread of a one-key object (see endpoint conditions).
  if (typeof md.deletionTimestamp === 'string') meta.deletionTimestamp = md.deletionTimestamp;
  return { r, meta };
}

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const POLICIES: readonly TrafficPolicy[] = ['Cluster', 'Local'];

/** Validates a core/v1 Service. */
export function validateService(raw: unknown): Service {
  if (!isRec(raw)) throw new ValidationError('Service', '', '', '', raw, 'must be an object');
  const { r, meta } = readMeta('Service', raw, true, isDNS1035Label, 'DNS-1035 label');
  const spec = r.rec(raw.spec, 'spec');
  const status = r.rec(raw.status, 'status');
  const type = r.enumOf<ServiceType>(
    spec.type,
    'spec.type',
    ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'],
    'ClusterIP',
  );

  const clusterIPRaw = r.str(spec.clusterIP, 'spec.clusterIP');
  let clusterIP = '';
  if (clusterIPRaw === 'None') clusterIP = 'None';
  else if (clusterIPRaw !== '') clusterIP = r.ip(clusterIPRaw, 'spec.clusterIP');
  const clusterIPs = r
    .arr(spec.clusterIPs, 'spec.clusterIPs')
    .map((v, i) => (v === 'None' ? 'None' : r.ip(v, `spec.clusterIPs[${i}]`)));
  if (clusterIPs.length > 2) r.fail('spec.clusterIPs', spec.clusterIPs, 'at most two entries');
  if (clusterIPs.length > 0 && clusterIP !== '' && clusterIPs[0] !== clusterIP) {
    r.fail('spec.clusterIPs[0]', spec.clusterIPs, 'must match spec.clusterIP');
  }

  const portsRaw = r.arr(spec.ports, 'spec.ports');
  const seen = new Set<string>();
  const pp = new ItemPath('spec.ports');
  const ports: ServicePortSpec[] = portsRaw.map((p, i) => {
    const pr = r.rec(p, pp.item(i), false);
    const name = r.str(pr.name, pp.at('.name'));
    if (name !== '' && !isIANASvcName(name)) r.fail(pp.at('.name'), name, 'must be a valid IANA_SVC_NAME');
    if (name === '' && portsRaw.length > 1)
      r.fail(pp.at('.name'), name, 'required when a Service has more than one port');
    const protocol = r.enumOf<Protocol>(pr.protocol, pp.at('.protocol'), PROTOCOLS, 'TCP');
    const port = r.int(pr.port, pp.at('.port'), 1, 65535);
    const nodePort = r.int(pr.nodePort, pp.at('.nodePort'), 0, 65535, 0);
    if (seen.has(name)) r.fail(pp.at('.name'), name, 'duplicate port name');
    seen.add(name);
    return { name, protocol, port, nodePort };
  });
  const externalIPs = r
    .arr(spec.externalIPs, 'spec.externalIPs')
    .map((v, i) => r.ip(v, `spec.externalIPs[${i}]`));
  const lb = r.rec(status.loadBalancer, 'status.loadBalancer');
  const loadBalancerIngress: LoadBalancerIngress[] = r
    .arr(lb.ingress, 'status.loadBalancer.ingress')
    .map((v, i) => {
      const f = `status.loadBalancer.ingress[${i}]`;
      const ing = r.rec(v, f, false);
      const ipRaw = r.str(ing.ip, `${f}.ip`);
      const ip = ipRaw === '' ? '' : r.ip(ipRaw, `${f}.ip`);
      const hostname = r.str(ing.hostname, `${f}.hostname`);
      if (hostname !== '' && !isDNS1123Subdomain(hostname))
        r.fail(`${f}.hostname`, hostname, 'must be a valid DNS-1123 subdomain');
      const ipMode =
        ing.ipMode === undefined || ing.ipMode === null
          ? undefined
          : r.enumOf(ing.ipMode, `${f}.ipMode`, ['VIP', 'Proxy'] as const, 'VIP');
      return { ip, hostname, ...(ipMode ? { ipMode } : {}) };
    });
  const loadBalancerSourceRanges = r
    .arr(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges')
    .map((v, i) => {
      const s = r.str(v, `spec.loadBalancerSourceRanges[${i}]`);
      if (!parseCIDR(s.trim())) r.fail(`spec.loadBalancerSourceRanges[${i}]`, s, 'must be a valid CIDR');
      return s;
    });
  const externalTrafficPolicy = r.enumOf(
    spec.externalTrafficPolicy,
    'spec.externalTrafficPolicy',
    POLICIES,
    'Cluster',
  );
  const internalTrafficPolicy = r.enumOf(
    spec.internalTrafficPolicy,
    'spec.internalTrafficPolicy',
    POLICIES,
    'Cluster',
  );
  const sessionAffinity = r.enumOf(
    spec.sessionAffinity,
    'spec.sessionAffinity',
    ['None', 'ClientIP'] as const,
    'None',
  );
  const sac = r.rec(spec.sessionAffinityConfig, 'spec.sessionAffinityConfig');
  const cip = r.rec(sac.clientIP, 'spec.sessionAffinityConfig.clientIP');
  const sessionAffinityTimeoutSeconds = r.int(
    cip.timeoutSeconds,
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
    1,
    86400,
    DEFAULT_STICKY_SECONDS,
  );
  const healthCheckNodePort = r.int(spec.healthCheckNodePort, 'spec.healthCheckNodePort', 0, 65535, 0);
  const trafficDistribution = r.optStr(spec.trafficDistribution, 'spec.trafficDistribution');
  const externalName = r.optStr(spec.externalName, 'spec.externalName');
  if (
    type === 'ExternalName' &&
    externalName !== undefined &&
    !isDNS1123Subdomain(externalName.replace(/\.$/, ''))
  ) {
    r.fail('spec.externalName', externalName, 'must be a valid DNS-1123 subdomain');
  }
  // Empty lists (most Services have no external IPs, ingress or source ranges) are one shared frozen
  // list; optional fields are assigned, not spread in.
  const out: { -readonly [K in keyof Service]: Service[K] } = {
    kind: 'Service',
    meta,
    type,
    clusterIP: clusterIP === '' && clusterIPs.length > 0 ? (clusterIPs[0] ?? '') : clusterIP,
    clusterIPs: clusterIPs.length > 0 ? clusterIPs : clusterIP !== '' ? [clusterIP] : NO_ITEMS,
    ports: sharedList(servicePortsKey(ports), ports),
    externalIPs: externalIPs.length > 0 ? externalIPs : NO_ITEMS,
    loadBalancerIngress: loadBalancerIngress.length > 0 ? loadBalancerIngress : NO_ITEMS,
    loadBalancerSourceRanges: loadBalancerSourceRanges.length > 0 ? loadBalancerSourceRanges : NO_ITEMS,
    externalTrafficPolicy,
    internalTrafficPolicy,
    sessionAffinity,
    sessionAffinityTimeoutSeconds,
    healthCheckNodePort,
  };
  if (trafficDistribution !== undefined) out.trafficDistribution = trafficDistribution;
  if (externalName !== undefined) out.externalName = externalName;
  return out;
}

/**
 * Endpoint conditions take one of 27 values (each flag true, false or absent): every endpoint shares
 * the frozen object of its value instead of holding its own (50,000 objects fewer at 10,000 slices).
 * Each is built by assignment, not by spreading one-key objects: once optimised, the spread gave
 * every object its own hidden class.
 */
const CONDITIONS: EndpointConditions[] = [];
for (let i = 0; i < 27; i++) {
  const flag = (d: number): boolean | undefined => (d === 0 ? undefined : d === 1);
  const ready = flag(i % 3);
  const serving = flag(Math.floor(i / 3) % 3);
  const terminating = flag(Math.floor(i / 9));
  const c: { -readonly [K in keyof EndpointConditions]: EndpointConditions[K] } = {};
  if (ready !== undefined) c.ready = ready;
  if (serving !== undefined) c.serving = serving;
  if (terminating !== undefined) c.terminating = terminating;
  CONDITIONS.push(Object.freeze(c));
}
function sharedConditions(
  ready: boolean | undefined,
  serving: boolean | undefined,
  terminating: boolean | undefined,
): EndpointConditions {
  return CONDITIONS[flagDigit(ready) + 3 * flagDigit(serving) + 9 * flagDigit(terminating)]!;
}
function flagDigit(b: boolean | undefined): number {
  return b === undefined ? 0 : b ? 1 : 2;
}

/** The API server's limit on endpoints per EndpointSlice (maxEndpoints in its validation). */
export const MAX_SLICE_ENDPOINTS = 1000;

/** Validates a discovery.k8s.io/v1 EndpointSlice. Addresses are normalised with sloppy parsing. */
export function validateEndpointSlice(raw: unknown): EndpointSlice {
  if (!isRec(raw)) throw new ValidationError('EndpointSlice', '', '', '', raw, 'must be an object');
  const { r, meta } = readMeta('EndpointSlice', raw, true, isDNS1123Subdomain, 'DNS-1123 subdomain');
  const addressType = r.enumOf(raw.addressType, 'addressType', ['IPv4', 'IPv6', 'FQDN'] as const, 'IPv4');
  if (raw.addressType === undefined) r.fail('addressType', raw.addressType, 'required');
  const rawEndpoints = r.arr(raw.endpoints, 'endpoints');
  // The API server refuses a slice over 1,000 endpoints; a bigger one is a hand-made (or hostile) input
  // that would cost a rule per endpoint in every sync. The value is the count, not the list.
  if (rawEndpoints.length > MAX_SLICE_ENDPOINTS)
    r.fail('endpoints', rawEndpoints.length, `must have at most ${MAX_SLICE_ENDPOINTS} items`);
  const ep = new ItemPath('endpoints');
  const endpoints: SliceEndpoint[] = rawEndpoints.map((v, i) => {
    const e = r.rec(v, ep.item(i), false);
    const rawAddrs = r.arr(e.addresses, ep.at('.addresses'));
    let addrs: string[] | undefined;
    for (let j = 0; j < rawAddrs.length; j++) {
      const s = r.str(rawAddrs[j], ep.at('.addresses', j));
      let a = s;
      if (addressType === 'FQDN') {
        if (!isDNS1123Subdomain(s)) r.fail(ep.at('.addresses', j), s, 'must be a valid DNS-1123 subdomain');
      } else a = parseIPSloppy(s) ?? r.fail(ep.at('.addresses', j), s, 'must be a valid IP address');
      // A copy only once an entry differs from its text (a null, a non-canonical IP).
      if (addrs === undefined && a !== rawAddrs[j]) addrs = (rawAddrs as string[]).slice(0, j);
      addrs?.push(a);
    }
    // Usually every address is already canonical: keep the parsed list itself (the object just
    // read, which nothing else holds), not a copy.
    addrs ??= rawAddrs as string[];
    if (addrs.length === 0) r.fail(ep.at('.addresses'), e.addresses, 'must have at least one address');
    const c = r.rec(e.conditions, ep.at('.conditions'));
    const conditions = sharedConditions(
      r.bool(c.ready, ep.at('.conditions.ready')),
      r.bool(c.serving, ep.at('.conditions.serving')),
      r.bool(c.terminating, ep.at('.conditions.terminating')),
    );
    const nodeName = r.optStr(e.nodeName, ep.at('.nodeName'));
    if (nodeName !== undefined && !isDNS1123Subdomain(nodeName))
      r.fail(ep.at('.nodeName'), nodeName, 'must be a valid DNS-1123 subdomain');
    const zone = r.optStr(e.zone, ep.at('.zone'));
    if (zone !== undefined && !isLabelValue(zone))
      r.fail(ep.at('.zone'), zone, 'must be a valid label value');
    let hints: SliceEndpoint['hints'];
    if (e.hints !== undefined && e.hints !== null) {
      const f = String(ep.item(i)); // hints are rare: their paths are built as text
      const h = r.rec(e.hints, `${f}.hints`);
      const forZones =
        h.forZones === undefined
          ? undefined
          : r.arr(h.forZones, `${f}.hints.forZones`).map((z, k) => {
              const zn = r.str(r.rec(z, `${f}.hints.forZones[${k}]`).name, `${f}.hints.forZones[${k}].name`);
              return isLabelValue(zn)
                ? zn
                : r.fail(`${f}.hints.forZones[${k}].name`, zn, 'must be a valid label value');
            });
      const forNodes =
        h.forNodes === undefined
          ? undefined
          : r.arr(h.forNodes, `${f}.hints.forNodes`).map((z, k) => {
              const nn = r.str(r.rec(z, `${f}.hints.forNodes[${k}]`).name, `${f}.hints.forNodes[${k}].name`);
              return isDNS1123Subdomain(nn)
                ? nn
                : r.fail(`${f}.hints.forNodes[${k}].name`, nn, 'must be a valid DNS-1123 subdomain');
            });
      hints = { ...(forZones ? { forZones } : {}), ...(forNodes ? { forNodes } : {}) };
    }
    // Without hints (nearly always), one literal per shape: an object of exactly its fields. Adding
    // fields to a two-field literal put them in a second block (80 bytes per endpoint where 48 do).
    // Not spreads of one-key objects either (see conditions above).
    if (!hints) {
      if (nodeName)
        return zone
          ? { addresses: addrs, conditions, nodeName, zone }
          : { addresses: addrs, conditions, nodeName };
      return zone ? { addresses: addrs, conditions, zone } : { addresses: addrs, conditions };
    }
    const out: { -readonly [K in keyof SliceEndpoint]: SliceEndpoint[K] } = { addresses: addrs, conditions };
    if (nodeName) out.nodeName = nodeName;
    if (zone) out.zone = zone;
    out.hints = hints;
    return out;
  });
  const portPath = new ItemPath('ports');
  const ports: SlicePort[] = r.arr(raw.ports, 'ports').map((v, i) => {
    const p = r.rec(v, portPath.item(i), false);
    const name = r.optStr(p.name, portPath.at('.name'));
    if (name !== undefined && name !== '' && !isDNS1123Label(name))
      r.fail(portPath.at('.name'), name, 'must be a valid DNS-1123 label');
    const protocol =
      p.protocol === undefined || p.protocol === null
        ? 'TCP'
        : r.enumOf<Protocol>(p.protocol, portPath.at('.protocol'), PROTOCOLS, 'TCP');
    const port =
      p.port === undefined || p.port === null ? undefined : r.int(p.port, portPath.at('.port'), 0, 65535);
    // Assignment keeps one hidden class per shape (see conditions above).
    const sp: { -readonly [K in keyof SlicePort]: SlicePort[K] } = {};
    if (name !== undefined) sp.name = name;
    sp.protocol = protocol;
    if (port !== undefined) sp.port = port;
    return sp;
  });
  const svc = meta.labels['kubernetes.io/service-name'];
  if (svc !== undefined && !isDNS1035Label(svc))
    r.fail('metadata.labels[kubernetes.io/service-name]', svc, 'must be a valid Service name');
  return {
    kind: 'EndpointSlice',
    meta,
    addressType,
    endpoints,
    ports: sharedList(slicePortsKey(ports), ports),
  };
}

/** Validates a core/v1 Node (only the fields kube-proxy reads). */
export function validateNode(raw: unknown): Node {
  if (!isRec(raw)) throw new ValidationError('Node', '', '', '', raw, 'must be an object');
  const { r, meta } = readMeta('Node', raw, false, isDNS1123Subdomain, 'DNS-1123 subdomain');
  const spec = r.rec(raw.spec, 'spec');
  const status = r.rec(raw.status, 'status');
  const addresses = r.arr(status.addresses, 'status.addresses').map((v, i) => {
    const a = r.rec(v, `status.addresses[${i}]`, false);
    const type = r.str(a.type, `status.addresses[${i}].type`);
    const addr = r.str(a.address, `status.addresses[${i}].address`);
    if (type === 'InternalIP' || type === 'ExternalIP')
      return { type, address: r.ip(addr, `status.addresses[${i}].address`) };
    return { type, address: addr };
  });
  const podCIDRsRaw = r.arr(spec.podCIDRs, 'spec.podCIDRs');
  const podCIDRs = (podCIDRsRaw.length ? podCIDRsRaw : spec.podCIDR ? [spec.podCIDR] : []).map((v, i) => {
    const s = r.str(v, `spec.podCIDRs[${i}]`);
    return parseCIDR(s)?.text ?? r.fail(`spec.podCIDRs[${i}]`, s, 'must be a valid CIDR');
  });
  const taints = r.arr(spec.taints, 'spec.taints').map((v, i) => {
    const t = r.rec(v, `spec.taints[${i}]`, false);
    const value = r.optStr(t.value, `spec.taints[${i}].value`);
    return {
      key: r.str(t.key, `spec.taints[${i}].key`),
      effect: r.str(t.effect, `spec.taints[${i}].effect`),
      ...(value !== undefined ? { value } : {}),
    };
  });
  return { kind: 'Node', meta, addresses, podCIDRs, taints };
}

/** Validates a networking.k8s.io/v1 ServiceCIDR. */
export function validateServiceCIDR(raw: unknown): ServiceCIDR {
  if (!isRec(raw)) throw new ValidationError('ServiceCIDR', '', '', '', raw, 'must be an object');
  const { r, meta } = readMeta('ServiceCIDR', raw, false, isDNS1123Subdomain, 'DNS-1123 subdomain');
  const spec = r.rec(raw.spec, 'spec');
  const cidrs = r.arr(spec.cidrs, 'spec.cidrs').map((v, i) => {
    const s = r.str(v, `spec.cidrs[${i}]`);
    return parseCIDR(s)?.text ?? r.fail(`spec.cidrs[${i}]`, s, 'must be a valid CIDR');
  });
  return { kind: 'ServiceCIDR', meta, cidrs };
}

/** The apiVersion/kind pairs kube-proxy consumes. */
export const KNOWN_KINDS: Readonly<
  Record<string, { apiVersions: readonly string[]; validate: (raw: unknown) => KubeObject }>
> = {
  Service: { apiVersions: ['v1'], validate: validateService },
  EndpointSlice: { apiVersions: ['discovery.k8s.io/v1'], validate: validateEndpointSlice },
  Node: { apiVersions: ['v1'], validate: validateNode },
  ServiceCIDR: {
    apiVersions: ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1'],
    validate: validateServiceCIDR,
  },
};

/** Validates any supported object by its `kind`; throws ValidationError, or returns undefined for other kinds. */
export function validateObject(raw: unknown): KubeObject | undefined {
  if (!isRec(raw)) throw new ValidationError('object', '', '', '', raw, 'must be an object');
  const kind = typeof raw.kind === 'string' ? raw.kind : '';
  const k = KNOWN_KINDS[kind];
  if (!k) return undefined;
  return k.validate(raw);
}
