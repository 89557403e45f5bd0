/**
 * The change trackers (upstream ServiceChangeTracker + EndpointsChangeTracker) folded into one
 * incremental state builder: it keeps the current Services, EndpointSlices, Node and ServiceCIDRs,
 * remembers which services changed since the last successful sync of each IP family, and builds the
 * per-family DesiredState recomputing only those services.
 *
 * Pure: no I/O, no clock (trigger times come from annotations).
 */
import { createHash } from 'node:crypto';
import { canonicalIP, ipFamily, parseCIDR } from '../net/ip.js';
import type { EndpointSlice, IPFamily, KubeObject, Node, Service, ServiceCIDR } from '../model/types.js';
import {
  ANNOTATION_LAST_CHANGE_TRIGGER_TIME,
  LABEL_SERVICE_NAME,
  LABEL_ZONE,
  namespacedName,
} from '../model/types.js';
import { isForThisProxy } from '../model/filters.js';
import type { SourceEvent } from '../sources/source.js';
import { mergeSlices } from './endpoints.js';
import { lowerBound } from './sorted-keys.js';
import { frontendIPs, serviceToServicePorts } from './service-port.js';
import { categorizeEndpoints } from './topology.js';
import type { DesiredState, Endpoint, ServicePortInfo, ServicePortState } from './types.js';

/** What one service contributes to one family's state. */
interface ServiceEntry {
  readonly ports: readonly ServicePortState[];
  readonly healthCheckNodePort: number;
  readonly localReady: number;
  /**
   * Computed on first comparison only: the initial build never needs it. A digest of the ports'
   * JSON, not the JSON itself: the committed entry keeps it for as long as the service is
   * unchanged, and the JSON (a few KB per service, a rope of many parts) made the heap grow by
   * tens of MB at 10,000 Services as churn reached one service after another. Present (undefined)
   * from the start: a field added later would give each fingerprinted entry a property block.
   */
  fp: string | undefined;
}

function fingerprint(e: ServiceEntry): string {
  e.fp ??= createHash('sha256').update(JSON.stringify(e.ports, setReplacer)).digest('base64');
  return e.fp;
}

function sameEntry(a: ServiceEntry | undefined, b: ServiceEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return fingerprint(a) === fingerprint(b);
}

/** Adds (sign +1) or removes (-1) one service's ports from the no-local-endpoints counts. */
function addNoLocal(
  counts: { internal: number; external: number },
  e: ServiceEntry | undefined,
  sign: 1 | -1,
): void {
  for (const p of e?.ports ?? []) {
    if (p.localEndpoints.length !== 0) continue;
    if (p.info.internalPolicyLocal) counts.internal += sign;
    if (p.info.externalPolicyLocal) counts.external += sign;
  }
}

interface FamilyCache {
  /** Entries as of the last successful sync (commit): what changedServices is measured against. */
  committed: Map<string, ServiceEntry>;
  /** Entries as of the latest build: what the live maps below hold. */
  applied: Map<string, ServiceEntry>;
  /** Live service-port map of the latest build, updated in place (O(changes) per build). */
  ports: Map<string, ServicePortState>;
  /** Sorted keys of `ports`; replaced (never mutated) when the key set changes. */
  sortedKeys: readonly string[];
  /** Live: "ns/name" -> healthCheckNodePort, and local ready counts for those services. */
  hcnp: Map<string, number>;
  /** Live counts of service ports with a Local policy and no local endpoints. */
  noLocal: { internal: number; external: number };
  localReady: Map<string, number>;
  /** "ns/name" -> generation of its latest change. */
  dirty: Map<string, number>;
  /** Topology identity at the last commit; a difference makes every service dirty. */
  committedTopology: string;
}

/** A built state plus what commit() needs to know about how it was built. */
interface BuildRecord {
  readonly dirtyAtBuild: ReadonlyMap<string, number>;
  readonly entries: ReadonlyMap<string, ServiceEntry | undefined>;
  readonly topology: string;
}

export interface StateTrackerOptions {
  readonly families: readonly IPFamily[];
  readonly nodeName: string;
  /** --bind-address: when a specific IP, it is the node IP of its family. */
  readonly bindAddress?: string;
  /** Wait for the Node object's list before initialised (upstream needs it for node IPs and topology). */
  readonly waitForNode?: boolean;
}

