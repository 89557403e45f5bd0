/**
 * nftables mode: applies the layout (render-layout.ts) with ONE nft transaction per sync (through
 * the runner backend.ts gives it: a line to the kept `nft -i` up to 64 KB, else `nft -f -`).
 * Full syncs replace the whole table atomically, keeping the ClientIP-affinity sets that are still
 * wanted (a terse `nft` listing first tells which objects exist); partial syncs send only the
 * difference from the layout this proxier last programmed, which it keeps in memory (no `nft list`
 * on the partial path).
 */
import type { BackendDeps, Proxier, SyncOutcome } from '../backend.js';
import type { DesiredState, ServicePortState } from '../../proxy/types.js';
import { defaultExec } from '../../exec/run.js';
import { nftReader, nftRunner, type NftRunner } from '../../exec/nft.js';
import type { DriftFinding } from '../drift.js';
import type { NftDriftWatch } from './drift-watch.js';
import { compareNft, driftReadScript, parseDriftRead, type NftExpected } from './drift.js';
import {
  layoutBase,
  serviceFragment,
  TABLE_NAME,
  type ServiceFragment,
  type NftLayout,
} from './render-layout.js';
import { createScript, diffScript, replaceScript, type DiffStats } from './render-script.js';
import { listScript, parseTableListing, type ExistingTable } from './render-existing.js';
import { SlotAllocator } from './slots.js';
import { Touched, apply, programmedLayout, touchedLayouts, type Programmed } from './programmed.js';
import { reconcileConntrack } from '../conntrack/conntrack.js';
import { keysOfService } from '../../proxy/sorted-keys.js';

export type { NftRunner };

/** Lists the sets, maps and chains of our table of one family (render-existing.ts listScript); rejects when it is missing. */
export type NftLister = (family: 'ip' | 'ip6') => Promise<string>;

/** The default lister: listScript(family) through `nft -t -f -`. Read-only. */
export function nftLister(nft = 'nft'): NftLister {
  const read = nftReader(nft);
  return (family) => read(listScript(family));
}

/**
 * The drift check's read-back (a non-terse script) and, optionally, the watch whose gate says whether
 * a read is needed at all (drift-gate.ts). Without a watch every check reads.
 */
export interface NftDriftReader {
  readonly script: (script: string) => Promise<string>;
  readonly watch?: NftDriftWatch;
}

/** What the last sync sent (for tests, logs and the benchmark). */
export interface LastSync {
  readonly full: boolean;
  readonly bytes: number;
  /** Service ports whose fragment was rebuilt. */
  readonly rebuilt: number;
  readonly stats?: DiffStats;
  /** Full syncs: how the old table was replaced ('read' keeps wanted affinity sets, 'whole' deletes it) and the sets kept. */
  readonly replaced?: 'read' | 'whole';
  readonly kept?: number;
}

/**
 * One family's nftables proxier. `sync` is never called concurrently (the runner guarantees it).
 * After any failure the next sync is full whatever the caller asks. A partial sync rebuilds only
 * the service ports whose state object changed (the core reuses unchanged ones) and sends only the
 * objects they touched: its cost follows the change, not the cluster.
 */
export class NFTablesProxier implements Proxier {
  private readonly slots = new SlotAllocator();
  private programmed: Programmed | undefined;
  /** The base layout (base chains, global sets and maps) of `programmed`: the drift check needs both. */
  private programmedBase: NftLayout | undefined;
  private readonly skippedLogged = new Set<string>();
  last: LastSync | undefined;

  /**
   * `apply` runs one transaction (default `nft -f -`); `conntrackCleanup` runs the UDP conntrack
   * reconciler after each successful sync (upstream pkg/proxy/conntrack/cleanup.go; off in unit tests and benchmarks); `list`
   * reads our table back before a full sync so that it can keep the affinity sets' elements (without
   * it, or when the table is missing or not understood, a full sync deletes the table whole).
   */
  constructor(
    private readonly deps: BackendDeps,
    private readonly apply: NftRunner = nftRunner(),
    private readonly conntrackCleanup = false,
    private readonly list?: NftLister,
    private readonly tableExists?: (family: 'ip' | 'ip6') => Promise<boolean>,
    private readonly driftRead?: NftDriftReader,
  ) {}

