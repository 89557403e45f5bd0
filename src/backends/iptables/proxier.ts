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
import { reconcileUDPConntrack } from '../conntrack/conntrack.js';
import { endpointChainName, isServiceChainName, servicePortChainHash } from './hash.js';
import {
  JUMP_RULES,
  KUBE_FIREWALL,
  KUBE_PROXY_CANARY,
  renderIPTables,
  type IPTablesTable,
} from './render.js';
import {
  chainContent,
  hasJump,
  parseSave,
  reconcileKnown,
  splitTable,
  type KnownChains,
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
import { sameChain } from './save-normalize.js';
import type { IPFamily } from '../../model/types.js';

/** Dispatch chains whose rule order does not matter (each rule matches its own service's tuple), so they can be edited in place. */
const EDITABLE_CHAINS = new Set([
  'KUBE-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-PROXY-FIREWALL',
]);
/** The nat KUBE-SERVICES tail rule must stay last: a change to it rewrites the chain. */
const TAIL_MARKER = 'NOTE: this must be the last rule in this chain';
/** Above this many changed rules, rewriting a dispatch chain is cheaper than editing it. */
const MAX_EDITS = 200;
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
  /** Service chains per restore. Default 1000 with nft, unlimited with legacy (see the file comment). */
  readonly maxChainsPerRestore?: number;
  /** UDP conntrack cleanup after syncs (default true). */
  readonly conntrackCleanup?: boolean;
}

/** Per-table bookkeeping of what the kernel holds from us. */
interface TableState {
  /** Chain -> the exact rule text we wrote (our chains only). */
  readonly known: KnownChains;
}

interface Restore {
  readonly text: string;
  /** Chains (table/chain) this restore declares or edits; forgotten when it fails. */
  readonly touched: readonly [IPTablesTable, string][];
  readonly rules: number;
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

/** Upstream's largeClusterEndpointsThreshold (the renderer's default). */
const LARGE_CLUSTER_ENDPOINTS = 1000;

interface Rendered {
  readonly natT: SplitTable;
  readonly filterT: SplitTable;
  /** Service -> its nat service chains after this sync (only the services this sync rendered). */
  readonly attribution: ReadonlyMap<string, Set<string>>;
  readonly totals: Readonly<Record<IPTablesTable, number>>;
}

const COMMENT_RE = /--comment "?([^" ]+)/;

/**
 * The service ("ns/name") a dispatch rule belongs to, from its comment, which starts with the
 * service port name "ns/svc:port" (or "ns/svc"); undefined for kube-proxy's own static rules.
 */
export function ruleService(rule: string): string | undefined {
  const m = COMMENT_RE.exec(rule);
  const name = m?.[1];
  if (name === undefined || !name.includes('/')) return undefined;
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(0, colon);
}

/** Multiset difference of two rule lists: what to delete from `before` and add to reach `after`. */
function ruleDiff(
  before: readonly string[],
  after: readonly string[],
): { removed: string[]; added: string[] } {
  const counts = new Map<string, number>();
  for (const r of before) counts.set(r, (counts.get(r) ?? 0) + 1);
  const added: string[] = [];
  for (const r of after) {
    const n = counts.get(r) ?? 0;
    if (n > 0) counts.set(r, n - 1);
    else added.push(r);
  }
  const removed: string[] = [];
  for (const [r, n] of counts) for (let i = 0; i < n; i++) removed.push(r);
  return { removed, added };
}

