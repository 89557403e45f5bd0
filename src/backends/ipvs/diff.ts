/**
 * What the kernel holds for IPVS mode, read from the tools' text output, and the difference between
 * that and a desired layout as the batch scripts that close it (`ip -batch`, `ipset restore`,
 * `ipvsadm-restore`). Pure: the proxier does the reading and the running.
 */
import {
  canonicalIP,
  cidrContains,
  joinHostPort,
  parseCIDR,
  splitHostPort,
  type CIDR,
} from '../../net/ip.js';
import type { IPFamily, Protocol } from '../../model/types.js';
import * as N from './names.js';
import {
  rsLine,
  setCreateLine,
  vsArgs,
  vsKey,
  vsLine,
  type IPVSLayout,
  type RealServer,
  type VirtualServer,
} from './render.js';

/** A virtual server as the kernel has it. */
export interface KernelVS {
  readonly key: string;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  readonly persistence: number;
  /** By `ip:port` (joinHostPort). */
  readonly reals: Map<string, RealServer>;
}

/** The parts of the kernel state IPVS mode owns. Mutable: the proxier updates it after each applied batch. */
export interface KernelState {
  device: boolean;
  readonly addresses: Set<string>;
  readonly vss: Map<string, KernelVS>;
  /** Only our sets (both families' names), by name. */
  readonly sets: Map<string, { type: string; entries: Set<string> }>;
}

/** An empty kernel (nothing of ours programmed). */
export function emptyKernelState(): KernelState {
  return { device: false, addresses: new Set(), vss: new Map(), sets: new Map() };
}

const PROTO_FLAG: Record<string, Protocol> = {
  '-t': 'TCP',
  '--tcp-service': 'TCP',
  '-u': 'UDP',
  '--udp-service': 'UDP',
  '--sctp-service': 'SCTP',
};

/** Parses `ipvsadm -Sn` (the same syntax as ipvsadm-restore input). Unknown lines are ignored. */
export function parseIPVSSave(text: string): Map<string, KernelVS> {
  const vss = new Map<string, KernelVS>();
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    const cmd = t[0];
    if (cmd !== '-A' && cmd !== '-a') continue;
    const protocol = PROTO_FLAG[t[1] ?? ''];
    if (!protocol || !t[2]) continue;
    const { host, port } = splitHostPort(t[2]);
    const address = canonicalIP(host) ?? host;
    const key = vsKey(protocol, address, port);
    const opt = (name: string): string | undefined => {
      const i = t.indexOf(name, 3);
      return i >= 0 ? t[i + 1] : undefined;
    };
    if (cmd === '-A') {
      vss.set(key, {
        key,
        protocol,
        address,
        port,
        scheduler: opt('-s') ?? '',
        persistence: Number(opt('-p') ?? 0),
        reals: new Map(),
      });
    } else {
      const vs = vss.get(key);
      const r = opt('-r');
      if (!vs || !r) continue;
      const hp = splitHostPort(r);
      const ip = canonicalIP(hp.host) ?? hp.host;
      vs.reals.set(joinHostPort(ip, hp.port), { ip, port: hp.port, weight: Number(opt('-w') ?? 1) });
    }
  }
  return vss;
}

/** Connection counts per real server from `ipvsadm -Ln`: `vsKey/ip:port` -> active + inactive. */
export function parseIPVSConnections(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const vs = /^(TCP|UDP|SCTP)\s+(\S+)/.exec(line);
    if (vs) {
      const { host, port } = splitHostPort(vs[2]!);
      current = vsKey(vs[1] as Protocol, canonicalIP(host) ?? host, port);
      continue;
    }
    const rs = /^\s+->\s+(\S+)\s+\S+\s+\d+\s+(\d+)\s+(\d+)/.exec(line);
    if (rs && current) {
      const { host, port } = splitHostPort(rs[1]!);
      out.set(`${current}/${joinHostPort(canonicalIP(host) ?? host, port)}`, Number(rs[2]) + Number(rs[3]));
    }
  }
  return out;
}

/** Parses `ipset save`, keeping only the sets whose names are in `ours`. */
export function parseIPSetSave(
  text: string,
  ours: ReadonlySet<string>,
): Map<string, { type: string; entries: Set<string> }> {
  const sets = new Map<string, { type: string; entries: Set<string> }>();
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t[0] === 'create' && t[1] && ours.has(t[1])) sets.set(t[1], { type: t[2] ?? '', entries: new Set() });
    else if (t[0] === 'add' && t[1] && t[2]) sets.get(t[1])?.entries.add(t[2]);
  }
  return sets;
}

/** Parses `ip -o addr show dev kube-ipvs0`: the bound addresses (without prefix). */
export function parseDeviceAddresses(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/\binet6? ([0-9a-fA-F.:]+)\/\d+/g)) out.add(canonicalIP(m[1]!) ?? m[1]!);
  return out;
}

