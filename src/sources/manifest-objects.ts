/**
 * From raw manifest documents to the set of objects the manifest source delivers. Pure.
 *
 * Two steps, split so that per-file problems are reported once, when the file is read, while the
 * cross-file step (duplicates, allocation, mirroring, filters) reruns on every change:
 * - `readManifestDocs`: validate each document of one file (Service, EndpointSlice, Node, ServiceCIDR,
 *   and core/v1 Endpoints, which is mirrored into EndpointSlices); other kinds are ignored.
 * - `composeManifestObjects`: merge files in name order (first definition wins), allocate what the API
 *   server would, apply the proxy label filter and the node/ServiceCIDR scope.
 */
import type { EndpointSlice, IPFamily, KubeObject, Service } from '../model/types.js';
import { ValidationError, KNOWN_KINDS, validateEndpointSlice, validateObject } from '../model/validate.js';
import { isForThisProxy } from '../model/filters.js';
import type { SourceScope } from './source.js';
import {
  parseManifestJSON,
  parseManifestText,
  type ManifestDoc,
  type ManifestParseError,
  type ManifestParseResult,
} from './manifest-parse.js';
import { mirrorEndpoints } from './manifest-endpoints.js';
import {
  allocateServices,
  type Allocation,
  type AllocationRequest,
  type AllocationProblem,
  type IPFamilyPolicy,
} from './manifest-allocate.js';
import { objectKey, sameContent } from './manifest-diff.js';
import { cidrContains, parseCIDR } from '../net/ip.js';

/** One usable definition found in a file. */
export type ManifestEntry =
  | {
      readonly type: 'object';
      readonly key: string;
      readonly file: string;
      readonly line: number;
      readonly object: KubeObject;
      /** Service only: the dual-stack request, which the domain model does not carry. */
      readonly ipFamilies?: readonly IPFamily[];
      readonly ipFamilyPolicy?: IPFamilyPolicy;
    }
  | {
      readonly type: 'endpoints';
      /** "Endpoints/ns/name". */
      readonly key: string;
      readonly file: string;
      readonly line: number;
      readonly slices: readonly EndpointSlice[];
    };