export interface PendingCounts {
  readonly services: number;
  readonly endpoints: number;
}

/** A port without endpoints: one shared frozen empty list. */
const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);

const LOOPBACK: Record<IPFamily, string> = { IPv4: '127.0.0.1', IPv6: '::1' };

function setReplacer(_k: string, v: unknown): unknown {
  return v instanceof Set ? [...(v as Set<string>)].sort() : v;
}

export class StateTracker {
  private readonly services = new Map<string, Service>();
  /**
   * service "ns/name" -> its slices: the slice itself while it has one (most services), else slice
   * name -> slice. (A map per service was 10,000 maps at 10k services.)
   */
  private readonly slicesByService = new Map<string, EndpointSlice | Map<string, EndpointSlice>>();
  /** slice "ns/name" -> service "ns/name" it was filed under */
  private readonly sliceOwner = new Map<string, string>();
  private readonly serviceCIDRObjs = new Map<string, ServiceCIDR>();
  private node: Node | undefined;
  private readonly synced = new Set<string>();
  private readonly caches = new Map<IPFamily, FamilyCache>();
  /** The values of `caches`, for the per-event loops. */
  private readonly cacheList: FamilyCache[] = [];
  private readonly builds = new WeakMap<DesiredState, BuildRecord>();
  private readonly triggerTimes = new Map<string, number[]>();
  private generation = 0;
  /** Pending change counts since the last commit of any family (for the *_changes_pending gauges). */
  private pendingServiceChanges = new Set<string>();
  private pendingEndpointChanges = new Set<string>();

  constructor(private readonly opts: StateTrackerOptions) {
    for (const f of opts.families) {
      this.caches.set(f, {
        committed: new Map(),
        applied: new Map(),
        ports: new Map(),
        sortedKeys: [],
        hcnp: new Map(),
        noLocal: { internal: 0, external: 0 },
        localReady: new Map(),
        dirty: new Map(),
        committedTopology: '',
      });
    }
    this.cacheList.push(...this.caches.values());
  }

  /** Applies one source event. Returns true when it may change some family's desired state. */
  onEvent(ev: SourceEvent): boolean {
    if (ev.type === 'synced') {
      this.synced.add(ev.kind);
      return true;
    }
    const obj = ev.object;
    const deleted = ev.type === 'delete';
    switch (obj.kind) {
      case 'Service':
        return this.onService(obj, deleted);
      case 'EndpointSlice':
        return this.onSlice(obj, deleted);
      case 'Node':
        return this.onNode(obj, deleted);
      case 'ServiceCIDR':
        if (deleted) this.serviceCIDRObjs.delete(obj.meta.name);
        else this.serviceCIDRObjs.set(obj.meta.name, obj);
        return true;
    }
  }

  /** Services and EndpointSlices (and the Node, when waited for) have delivered their initial state. */
  isInitialized(): boolean {
    return (
      this.synced.has('Service') &&
      this.synced.has('EndpointSlice') &&
      (!this.opts.waitForNode || this.synced.has('Node'))
    );
  }

  hasSynced(kind: KubeObject['kind']): boolean {
    return this.synced.has(kind);
  }

  /** The Node object of this node, if known. */
  currentNode(): Node | undefined {
    return this.node;
  }

  pendingCounts(): PendingCounts {
    return { services: this.pendingServiceChanges.size, endpoints: this.pendingEndpointChanges.size };
  }

  private markDirty(nsn: string): void {
    this.generation++;
    for (const c of this.cacheList) c.dirty.set(nsn, this.generation);
  }

  private onService(svc: Service, deleted: boolean): boolean {
    const nsn = namespacedName(svc.meta);
    if (deleted || !isForThisProxy(svc.meta.labels)) {
      if (!this.services.has(nsn)) return false;
      this.services.delete(nsn);
    } else {
      this.services.set(nsn, svc);
    }
    this.pendingServiceChanges.add(nsn);
    this.markDirty(nsn);
    return true;
  }

