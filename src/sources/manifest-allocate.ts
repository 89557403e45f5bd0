/**
 * What the API server's allocators would do for manifests: cluster IPs for Services that have none, node
 * ports for NodePort/LoadBalancer ports that have none, and a health-check node port for LoadBalancer
 * Services with externalTrafficPolicy Local. Pure.
 *
 * Properties (property-tested):
 * - no two allocations collide, and none collides with an IP or port written explicitly in any manifest;
 * - deterministic: the same Services (in any order) and the same `previous` give the same result;
 * - stable: each value starts from a hash of the Service's namespace/name (and port), probing linearly on
 *   collision, so a fresh start on the same files reproduces the same values; and a value recorded in
 *   `previous` is kept while it stays free and in range, so adding a Service never moves another one.
 */
import { createHash } from 'node:crypto';
import { cidrContains, cidrSize, ipAdd, parseCIDR, type CIDR, type IPFamily } from '../net/ip.js';
import type { Service, ServicePortSpec } from '../model/types.js';
import { namespacedName } from '../model/types.js';

export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

/** A Service plus the dual-stack request fields the domain model does not carry. */
export interface AllocationRequest {
  readonly service: Service;
  /** spec.ipFamilies as written (validated); empty when unset. */
  readonly ipFamilies: readonly IPFamily[];
  /** spec.ipFamilyPolicy as written; undefined when unset (SingleStack). */
  readonly ipFamilyPolicy?: IPFamilyPolicy;
}

export interface AllocationOptions {
  /** Service CIDRs; the first of each family is the allocation range, the first entry's family is primary. */
  readonly serviceClusterIPRanges: readonly string[];
  /** Inclusive node port range. */
  readonly nodePortRange: { readonly min: number; readonly max: number };
  /** Values from the previous run, by allocation key (see `allocationKey`); kept when still valid. */
  readonly previous?: ReadonlyMap<string, string | number>;
  /**
   * `filled` of the previous run: a Service object given again (its file was not re-read) that gets
   * the same values as last time comes back as last time's object, so that the caller's diff sees it
   * unchanged without comparing contents.
   */
  readonly previousFilled?: ReadonlyMap<Service, Service>;
}

export interface Allocation {
  readonly key: string;
  /** "ns/name" of the Service. */
  readonly service: string;
  readonly what: 'clusterIP' | 'nodePort' | 'healthCheckNodePort';
  /** The port name (for nodePort), else "". */
  readonly port: string;
  readonly value: string | number;
}

export interface AllocationProblem {
  readonly service: string;
  readonly what: Allocation['what'];
  readonly message: string;
}

export interface AllocationResult {
  /** Services in input order, with allocated values filled in. */
  readonly services: readonly Service[];
  /** Every value allocated (not explicit), in processing order. */
  readonly allocations: readonly Allocation[];
  readonly problems: readonly AllocationProblem[];
  /** Key to value of every allocation: pass as `previous` next time. */
  readonly next: ReadonlyMap<string, string | number>;
  /** Input Service -> its filled-in copy, for Services that got values: pass as `previousFilled` next time. */
  readonly filled: ReadonlyMap<Service, Service>;
}

/** The key an allocation is remembered by across runs. */
export function allocationKey(what: Allocation['what'], service: string, extra = ''): string {
  return extra === '' ? `${what}|${service}` : `${what}|${service}|${extra}`;
}

/** 64 bits of sha256: spreads keys evenly over any range and is the same on every run and machine. */
function hash64(s: string): bigint {
  return createHash('sha256').update(s).digest().readBigUInt64BE(0);
}

interface Range {
  readonly cidr: CIDR;
  /** First usable offset and number of usable addresses. */
  readonly first: bigint;
  readonly count: bigint;
}

function ipRange(cidr: CIDR): Range {
  const size = cidrSize(cidr);
  // Skip the network address and the first IP (the API server gives it to kubernetes.default);
  // IPv4 also loses its broadcast address.
  const first = 2n;
  const last = cidr.family === 'IPv4' ? size - 2n : size - 1n;
  return { cidr, first, count: last >= first ? last - first + 1n : 0n };
}

function needsClusterIP(s: Service): boolean {
  return s.type !== 'ExternalName' && s.clusterIP === '' && s.clusterIPs.length === 0;
}
function needsNodePorts(s: Service): boolean {
  return s.type === 'NodePort' || s.type === 'LoadBalancer';
}
function needsHealthCheckNodePort(s: Service): boolean {
  return s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local' && s.healthCheckNodePort === 0;
}