/** Identifies one real server of one virtual server (graceful-termination bookkeeping). */
export function rsId(vsKeyText: string, rs: Pick<RealServer, 'ip' | 'port'>): string {
  return `${vsKeyText}/${joinHostPort(rs.ip, rs.port)}`;
}

/** A real server set to weight 0 instead of being deleted (TCP only), to be removed once drained. */
export interface DrainingRS {
  readonly id: string;
  readonly vs: Pick<VirtualServer, 'key' | 'protocol' | 'address' | 'port'>;
  readonly rs: RealServer;
}

/** The batches that turn `current` into `desired`. Empty strings mean nothing to do for that tool. */
export interface SyncPlan {
  /** `ip -batch` input (device and address changes). Addresses are bound after the virtual servers exist. */
  readonly linkAdd: string;
  /** `ip -batch` input unbinding addresses no longer used (run after the VS deletions). */
  readonly linkDel: string;
  /** `ipset -exist restore` input. */
  readonly ipset: string;
  /** `ipvsadm-restore` input. */
  readonly ipvs: string;
  /** Real servers newly set to weight 0 (graceful termination). */
  readonly draining: readonly DrainingRS[];
  /** Real servers that were draining and are wanted again (weight restored). */
  readonly revived: readonly string[];
  readonly stats: {
    vsAdded: number;
    vsDeleted: number;
    vsEdited: number;
    rsAdded: number;
    rsDeleted: number;
    rsEdited: number;
    setEntriesChanged: number;
    addressesChanged: number;
  };
}

/** Collects the batch lines while updating `current` to what the kernel holds once they succeed. */
class Planner {
  private readonly bits: number;
  private readonly excluded: CIDR[];
  private readonly linkAdd: string[] = [];
  private readonly linkDel: string[] = [];
  private readonly ipset: string[] = [];
  private readonly ipvs: string[] = [];
  private readonly draining: DrainingRS[] = [];
  private readonly revived: string[] = [];
  readonly stats = {
    vsAdded: 0,
    vsDeleted: 0,
    vsEdited: 0,
    rsAdded: 0,
    rsDeleted: 0,
    rsEdited: 0,
    setEntriesChanged: 0,
    addressesChanged: 0,
  };

  constructor(
    private readonly current: KernelState,
    private readonly family: IPFamily,
    excludeCIDRs: readonly string[],
  ) {
    this.bits = family === 'IPv6' ? 128 : 32;
    this.excluded = excludeCIDRs
      .map((c) => parseCIDR(c))
      .filter((c): c is CIDR => c !== undefined && c.family === family);
  }

  /** The kernel's set `name`, created (or re-created when its type differs) first when needed. */
  set(name: string, info: N.IPSetInfo): { type: string; entries: Set<string> } {
    let have = this.current.sets.get(name);
    if (have && have.type !== info.type) {
      this.ipset.push(`destroy ${name}`);
      have = undefined;
    }
    if (!have) {
      this.ipset.push(setCreateLine({ name, info }, this.family));
      have = { type: info.type, entries: new Set() };
      this.current.sets.set(name, have);
    }
    return have;
  }

  /** Adds or deletes one entry of a set returned by {@link set}. */
  entry(name: string, have: { entries: Set<string> }, entry: string, want: boolean): void {
    if (have.entries.has(entry) === want) return;
    this.ipset.push(`${want ? 'add' : 'del'} ${name} ${entry}`);
    if (want) have.entries.add(entry);
    else have.entries.delete(entry);
    this.stats.setEntriesChanged++;
  }

  /** Creates or edits `vs` and brings its real servers to `vs.realServers` (draining removed TCP ones). */
  vs(vs: VirtualServer): void {
    let have = this.current.vss.get(vs.key);
    if (!have) {
      this.ipvs.push(vsLine(vs));
      this.stats.vsAdded++;
      have = {
        key: vs.key,
        protocol: vs.protocol,
        address: vs.address,
        port: vs.port,
        scheduler: vs.scheduler,
        persistence: vs.persistence,
        reals: new Map(),
      };
      this.current.vss.set(vs.key, have);
    } else if (have.scheduler !== vs.scheduler || have.persistence !== vs.persistence) {
      this.ipvs.push(vsLine(vs, true));
      this.stats.vsEdited++;
      have = { ...have, scheduler: vs.scheduler, persistence: vs.persistence };
      this.current.vss.set(vs.key, have);
    }
    const want = new Map(vs.realServers.map((r) => [joinHostPort(r.ip, r.port), r]));
    for (const [k, r] of have.reals) {
      if (want.has(k)) continue;
      if (vs.protocol === 'TCP') {
        if (r.weight !== 0) {
          const zero = { ...r, weight: 0 };
          this.ipvs.push(rsLine(vs, zero, true));
          have.reals.set(k, zero);
          this.draining.push({ id: rsId(vs.key, r), vs, rs: zero });
          this.stats.rsEdited++;
        }
      } else {
        this.ipvs.push(`-d ${vsArgs(vs)} -r ${k}`);
        have.reals.delete(k);
        this.stats.rsDeleted++;
      }
    }
    for (const [k, r] of want) {
      const h = have.reals.get(k);
      if (!h) {
        this.ipvs.push(rsLine(vs, r));
        this.stats.rsAdded++;
      } else if (h.weight !== r.weight) {
        this.ipvs.push(rsLine(vs, r, true));
        if (h.weight === 0) this.revived.push(rsId(vs.key, r));
        this.stats.rsEdited++;
      } else continue;
      have.reals.set(k, r);
    }
  }

