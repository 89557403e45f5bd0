/**
 * The iptables proxier's pure planner: from the desired state and the record of what we last wrote
 * (ChainBook), what to render (the whole state, or on partial syncs only the changed services merged
 * into the dispatch chains we wrote) and which iptables-restore inputs bring the kernel there
 * (unchanged chains skipped, dispatch chains edited in place when few rules changed, service chains
 * split into several restores on nft). No I/O: the proxier executes the restores and, when they all
 * succeed, moves the record forward with the plan's `pending` contents.
 */
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { keysOfService } from '../../proxy/sorted-keys.js';
import { endpointChainName, isServiceChainName, servicePortChainHash } from './hash.js';
import {
  JUMP_RULES,
  KUBE_FIREWALL,
  KUBE_PROXY_CANARY,
  renderIPTables,
  type IPTablesTable,
  type JumpRule,
} from './render.js';
import {
  chainContent,
  commentOf,
  contentRules,
  countRules,
  hasJump,
  recordOf,
  splitLines,
  type KnownChains,
  type SplitTable,
} from './chain-diff.js';

/** What the proxier knows it wrote: the planner reads it, only the proxier changes it. */
export interface ChainBook {
  /** Per table: chain -> the exact rule text we wrote (our chains only). */
  readonly known: Readonly<Record<IPTablesTable, KnownChains>>;
  /** The nat chains that exist in the kernel (ours and others'). */
  readonly natChains: ReadonlySet<string>;
  /** nat service chains per service ("ns/name"), as of the last successful sync. */
  readonly chainsByService: ReadonlyMap<string, ReadonlySet<string>>;
  readonly ruleTotals: Readonly<Record<IPTablesTable, number>>;
  /** A full sync succeeded since start: partial syncs may render only the changed services. */
  readonly incrementalReady: boolean;
}

/** The restores of one sync and what they change, once they all succeed. */
export interface RestorePlan {
  restores: Restore[];
  written: number;
  unchanged: number;
  edited: number;
  writtenPerTable: Record<IPTablesTable, number>;
  /** Per table: chain -> its record (chain-diff.ts recordOf) once the restores succeed. */
  pending: Record<IPTablesTable, Map<string, string>>;
}

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

/**
 * One iptables-restore input and what it touches. The input is kept as its lines (chain contents are
 * several lines in one string) and streamed to the tool in chunks (restoreChunks), never joined into
 * one text: with iptables-legacy a full sync at 10,000 Services is one ~20 MB input.
 */
export interface Restore {
  /**
   * The input's lines, without their '\n'. A bare chain name (a line that starts with none of
   * `*`, `:`, `-` and is not COMMIT) stands for its declaration `:NAME - [0:0]`, written out only as
   * the input is streamed (restoreChunks): a first sync at 50,000 Services declares 300,000 chains,
   * whose declarations were 17 MB held from the plan until their restore ran.
   */
  readonly lines: string[];
  /** Chains (table/chain) this restore declares or edits; forgotten when it fails. */
  readonly touched: Readonly<Record<IPTablesTable, readonly string[]>>;
  readonly rules: number;
}

/** Upstream's largeClusterEndpointsThreshold (the renderer's default). */
const LARGE_CLUSTER_ENDPOINTS = 1000;

/** What a sync renders: both tables split per chain, the nat chains per service, the rule totals. */
export interface Rendered {
  /** Service ports left out for an unsafe value (the proxier logs them). */
  readonly skipped: readonly { readonly key: string; readonly field: string; readonly value: string }[];
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
  const name = rulePortName(rule);
  if (name === undefined) return undefined;
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(0, colon);
}

/** The service port name ("ns/svc:port" or "ns/svc") a dispatch rule's comment starts with, if any. */
function rulePortName(rule: string): string | undefined {
  const name = COMMENT_RE.exec(rule)?.[1];
  return name !== undefined && name.includes('/') ? name : undefined;
}

/** A dispatch chain's rules with the service each belongs to (undefined: a static rule). */
interface DispatchIndex {
  readonly content: string;
  readonly lines: readonly string[];
  readonly services: readonly (string | undefined)[];
  /** Service -> the positions of its rules, ascending. */
  readonly byService: ReadonlyMap<string, number[]>;
  /** Positions of the static rules, ascending. */
  readonly fixed: readonly number[];
}