/**
 * Fills in missing cluster IPs, node ports and health-check node ports. Explicit values are reserved
 * first (all of them, across all Services); then values from `previous` are honoured where still free;
 * then the rest are allocated in (namespace/name) order. A range that is full or missing gives a problem
 * entry and leaves that field unset.
 */
export function allocateServices(
  requests: readonly AllocationRequest[],
  opts: AllocationOptions,
): AllocationResult {
  const ranges = new Map<IPFamily, Range>();
  let primary: IPFamily | undefined;
  for (const text of opts.serviceClusterIPRanges) {
    const c = parseCIDR(text.trim());
    if (!c) continue;
    primary ??= c.family;
    if (!ranges.has(c.family)) ranges.set(c.family, ipRange(c));
  }
  const previous = opts.previous ?? new Map<string, string | number>();
  const usedIPs = new Set<string>();
  const usedPorts = new Set<number>();
  for (const { service: s } of requests) {
    for (const ip of s.clusterIPs) if (ip !== 'None') usedIPs.add(ip);
    if (s.clusterIP !== '' && s.clusterIP !== 'None') usedIPs.add(s.clusterIP);
    for (const p of s.ports) if (p.nodePort !== 0) usedPorts.add(p.nodePort);
    if (s.healthCheckNodePort !== 0) usedPorts.add(s.healthCheckNodePort);
  }

  const { min, max } = opts.nodePortRange;
  const portCount = max >= min ? max - min + 1 : 0;
  const inPortRange = (p: number): boolean => p >= min && p <= max;

  // Work list of every missing value, so that `previous` values are claimed before any new value is
  // chosen: otherwise a newly added Service could take an address a live Service already had.
  interface Want {
    readonly idx: number;
    readonly key: string;
    readonly svc: string;
    readonly what: Allocation['what'];
    readonly port: string;
    readonly family?: IPFamily;
    value?: string | number;
  }
  const wants: Want[] = [];
  const problems: AllocationProblem[] = [];
  requests.forEach((req, idx) => {
    const s = req.service;
    const svc = namespacedName(s.meta);
    if (needsClusterIP(s)) {
      for (const family of wantedFamilies(req, ranges, primary, svc, problems)) {
        wants.push({
          idx,
          key: allocationKey('clusterIP', svc, family),
          svc,
          what: 'clusterIP',
          port: '',
          family,
        });
      }
    }
    if (needsNodePorts(s)) {
      for (const p of s.ports) {
        if (p.nodePort === 0)
          wants.push({
            idx,
            key: allocationKey('nodePort', svc, `${p.name}/${p.protocol}`),
            svc,
            what: 'nodePort',
            port: p.name,
          });
      }
    }
    if (needsHealthCheckNodePort(s))
      wants.push({
        idx,
        key: allocationKey('healthCheckNodePort', svc),
        svc,
        what: 'healthCheckNodePort',
        port: '',
      });
  });

  const free = (w: Want, v: string | number): boolean => {
    if (w.what === 'clusterIP') {
      const r = w.family ? ranges.get(w.family) : undefined;
      return (
        typeof v === 'string' &&
        r !== undefined &&
        cidrContains(r.cidr, v) &&
        !usedIPs.has(v) &&
        isUsableIP(r, v)
      );
    }
    return typeof v === 'number' && inPortRange(v) && !usedPorts.has(v);
  };
  const claim = (w: Want, v: string | number): void => {
    w.value = v;
    if (typeof v === 'string') usedIPs.add(v);
    else usedPorts.add(v);
  };

  for (const w of wants) {
    const prev = previous.get(w.key);
    if (prev !== undefined && free(w, prev)) claim(w, prev);
  }
  const order = wants
    .filter((w) => w.value === undefined)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const w of order) {
    if (w.what === 'clusterIP') {
      const r = ranges.get(w.family!)!;
      const v = probe(
        r.count,
        hash64(w.key),
        (off) => ipAdd(r.cidr.ip, r.first + off)!,
        (ip) => !usedIPs.has(ip),
      );
      if (v === undefined)
        problems.push({
          service: w.svc,
          what: w.what,
          message: `no free ${w.family} address in ${r.cidr.text}`,
        });
      else claim(w, v);
    } else {
      const v = probe(
        BigInt(portCount),
        hash64(w.key),
        (off) => min + Number(off),
        (p) => !usedPorts.has(p),
      );
      if (v === undefined)
        problems.push({
          service: w.svc,
          what: w.what,
          message: `no free port in node port range ${min}-${max}`,
        });
      else claim(w, v);
    }
  }

  const byIdx = new Map<number, Want[]>();
  for (const w of wants) if (w.value !== undefined) byIdx.set(w.idx, [...(byIdx.get(w.idx) ?? []), w]);
  const filled = new Map<Service, Service>();
  const services = requests.map((req, idx) => {
    const got = byIdx.get(idx);
    if (!got) return req.service;
    const fresh = applyAllocations(req.service, got);
    const last = opts.previousFilled?.get(req.service);
    const out = last && sameFilledValues(last, fresh) ? last : fresh;
    filled.set(req.service, out);
    return out;
  });
  const allocations: Allocation[] = wants
    .filter((w) => w.value !== undefined)
    .map((w) => ({ key: w.key, service: w.svc, what: w.what, port: w.port, value: w.value! }));
  const next = new Map<string, string | number>(allocations.map((a) => [a.key, a.value]));
  return { services, allocations, problems, next, filled };
}