  private onSlice(slice: EndpointSlice, deleted: boolean): boolean {
    const sliceKey = namespacedName(slice.meta);
    const svcName = slice.meta.labels[LABEL_SERVICE_NAME];
    const prevOwner = this.sliceOwner.get(sliceKey);
    // A slice without the service-name label cannot be attributed (upstream logs and ignores it);
    // the source already logged it at validation time if it matters.
    let owner =
      !deleted && svcName !== undefined && isForThisProxy(slice.meta.labels)
        ? namespacedName({ namespace: slice.meta.namespace, name: svcName })
        : undefined;
    let changed = false;
    // An update under the same service (nearly every update) replaces the slice in place below:
    // deleting and adding again left a deleted slot per update in both maps, which grew their
    // tables by half under churn.
    if (prevOwner === owner) owner = prevOwner;
    else if (prevOwner !== undefined) {
      const had = this.slicesByService.get(prevOwner);
      if (had instanceof Map) {
        had.delete(slice.meta.name);
        if (had.size === 1) this.slicesByService.set(prevOwner, had.values().next().value!);
      } else if (had?.meta.name === slice.meta.name) this.slicesByService.delete(prevOwner);
      this.sliceOwner.delete(sliceKey);
      this.pendingEndpointChanges.add(prevOwner);
      this.markDirty(prevOwner);
      changed = true;
    }
    if (owner !== undefined) {
      const had = this.slicesByService.get(owner);
      if (had === undefined || (!(had instanceof Map) && had.meta.name === slice.meta.name))
        this.slicesByService.set(owner, slice);
      else if (had instanceof Map) had.set(slice.meta.name, slice);
      else
        this.slicesByService.set(
          owner,
          new Map([
            [had.meta.name, had],
            [slice.meta.name, slice],
          ]),
        );
      this.sliceOwner.set(sliceKey, owner);
      this.pendingEndpointChanges.add(owner);
      this.markDirty(owner);
      const trigger = slice.meta.annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
      const t = trigger === undefined ? NaN : Date.parse(trigger);
      if (!Number.isNaN(t)) {
        const arr = this.triggerTimes.get(owner) ?? [];
        arr.push(t);
        this.triggerTimes.set(owner, arr);
      }
      changed = true;
    }
    return changed;
  }

  private onNode(node: Node, deleted: boolean): boolean {
    if (node.meta.name !== this.opts.nodeName) return false;
    this.node = deleted ? undefined : node;
    return true;
  }

  /** The node's zone label ("" when unknown). */
  nodeZone(): string {
    return this.node?.meta.labels[LABEL_ZONE] ?? '';
  }

  /**
   * Every node IP of `family`, primary first. The primary is upstream's (detectNodeIPs): a specific
   * --bind-address of that family; else the Node's first InternalIP, then ExternalIP, of that family;
   * else loopback. The others are the Node's remaining InternalIPs, then ExternalIPs, of that family.
   */
  nodeIPs(family: IPFamily): string[] {
    const out: string[] = [];
    const ba = this.opts.bindAddress ? canonicalIP(this.opts.bindAddress) : undefined;
    if (ba && ipFamily(ba) === family && ba !== '0.0.0.0' && ba !== '::') out.push(ba);
    for (const type of ['InternalIP', 'ExternalIP']) {
      for (const a of this.node?.addresses ?? []) {
        if (a.type !== type || ipFamily(a.address) !== family) continue;
        const ip = canonicalIP(a.address) ?? a.address;
        if (!out.includes(ip)) out.push(ip);
      }
    }
    return out.length > 0 ? out : [LOOPBACK[family]];
  }

  /** True when node-level inputs (IPs, zone, pod CIDRs) differ from the last commit: forces a full sync. */
  topologyChanged(family: IPFamily): boolean {
    const c = this.caches.get(family);
    return c !== undefined && c.committedTopology !== this.topologyIdentity(family);
  }

  private topologyIdentity(family: IPFamily): string {
    return JSON.stringify([
      this.opts.nodeName,
      this.nodeZone(),
      this.nodeIPs(family),
      this.node?.podCIDRs ?? [],
    ]);
  }

