/**
 * The IPVS layout as the sum of per-service-port fragments (render.ts serviceFragment), kept by the
 * proxier between syncs so a partial sync rebuilds only the changed service ports. Virtual servers
 * several ports claim keep every claim (the first in sorted key order wins); set entries and
 * addresses several ports share are reference counted. Pure: no I/O.
 */
import type { DesiredState, ServicePortState } from '../../proxy/types.js';
import type { PartialDesired } from './diff.js';
import * as N from './names.js';
import { serviceFragment, type IPVSContext, type IPVSFragment, type VirtualServer } from './render.js';
import { keysOfService } from '../../proxy/sorted-keys.js';

/** A service port's fragment with the state object it was built from. */
export interface FragmentEntry {
  readonly sp: ServicePortState;
  readonly frag: IPVSFragment;
}

interface Claim {
  readonly owner: string;
  readonly vs: VirtualServer;
}

/** What a partial update touched: virtual servers with the one programmed before, set entries. */
interface Touched {
  readonly vss: Map<string, VirtualServer | undefined>;
  readonly entries: Map<string, Set<string>>;
}

/** The outcome of {@link IPVSProgram.update}. */
export interface PartialUpdate {
  /** The touched objects as they should be now (give to planPartial). */
  readonly desired: PartialDesired;
  /** The fragments built by this update (their skipped fields are to be logged). */
  readonly rebuilt: readonly IPVSFragment[];
}

/**
 * The programmed layout of one family, by service port. `full` builds it from a whole state;
 * `update` applies a partial state (only its changedServices) and reports what it touched.
 */
export class IPVSProgram {
  /** Service port key -> its fragment. */
  readonly frags = new Map<string, FragmentEntry>();
  /** "ns/name" -> the keys of its fragments. */
  private readonly byService = new Map<string, string[]>();
  /** Virtual server key -> claims, sorted by owner (service port key); [0] is programmed. */
  private readonly claims = new Map<string, Claim[]>();
  /** Set (IPv4 name) -> entry -> number of fragment contributions. */
  private readonly members = new Map<string, Map<string, number>>(
    N.IPSETS.map((s) => [s.name, new Map<string, number>()]),
  );
  /** Service port keys whose fragment has KUBE-IPVS-OUT-FILTER rules. */
  private readonly noNodeAccessKeys = new Set<string>();
  private noNodeAccessCache: string[] | undefined;
  /** Programmed virtual servers and their real servers (rule counts). */
  vsCount = 0;
  rsCount = 0;

  private constructor(
    readonly ctx: IPVSContext,
    /** Identifies ctx: a partial update needs the same one. */
    readonly ctxKey: string,
  ) {}

  /**
   * The program of every service port of `state`. Fragments of `reuse` whose state object is the
   * one in `state` (the tracker keeps unchanged ports' objects) are kept when built with the same
   * context; the rest are built. Returns the program and how many fragments were built.
   */
  static full(
    state: DesiredState,
    ctx: IPVSContext,
    reuse?: IPVSProgram,
  ): { program: IPVSProgram; rebuilt: number } {
    const ctxKey = contextKey(ctx);
    const prog = new IPVSProgram(ctx, ctxKey);
    const old = reuse?.ctxKey === ctxKey ? reuse.frags : undefined;
    let rebuilt = 0;
    for (const key of state.sortedKeys) {
      const sp = state.services.get(key);
      if (!sp) continue;
      let entry = old?.get(key);
      if (entry?.sp !== sp) {
        entry = { sp, frag: serviceFragment(sp, ctx) };
        rebuilt++;
      }
      prog.frags.set(key, entry);
      prog.apply(key, entry.frag, 1, undefined);
      const svc = sp.info.serviceName;
      const list = prog.byService.get(svc);
      if (list) list.push(key);
      else prog.byService.set(svc, [key]);
    }
    for (const list of prog.claims.values()) {
      prog.vsCount++;
      prog.rsCount += list[0]!.vs.realServers.length;
    }
    return { program: prog, rebuilt };
  }

  /** Fragments in sorted service-port order (what assembleIPVSLayout takes). */
  *fragments(sortedKeys: readonly string[]): Iterable<IPVSFragment> {
    for (const key of sortedKeys) {
      const e = this.frags.get(key);
      if (e) yield e.frag;
    }
  }