  /** Deletes the virtual server `key` (and its real servers) unless its address is excluded. */
  dropVS(key: string): void {
    const have = this.current.vss.get(key);
    if (!have || this.excluded.some((c) => cidrContains(c, have.address))) return;
    this.ipvs.push(`-D ${vsArgs(have)}`);
    this.current.vss.delete(key);
    this.stats.vsDeleted++;
  }

  device(): void {
    if (this.current.device) return;
    this.linkAdd.push(`link add ${N.DUMMY_DEVICE} type dummy`);
    this.current.device = true;
  }

  /** Binds or unbinds one address of kube-ipvs0 (unbinding goes in the batch run after the VS deletions). */
  address(a: string, want: boolean): void {
    if (this.current.addresses.has(a) === want) return;
    if (want) {
      this.linkAdd.push(`address add ${a}/${this.bits} dev ${N.DUMMY_DEVICE}`);
      this.current.addresses.add(a);
    } else {
      this.linkDel.push(`address del ${a}/${this.bits} dev ${N.DUMMY_DEVICE}`);
      this.current.addresses.delete(a);
    }
    this.stats.addressesChanged++;
  }

  plan(): SyncPlan {
    const text = (l: string[]): string => (l.length ? l.join('\n') + '\n' : '');
    return {
      linkAdd: text(this.linkAdd),
      linkDel: text(this.linkDel),
      ipset: text(this.ipset),
      ipvs: text(this.ipvs),
      draining: this.draining,
      revived: this.revived,
      stats: this.stats,
    };
  }
}

/**
 * Plans the batches from `current` to `desired`, and updates `current` in place to what the kernel
 * holds once they succeed. Virtual servers on `excludeCIDRs` addresses are never deleted. TCP real
 * servers that go away are set to weight 0 (draining) rather than deleted; UDP and SCTP ones are
 * deleted at once (upstream graceful_termination.go).
 */
export function planSync(
  current: KernelState,
  desired: IPVSLayout,
  excludeCIDRs: readonly string[] = [],
): SyncPlan {
  const p = new Planner(current, desired.family, excludeCIDRs);
  // ipsets first: the iptables rules and nothing else depend on them.
  for (const s of desired.sets) {
    const have = p.set(s.name, s.info);
    const want = new Set(s.entries);
    for (const e of have.entries) if (!want.has(e)) p.entry(s.name, have, e, false);
    for (const e of s.entries) p.entry(s.name, have, e, true);
  }
  // Virtual servers: create/edit, then real servers; then the ones nobody wants.
  for (const vs of desired.virtualServers.values()) p.vs(vs);
  for (const key of [...current.vss.keys()]) if (!desired.virtualServers.has(key)) p.dropVS(key);
  p.device();
  for (const a of desired.addresses) p.address(a, true);
  const wantAddr = new Set(desired.addresses);
  for (const a of [...current.addresses])
    if (!wantAddr.has(a) && a.includes(':') === (desired.family === 'IPv6')) p.address(a, false);
  return p.plan();
}

/** The part of a layout a partial sync touched: only these objects are compared with the kernel. */
export interface PartialDesired {
  readonly family: IPFamily;
  /** Virtual server key -> the one wanted now, or undefined when none is. */
  readonly vss: ReadonlyMap<string, VirtualServer | undefined>;
  /** Set (IPv4 name, as in names.ts) -> entry -> wanted. */
  readonly entries: ReadonlyMap<string, ReadonlyMap<string, boolean>>;
  /** Address of kube-ipvs0 -> wanted. */
  readonly addresses: ReadonlyMap<string, boolean>;
}

/**
 * {@link planSync} restricted to the objects in `want`: what the kernel holds for anything else is
 * left alone. Costs O(touched objects), whatever the size of `current`. Same draining rules.
 */
export function planPartial(
  current: KernelState,
  want: PartialDesired,
  excludeCIDRs: readonly string[] = [],
): SyncPlan {
  const p = new Planner(current, want.family, excludeCIDRs);
  for (const info of N.IPSETS) {
    const entries = want.entries.get(info.name);
    if (!entries || entries.size === 0) continue;
    const name = N.familySetName(info.name, want.family);
    const have = p.set(name, info);
    for (const [e, w] of entries) p.entry(name, have, e, w);
  }
  for (const [key, vs] of want.vss) {
    if (vs) p.vs(vs);
    else p.dropVS(key);
  }
  if (want.addresses.size) p.device();
  for (const [a, w] of want.addresses) p.address(a, w);
  return p.plan();
}
