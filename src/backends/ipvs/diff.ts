/**
 * What the kernel holds for IPVS mode, read from the tools' text output, and the difference between
 * that and a desired layout as the batch scripts that close it (`ip -batch`, `ipset restore`,
 * `ipvsadm-restore`). Pure: the proxier does the reading and the running.
 */
import { canonicalIP, cidrContains, joinHostPort, parseCIDR, splitHostPort, type CIDR } from '../../net/ip.js';
import type { Protocol } from '../../model/types.js';
import * as N from './names.js';
import { rsLine, setCreateLine, vsArgs, vsKey, vsLine, type IPVSLayout, type RealServer, type VirtualServer } from './render.js';

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

const PROTO_FLAG: Record<string, Protocol> = { '-t': 'TCP', '--tcp-service': 'TCP', '-u': 'UDP', '--udp-service': 'UDP', '--sctp-service': 'SCTP' };

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
      vss.set(key, { key, protocol, address, port, scheduler: opt('-s') ?? '', persistence: Number(opt('-p') ?? 0), reals: new Map() });
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
export function parseIPSetSave(text: string, ours: ReadonlySet<string>): Map<string, { type: string; entries: Set<string> }> {
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
  readonly stats: { vsAdded: number; vsDeleted: number; vsEdited: number; rsAdded: number; rsDeleted: number; rsEdited: number; setEntriesChanged: number; addressesChanged: number };
}

/**
 * Plans the batches from `current` to `desired`, and updates `current` in place to what the kernel
 * holds once they succeed. Virtual servers on `excludeCIDRs` addresses are never deleted. TCP real
 * servers that go away are set to weight 0 (draining) rather than deleted; UDP and SCTP ones are
 * deleted at once (upstream graceful_termination.go).
 */
export function planSync(current: KernelState, desired: IPVSLayout, excludeCIDRs: readonly string[] = []): SyncPlan {
  const bits = desired.family === 'IPv6' ? 128 : 32;
  const excluded: CIDR[] = excludeCIDRs.map((c) => parseCIDR(c)).filter((c): c is CIDR => c !== undefined && c.family === desired.family);
  const linkAdd: string[] = [];
  const linkDel: string[] = [];
  const ipset: string[] = [];
  const ipvs: string[] = [];
  const draining: DrainingRS[] = [];
  const revived: string[] = [];
  const stats = { vsAdded: 0, vsDeleted: 0, vsEdited: 0, rsAdded: 0, rsDeleted: 0, rsEdited: 0, setEntriesChanged: 0, addressesChanged: 0 };

  // ipsets first: the iptables rules and nothing else depend on them.
  for (const s of desired.sets) {
    let have = current.sets.get(s.name);
    if (have && have.type !== s.info.type) {
      ipset.push(`destroy ${s.name}`);
      have = undefined;
    }
    if (!have) {
      ipset.push(setCreateLine(s, desired.family));
      have = { type: s.info.type, entries: new Set() };
      current.sets.set(s.name, have);
    }
    const want = new Set(s.entries);
    for (const e of have.entries) {
      if (want.has(e)) continue;
      ipset.push(`del ${s.name} ${e}`);
      have.entries.delete(e);
      stats.setEntriesChanged++;
    }
    for (const e of s.entries) {
      if (have.entries.has(e)) continue;
      ipset.push(`add ${s.name} ${e}`);
      have.entries.add(e);
      stats.setEntriesChanged++;
    }
  }

  // Virtual servers: create/edit, then real servers.
  for (const vs of desired.virtualServers.values()) {
    let have = current.vss.get(vs.key);
    if (!have) {
      ipvs.push(vsLine(vs));
      stats.vsAdded++;
      have = { key: vs.key, protocol: vs.protocol, address: vs.address, port: vs.port, scheduler: vs.scheduler, persistence: vs.persistence, reals: new Map() };
      current.vss.set(vs.key, have);
    } else if (have.scheduler !== vs.scheduler || have.persistence !== vs.persistence) {
      ipvs.push(vsLine(vs, true));
      stats.vsEdited++;
      current.vss.set(vs.key, { ...have, scheduler: vs.scheduler, persistence: vs.persistence });
      have = current.vss.get(vs.key)!;
    }
    const want = new Map(vs.realServers.map((r) => [joinHostPort(r.ip, r.port), r]));
    for (const [k, r] of have.reals) {
      if (want.has(k)) continue;
      if (vs.protocol === 'TCP') {
        if (r.weight !== 0) {
          const zero = { ...r, weight: 0 };
          ipvs.push(rsLine(vs, zero, true));
          have.reals.set(k, zero);
          draining.push({ id: rsId(vs.key, r), vs, rs: zero });
          stats.rsEdited++;
        }
      } else {
        ipvs.push(`-d ${vsArgs(vs)} -r ${k}`);
        have.reals.delete(k);
        stats.rsDeleted++;
      }
    }
    for (const [k, r] of want) {
      const h = have.reals.get(k);
      if (!h) {
        ipvs.push(rsLine(vs, r));
        stats.rsAdded++;
      } else if (h.weight !== r.weight) {
        ipvs.push(rsLine(vs, r, true));
        if (h.weight === 0) revived.push(rsId(vs.key, r));
        stats.rsEdited++;
      } else continue;
      have.reals.set(k, r);
    }
  }
  for (const [key, have] of current.vss) {
    if (desired.virtualServers.has(key)) continue;
    if (excluded.some((c) => cidrContains(c, have.address))) continue;
    ipvs.push(`-D ${vsArgs(have)}`);
    current.vss.delete(key);
    stats.vsDeleted++;
  }

  if (!current.device) {
    linkAdd.push(`link add ${N.DUMMY_DEVICE} type dummy`);
    current.device = true;
  }
  const wantAddr = new Set(desired.addresses);
  for (const a of desired.addresses) {
    if (current.addresses.has(a)) continue;
    linkAdd.push(`address add ${a}/${bits} dev ${N.DUMMY_DEVICE}`);
    current.addresses.add(a);
    stats.addressesChanged++;
  }
  for (const a of current.addresses) {
    if (wantAddr.has(a) || !a.includes(':') !== (desired.family === 'IPv4')) continue;
    linkDel.push(`address del ${a}/${bits} dev ${N.DUMMY_DEVICE}`);
    current.addresses.delete(a);
    stats.addressesChanged++;
  }
  const text = (l: string[]): string => (l.length ? l.join('\n') + '\n' : '');
  return { linkAdd: text(linkAdd), linkDel: text(linkDel), ipset: text(ipset), ipvs: text(ipvs), draining, revived, stats };
}