/**
 * The last index built per dispatch chain. A partial sync that changes only endpoints leaves the
 * dispatch chains as they were, so the next one finds its changed services' rules here without
 * splitting and matching the whole chain again (KUBE-SERVICES holds a rule per service port).
 * Memoisation only: an entry is used when its content equals the chain's content. Keyed by
 * "family table chain"; emptied by every full render (which replaces what the chains hold).
 */
const dispatchIndexes = new Map<string, DispatchIndex>();

function dispatchIndex(id: string, content: string): DispatchIndex {
  const hit = dispatchIndexes.get(id);
  if (hit && hit.content === content) return hit;
  const lines = contentRules(content);
  const services = lines.map(ruleService);
  const byService = new Map<string, number[]>();
  const fixed: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const svc = services[i];
    if (svc === undefined) fixed.push(i);
    else {
      const at = byService.get(svc);
      if (at) at.push(i);
      else byService.set(svc, [i]);
    }
  }
  const index: DispatchIndex = { content, lines, services, byService, fixed };
  dispatchIndexes.set(id, index);
  return index;
}

/** Whether the whole state has more endpoints than upstream's large-cluster threshold (stops counting there). */
function isLargeCluster(state: DesiredState): boolean {
  let total = 0;
  for (const sp of state.services.values()) {
    total += sp.endpoints.length;
    if (total > LARGE_CLUSTER_ENDPOINTS) return true;
  }
  return false;
}

/** Service port name -> its position in the whole render (keys are "<port name>/<PROTOCOL>"). */
function renderRank(sortedKeys: readonly string[]): Map<string, number> {
  const rank = new Map<string, number>();
  for (let i = 0; i < sortedKeys.length; i++) {
    const k = sortedKeys[i]!;
    rank.set(k.slice(0, k.lastIndexOf('/')), i);
  }
  return rank;
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Merges two lists of dispatch rules, each already in the whole render's order (service ports in
 * state.sortedKeys order), into that order. A partial sync so writes a dispatch chain exactly as a
 * full render would: a restarted proxy then adopts the chain instead of rewriting it.
 */