  private computeEntry(nsn: string, family: IPFamily, zone: string): ServiceEntry | undefined {
    const svc = this.services.get(nsn);
    if (!svc) return undefined;
    const infos = serviceToServicePorts(svc, family);
    if (infos.size === 0) return undefined;
    const slices = this.slicesByService.get(nsn);
    const merged = slices
      ? mergeSlices(
          svc.meta.namespace,
          svc.meta.name,
          slices instanceof Map ? slices.values() : slices,
          family,
          this.opts.nodeName,
        )
      : new Map<string, Endpoint[]>();
    let hcnp = 0;
    let ports: ServicePortState[] | undefined;
    for (const [key, info] of infos) {
      if (info.healthCheckNodePort) hcnp = info.healthCheckNodePort;
      const state = this.portState(key, info, merged.get(key) ?? NO_ENDPOINTS, zone);
      // One port (most services): a list literal of exactly one, not a push with room for 17.
      if (ports === undefined) ports = [state];
      else ports.push(state);
    }
    // localReady counts unique local Ready IPs over all endpoints of the service (upstream
    // LocalReadyEndpoints), including slice ports no service port claims. Only the health check
    // servers read it, so only services with a health check node port pay for it.
    let localReady = 0;
    if (hcnp) {
      const ips = new Set<string>();
      for (const eps of merged.values()) for (const ep of eps) if (ep.isLocal && ep.ready) ips.add(ep.ip);
      localReady = ips.size;
    }
    return { ports: ports ?? [], healthCheckNodePort: hcnp, localReady, fp: undefined };
  }

  /** One service port's state: its endpoints categorised, and the flags derived from them. */
  private portState(
    key: string,
    info: ServicePortInfo,
    endpoints: readonly Endpoint[],
    zone: string,
  ): ServicePortState {
    const cat = categorizeEndpoints(endpoints, info, this.opts.nodeName, zone);
    const hasEndpoints = cat.hasAnyEndpoints;
    const noLocal = cat.localEndpoints.length === 0;
    // Every field spelled out (no spread of `cat`): one object shape for all 10^4+ ports.
    return {
      key,
      info,
      endpoints,
      clusterEndpoints: cat.clusterEndpoints,
      localEndpoints: cat.localEndpoints,
      allReachableEndpoints: cat.allReachableEndpoints,
      hasAnyEndpoints: cat.hasAnyEndpoints,
      hasEndpoints,
      hasInternalEndpoints: hasEndpoints && !(info.internalPolicyLocal && noLocal),
      hasExternalEndpoints: hasEndpoints && !(info.externalPolicyLocal && noLocal),
      usesExternalTrafficChain: hasEndpoints && info.externallyAccessible,
    };
  }