  /**
   * Rebuilds the service ports of `state.changedServices` (those present now and those programmed
   * before) and returns what that touched. Cost: O(changed service ports), plus a sort of the
   * KUBE-IPVS-OUT-FILTER owners when one of them changed.
   */
  update(state: DesiredState): PartialUpdate {
    const t: Touched = { vss: new Map(), entries: new Map() };
    const rebuilt: IPVSFragment[] = [];
    for (const svc of state.changedServices) {
      const keys = new Set([...keysOfService(state.sortedKeys, svc), ...(this.byService.get(svc) ?? [])]);
      const now: string[] = [];
      for (const key of keys) {
        const sp = state.services.get(key);
        const old = this.frags.get(key);
        if (sp) now.push(key);
        if (old && old.sp === sp) continue;
        if (old) this.apply(key, old.frag, -1, t);
        if (!sp) {
          this.frags.delete(key);
          continue;
        }
        const frag = serviceFragment(sp, this.ctx);
        rebuilt.push(frag);
        this.apply(key, frag, 1, t);
        this.frags.set(key, { sp, frag });
      }
      if (now.length) this.byService.set(svc, now);
      else this.byService.delete(svc);
    }
    const vss = new Map<string, VirtualServer | undefined>();
    for (const [key, before] of t.vss) {
      const after = this.claims.get(key)?.[0]?.vs;
      if (before) {
        this.vsCount--;
        this.rsCount -= before.realServers.length;
      }
      if (after) {
        this.vsCount++;
        this.rsCount += after.realServers.length;
      }
      vss.set(key, after);
    }
    const entries = new Map<string, Map<string, boolean>>();
    for (const [set, m] of t.entries) {
      const counts = this.members.get(set)!;
      const out = new Map<string, boolean>();
      for (const e of m) out.set(e, counts.has(e));
      entries.set(set, out);
    }
    const addresses = entries.get(N.IPVS_IPS) ?? new Map<string, boolean>();
    return { desired: { family: this.ctx.family, vss, entries, addresses }, rebuilt };
  }

  /** Whether set `name` (IPv4 name) has any entry. */
  nonEmpty(name: string): boolean {
    return (this.members.get(name)?.size ?? 0) > 0;
  }

  /** KUBE-IPVS-OUT-FILTER rules of every fragment, in sorted service-port order. */
  noNodeAccess(): readonly string[] {
    if (!this.noNodeAccessCache) {
      const out: string[] = [];
      for (const key of [...this.noNodeAccessKeys].sort())
        out.push(...this.frags.get(key)!.frag.noNodeAccess);
      this.noNodeAccessCache = out;
    }
    return this.noNodeAccessCache;
  }

  /** Adds (+1) or removes (-1) one fragment's contributions, recording the first state of what it touches in `t`. */
  private apply(owner: string, frag: IPVSFragment, delta: 1 | -1, t: Touched | undefined): void {
    for (const vs of frag.vss) {
      const list = this.claims.get(vs.key);
      if (t && !t.vss.has(vs.key)) t.vss.set(vs.key, list?.[0]?.vs);
      if (delta === 1) {
        if (!list) this.claims.set(vs.key, [{ owner, vs }]);
        else {
          // Claims arrive in sorted order on a full build: the end is the usual place.
          let i = list.length;
          while (i > 0 && list[i - 1]!.owner > owner) i--;
          list.splice(i, 0, { owner, vs });
        }
      } else if (list) {
        const i = list.findIndex((c) => c.owner === owner);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.claims.delete(vs.key);
      }
    }
    for (const [set, entry] of frag.entries) {
      const counts = this.members.get(set)!;
      if (t) {
        const seen = t.entries.get(set);
        if (seen) seen.add(entry);
        else t.entries.set(set, new Set([entry]));
      }
      const n = (counts.get(entry) ?? 0) + delta;
      if (n > 0) counts.set(entry, n);
      else counts.delete(entry);
    }
    if (frag.noNodeAccess.length > 0) {
      if (delta === 1) this.noNodeAccessKeys.add(owner);
      else this.noNodeAccessKeys.delete(owner);
      this.noNodeAccessCache = undefined;
    }
  }
}

/** A stable identity of a context (the node addresses and scheduler its fragments were built with). */
export function contextKey(ctx: IPVSContext): string {
  return JSON.stringify([ctx.family, ctx.scheduler, ctx.nodeIPs, ctx.nodePortIPs]);
}