function mergeInRenderOrder(
  a: readonly string[],
  b: readonly string[],
  rank: ReadonlyMap<string, number>,
): string[] {
  if (a.length === 0) return [...b];
  if (b.length === 0) return [...a];
  const of = (r: string): number => rank.get(rulePortName(r) ?? '') ?? Number.MAX_SAFE_INTEGER;
  const out: string[] = [];
  let i = 0;
  let j = 0;
  let ra = of(a[0]!);
  let rb = of(b[0]!);
  while (i < a.length && j < b.length) {
    if (ra <= rb) {
      out.push(a[i++]!);
      if (i < a.length) ra = of(a[i]!);
    } else {
      out.push(b[j++]!);
      if (j < b.length) rb = of(b[j]!);
    }
  }
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
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

/** The renderer over the whole state (full syncs, and partial syncs before the first full one). */
export function renderWhole(
  state: DesiredState,
  options: FamilyOptions,
  full: boolean,
  book: ChainBook,
  conntrackLiberal: boolean,
  nfacct = false,
  settle?: (chain: string, content: string) => boolean,
): Rendered {
  if (full) dispatchIndexes.clear();
  const plan = renderIPTables(state, options, {
    full,
    existingNatChains: book.natChains,
    conntrackTCPLiberal: conntrackLiberal,
    nfacct,
    groupServiceChains: true,
    ...(settle ? { settle } : {}),
  });
  const services = full ? undefined : state.changedServices;
  return {
    skipped: plan.skipped,
    natT: splitLines(plan.lines.nat, plan.serviceChainContents, plan.settledChains),
    filterT: splitLines(plan.lines.filter),
    attribution: attribute(state, services, plan.activeNatChains),
    totals: { filter: plan.ruleCounts.filter.total, nat: plan.ruleCounts.nat.total },
  };
}

/**
 * Partial syncs: renders only the changed services (the renderer's per-service output does not
 * depend on other services, given the same large-cluster mode) and merges their dispatch rules into
 * what we last wrote, so a partial sync costs O(changed services), not O(all services). Returns
 * undefined when the bookkeeping it needs is missing (then the whole state is rendered).
 */
export function renderIncremental(
  state: DesiredState,
  options: FamilyOptions,
  book: ChainBook,
  conntrackLiberal: boolean,
  nfacct = false,
): Rendered | undefined {
  if (!book.incrementalReady) return undefined;
  const changed = state.changedServices;
  const services = new Map<
    string,
    DesiredState['services'] extends ReadonlyMap<string, infer V> ? V : never
  >();
  // The changed services' keys by binary search (sortedKeys is in string order): O(changed), not O(all).
  const keys: string[] = [];
  for (const svc of changed)
    for (const key of keysOfService(state.sortedKeys, svc)) {
      const sp = state.services.get(key);
      if (sp) {
        services.set(key, sp);
        keys.push(key);
      }
    }
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sub: DesiredState = { ...state, services, sortedKeys: keys };
  const plan = renderIPTables(sub, options, {
    full: true,
    // Same comment layout as a render of the whole state (upstream's threshold: 1000 endpoints).
    largeClusterThreshold: isLargeCluster(state) ? -1 : Number.MAX_SAFE_INTEGER,
    conntrackTCPLiberal: conntrackLiberal,
    nfacct,
    groupServiceChains: true,
  });
  const merged: SplitTable[] = [];
  let rank: ReadonlyMap<string, number> | undefined;
  for (const table of ['filter', 'nat'] as const) {
    const doc = splitLines(plan.lines[table], table === 'nat' ? plan.serviceChainContents : undefined);
    const rules = new Map<string, string>();
    for (const c of doc.chains) {
      const content = doc.rules.get(c) ?? '';
      if (isServiceChainName(c)) {
        rules.set(c, content);
        continue;
      }
      const next = contentRules(content);
      const before = book.known[table].get(c);
      if (before === undefined) return undefined;
      const index = dispatchIndex(`${options.family} ${table} ${c}`, before);
      const at: number[] = [];
      for (const svc of changed) for (const i of index.byService.get(svc) ?? []) at.push(i);
      if (changed.size > 1) at.sort((a, b) => a - b);
      const old = at.map((i) => index.lines[i]!);
      const oldFixed = index.fixed.map((i) => index.lines[i]!);
      const fresh = next.filter((r) => ruleService(r) !== undefined);
      const fixed = next.filter((r) => ruleService(r) === undefined);
      // The common partial sync (endpoints changed, not the service's frontends): nothing to merge.
      if (sameLines(old, fresh) && sameLines(oldFixed, fixed)) {
        rules.set(c, before);
        continue;
      }
      const kept: string[] = [];
      for (let i = 0; i < index.lines.length; i++) {
        const svc = index.services[i];
        if (svc !== undefined && !changed.has(svc)) kept.push(index.lines[i]!);
      }
      // Static rules last, as in the whole render: the nat KUBE-SERVICES tail (the jump to
      // KUBE-NODEPORTS) must stay last.
      rules.set(
        c,
        chainContent([...mergeInRenderOrder(kept, fresh, (rank ??= renderRank(state.sortedKeys))), ...fixed]),
      );
    }
    merged.push({ chains: doc.chains, rules, deletes: [], settled: doc.settled });
  }
  const attribution = attribute(sub, changed, plan.activeNatChains);
  const deletes: string[] = [];
  for (const svc of changed) {
    const now = attribution.get(svc) ?? new Set<string>();
    for (const c of book.chainsByService.get(svc) ?? [])
      if (!now.has(c) && book.natChains.has(c)) deletes.push(c);
  }
  deletes.sort();
  const [filterT, natBase] = merged as [SplitTable, SplitTable];
  const natT: SplitTable = { ...natBase, deletes };
  return { skipped: plan.skipped, natT, filterT, attribution, totals: book.ruleTotals };
}

/** Which nat service chains belong to which service, for `services` (all when undefined). */
export function attribute(
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

/**
 * Turns the rendered tables into restore inputs: unchanged chains are dropped, dispatch chains with
 * few changes become -D/-I edits, service chains are split into groups of whole services when there
 * are more than maxChainsPerRestore, and the last restore carries filter, the top-level nat chains
 * and the deletions (so every jump target exists before it is referenced, and stale chains are
 * unreferenced when they are deleted).
 */
export function planRestores(
  filterT: SplitTable,
  natT: SplitTable,
  book: ChainBook,
  limit: number,
): RestorePlan {
  const acc: RestorePlan = {
    restores: [],
    written: 0,
    unchanged: 0,
    edited: 0,
    writtenPerTable: { filter: 0, nat: 0 },
    pending: { filter: new Map(), nat: new Map() },
  };

  const filterSec = section(acc, book, 'filter', filterT, filterT.chains, true);
  const natDeleted = new Set(natT.deletes);
  const serviceChains = natT.chains.filter((c) => isServiceChainName(c) && !natDeleted.has(c));
  const topChains = natT.chains.filter((c) => !isServiceChainName(c) && !natDeleted.has(c));

  // Service chains that must be written, in document order (a service's chains are adjacent).
  // Their records, computed once here for the chains written: straight into the plan's pending
  // records (section finds them there).
  const toWrite = serviceChains.filter((c) => {
    if (natT.settled.has(c)) return false;
    const record = recordOf(c, natT.rules.get(c) ?? '');
    if (book.known.nat.get(c) === record) return false;
    acc.pending.nat.set(c, record);
    return true;
  });
  acc.unchanged += serviceChains.length - toWrite.length;
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
    const missingTop = topChains.filter((c) => !book.natChains.has(c) && !book.known.nat.has(c));
    if (missingTop.length > 0)
      restores.push({
        lines: ['*nat', ...missingTop, 'COMMIT'],
        touched: { filter: [], nat: [] },
        rules: 0,
      });
    for (const g of groups) {
      const sec = section(acc, book, 'nat', natT, g, false);
      restores.push({ lines: sec.lines, touched: { filter: [], nat: sec.touched }, rules: sec.rules });
    }
  }
  const natSec = section(acc, book, 'nat', natT, [...cur, ...topChains], true, natT.deletes);
  const texts = [filterSec, natSec].filter((s) => s.nonEmpty);
  if (texts.length > 0 || restores.length === 0) {
    restores.push({
      lines: texts.flatMap((s) => s.lines),
      touched: { filter: filterSec.touched, nat: natSec.touched },
      rules: filterSec.rules + natSec.rules,
    });
  }
  // An all-unchanged sync still runs nothing: drop an empty trailing restore.
  acc.restores = restores.filter((r) => r.lines.length > 0);
  return acc;
}

/**
 * The `-D`/`-I` lines that turn a dispatch chain holding `before` (as we wrote it, in the kernel's
 * order) into exactly `next`, order included, or undefined when a rewrite is the better (or only)
 * way: too many changes, the tail rule involved, or the rules that stay are not in `next`'s order
 * (then only a rewrite gives the kernel `next`'s order). Deletions go first; each insertion then
 * names its final position, in ascending order, so every rule lands where `next` has it.
 */
function editInPlace(
  chain: string,
  before: readonly string[],
  next: readonly string[],
): { edits: string[]; added: number } | undefined {
  const d = ruleDiff(before, next);
  if (d.removed.length + d.added.length > MAX_EDITS) return undefined;
  if ([...d.removed, ...d.added].some((r) => r.includes(TAIL_MARKER))) return undefined;
  // What stays after the deletions (`-D` removes the first equal rule).
  const drop = new Map<string, number>();
  for (const r of d.removed) drop.set(r, (drop.get(r) ?? 0) + 1);
  const stays: string[] = [];
  for (const r of before) {
    const n = drop.get(r) ?? 0;
    if (n > 0) drop.set(r, n - 1);
    else stays.push(r);
  }
  const edits = d.removed.map((r) => `-D${r.slice(2)}`);
  let k = 0;
  let added = 0;
  for (let i = 0; i < next.length; i++) {
    if (k < stays.length && next[i] === stays[k]) k++;
    else {
      edits.push(`-I ${chain} ${i + 1}${next[i]!.slice(3 + chain.length)}`);
      added++;
    }
  }
  return k === stays.length ? { edits, added } : undefined;
}

/** One `*table` section for `chains` (document order kept); optional edits of dispatch chains and deletions. */
function section(
  acc: RestorePlan,
  book: ChainBook,
  table: IPTablesTable,
  doc: SplitTable,
  chains: readonly string[],
  allowEdits: boolean,
  deletes: readonly string[] = [],
): { lines: string[]; touched: string[]; rules: number; nonEmpty: boolean } {
  const known = book.known[table];
  const declare: string[] = [];
  const body: string[] = [];
  const edits: string[] = [];
  const touched: string[] = [];
  let rules = 0;
  for (const c of chains) {
    const content = doc.rules.get(c) ?? '';
    const record = acc.pending[table].get(c) ?? recordOf(c, content);
    const before = known.get(c);
    if (before === record) {
      acc.unchanged++;
      continue;
    }
    touched.push(c);
    acc.pending[table].set(c, record);
    if (allowEdits && before !== undefined && EDITABLE_CHAINS.has(c)) {
      const edit = editInPlace(c, contentRules(before), contentRules(content));
      if (edit) {
        for (const e of edit.edits) edits.push(e);
        rules += edit.added;
        acc.edited++;
        continue;
      }
    }
    declare.push(c);
    // The chain's rules as one line group: the content string itself, not copied.
    if (content !== '') body.push(content);
    rules += countRules(content);
    acc.written++;
  }
  for (const c of deletes) {
    declare.push(c);
    touched.push(c);
  }
  const nonEmpty = declare.length + body.length + edits.length > 0;
  const lines = [`*${table}`, ...declare, ...body, ...edits, ...deletes.map((c) => `-X ${c}`), 'COMMIT'];
  acc.writtenPerTable[table] += rules;
  return { lines: nonEmpty ? lines : [], touched, rules, nonEmpty };
}

/** Whether a Restore line is a bare chain name, standing for its declaration (see Restore.lines). */
function isDeclared(line: string): boolean {
  const c = line.charCodeAt(0);
  // '*' 42, '-' 45, ':' 58; COMMIT
  return c !== 42 && c !== 45 && c !== 58 && line !== 'COMMIT' && line !== '';
}

/** Target size of one chunk of restore input written to the tool's stdin (one pipe buffer). */
const CHUNK_CHARS = 1 << 16;

/**
 * A restore's input in chunks of about 64 KiB, made one at a time as the tool reads them: the whole
 * input (~20 MB with iptables-legacy at 10,000 Services) never exists as one string or Buffer.
 */
export function* restoreChunks(lines: string[], release = false): Generator<string> {
  let batch: string[] = [];
  let size = 0;
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    // With `release`, each line is let go as soon as it is in a chunk (one restore of a 50,000-Service
    // first sync on iptables-legacy holds ~120 MB of chain contents until it ends otherwise).
    if (release) lines[i] = '';
    if (isDeclared(l)) l = `:${l} - [0:0]`;
    batch.push(l);
    size += l.length + 1;
    if (size >= CHUNK_CHARS) {
      batch.push('');
      yield batch.join('\n');
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) {
    batch.push('');
    yield batch.join('\n');
  }
}

/**
 * The `iptables-restore --noflush` input that puts in place what a full sync needs outside its own
 * chains, in one process instead of a `-N`/`-C`/`-I` per item: the empty canary chain in mangle, nat
 * and filter (declaring it again only empties an empty chain), kubelet's KUBE-FIREWALL when the
 * filter table has none (`haveFirewall` false; an existing one is never declared, as that would
 * flush kubelet's rules), and each jump from a built-in chain that `saved` (iptables-save of filter
 * and nat, taken before this sync's restore, parsed by parseSave) lacks, inserted at the top as upstream's EnsureRule
 * does. `added` lists the jumps the text inserts. The text is '' when the saves show everything in
 * place (the steady state: no process at all; a lost mangle canary is the canary monitor's to see).
 */
export function renderJumpsAndCanaries(
  saved: Readonly<Record<IPTablesTable, ReadonlyMap<string, string>>>,
  haveFirewall: boolean,
): { text: string; added: JumpRule[] } {
  const added = JUMP_RULES.filter((j) => !hasJump(saved[j.table].get(j.chain), j.target, commentOf(j.args)));
  const canary = `:${KUBE_PROXY_CANARY} - [0:0]`;
  if (
    added.length === 0 &&
    haveFirewall &&
    saved.nat.has(KUBE_PROXY_CANARY) &&
    saved.filter.has(KUBE_PROXY_CANARY)
  )
    return { text: '', added };
  const lines: string[] = ['*mangle', canary, 'COMMIT'];
  for (const table of ['nat', 'filter'] as const) {
    lines.push(`*${table}`, canary);
    if (table === 'filter' && !haveFirewall) lines.push(`:${KUBE_FIREWALL} - [0:0]`);
    // Each `-I CHAIN 1` goes above the previous one, the order ensureRule's prepends give.
    for (const j of added) if (j.table === table) lines.push(j.rule.replace(/^-A (\S+) /, '-I $1 1 '));
    lines.push('COMMIT');
  }
  return { text: `${lines.join('\n')}\n`, added };
}