/** The hash part of a service chain name (shared by SVC/SVL/EXT/FW of one service port). */
function serviceHash(chain: string): string {
  return chain.slice(chain.lastIndexOf('-') + 1);
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
    let filterSave = '';
    let natSave = '';
    // Full syncs: each table's save parsed once, for the record check, adoption and the jumps.
    let saved: Record<IPTablesTable, Map<string, string[]>> | undefined;
    if (full) {
      const s0 = performance.now();
      const [nat, filter] = await Promise.all([
        iptablesSave(this.exec, t, 'nat', RESTORE_TIMEOUT_MS),
        iptablesSave(this.exec, t, 'filter', RESTORE_TIMEOUT_MS),
      ]);
      saveMs = performance.now() - s0;
      filterSave = filter;
      natSave = nat;
      saved = { nat: parseSave(nat), filter: parseSave(filter) };
      this.natChains = new Set(saved.nat.keys());
      const droppedNat = reconcileKnown(this.tables.nat.known, saved.nat);
      const droppedFilter = reconcileKnown(this.tables.filter.known, saved.filter);
      if (droppedNat + droppedFilter > 0)
        this.log.info(
          { nat: droppedNat, filter: droppedFilter },
          'chains differ from what we wrote; rewriting them',
        );
    }

    const r0 = performance.now();
    const rendered = (!full && this.renderIncremental(state)) || this.renderWhole(state, full);
    const { natT, filterT } = rendered;
    // After a restart (or a chain we forgot) the kernel may already hold exactly our rules: adopt
    // those chains instead of rewriting them (save-normalize.ts predicts iptables-save's text).
    const adopted = saved
      ? this.adopt('filter', filterT, saved.filter, state.family) +
        this.adopt('nat', natT, saved.nat, state.family)
      : 0;
    if (adopted > 0)
      this.log.info({ chains: adopted }, 'chains already hold our rules; kept without rewriting');
    const restores = this.buildRestores(filterT, natT);
    const renderMs = performance.now() - r0;

    const x0 = performance.now();
    const restoreTimesMs: number[] = [];
    for (let i = 0; i < restores.length; i++) {
      const r = restores[i]!;
      try {
        const started = performance.now();
        await iptablesRestore(this.exec, t, r.text, { counters: true, timeoutMs: RESTORE_TIMEOUT_MS });
        restoreTimesMs.push(Math.round(performance.now() - started));
      } catch (err) {
        // What this and later restores touched is now unknown: forget it so the full retry rewrites it.
        for (const later of restores.slice(i))
          for (const [table, c] of later.touched) this.tables[table].known.delete(c);
        this.o.metrics?.iptablesRestoreFailuresTotal.inc({ ip_family: state.family });
        if (!full) this.o.metrics?.iptablesPartialRestoreFailuresTotal.inc({ ip_family: state.family });
        // The sync loop logs the failure once; this adds which restore failed at debug level.
        this.log.debug({ err, restore: `${i + 1}/${restores.length}` }, 'iptables-restore failed');
        throw err;
      }
    }
    const restoreMs = performance.now() - x0;

    // Bookkeeping only after every restore succeeded.
    this.commitKnown('filter', filterT);
    this.commitKnown('nat', natT);
    for (const c of natT.deletes) this.natChains.delete(c);
    for (const [svc, chains] of rendered.attribution) {
      if (chains.size > 0) this.chainsByService.set(svc, chains);
      else this.chainsByService.delete(svc);
    }
    if (full) {
      this.ruleTotals = { ...rendered.totals };
      this.incrementalReady = true;
    }
    if (saved) await this.ensureJumpsAndCanaries(filterSave, natSave, new Set(saved.filter.keys()));

    if (this.o.conntrackCleanup ?? true) {
      await reconcileUDPConntrack(state, { exec: this.exec, logger: this.log, metrics: this.o.metrics });
    }

    let written = 0;
    for (const r of restores) written += r.rules;
    this.lastStats = {
      restores: restores.length,
      chainsWritten: this.statWritten,
      chainsUnchanged: this.statUnchanged,
      chainsEdited: this.statEdited,
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
        filter: { total: this.ruleTotals.filter, written: this.writtenPerTable.filter },
        nat: { total: this.ruleTotals.nat, written: this.writtenPerTable.nat },
      },
    };
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

  /** The renderer over the whole state (full syncs, and partial syncs before the first full one). */
  private renderWhole(state: DesiredState, full: boolean): Rendered {
    const plan = renderIPTables(state, this.o.options, {
      full,
      existingNatChains: this.natChains,
      conntrackTCPLiberal: this.conntrackLiberal,
    });
    for (const s of plan.skipped)
      this.log.error(
        { servicePort: s.key, field: s.field, value: s.value },
        'service port skipped: unsafe value in a rule field',
      );
    const services = full ? undefined : state.changedServices;
    return {
      natT: splitTable(plan.nat),
      filterT: splitTable(plan.filter),
      attribution: this.attribute(state, services, plan.activeNatChains),
      totals: { filter: plan.ruleCounts.filter.total, nat: plan.ruleCounts.nat.total },
    };
  }

  /**
   * Partial syncs: renders only the changed services (the renderer's per-service output does not
   * depend on other services, given the same large-cluster mode) and merges their dispatch rules into
   * what we last wrote, so a partial sync costs O(changed services), not O(all services). Returns
   * undefined when the bookkeeping it needs is missing (then the whole state is rendered).
   */
  private renderIncremental(state: DesiredState): Rendered | undefined {
    if (!this.incrementalReady) return undefined;
    const changed = state.changedServices;
    const services = new Map<
      string,
      DesiredState['services'] extends ReadonlyMap<string, infer V> ? V : never
    >();
    const keys: string[] = [];
    let totalEndpoints = 0;
    for (const key of state.sortedKeys) {
      const sp = state.services.get(key);
      if (!sp) continue;
      totalEndpoints += sp.endpoints.length;
      if (changed.has(sp.info.serviceName)) {
        services.set(key, sp);
        keys.push(key);
      }
    }
    const sub: DesiredState = { ...state, services, sortedKeys: keys };
    const plan = renderIPTables(sub, this.o.options, {
      full: true,
      // Same comment layout as a render of the whole state (upstream's threshold: 1000 endpoints).
      largeClusterThreshold: totalEndpoints > LARGE_CLUSTER_ENDPOINTS ? -1 : Number.MAX_SAFE_INTEGER,
      conntrackTCPLiberal: this.conntrackLiberal,
    });
    for (const s of plan.skipped)
      this.log.error(
        { servicePort: s.key, field: s.field, value: s.value },
        'service port skipped: unsafe value in a rule field',
      );
    const merged: SplitTable[] = [];
    for (const table of ['filter', 'nat'] as const) {
      const doc = splitTable(table === 'nat' ? plan.nat : plan.filter);
      const rules = new Map<string, readonly string[]>();
      for (const c of doc.chains) {
        const next = doc.rules.get(c) ?? [];
        if (isServiceChainName(c)) {
          rules.set(c, next);
          continue;
        }
        const before = this.tables[table].known.get(c);
        if (before === undefined) return undefined;
        const kept = (before === '' ? [] : before.split('\n')).filter((r) => {
          const svc = ruleService(r);
          return svc !== undefined && !changed.has(svc);
        });
        const fresh = next.filter((r) => ruleService(r) !== undefined);
        const fixed = next.filter((r) => ruleService(r) === undefined);
        // Static rules last: the nat KUBE-SERVICES tail (the jump to KUBE-NODEPORTS) must stay last.
        rules.set(c, [...kept, ...fresh, ...fixed]);
      }
      merged.push({ chains: doc.chains, rules, deletes: [] });
    }
    const attribution = this.attribute(sub, changed, plan.activeNatChains);
    const deletes: string[] = [];
    for (const svc of changed) {
      const now = attribution.get(svc) ?? new Set<string>();
      for (const c of this.chainsByService.get(svc) ?? [])
        if (!now.has(c) && this.natChains.has(c)) deletes.push(c);
    }
    deletes.sort();
    const [filterT, natBase] = merged as [SplitTable, SplitTable];
    const natT: SplitTable = { ...natBase, deletes };
    return { natT, filterT, attribution, totals: this.ruleTotals };
  }

  /**
   * Records as written every chain of `doc` we have no record of whose saved rules are exactly what
   * we would write. Returns how many were adopted.
   */
  private adopt(
    table: IPTablesTable,
    doc: SplitTable,
    saved: ReadonlyMap<string, readonly string[]>,
    family: IPFamily,
  ): number {
    const known = this.tables[table].known;
    let n = 0;
    for (const c of doc.chains) {
      if (known.has(c)) continue;
      const have = saved.get(c);
      const want = doc.rules.get(c) ?? [];
      if (have === undefined || !sameChain(want, have, family)) continue;
      known.set(c, chainContent(want));
      if (table === 'nat') this.natChains.add(c);
      n++;
    }
    return n;
  }

  /** Which nat service chains belong to which service, for `services` (all when undefined). */
  private attribute(
    state: DesiredState,
    services: ReadonlySet<string> | undefined,
    active: ReadonlySet<string>,
  ): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    if (services) for (const svc of services) out.set(svc, new Set());
    for (const sp of state.services.values()) {
      const svc = sp.info.serviceName;
      if (services && !services.has(svc)) continue;
      let set = out.get(svc);
      if (!set) out.set(svc, (set = new Set()));
      const proto = sp.info.protocol.toLowerCase();
      const hash = servicePortChainHash(sp.info.nameString, proto);
      for (const prefix of ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-'])
        if (active.has(prefix + hash)) set.add(prefix + hash);
      for (const ep of sp.allReachableEndpoints) {
        const sep = endpointChainName(sp.info.nameString, proto, ep.endpoint);
        if (active.has(sep)) set.add(sep);
      }
    }
    return out;
  }

  private statWritten = 0;
  private statUnchanged = 0;
  private statEdited = 0;
  private writtenPerTable: Record<IPTablesTable, number> = { filter: 0, nat: 0 };
  /** Per table: chain -> the content to record once the restores succeed. */
  private pending: Record<IPTablesTable, Map<string, string>> = { filter: new Map(), nat: new Map() };

  /**
   * Turns the rendered tables into restore inputs: unchanged chains are dropped, dispatch chains with
   * few changes become -D/-I edits, service chains are split into groups of whole services when there
   * are more than maxChainsPerRestore, and the last restore carries filter, the top-level nat chains
   * and the deletions (so every jump target exists before it is referenced, and stale chains are
   * unreferenced when they are deleted).
   */
  private buildRestores(filterT: SplitTable, natT: SplitTable): Restore[] {
    this.statWritten = this.statUnchanged = this.statEdited = 0;
    this.writtenPerTable = { filter: 0, nat: 0 };
    this.pending = { filter: new Map(), nat: new Map() };
    const limit =
      this.o.maxChainsPerRestore ?? (this.o.tools.backend === 'nft' ? 1000 : Number.POSITIVE_INFINITY);

    const filterSec = this.section('filter', filterT, filterT.chains, true);
    const natDeleted = new Set(natT.deletes);
    const serviceChains = natT.chains.filter((c) => isServiceChainName(c) && !natDeleted.has(c));
    const topChains = natT.chains.filter((c) => !isServiceChainName(c) && !natDeleted.has(c));

    // Service chains that must be written, in document order (a service's chains are adjacent).
    const toWrite = serviceChains.filter(
      (c) => this.tables.nat.known.get(c) !== chainContent(natT.rules.get(c) ?? []),
    );
    this.statUnchanged += serviceChains.length - toWrite.length;
    const groups: string[][] = [];
    let cur: string[] = [];
    let lastHash = '';
    for (const c of toWrite) {
      const startsService = !c.startsWith('KUBE-SEP-') && serviceHash(c) !== lastHash;
      if (!c.startsWith('KUBE-SEP-')) lastHash = serviceHash(c);
      if (startsService && cur.length >= limit) {
        groups.push(cur);
        cur = [];
      }
      cur.push(c);
    }
    const restores: Restore[] = [];
    if (groups.length > 0) {
      // Service chains jump to KUBE-MARK-MASQ; create missing top-level chains (empty) before them.
      const missingTop = topChains.filter((c) => !this.natChains.has(c) && !this.tables.nat.known.has(c));
      if (missingTop.length > 0)
        restores.push({
          text: `*nat\n${missingTop.map((c) => `:${c} - [0:0]`).join('\n')}\nCOMMIT\n`,
          touched: [],
          rules: 0,
        });
      for (const g of groups) {
        const sec = this.section('nat', natT, g, false);
        restores.push({ text: sec.text, touched: sec.touched, rules: sec.rules });
      }
    }
    const natSec = this.section('nat', natT, [...cur, ...topChains], true, natT.deletes);
    const texts = [filterSec, natSec].filter((s) => s.nonEmpty);
    if (texts.length > 0 || restores.length === 0) {
      restores.push({
        text: texts.map((s) => s.text).join(''),
        touched: [...filterSec.touched, ...natSec.touched],
        rules: filterSec.rules + natSec.rules,
      });
    }
    // An all-unchanged sync still runs nothing: drop an empty trailing restore.
    return restores.filter((r) => r.text !== '');
  }

  /** One `*table` section for `chains` (document order kept); optional edits of dispatch chains and deletions. */
  private section(
    table: IPTablesTable,
    doc: SplitTable,
    chains: readonly string[],
    allowEdits: boolean,
    deletes: readonly string[] = [],
  ): { text: string; touched: [IPTablesTable, string][]; rules: number; nonEmpty: boolean } {
    const known = this.tables[table].known;
    const declare: string[] = [];
    const body: string[] = [];
    const edits: string[] = [];
    const touched: [IPTablesTable, string][] = [];
    let rules = 0;
    for (const c of chains) {
      const next = doc.rules.get(c) ?? [];
      const content = chainContent(next);
      const before = known.get(c);
      if (before === content) {
        this.statUnchanged++;
        continue;
      }
      touched.push([table, c]);
      this.pending[table].set(c, content);
      if (allowEdits && before !== undefined && EDITABLE_CHAINS.has(c)) {
        const d = ruleDiff(before === '' ? [] : before.split('\n'), next);
        if (
          d.removed.length + d.added.length <= MAX_EDITS &&
          ![...d.removed, ...d.added].some((r) => r.includes(TAIL_MARKER))
        ) {
          for (const r of d.removed) edits.push(`-D${r.slice(2)}`);
          for (const r of d.added) edits.push(`-I ${c} 1${r.slice(3 + c.length)}`);
          rules += d.added.length;
          this.statEdited++;
          continue;
        }
      }
      declare.push(`:${c} - [0:0]`);
      for (const r of next) body.push(r);
      rules += next.length;
      this.statWritten++;
    }
    for (const c of deletes) {
      declare.push(`:${c} - [0:0]`);
      touched.push([table, c]);
    }
    const nonEmpty = declare.length + body.length + edits.length > 0;
    const lines = [`*${table}`, ...declare, ...body, ...edits, ...deletes.map((c) => `-X ${c}`), 'COMMIT'];
    this.writtenPerTable[table] += rules;
    return { text: nonEmpty ? `${lines.join('\n')}\n` : '', touched, rules, nonEmpty };
  }

  private commitKnown(table: IPTablesTable, doc: SplitTable): void {
    const known = this.tables[table].known;
    const count = (text: string | undefined): number =>
      text === undefined || text === '' ? 0 : text.split('\n').length;
    for (const [c, content] of this.pending[table]) {
      this.ruleTotals[table] += count(content) - count(known.get(c));
      known.set(c, content);
      if (table === 'nat') this.natChains.add(c);
    }
    for (const c of doc.deletes) {
      this.ruleTotals[table] -= count(known.get(c));
      known.delete(c);
    }
    this.pending[table].clear();
  }

  /** Full syncs: the jumps from the built-in chains (checked against the save taken before the restore) and the canaries. */
  private async ensureJumpsAndCanaries(
    filterSave: string,
    natSave: string,
    filterChains: ReadonlySet<string>,
  ): Promise<void> {
    const t = this.o.tools;
    // The saves were taken before the restore; the jumps live in built-in chains, which restores never touch.
    const saves: Record<IPTablesTable, string> = { filter: filterSave, nat: natSave };
    if (!filterChains.has(KUBE_FIREWALL) && !this.tables.filter.known.has(KUBE_FIREWALL)) {
      await ensureChain(this.exec, t, 'filter', KUBE_FIREWALL);
    }
    for (const j of JUMP_RULES) {
      // The save answers for the common case (jump present) without a spawn per jump (on nft at
      // 10k services each `-C` in nat costs ~70 ms); -C stays the authority before inserting.
      if (hasJump(saves[j.table], j.chain, j.target, commentOf(j.args))) continue;
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

function commentOf(args: readonly string[]): string {
  const i = args.indexOf('--comment');
  return i >= 0 ? (args[i + 1] ?? '') : '';
}