/** Something to log; `fields` are structured log fields (file, kind, namespace, name, field, value...). */
export interface ManifestProblem {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

type Rec = Record<string, unknown>;
function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(file: string, doc: ManifestDoc, e: ValidationError): ManifestProblem {
  return {
    level: 'error',
    msg: `${file}:${doc.line}: ${e.message}; object skipped`,
    fields: {
      file,
      line: doc.line,
      kind: e.kind,
      namespace: e.namespace,
      name: e.objectName,
      field: e.field,
      value: e.value,
      reason: e.reason,
    },
  };
}

/**
 * Validates the documents of one file. Invalid objects become error problems (naming file, line, kind,
 * namespace/name, field and value) and are left out; the file's other objects still count. Kinds
 * kube-proxy does not read give a debug problem. Never throws on any input.
 */
export function readManifestDocs(
  file: string,
  docs: readonly ManifestDoc[],
): { entries: ManifestEntry[]; problems: ManifestProblem[] } {
  const entries: ManifestEntry[] = [];
  const problems: ManifestProblem[] = [];
  for (const doc of docs) {
    const raw = doc.raw;
    if (!isRec(raw)) {
      problems.push({
        level: 'error',
        msg: `${file}:${doc.line}: ${doc.where} is not an object; skipped`,
        fields: { file, line: doc.line, value: raw },
      });
      continue;
    }
    const kind = typeof raw.kind === 'string' ? raw.kind : '';
    const apiVersion = typeof raw.apiVersion === 'string' ? raw.apiVersion : undefined;
    const md = isRec(raw.metadata) ? raw.metadata : {};
    const name = typeof md.name === 'string' ? md.name : '';
    if (kind === '') {
      problems.push({
        level: 'error',
        msg: `${file}:${doc.line}: ${doc.where} has no kind; skipped`,
        fields: { file, line: doc.line, field: 'kind', value: raw.kind, name },
      });
      continue;
    }
    const allowed = kind === 'Endpoints' ? ['v1'] : KNOWN_KINDS[kind]?.apiVersions;
    if (allowed === undefined) {
      // One line per object: a typo in a kind ("Servcie") would otherwise vanish without a word.
      problems.push({
        level: 'warn',
        msg: `${file}:${doc.line}: ignoring ${kind} ${name}: kind is not one kube-proxy reads`,
        fields: { file, line: doc.line, kind, name },
      });
      continue;
    }
    // A known kind under an unknown apiVersion may have a different schema: refuse rather than guess.
    if (apiVersion !== undefined && !allowed.includes(apiVersion)) {
      const e = new ValidationError(
        kind,
        typeof md.namespace === 'string' ? md.namespace : '',
        name,
        'apiVersion',
        apiVersion,
        `must be one of ${allowed.join(', ')}`,
      );
      problems.push(invalid(file, doc, e));
      continue;
    }
    try {
      if (kind === 'Endpoints') {
        const slices = mirrorEndpoints(raw).map((s) => validateEndpointSlice(s));
        const ns = typeof md.namespace === 'string' && md.namespace !== '' ? md.namespace : 'default';
        entries.push({ type: 'endpoints', key: `Endpoints/${ns}/${name}`, file, line: doc.line, slices });
        continue;
      }
      const object = validateObject(raw);
      if (!object) continue;
      if (object.kind === 'Service') {
        const { ipFamilies, ipFamilyPolicy } = readDualStack(object, raw);
        entries.push(
          ipFamilyPolicy
            ? {
                type: 'object',
                key: objectKey(object),
                file,
                line: doc.line,
                object,
                ipFamilies,
                ipFamilyPolicy,
              }
            : { type: 'object', key: objectKey(object), file, line: doc.line, object, ipFamilies },
        );
      } else {
        entries.push({ type: 'object', key: objectKey(object), file, line: doc.line, object });
      }
    } catch (e) {
      if (e instanceof ValidationError) problems.push(invalid(file, doc, e));
      else
        problems.push({
          level: 'error',
          msg: `${file}:${doc.line}: ${kind} ${name}: ${String(e)}; object skipped`,
          fields: { file, line: doc.line, kind, name },
        });
    }
  }
  // The source keeps `entries` for as long as the file is unchanged: a list of exactly its length,
  // not one grown by push (room for 17: 120 bytes more per file of two objects).
  return { entries: entries.slice(), problems };
}

/**
 * The entries of a file read again, each object whose content is that of the same key's object in
 * the file's previous entries replaced by that previous object. A file is re-read whole when one
 * of its objects changed (a slice's endpoints, most often): without this its unchanged objects would
 * be new copies, which the source keeps while the tracker keeps the copies it was given first (the
 * diff sends no update for them): after every file had changed once, every unchanged Service twice.
 * The diff then finds the same object on both sides and does not compare it again.
 */
export function reuseUnchanged(
  previous: readonly ManifestEntry[],
  next: readonly ManifestEntry[],
): readonly ManifestEntry[] {
  if (previous.length === 0) return next;
  const byKey = previous.length > 8 ? new Map(previous.map((e) => [e.key, e] as const)) : undefined;
  let out: ManifestEntry[] | undefined;
  next.forEach((e, i) => {
    if (e.type !== 'object') return;
    const old = byKey ? byKey.get(e.key) : previous.find((p) => p.key === e.key);
    if (old?.type !== 'object' || old.object === e.object || !sameContent(old.object, e.object)) return;
    out ??= next.slice();
    out[i] = { ...e, object: old.object };
  });
  return out ?? next;
}

/** One file read: its entries and problems, or the syntax error that makes it unusable. */
export type ManifestFileResult =
  | { readonly ok: true; readonly entries: ManifestEntry[]; readonly problems: ManifestProblem[] }
  | { readonly ok: false; readonly error: ManifestParseError };

/** parseManifestText then readManifestDocs: one file's text to entries. Pure; never throws. */
export function readManifestFile(file: string, text: string): ManifestFileResult {
  return docsToFileResult(file, parseManifestText(file, text));
}

/**
 * readManifestFile for JSON text only (a `.json` file, or JSON documents in a YAML file); undefined
 * when the text needs the YAML parser. Pure; never throws.
 */
export function readManifestFileJSON(file: string, text: string): ManifestFileResult | undefined {
  const parsed = parseManifestJSON(file, text);
  return parsed && docsToFileResult(file, parsed);
}

function docsToFileResult(file: string, parsed: ManifestParseResult): ManifestFileResult {
  if (!parsed.ok) return parsed;
  return { ok: true, ...readManifestDocs(file, parsed.docs) };
}

/** Most Services name no families: their entries share this list (the source keeps every entry). */
const NO_FAMILIES: readonly IPFamily[] = Object.freeze([]);

function readDualStack(
  svc: Service,
  raw: Rec,
): { ipFamilies: readonly IPFamily[]; ipFamilyPolicy?: IPFamilyPolicy } {
  const spec = isRec(raw.spec) ? raw.spec : {};
  const fams = spec.ipFamilies ?? NO_FAMILIES;
  if (!Array.isArray(fams)) return dualStackFail(svc, 'spec.ipFamilies', fams, 'must be a list');
  const ipFamilies: readonly IPFamily[] =
    fams.length === 0
      ? NO_FAMILIES
      : fams.map((f: unknown, i): IPFamily =>
          f === 'IPv4' || f === 'IPv6'
            ? f
            : dualStackFail(svc, `spec.ipFamilies[${i}]`, f, 'must be one of IPv4, IPv6'),
        );
  // (At most two entries: a repeat is the second equal to the first; no Set per Service.)
  if (ipFamilies.length > 2 || (ipFamilies.length === 2 && ipFamilies[0] === ipFamilies[1]))
    dualStackFail(svc, 'spec.ipFamilies', fams, 'at most one entry per family');
  const p = spec.ipFamilyPolicy;
  if (p === undefined || p === null || p === '') return { ipFamilies };
  if (p !== 'SingleStack' && p !== 'PreferDualStack' && p !== 'RequireDualStack')
    return dualStackFail(
      svc,
      'spec.ipFamilyPolicy',
      p,
      'must be one of SingleStack, PreferDualStack, RequireDualStack',
    );
  return { ipFamilies, ipFamilyPolicy: p };
}

/** (A module function, not a closure per Service.) */
function dualStackFail(svc: Service, field: string, value: unknown, reason: string): never {
  throw new ValidationError('Service', svc.meta.namespace, svc.meta.name, field, value, reason);
}

export interface ComposeOptions {
  readonly scope: SourceScope;
  readonly serviceClusterIPRanges: readonly string[];
  /**
   * Refuse a Service whose explicit cluster IP lies outside serviceClusterIPRanges, as the API server
   * would. Off when the operator did not set --service-cluster-ip-range: the default range is only an
   * allocation pool then, not a statement about the cluster.
   */
  readonly enforceServiceClusterIPRange?: boolean;
  /**
   * Keys of the Services delivered last time: when two Services claim one cluster IP, the one already in
   * force is the older and keeps it (the API server's allocator would have refused the newer).
   */
  readonly servicesInForce?: ReadonlySet<string>;
  readonly nodePortRange: { readonly min: number; readonly max: number };
  readonly previousAllocations?: ReadonlyMap<string, string | number>;
  /** `filled` of the previous result (see allocateServices' previousFilled). */
  readonly previousFilled?: ReadonlyMap<Service, Service>;
}

export interface ComposeResult {
  /** What the source delivers, keyed by objectKey. */
  readonly objects: ReadonlyMap<string, KubeObject>;
  /** Duplicate definitions and allocation failures; recomputed each time (the caller dedupes logging). */
  readonly problems: readonly ManifestProblem[];
  readonly allocations: readonly Allocation[];
  /** Pass back as previousAllocations next time. */
  readonly nextAllocations: ReadonlyMap<string, string | number>;
  /** Pass back as previousFilled next time. */
  readonly filled: ReadonlyMap<Service, Service>;
}

/**
 * Merges the entries of all files. Files are taken in file-name order; when two definitions share a key
 * (kind/namespace/name) the first wins and a warning names both places. Explicit EndpointSlices win over
 * slices mirrored from Endpoints with the same name. Allocation sees every Service (also those filtered
 * out afterwards), as the API server does.
 */
export function composeManifestObjects(
  files: readonly { readonly file: string; readonly entries: readonly ManifestEntry[] }[],
  opts: ComposeOptions,
): ComposeResult {
  const problems: ManifestProblem[] = [];
  const winners = new Map<string, ManifestEntry>();
  const sorted = [...files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  for (const f of sorted) {
    for (const e of f.entries) {
      const first = winners.get(e.key);
      if (first) {
        problems.push({
          level: 'warn',
          msg: `${e.key} is defined in ${first.file}:${first.line} and again in ${e.file}:${e.line}; using the first (${first.file})`,
          fields: { key: e.key, file: e.file, line: e.line, keptFile: first.file, keptLine: first.line },
        });
        continue;
      }
      winners.set(e.key, e);
    }
  }

  const refused = refuseServices(winners, opts, problems);
  const requests: AllocationRequest[] = [];
  const requestKeys: string[] = [];
  for (const e of winners.values()) {
    if (e.type !== 'object' || e.object.kind !== 'Service' || refused.has(e.key)) continue;
    requestKeys.push(e.key);
    requests.push({
      service: e.object,
      ipFamilies: e.ipFamilies ?? [],
      ...(e.ipFamilyPolicy ? { ipFamilyPolicy: e.ipFamilyPolicy } : {}),
    });
  }
  const alloc = allocateServices(requests, {
    serviceClusterIPRanges: opts.serviceClusterIPRanges,
    nodePortRange: opts.nodePortRange,
    ...(opts.previousAllocations ? { previous: opts.previousAllocations } : {}),
    ...(opts.previousFilled ? { previousFilled: opts.previousFilled } : {}),
  });
  for (const p of alloc.problems) problems.push(allocationProblem(p, winners));

  const all = new Map<string, KubeObject>();
  // alloc.services is in request order: each Service's key is its entry's.
  alloc.services.forEach((s, i) => all.set(requestKeys[i]!, s));
  for (const k of clusterIPConflicts(alloc.services, winners, opts.servicesInForce, problems)) all.delete(k);
  for (const e of winners.values()) {
    if (e.type === 'object' && e.object.kind !== 'Service') all.set(e.key, e.object);
  }
  for (const e of winners.values()) {
    if (e.type !== 'endpoints') continue;
    for (const slice of e.slices) {
      const k = objectKey(slice);
      const clash = winners.get(k);
      if (clash) {
        problems.push({
          level: 'warn',
          msg: `EndpointSlice ${slice.meta.namespace}/${slice.meta.name} mirrored from ${e.key} (${e.file}) has the name of the one in ${clash.file}; using ${clash.file}`,
          fields: { key: k, file: e.file, keptFile: clash.file },
        });
        continue;
      }
      all.set(k, slice);
    }
  }

  const objects = new Map<string, KubeObject>();
  for (const [k, o] of all) {
    if (o.kind === 'Node' && o.meta.name !== opts.scope.nodeName) continue;
    if (o.kind === 'ServiceCIDR' && !opts.scope.serviceCIDRs) continue;
    if ((o.kind === 'Service' || o.kind === 'EndpointSlice') && !isForThisProxy(o.meta.labels)) continue;
    objects.set(k, o);
  }
  return {
    objects,
    problems,
    allocations: alloc.allocations,
    nextAllocations: alloc.next,
    filled: alloc.filled,
  };
}

function allocationProblem(
  p: AllocationProblem,
  winners: ReadonlyMap<string, ManifestEntry>,
): ManifestProblem {
  const e = winners.get(`Service/${p.service}`);
  const at = e ? `${e.file}:${e.line}: ` : '';
  return {
    level: 'error',
    msg: `${at}Service ${p.service}: cannot allocate ${p.what}: ${p.message}`,
    fields: {
      ...(e ? { file: e.file, line: e.line } : {}),
      kind: 'Service',
      service: p.service,
      field: p.what,
    },
  };
}

/**
 * Services the API server would have refused for their explicit cluster IPs: outside the service
 * cluster IP range (only when enforced). Each gets one error naming file, Service and field.
 */
function refuseServices(
  winners: ReadonlyMap<string, ManifestEntry>,
  opts: ComposeOptions,
  problems: ManifestProblem[],
): Set<string> {
  const refused = new Set<string>();
  if (!opts.enforceServiceClusterIPRange) return refused;
  const ranges = opts.serviceClusterIPRanges.flatMap((t) => {
    const c = parseCIDR(t);
    return c ? [c] : [];
  });
  for (const e of winners.values()) {
    if (e.type !== 'object' || e.object.kind !== 'Service') continue;
    const s = e.object;
    const ips = s.clusterIPs.length > 0 ? s.clusterIPs : s.clusterIP !== '' ? [s.clusterIP] : [];
    for (const [i, ip] of ips.entries()) {
      if (ip === 'None' || ranges.some((r) => cidrContains(r, ip))) continue;
      const field = s.clusterIPs.length > 0 ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
      problems.push({
        level: 'error',
        msg: `${e.file}:${e.line}: Service ${s.meta.namespace}/${s.meta.name}: ${field} ${ip} is not within --service-cluster-ip-range (${opts.serviceClusterIPRanges.join(',')}); Service skipped`,
        fields: {
          file: e.file,
          line: e.line,
          kind: 'Service',
          namespace: s.meta.namespace,
          name: s.meta.name,
          field,
          value: ip,
        },
      });
      refused.add(e.key);
      break;
    }
  }
  return refused;
}

/**
 * Cluster IPs claimed by two Services: the API server's allocator never lets that happen, so the newer
 * claim is dropped with a warning. Older means already in force; among new ones, the first in file order.
 * Returns the keys of the dropped Services.
 */
function clusterIPConflicts(
  services: readonly Service[],
  winners: ReadonlyMap<string, ManifestEntry>,
  inForce: ReadonlySet<string> | undefined,
  problems: ManifestProblem[],
): string[] {
  // Those in force first, then the others; file order within each group. Keys are built once per
  // Service (not per comparison), and not at all when none is in force (the first load).
  let ordered = services;
  if (inForce !== undefined && inForce.size > 0) {
    const older: Service[] = [];
    const newer: Service[] = [];
    for (const s of services) (inForce.has(objectKey(s)) ? older : newer).push(s);
    ordered = [...older, ...newer];
  }
  const owner = new Map<string, Service>();
  const dropped: string[] = [];
  for (const s of ordered) {
    // The first of its cluster IPs ("" and "None" aside) that an earlier Service holds.
    let taken: string | undefined;
    for (const ip of s.clusterIPs) {
      if (ip !== '' && ip !== 'None' && owner.has(ip)) {
        taken = ip;
        break;
      }
    }
    if (taken !== undefined) {
      const o = owner.get(taken)!;
      const e = winners.get(objectKey(s));
      const ko = winners.get(objectKey(o));
      const at = e ? `${e.file}:${e.line}: ` : '';
      problems.push({
        level: 'warn',
        msg: `${at}Service ${s.meta.namespace}/${s.meta.name}: spec.clusterIP ${taken} is already used by Service ${o.meta.namespace}/${o.meta.name}${ko ? ` (${ko.file}:${ko.line})` : ''}; keeping the older, this one skipped`,
        fields: {
          ...(e ? { file: e.file, line: e.line } : {}),
          kind: 'Service',
          namespace: s.meta.namespace,
          name: s.meta.name,
          field: 'spec.clusterIP',
          value: taken,
          keptService: `${o.meta.namespace}/${o.meta.name}`,
        },
      });
      dropped.push(objectKey(s));
      continue;
    }
    for (const ip of s.clusterIPs) if (ip !== '' && ip !== 'None') owner.set(ip, s);
  }
  return dropped;
}