  /** Our table as it is now, or undefined when there is none or it cannot be read or understood. */
  private async readExisting(family: 'ip' | 'ip6'): Promise<ExistingTable | undefined> {
    if (!this.list) return undefined;
    let text: string;
    try {
      text = await this.list(family);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // A missing table (first start after boot, after --cleanup) is the normal case.
      if (/No such file or directory/.test(msg))
        this.deps.logger.debug({ family }, 'no nftables table yet: the full sync creates it');
      else
        this.deps.logger.warn(
          { family, err: msg },
          'could not list the nftables table: the full sync replaces it whole',
        );
      return undefined;
    }
    const r = parseTableListing(text, family);
    if (r.ok) return r.table;
    this.deps.logger.warn(
      { family, reason: r.reason },
      'nftables table not understood: the full sync replaces it whole',
    );
    return undefined;
  }

  async sync(state: DesiredState, full: boolean): Promise<SyncOutcome> {
    if (state.family !== this.deps.options.family)
      throw new RangeError(`nftables proxier for ${this.deps.options.family} got a ${state.family} state`);
    const { ctx, base } = layoutBase(state, this.deps.options);
    const baseKey = JSON.stringify(ctx) + createScript(base);
    const prev = this.programmed;
    // Until this transaction is known to have landed, the kernel's state is unknown.
    this.programmed = undefined;
    const sameBase = prev?.baseKey === baseKey;
    const isFull = full || !sameBase;
    const next: Programmed =
      prev && !isFull
        ? prev
        : {
            baseKey,
            frags: new Map(),
            chains: new Map(),
            sets: new Map(),
            elems: new Map(),
            refs: new Map(),
          };
    const touched = isFull ? undefined : new Touched();
    // A partial sync updates the fragment map in place: no per-sync copy of a 30k-entry map.
    const frags =
      !isFull && prev
        ? prev.frags
        : new Map<string, { readonly sp: ServicePortState; readonly frag: ServiceFragment }>();
    let rebuilt = 0;
    if (isFull) {
      this.slots.begin();
      for (const key of state.sortedKeys) {
        const sp = state.services.get(key);
        if (!sp) continue;
        const old = prev?.frags.get(key);
        if (sameBase && old?.sp === sp) {
          // Unchanged service port (the core reuses its object): keep its fragment and slots.
          for (const [owner, n] of old.frag.slotOwners) this.slots.get(owner, n);
          apply(next, old.frag, 1, undefined);
          frags.set(key, old);
          continue;
        }
        const entry = { sp, frag: serviceFragment(sp, ctx, this.slots) };
        rebuilt++;
        apply(next, entry.frag, 1, undefined);
        this.logSkipped(entry.frag);
        frags.set(key, entry);
      }
      this.slots.end();
      const byService = new Map<string, string[]>();
      for (const [key, f] of frags) {
        const list = byService.get(f.sp.info.serviceName);
        if (list) list.push(key);
        else byService.set(f.sp.info.serviceName, [key]);
      }
      this.serviceKeys = byService;
    } else {
      // Only the service ports of changed services (upstream's partial sync contract): the cost
      // follows the change, not the cluster.
      for (const svc of state.changedServices) {
        const keys = new Set([...keysOfService(state.sortedKeys, svc), ...this.keysByService(frags, svc)]);
        for (const key of keys) {
          const sp = state.services.get(key);
          const old = frags.get(key);
          if (old && old.sp === sp) continue;
          if (old) apply(next, old.frag, -1, touched);
          if (!sp) {
            frags.delete(key);
            for (const [owner] of old!.frag.slotOwners) this.slots.release(owner);
            continue;
          }
          const frag = serviceFragment(sp, ctx, this.slots);
          rebuilt++;
          for (const [owner] of old?.frag.slotOwners ?? [])
            if (!frag.slotOwners.some(([o]) => o === owner)) this.slots.release(owner);
          apply(next, frag, 1, touched);
          this.logSkipped(frag);
          frags.set(key, { sp, frag });
        }
        this.serviceKeys?.set(
          svc,
          [...keys].filter((k) => frags.has(k)),
        );
      }
      this.slots.commit();
    }

    let script: string;
    let stats: DiffStats | undefined;
    let replaced: { replaced: 'read' | 'whole'; kept: number } | undefined;
    if (isFull) {
      const existing = await this.readExisting(base.family);
      const r = replaceScript(programmedLayout(base, next), existing);
      script = r.script;
      replaced = { replaced: existing ? 'read' : 'whole', kept: r.kept.length };
    } else {
      const [before, after] = touchedLayouts(base.family, next, touched!);
      ({ script, stats } = diffScript(before, after));
    }
    if (script !== '') {
      try {
        await this.apply(script);
      } catch (err) {
        // The sync loop logs the failure once; this adds the transaction's size at debug level.
        this.deps.logger.debug(
          { err, full: isFull, bytes: script.length },
          'nft transaction failed; the next sync is a full one',
        );
        throw err;
      }
    }
    this.programmed = { ...next, baseKey, frags };
    this.programmedBase = base;
    this.last = { full: isFull, bytes: script.length, rebuilt, ...(stats ? { stats } : {}), ...replaced };
    this.deps.logger.debug(
      { family: state.family, full: isFull, bytes: script.length, rebuilt, ...stats, ...replaced },
      'nftables sync done',
    );
    if (this.conntrackCleanup) {
      await reconcileConntrack(
        state,
        { exec: defaultExec, logger: this.deps.logger, metrics: this.deps.metrics },
        isFull,
      );
    }
    let elements = 0;
    for (const m of next.elems.values()) elements += m.size;
    for (const m of base.elements.values()) elements += m.size;
    let rules = 0;
    for (const c of base.chains.values()) rules += c.rules.length;
    for (const c of next.chains.values()) rules += c.rules.length;
    const written = stats ? stats.elementsAdded + stats.elementsDeleted : rules + elements;
    return { ruleCounts: { [`${base.family} ${TABLE_NAME}`]: { total: rules + elements, written } } };
  }

