/**
 * The iptables executor: applies the pure renderer's plan with iptables-restore --noflush, keeps track
 * of the chains it owns, ensures the jumps from the built-in chains, watches canary chains, cleans up
 * stale UDP conntrack entries and sets route_localnet.
 *
 * Restore strategy (measured on this machine, 2 vCPU, kernel 6.18, iptables 1.8.9, 10k services × 5
 * endpoints = 63k nat chains / 178k rules; `node --import tsx bench/iptables/bench.ts` prints the table):
 * - An upstream-shaped `--noflush` restore declaring every chain does not finish in 120 s with
 *   iptables-nft, even into an empty namespace: iptables-nft's userspace cost per jump rule grows with
 *   the number of chains declared in the same restore, so one big transaction is quadratic. Restores
 *   of ~1000 chains, split at service boundaries, stay linear: the whole ruleset loads in ~5 s.
 * - Re-declaring a chain flushes and rewrites it, and the top-level KUBE-SERVICES alone (10k jump
 *   rules) costs ~0.7 s on nft. So every sync, full or partial, writes only the chains whose rule text
 *   differs from what we last wrote (tracked here; checked against iptables-save rule counts on full
 *   syncs), and the dispatch chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) are edited in place with
 *   `-D rule` / `-I chain 1 rule` when few rules changed. A steady full sync is then two saves and a
 *   diff (3 s at 10k on nft, vs > 120 s upstream-shaped).
 * - Partial syncs render only the changed services (renderIncremental) so their cost does not grow
 *   with the cluster. With nft the floor is the kernel: each commit re-validates every chain reachable
 *   from the hooked base chains (~60-110 ms of system time at 10k services), so one changed service
 *   takes ~150-220 ms there.
 * - iptables-legacy replaces a whole table per restore, so splitting only multiplies the cost: legacy
 *   gets one restore per sync (the diff still keeps partial syncs small).
 * Nothing is flushed at startup. After a restart the first full sync adopts every chain whose
 * iptables-save text is exactly what our rules print as (save-normalize.ts reproduces iptables-save's
 * normalisation, checked against the real tools for every golden rule) and rewrites only the rest.
 */
import type { Proxier, SyncOutcome } from '../backend.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyMetrics } from '../../observability/metrics.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { reconcileConntrack } from '../conntrack/conntrack.js';
import { JUMP_RULES, KUBE_FIREWALL, KUBE_PROXY_CANARY, type IPTablesTable } from './render.js';
import {
  commentOf,
  digestRules,
  hasJump,
  reconcileKnown,
  recordOf,
  recordRules,
  SaveReader,
  type KnownChains,
  type SavedTable,
  type SplitTable,
} from './chain-diff.js';
import {
  ensureChain,
  ensureRule,
  iptablesRestore,
  iptablesSave,
  type Exec,
  type IPTablesTools,
} from '../../exec/iptables.js';
import { defaultExec } from '../../exec/run.js';
import { PROC_SYS, readSysctl, sysctlName, writeSysctl } from '../../exec/sysctl.js';
import { savedDigest } from './save-normalize.js';
import {
  planRestores,
  renderIncremental,
  renderJumpsAndCanaries,
  renderWhole,
  restoreChunks,
  type ChainBook,
} from './planner.js';
import type { IPFamily } from '../../model/types.js';
import { chainLinesReader, jumpChains, missingJumps } from './drift.js';
import type { DriftFinding } from '../drift.js';

const RESTORE_TIMEOUT_MS = 300_000;

export interface IPTablesProxierOptions {
  readonly logger: Logger;
  readonly options: FamilyOptions;
  readonly tools: IPTablesTools;
  /** Spawns commands (default run() from exec/). */
  readonly exec?: Exec;
  /** How often the mangle canary is checked; 0 disables the monitor. Default 30 s (upstream: syncPeriod). */
  readonly canaryPeriodMs?: number;
  /** Called when the canary disappeared (tables flushed): the runner should do a full sync soon. */
  readonly onNeedFullSync?: () => void;
  readonly metrics?: ProxyMetrics;
  /** Root of the sysctl tree of the namespace the proxy runs in. Default /proc/sys. */
  readonly procSys?: string;
  /**
   * A full collection of the heap (BackendDeps.collectGarbage): run during a sync each time its
   * restores have let go of GC_AFTER_RELEASED_CHARS of input. Absent: none.
   */
  readonly collectGarbage?: () => Promise<unknown>;
  /** Tests: the released input that sets off a collection (default GC_AFTER_RELEASED_CHARS). */
  readonly collectAfterReleasedChars?: number;
  /** Service chains per restore. Default 1000 with nft, unlimited with legacy (see the file comment). */
  readonly maxChainsPerRestore?: number;
  /** UDP conntrack cleanup after syncs (default true). */
  readonly conntrackCleanup?: boolean;
  /**
   * Both of upstream's nfacct objects exist in this namespace (the backend created them): the rules
   * count into them with `-m nfacct`, as upstream's do. Default false.
   */
  readonly nfacct?: boolean;
}