  /**
   * Builds the desired state of `family`: services changed since that family's last commit are
   * recomputed; all others are reused. Cost is proportional to the changes, not the cluster.
   * The returned state's maps are live: they stay valid until the next build() of this family.
   */
  build(family: IPFamily): DesiredState {
    const cache = this.caches.get(family);
    if (!cache)
      throw new RangeError(`family ${family} is not tracked (tracking ${this.opts.families.join(', ')})`);
    const zone = this.nodeZone();
    const topology = this.topologyIdentity(family);
    let dirty: ReadonlyMap<string, number> = cache.dirty;
    let ownDirty = false;
    if (topology !== cache.committedTopology) {
      // Zone, node IPs or pod CIDRs changed: every service's categorisation may differ.
      const all = new Map(cache.dirty);
      for (const nsn of cache.applied.keys()) if (!all.has(nsn)) all.set(nsn, 0);
      for (const nsn of this.services.keys()) if (!all.has(nsn)) all.set(nsn, 0);
      dirty = all;
      ownDirty = true;
    }
    const entries = new Map<string, ServiceEntry | undefined>();
    const changedServices = new Set<string>();
    const udpServicePorts = new Set<string>();
    const deletedUDPClusterIPs = new Set<string>();
    const goneIPPorts = new Set<string>();
    const goneNodePorts = new Set<number>();
    let tcpFrontendsAdded = false;
    const lastChangeTriggerTimes: number[] = [];
    const added: string[] = [];
    const removed: string[] = [];
    for (const nsn of dirty.keys()) {
      const next = this.computeEntry(nsn, family, zone);
      entries.set(nsn, next);
      // Bring the live maps from what the latest build applied to `next`.
      const applied = cache.applied.get(nsn);
      if (applied !== next) {
        if (applied) {
          const nextKeys = new Set(next?.ports.map((p) => p.key) ?? []);
          for (const p of applied.ports) {
            if (!nextKeys.has(p.key) && cache.ports.delete(p.key)) removed.push(p.key);
          }
        }
        for (const p of next?.ports ?? []) {
          if (!cache.ports.has(p.key)) added.push(p.key);
          cache.ports.set(p.key, p);
        }
        if (next) cache.applied.set(nsn, next);
        else cache.applied.delete(nsn);
        addNoLocal(cache.noLocal, applied, -1);
        addNoLocal(cache.noLocal, next, 1);
        if (next?.healthCheckNodePort) {
          cache.hcnp.set(nsn, next.healthCheckNodePort);
          cache.localReady.set(nsn, next.localReady);
        } else {
          cache.hcnp.delete(nsn);
          cache.localReady.delete(nsn);
        }
      }
      // What changed is measured against the last successful sync.
      const prev = cache.committed.get(nsn);
      if (sameEntry(prev, next)) continue;
      changedServices.add(nsn);
      for (const p of prev?.ports ?? []) {
        if (p.info.protocol === 'UDP') {
          udpServicePorts.add(p.key);
          const now = next?.ports.find((q) => q.key === p.key);
          if (!now) deletedUDPClusterIPs.add(p.info.clusterIP);
          goneUDPFrontends(p.info, now?.info, goneIPPorts, goneNodePorts);
        }
      }
      for (const p of next?.ports ?? []) if (p.info.protocol === 'UDP') udpServicePorts.add(p.key);
      tcpFrontendsAdded ||= gainsTCPFrontend(prev?.ports, next?.ports);
      const tt = this.triggerTimes.get(nsn);
      if (tt) lastChangeTriggerTimes.push(...tt);
    }
    if (added.length > 0 || removed.length > 0) {
      let keys = [...cache.sortedKeys];
      if (added.length + removed.length > 64) {
        keys = [...cache.ports.keys()].sort();
      } else {
        for (const k of removed) {
          const i = lowerBound(keys, k);
          if (keys[i] === k) keys.splice(i, 1);
        }
        for (const k of added) if (cache.ports.has(k)) keys.splice(lowerBound(keys, k), 0, k);
      }
      cache.sortedKeys = keys;
    }

    const state: DesiredState = {
      ...this.nodeFields(family, zone),
      services: cache.ports,
      sortedKeys: cache.sortedKeys,
      changedServices,
      healthCheckNodePorts: cache.hcnp,
      localReadyEndpoints: cache.localReady,
      noLocalEndpoints: { ...cache.noLocal },
      conntrack: {
        udpServicePorts,
        deletedUDPClusterIPs,
        goneUDPFrontends: { ipPorts: goneIPPorts, nodePorts: goneNodePorts },
        tcpFrontendsAdded,
      },
      lastChangeTriggerTimes,
    };
    // commit() compares generations with those at build time: a copy of cache.dirty (which changes
    // after this), but `dirty` itself when it is this build's own map.
    this.builds.set(state, { dirtyAtBuild: ownDirty ? dirty : new Map(dirty), entries, topology });
    return state;
  }

  /** The node-level fields of a state of `family`. */
  private nodeFields(
    family: IPFamily,
    zone: string,
  ): Pick<DesiredState, 'family' | 'nodeName' | 'nodeIPs' | 'nodeZone' | 'serviceCIDRs' | 'nodePodCIDRs'> {
    const serviceCIDRs = [...this.serviceCIDRObjs.values()]
      .flatMap((o) => o.cidrs)
      .filter((c) => parseCIDR(c)?.family === family)
      .sort();
    return {
      family,
      nodeName: this.opts.nodeName,
      nodeIPs: this.nodeIPs(family),
      nodeZone: zone,
      serviceCIDRs: [...new Set(serviceCIDRs)],
      nodePodCIDRs: (this.node?.podCIDRs ?? []).filter((c) => parseCIDR(c)?.family === family),
    };
  }