  /** serviceName -> keys of the fragments programmed for it; rebuilt by a full sync, kept up to date by partial ones. */
  private serviceKeys: Map<string, string[]> | undefined;

  private keysByService(
    frags: ReadonlyMap<string, { readonly sp: ServicePortState }>,
    svc: string,
  ): readonly string[] {
    if (!this.serviceKeys) {
      this.serviceKeys = new Map();
      for (const [key, f] of frags) {
        const list = this.serviceKeys.get(f.sp.info.serviceName);
        if (list) list.push(key);
        else this.serviceKeys.set(f.sp.info.serviceName, [key]);
      }
    }
    return this.serviceKeys.get(svc) ?? [];
  }

  private logSkipped(frag: ServiceFragment): void {
    const s = frag.skipped;
    if (!s) return;
    const key = `${s.service} ${s.field} ${s.value}`;
    if (this.skippedLogged.has(key)) return;
    this.skippedLogged.add(key);
    this.deps.logger.error(
      { service: s.service, field: s.field, value: s.value },
      'service port skipped: field cannot be rendered safely',
    );
  }

  /**
   * Drift (backends/drift.ts): reads back our table (chains, hooks, rules, set elements) and compares
   * it with what the last successful sync left. Nothing to compare before the first sync or after a
   * failed one (the next full sync rewrites everything anyway). With a watch, the read happens only
   * while its gate suspects a change by another process (drift-gate.ts).
   */
  async checkDrift(): Promise<readonly DriftFinding[]> {
    const p = this.programmed;
    const base = this.programmedBase;
    if (!p || !base || !this.driftRead) return [];
    const watch = this.driftRead.watch;
    watch?.ensure();
    if (watch && !watch.gate.needsRead()) return [];
    const token = watch?.gate.token();
    const family = base.family;
    const whole = programmedLayout(base, p);
    const expected: NftExpected = { family, chains: whole.chains, sets: whole.sets, elems: whole.elements };
    let text: string;
    try {
      text = await this.driftRead.script(driftReadScript(family));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/No such file or directory/.test(msg)) return compareNft(expected, undefined);
      throw err;
    }
    // The table may have gone between the programmed snapshot and now: compare against the same one.
    if (this.programmed !== p) return [];
    const findings = compareNft(expected, parseDriftRead(text, family));
    if (findings.length === 0 && token !== undefined) watch?.gate.readClean(token);
    return findings;
  }

  /** A restart: our table of this family exists (`nft list tables`, not the table's contents). */
  async hasProgrammedRules(): Promise<boolean> {
    if (!this.tableExists) return false;
    return this.tableExists(this.deps.options.family === 'IPv6' ? 'ip6' : 'ip');
  }

  close(): Promise<void> {
    this.driftRead?.watch?.stop();
    this.apply.close?.();
    return Promise.resolve();
  }
}

/** Whether our table of one family exists: `nft list tables <family>`, not the table's contents. Read-only. */
export function nftTableExists(nft = 'nft'): (family: 'ip' | 'ip6') => Promise<boolean> {
  const read = nftReader(nft);
  return async (family) =>
    (await read(`list tables ${family}\n`))
      .split('\n')
      .some((l) => l.trim() === `table ${family} ${TABLE_NAME}`);
}

/** A transaction exercising every feature the layout needs; `nft -c` checks it without committing. */