/** The built-in chains that hold kube-proxy's jumps. */
const JUMP_CHAINS = [...new Set(JUMP_RULES.map((j) => j.chain))];

/**
 * The chains whose saved text a full sync keeps (SaveReader): the jump and canary check
 * (renderJumpsAndCanaries) reads the built-in chains holding our jumps and whether the canary and
 * KUBE-FIREWALL exist. Every other chain is kept as a digest only.
 */
const EXCERPT_CHAINS: ReadonlySet<string> = new Set([KUBE_PROXY_CANARY, KUBE_FIREWALL, ...JUMP_CHAINS]);

/**
 * The restore input streamed (and let go of: restoreChunks' `release`) between two full collections
 * (IPTablesProxierOptions.collectGarbage). The chain contents it releases were rendered before the
 * first restore and are old by then: V8 would only reclaim them at its next full collection, which
 * the heap's growth sets off late (at 50,000 Services a first sync's restores release ~120 MB, and
 * the heap had grown 200 MB above its live size when V8 collected). At 10,000 Services a whole
 * sync's input is ~25 M characters: no collection in its first sync, none in partial syncs.
 */
export const GC_AFTER_RELEASED_CHARS = 32 * 1024 * 1024;

/** Per-table bookkeeping of what the kernel holds from us. */
interface TableState {
  /** Chain -> the exact rule text we wrote (our chains only). */
  readonly known: KnownChains;
}

/** Counts from the last sync, exposed for the benchmark and tests. */
export interface SyncStats {
  readonly restores: number;
  readonly chainsWritten: number;
  readonly chainsUnchanged: number;
  readonly chainsEdited: number;
  readonly chainsDeleted: number;
  /** Full syncs: chains we had no record of that already held exactly our rules (kept, not rewritten). */
  readonly chainsAdopted: number;
  readonly renderMs: number;
  readonly restoreMs: number;
  readonly saveMs: number;
  /** Wall time of each restore, in order. */
  readonly restoreTimesMs: readonly number[];
}

/** `class IPTablesProxier implements Proxier`: one IP family, one iptables backend. */
export class IPTablesProxier implements Proxier {
  private readonly exec: Exec;
  private readonly log: Logger;
  private readonly tables: Record<IPTablesTable, TableState> = {
    filter: { known: new Map() },
    nat: { known: new Map() },
  };
  /** nat chains that exist in the kernel (from iptables-save on full syncs, then tracked). */
  private natChains = new Set<string>();
  private canaryTimer: NodeJS.Timeout | undefined;
  private canaryBusy = false;
  private closed = false;
  private conntrackLiberal = false;
  private lastStats: SyncStats | undefined;

  constructor(private readonly o: IPTablesProxierOptions) {
    this.exec = o.exec ?? defaultExec;
    this.log = o.logger;
  }

  /** Writes sysctls, creates the canaries and starts the monitor. Called once by the backend's create(). */
  async start(): Promise<void> {
    this.setupSysctls();
    await this.ensureCanaries();
    const period = this.o.canaryPeriodMs ?? 30_000;
    if (period > 0) {
      this.canaryTimer = setInterval(() => {
        void this.checkCanary();
      }, period);
      this.canaryTimer.unref();
    }
  }

  /** Statistics of the last sync (benchmark and diagnostics). */
  stats(): SyncStats | undefined {
    return this.lastStats;
  }