/** Whether two fillings of one input Service got the same values (applyAllocations sets no other field). */
function sameFilledValues(a: Service, b: Service): boolean {
  return (
    a.clusterIP === b.clusterIP &&
    a.clusterIPs.length === b.clusterIPs.length &&
    a.clusterIPs.every((ip, i) => ip === b.clusterIPs[i]) &&
    a.healthCheckNodePort === b.healthCheckNodePort &&
    a.ports.length === b.ports.length &&
    a.ports.every((p, i) => p.nodePort === b.ports[i]!.nodePort)
  );
}

function isUsableIP(r: Range, ip: string): boolean {
  for (let off = 0n; off < r.first; off++) if (ipAdd(r.cidr.ip, off) === ip) return false;
  if (r.cidr.family === 'IPv4' && ipAdd(r.cidr.ip, cidrSize(r.cidr) - 1n) === ip) return false;
  return true;
}

/**
 * Linear probing from hash mod count. The number of steps is bounded by the number of used values + 1
 * (every step past a used value), and by `count`, so it terminates even on a /12 or /64.
 */
function probe<T>(
  count: bigint,
  h: bigint,
  at: (off: bigint) => T,
  isFree: (v: T) => boolean,
): T | undefined {
  if (count <= 0n) return undefined;
  const start = h % count;
  for (let i = 0n; i < count; i++) {
    const v = at((start + i) % count);
    if (isFree(v)) return v;
  }
  return undefined;
}

function wantedFamilies(
  req: AllocationRequest,
  ranges: ReadonlyMap<IPFamily, Range>,
  primary: IPFamily | undefined,
  svc: string,
  problems: AllocationProblem[],
): IPFamily[] {
  if (primary === undefined) {
    problems.push({ service: svc, what: 'clusterIP', message: 'no service cluster IP range configured' });
    return [];
  }
  const policy = req.ipFamilyPolicy ?? 'SingleStack';
  const requested = req.ipFamilies.length > 0 ? [...req.ipFamilies] : [primary];
  if (policy !== 'SingleStack' && requested.length === 1) {
    const other: IPFamily = requested[0] === 'IPv4' ? 'IPv6' : 'IPv4';
    if (ranges.has(other)) requested.push(other);
    else if (policy === 'RequireDualStack') {
      problems.push({
        service: svc,
        what: 'clusterIP',
        message: `ipFamilyPolicy RequireDualStack but no ${other} service range is configured; allocating single-stack`,
      });
    }
  }
  const families = (policy === 'SingleStack' ? requested.slice(0, 1) : requested).filter((f) => {
    if (ranges.has(f)) return true;
    problems.push({
      service: svc,
      what: 'clusterIP',
      message: `no ${f} service cluster IP range configured`,
    });
    return false;
  });
  return families;
}

function applyAllocations(
  s: Service,
  got: readonly { what: Allocation['what']; port: string; value?: string | number; family?: IPFamily }[],
): Service {
  const ips = got.filter((w) => w.what === 'clusterIP').map((w) => w.value as string);
  const ports: ServicePortSpec[] = s.ports.map((p) => {
    const np = got.find((w) => w.what === 'nodePort' && w.port === p.name && p.nodePort === 0);
    return np ? { ...p, nodePort: np.value as number } : p;
  });
  const hc = got.find((w) => w.what === 'healthCheckNodePort');
  return {
    ...s,
    ...(ips.length > 0 ? { clusterIP: ips[0]!, clusterIPs: ips } : {}),
    ports,
    ...(hc ? { healthCheckNodePort: hc.value as number } : {}),
  };
}