  /**
   * A state of `family` holding only the Services in `names` (the priority sync before the first
   * bulk sync): their service ports, health check node ports and local-endpoint counts, node-level
   * fields as build() gives them. It carries no conntrack work and no trigger times (the bulk sync
   * that follows does that cleanup and measures the latency), and it touches nothing build() and
   * commit() keep: its cost is that of the named Services alone, not of the cluster. Undefined when
   * none of them exists (nothing worth a separate sync).
   */
  buildSubset(family: IPFamily, names: ReadonlySet<string>): DesiredState | undefined {
    if (!this.caches.has(family))
      throw new RangeError(`family ${family} is not tracked (tracking ${this.opts.families.join(', ')})`);
    const zone = this.nodeZone();
    const services = new Map<string, ServicePortState>();
    const changedServices = new Set<string>();
    const healthCheckNodePorts = new Map<string, number>();
    const localReadyEndpoints = new Map<string, number>();
    const noLocalEndpoints = { internal: 0, external: 0 };
    for (const nsn of names) {
      const e = this.computeEntry(nsn, family, zone);
      if (!e || e.ports.length === 0) continue;
      changedServices.add(nsn);
      for (const p of e.ports) services.set(p.key, p);
      if (e.healthCheckNodePort) {
        healthCheckNodePorts.set(nsn, e.healthCheckNodePort);
        localReadyEndpoints.set(nsn, e.localReady);
      }
      addNoLocal(noLocalEndpoints, e, 1);
    }
    if (changedServices.size === 0) return undefined;
    return {
      ...this.nodeFields(family, zone),
      services,
      sortedKeys: [...services.keys()].sort(),
      changedServices,
      healthCheckNodePorts,
      localReadyEndpoints,
      noLocalEndpoints,
      conntrack: { udpServicePorts: new Set(), deletedUDPClusterIPs: new Set() },
      lastChangeTriggerTimes: [],
    };
  }

  /**
   * Records that `state` (from build()) is now programmed. Changes that arrived after the build stay
   * pending. Call only after a successful sync; after a failure just build again.
   */
  commit(state: DesiredState): void {
    const rec = this.builds.get(state);
    const cache = this.caches.get(state.family);
    if (!rec || !cache) throw new RangeError('commit() takes a state returned by build() of this tracker');
    // Used once: the state itself may live on (until the next build), its record need not (two maps
    // with an entry per service after a full build).
    this.builds.delete(state);
    const triggers = this.triggerTimes.size > 0;
    rec.entries.forEach((e, nsn) => {
      if (e) cache.committed.set(nsn, e);
      else cache.committed.delete(nsn);
      if (cache.dirty.get(nsn) === rec.dirtyAtBuild.get(nsn)) {
        cache.dirty.delete(nsn);
        if (triggers) this.triggerTimes.delete(nsn);
      }
    });
    cache.committedTopology = rec.topology;
    // Pending gauges drop once no family still has the service dirty.
    const caches = this.cacheList;
    const stillDirty = (nsn: string): boolean => {
      for (const c of caches) if (c.dirty.has(nsn)) return true;
      return false;
    };
    for (const nsn of this.pendingServiceChanges)
      if (!stillDirty(nsn)) this.pendingServiceChanges.delete(nsn);
    for (const nsn of this.pendingEndpointChanges)
      if (!stillDirty(nsn)) this.pendingEndpointChanges.delete(nsn);
  }
}

/** The "ip|port" frontends (cluster, external and load-balancer IPs) of a port. */
function frontendsOf(i: ServicePortInfo): string[] {
  return frontendIPs(i).map((ip) => `${ip}|${i.port}`);
}

/** Whether a service's ports `next` have a TCP frontend its ports `prev` did not have. */
function gainsTCPFrontend(
  prev: readonly { readonly info: ServicePortInfo }[] | undefined,
  next: readonly { readonly info: ServicePortInfo }[] | undefined,
): boolean {
  const tcp = (ports: typeof prev) => (ports ?? []).filter((p) => p.info.protocol === 'TCP');
  const nextTCP = tcp(next);
  if (nextTCP.length === 0) return false;
  const prevTCP = tcp(prev);
  if (prevTCP.length === 0) return true;
  const had = new Set(prevTCP.flatMap((p) => frontendsOf(p.info)));
  return nextTCP.some((p) => frontendsOf(p.info).some((f) => !had.has(f)));
}

/** Adds the frontends ("ip|port", nodePort) of UDP port `prev` that `next` (same key, or none) no longer has. */
function goneUDPFrontends(
  prev: ServicePortInfo,
  next: ServicePortInfo | undefined,
  ipPorts: Set<string>,
  nodePorts: Set<number>,
): void {
  const still = new Set(next ? frontendsOf(next) : []);
  for (const f of frontendsOf(prev)) if (!still.has(f)) ipPorts.add(f);
  if (prev.nodePort !== 0 && prev.nodePort !== next?.nodePort) nodePorts.add(prev.nodePort);
}