  async sync(state: DesiredState, full: boolean): Promise<SyncOutcome> {
    const t = this.o.tools;
    let saveMs = 0;
    // Full syncs: each table's save read as it arrives into a digest per chain (SaveReader; the
    // text itself is never held: ~90 MB of nat at 50,000 Services), for the record check and
    // adoption; then dropped, before the restores run. The jumps are checked against the text of
    // the few chains that hold them (EXCERPT_CHAINS).
    let saved: Record<IPTablesTable, SavedTable> | undefined;
    let jumpCheck: Record<IPTablesTable, Map<string, string>> | undefined;
    if (full) {
      const s0 = performance.now();
      const read = async (table: IPTablesTable): Promise<SavedTable> => {
        // Chains we have a record of are only counted (reconcileKnown); the others are hashed, for
        // adoption. After a restart that is every chain; in a later full sync, next to none.
        const known = this.tables[table].known;
        const reader = new SaveReader(EXCERPT_CHAINS, (c) => !known.has(c));
        await iptablesSave(this.exec, t, table, RESTORE_TIMEOUT_MS, (chunk) => {
          reader.push(chunk);
        });
        return reader.end();
      };
      const [nat, filter] = await Promise.all([read('nat'), read('filter')]);
      saveMs = performance.now() - s0;
      saved = { nat, filter };
      jumpCheck = { nat: nat.texts, filter: filter.texts };
      this.natChains = new Set(nat.chains.keys());
      const droppedNat = reconcileKnown(this.tables.nat.known, nat.chains);
      const droppedFilter = reconcileKnown(this.tables.filter.known, filter.chains);
      if (droppedNat + droppedFilter > 0)
        this.log.info(
          { nat: droppedNat, filter: droppedFilter },
          'chains differ from what we wrote; rewriting them',
        );
    }

    const r0 = performance.now();
    const book = this.book();
    // Full syncs over a programmed node: each service chain the kernel already holds as recorded
    // (or, unrecorded, holds exactly as we would write it: adopted) is settled as soon as it is
    // rendered, and its content dropped (render.ts RenderMode.settle).
    let adopted = 0;
    const savedNat = saved?.nat.chains;
    const natKnown = this.tables.nat.known;
    const settle = (chain: string, content: string): boolean => {
      const before = natKnown.get(chain);
      if (before !== undefined) return before === recordOf(chain, content);
      if (!savedNat || !this.adoptOne('nat', chain, content, savedNat, state.family)) return false;
      adopted++;
      return true;
    };
    const rendered =
      (!full && renderIncremental(state, this.o.options, book, this.conntrackLiberal, this.o.nfacct)) ||
      renderWhole(
        state,
        this.o.options,
        full,
        book,
        this.conntrackLiberal,
        this.o.nfacct,
        full ? settle : undefined,
      );
    for (const s of rendered.skipped)
      this.log.error(
        { servicePort: s.key, field: s.field, value: s.value },
        'service port skipped: unsafe value in a rule field',
      );
    const { natT, filterT } = rendered;
    // After a restart (or a chain we forgot) the kernel may already hold exactly our rules: adopt
    // those chains instead of rewriting them (save-normalize.ts predicts iptables-save's text).
    if (saved)
      adopted +=
        this.adopt('filter', filterT, saved.filter.chains, state.family) +
        this.adopt('nat', natT, saved.nat.chains, state.family);
    if (adopted > 0)
      this.log.info({ chains: adopted }, 'chains already hold our rules; kept without rewriting');
    // The saved digests are not needed any more: let them go before the restores.
    saved = undefined;
    const limit =
      this.o.maxChainsPerRestore ?? (this.o.tools.backend === 'nft' ? 1000 : Number.POSITIVE_INFINITY);
    const plan = planRestores(filterT, natT, book, limit);
    // The contents to write are in the restores' lines now (each let go once it has run) and the
    // record takes the plan's pending records: the split documents' copies are done with. At
    // 50,000 Services a first sync's contents are ~120 MB, dropped restore by restore from here.
    (natT.rules as Map<string, string>).clear();
    (filterT.rules as Map<string, string>).clear();
    const restores = plan.restores;
    const renderMs = performance.now() - r0;

    const x0 = performance.now();
    const restoreTimesMs: number[] = [];
    this.released = 0;
    for (let i = 0; i < restores.length; i++) {
      const r = restores[i]!;
      try {
        const started = performance.now();
        await iptablesRestore(this.exec, t, this.collecting(restoreChunks(r.lines, true)), {
          counters: true,
          timeoutMs: RESTORE_TIMEOUT_MS,
        });
        restoreTimesMs.push(Math.round(performance.now() - started));
        // Its lines are done with: let them go while the later restores run (at 50,000 Services
        // the plan's lines are tens of MB); the record keeps what the bookkeeping needs.
        restores[i] = { ...r, lines: [] };
      } catch (err) {
        // What this and later restores touched is now unknown: forget it so the full retry rewrites it.
        for (const later of restores.slice(i))
          for (const table of ['filter', 'nat'] as const)
            for (const c of later.touched[table]) this.tables[table].known.delete(c);
        this.o.metrics?.iptablesRestoreFailuresTotal.inc({ ip_family: state.family });
        if (!full) this.o.metrics?.iptablesPartialRestoreFailuresTotal.inc({ ip_family: state.family });
        // The sync loop logs the failure once; this adds which restore failed at debug level.
        this.log.debug({ err, restore: `${i + 1}/${restores.length}` }, 'iptables-restore failed');
        throw err;
      }
    }
    const restoreMs = performance.now() - x0;

    // Bookkeeping only after every restore succeeded.
    this.commitKnown('filter', filterT, plan.pending.filter);
    this.commitKnown('nat', natT, plan.pending.nat);
    for (const c of natT.deletes) this.natChains.delete(c);
    for (const [svc, chains] of rendered.attribution) {
      if (chains.size > 0) this.chainsByService.set(svc, chains);
      else this.chainsByService.delete(svc);
    }
    if (full) {
      this.ruleTotals = { ...rendered.totals };
      this.incrementalReady = true;
    }
    if (jumpCheck) await this.ensureJumpsAndCanaries(jumpCheck);

    if (this.o.conntrackCleanup ?? true) {
      await reconcileConntrack(state, { exec: this.exec, logger: this.log, metrics: this.o.metrics }, full);
    }

    let written = 0;
    for (const r of restores) written += r.rules;
    this.lastStats = {
      restores: restores.length,
      chainsWritten: plan.written,
      chainsUnchanged: plan.unchanged,
      chainsEdited: plan.edited,
      chainsDeleted: natT.deletes.length,
      chainsAdopted: adopted,
      renderMs,
      restoreMs,
      saveMs,
      restoreTimesMs,
    };
    this.log.debug({ full, ...this.lastStats, rulesWritten: written }, 'iptables sync');
    return {
      ruleCounts: {
        filter: { total: this.ruleTotals.filter, written: plan.writtenPerTable.filter },
        nat: { total: this.ruleTotals.nat, written: plan.writtenPerTable.nat },
      },
    };
  }

  /**
   * Drift (backends/drift.ts): the jumps from the built-in chains into ours. Flushed tables are the
   * canary monitor's business. Nothing is compared before the first full sync (which creates the
   * jumps). How the chains are read depends on the backend (bench/drift, 10,000 services): legacy
   * copies a whole table out of the kernel for any read, even `-S PREROUTING`, so it reads each table
   * once with iptables-save (3 nat reads cost 3x one); iptables-nft fetches only the chain it lists,
   * so one short `iptables -S <chain>` per built-in chain is far cheaper than a save there.
   */
  async checkDrift(): Promise<readonly DriftFinding[]> {
    if (!this.incrementalReady || this.closed) return [];
    const t = this.o.tools;
    const listings = new Map<string, string>();
    const chains = jumpChains(JUMP_RULES);
    if (t.backend === 'legacy') {
      for (const table of [...new Set(chains.map((c) => c.table))]) {
        const mine = chains.filter((c) => c.table === table).map((c) => c.chain);
        // Read as it arrives: only the built-in chains' lines are kept, never the whole save.
        const reader = chainLinesReader(mine);
        const r = await this.exec(t.save, ['-t', table], {
          okCodes: [0, 1],
          timeoutMs: RESTORE_TIMEOUT_MS,
          onStdout: (chunk) => {
            reader.push(chunk);
          },
        });
        if (r.code !== 0) continue;
        const lines = reader.end();
        for (const c of mine) listings.set(`${table} ${c}`, lines);
      }
    } else {
      for (const { table, chain } of chains) {
        const r = await this.exec(t.iptables, ['-w', '-t', table, '-S', chain], {
          okCodes: [0, 1],
          timeoutMs: RESTORE_TIMEOUT_MS,
        });
        if (r.code === 0) listings.set(`${table} ${chain}`, r.stdout);
      }
    }
    return missingJumps(JUMP_RULES, listings);
  }

  /** A restart: KUBE-SERVICES already holds a rule (one rule is read, not the whole chain). */
  async hasProgrammedRules(): Promise<boolean> {
    const r = await this.exec(this.o.tools.iptables, ['-w', '-t', 'nat', '-S', 'KUBE-SERVICES', '1'], {
      okCodes: [0, 1],
      timeoutMs: RESTORE_TIMEOUT_MS,
    });
    return r.code === 0 && r.stdout.trim() !== '';
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.canaryTimer) clearInterval(this.canaryTimer);
    this.canaryTimer = undefined;
    return Promise.resolve();
  }

  /** nat service chains per service ("ns/name"), as of the last successful sync. */
  private readonly chainsByService = new Map<string, Set<string>>();
  /** A full sync succeeded since start: partial syncs may render only the changed services. */
  private incrementalReady = false;
  private ruleTotals: Record<IPTablesTable, number> = { filter: 0, nat: 0 };

  /**
   * Records as written every chain of `doc` we have no record of whose saved rules are exactly what
   * we would write (adoptable). Returns how many were adopted.
   */
  private adopt(
    table: IPTablesTable,
    doc: SplitTable,
    saved: ReadonlyMap<string, string>,
    family: IPFamily,
  ): number {
    const known = this.tables[table].known;
    let n = 0;
    for (const c of doc.chains) {
      if (known.has(c) || doc.settled.has(c)) continue;
      if (this.adoptOne(table, c, doc.rules.get(c) ?? '', saved, family)) n++;
    }
    return n;
  }

  /** Records `chain` (which we have no record of) as written when the kernel holds exactly `content` (adoptable). */
  private adoptOne(
    table: IPTablesTable,
    chain: string,
    content: string,
    saved: ReadonlyMap<string, string>,
    family: IPFamily,
  ): boolean {
    const have = saved.get(chain);
    if (have === undefined || !this.adoptable(table, chain, content, have, family)) return false;
    this.tables[table].known.set(chain, recordOf(chain, content));
    if (table === 'nat') this.natChains.add(chain);
    return true;
  }

  /**
   * Whether the kernel's chain (`have`: its saved digest, SaveReader) holds exactly `content`
   * (save-normalize.ts savedDigest). A chain that differs is logged at debug level: why a restarted
   * proxy rewrites a chain it found (the saved text itself is not kept).
   */
  private adoptable(
    table: IPTablesTable,
    chain: string,
    content: string,
    have: string,
    family: IPFamily,
  ): boolean {
    const predicted = savedDigest(content, family);
    if ('digest' in predicted && predicted.digest === have) return true;
    this.log.debug(
      {
        table,
        chain,
        savedRules: digestRules(have),
        ...('digest' in predicted ? { rules: digestRules(predicted.digest) } : predicted),
      },
      'chain in the kernel differs from ours; rewriting it',
    );
    return false;
  }

  /** Input streamed to the restores since the last collection (collecting). */
  private released = 0;

  /**
   * The chunks, passed on as they are; each time GC_AFTER_RELEASED_CHARS have gone by (the lines
   * in them let go: restoreChunks' `release`), a full collection (IPTablesProxierOptions.collectGarbage).
   */
  private *collecting(chunks: Iterable<string>): Generator<string> {
    const every = this.o.collectAfterReleasedChars ?? GC_AFTER_RELEASED_CHARS;
    for (const chunk of chunks) {
      yield chunk;
      this.released += chunk.length;
      if (this.released >= every && this.o.collectGarbage) {
        this.released = 0;
        void this.o.collectGarbage();
      }
    }
  }

  /** The record the planner reads (a view: the planner never changes it). */
  private book(): ChainBook {
    return {
      known: { filter: this.tables.filter.known, nat: this.tables.nat.known },
      natChains: this.natChains,
      chainsByService: this.chainsByService,
      ruleTotals: this.ruleTotals,
      incrementalReady: this.incrementalReady,
    };
  }

  /** After every restore succeeded: the written chains' records (recordOf) become the record. */
  private commitKnown(table: IPTablesTable, doc: SplitTable, pending: ReadonlyMap<string, string>): void {
    const known = this.tables[table].known;
    const count = (c: string, record: string | undefined): number =>
      record === undefined ? 0 : recordRules(c, record);
    for (const [c, record] of pending) {
      this.ruleTotals[table] += count(c, record) - count(c, known.get(c));
      known.set(c, record);
      if (table === 'nat') this.natChains.add(c);
    }
    for (const c of doc.deletes) {
      this.ruleTotals[table] -= count(c, known.get(c));
      known.delete(c);
    }
  }

  /**
   * Full syncs: the jumps from the built-in chains (checked against the save taken before the
   * restore) and the canaries, in one iptables-restore. Should that fail (an old iptables, a chain
   * being removed under us), the per-item path runs: `-N`, then `-C` before each `-I`.
   */
  private async ensureJumpsAndCanaries(
    saved: Readonly<Record<IPTablesTable, ReadonlyMap<string, string>>>,
  ): Promise<void> {
    const t = this.o.tools;
    const haveFirewall = saved.filter.has(KUBE_FIREWALL) || this.tables.filter.known.has(KUBE_FIREWALL);
    const { text, added } = renderJumpsAndCanaries(saved, haveFirewall);
    if (text === '') return;
    try {
      await iptablesRestore(this.exec, t, text);
      if (added.length > 0)
        this.log.debug({ jumps: added.length }, 'added the jumps from the built-in chains');
      return;
    } catch (err) {
      this.log.warn({ err }, 'ensuring jumps and canaries in one restore failed; ensuring them one by one');
    }
    if (!haveFirewall) await ensureChain(this.exec, t, 'filter', KUBE_FIREWALL);
    for (const j of JUMP_RULES) {
      if (hasJump(saved[j.table].get(j.chain), j.target, commentOf(j.args))) continue;
      await ensureRule(this.exec, t, j, 'prepend');
    }
    await this.ensureCanaries();
  }

  private async ensureCanaries(): Promise<void> {
    const t = this.o.tools;
    for (const table of ['mangle', 'nat', 'filter'])
      await ensureChain(this.exec, t, table, KUBE_PROXY_CANARY);
  }

  /** Upstream's Monitor: the mangle canary is the cheap one to poll; when it is gone the tables were flushed. */
  private async checkCanary(): Promise<void> {
    if (this.canaryBusy || this.closed) return;
    this.canaryBusy = true;
    const t = this.o.tools;
    try {
      const r = await this.exec(t.iptables, ['-w', '-t', 'mangle', '-S', KUBE_PROXY_CANARY], {
        okCodes: [0, 1],
        timeoutMs: 30_000,
      });
      if (r.code === 0 || this.closed) return;
      this.log.info(
        { family: t.family },
        'iptables canary chain is gone (tables flushed?); forcing a full resync',
      );
      for (const table of ['nat', 'filter']) {
        await this.exec(t.iptables, ['-w', '-t', table, '-X', KUBE_PROXY_CANARY], {
          okCodes: [0, 1, 2],
        }).catch(() => undefined);
      }
      this.tables.nat.known.clear();
      this.tables.filter.known.clear();
      this.incrementalReady = false;
      this.o.onNeedFullSync?.();
      await this.ensureCanaries();
    } catch (err) {
      this.log.error({ err }, 'iptables canary check failed');
    } finally {
      this.canaryBusy = false;
    }
  }

  /** route_localnet for IPv4 localhost NodePorts; checks (and logs) br_netfilter and reads tcp_be_liberal. */
  private setupSysctls(): void {
    const root = this.o.procSys ?? PROC_SYS;
    if (this.o.options.family === 'IPv4' && this.o.options.localhostNodePorts) {
      try {
        if (readSysctl('net/ipv4/conf/all/route_localnet', root) !== '1') {
          writeSysctl('net/ipv4/conf/all/route_localnet', 1, root);
          this.log.info(
            { sysctl: 'net.ipv4.conf.all.route_localnet', value: 1 },
            'set sysctl for localhost NodePorts',
          );
        }
      } catch (err) {
        this.log.error(
          { sysctl: 'net.ipv4.conf.all.route_localnet', err },
          'cannot set sysctl; localhost NodePorts will not work',
        );
      }
    }
    const bridge =
      this.o.options.family === 'IPv6'
        ? 'net/bridge/bridge-nf-call-ip6tables'
        : 'net/bridge/bridge-nf-call-iptables';
    let bridgeOn = false;
    try {
      bridgeOn = readSysctl(bridge, root) === '1';
    } catch {
      /* br_netfilter not loaded */
    }
    if (!bridgeOn) {
      this.log.info(
        { sysctl: sysctlName(bridge) },
        'missing br-netfilter module or unset sysctl br-nf-call-iptables; proxy may not work as intended for pods on a bridge',
      );
    }
    try {
      this.conntrackLiberal = readSysctl('net/netfilter/nf_conntrack_tcp_be_liberal', root) !== '0';
    } catch {
      this.conntrackLiberal = false;
    }
  }
}
