/**
 * `explain --live`: traces the packet through what the kernel holds (iptables-save text, the
 * `nft list table` listing, or IPVS mode's state with its iptables-save) and through what the
 * desired state renders, and says where they differ: the answer (verdict, endpoints, masquerade),
 * rules and map elements on the desired path that the kernel lacks (a missing element, a missing
 * rule, a missing or flushed chain; in IPVS mode a missing virtual server, real server, ipset member
 * or address of the rendered part), and rules on the kernel's path that are not ours. Kernel rules
 * are quoted as `render` prints them when they are ours. The rendered rules may be only the part of
 * the state the packet can touch (what the CLI renders): the whole render is asked for only when the
 * kernel's path leaves that part. Pure.
 */
import { savedForm } from '../backends/iptables/save-normalize.js';
import type { KernelState } from '../backends/ipvs/diff.js';
import { DUMMY_DEVICE } from '../backends/ipvs/names.js';
import { rsLine, vsLine } from '../backends/ipvs/render.js';
import { explain, explainWith, type ExplainContext, type Explanation } from './explain.js';
import { tablesFromSave, tablesFromText, type IPTablesTables } from './iptables-tables.js';
import { IPTablesTracer, type IPVSService } from './iptables-trace.js';
import { IPVSTracer, ipvsModelFromText, type IPSetModel, type IPVSModel } from './ipvs-trace.js';
import { applyScript, type TableModel } from './nft-table-model.js';
import { parseTableListing } from './nft-listing.js';
import { NftTracer } from './nft-trace.js';
import type { Packet, TraceStep } from './packet.js';

/** Both answers and what differs between them (empty when the kernel agrees). */
export interface LiveComparison {
  readonly desired: Explanation;
  readonly live: Explanation;
  readonly differences: readonly string[];
}

/** What the comparison may ask for beyond the rendered rules. */
export interface LiveOptions {
  /**
   * The whole state's render, when `ctx.rules` holds only the part the packet can touch (the CLI):
   * asked for only when the kernel's path takes a rule outside that part, to tell ours from foreign.
   */
  readonly whole?: () => string;
}

/** The tables explain traces (a whole iptables-save also prints mangle, raw, security). */
const LIVE_TABLES: ReadonlySet<string> = new Set(['filter', 'nat']);

const ELEMENT = /^add element \S+ kube-proxy (\S+) \{ (.*?)(?: : (.*))? \}$/;

const stepKey = (s: TraceStep): string => `${s.table}\u0000${s.chain}\u0000${s.rule}`;

/**
 * A rule in a form both spellings share: nft lists `|` and `^` where our scripts write `or` and
 * `xor`, and drops a `meta l4proto tcp` that a later `tcp dport` implies.
 */
function nftNorm(rule: string): string {
  return rule
    .replace(/meta mark set meta mark \| /g, 'meta mark set meta mark or ')
    .replace(/meta mark set meta mark \^ /g, 'meta mark set meta mark xor ')
    .replace(/(^|\s)meta l4proto (tcp|udp|sctp) (dnat .* \2 dport )/, '$1$3');
}

function answerDifferences(d: Explanation, l: Explanation): string[] {
  const out: string[] = [];
  if (d.json.verdict !== l.json.verdict)
    out.push(`verdict: the kernel says ${l.json.verdict}, the desired state says ${d.json.verdict}`);
  for (const e of d.json.endpoints)
    if (!l.json.endpoints.includes(e))
      out.push(`endpoint ${e}: in the desired state, not reached by the kernel's rules`);
  for (const e of l.json.endpoints)
    if (!d.json.endpoints.includes(e))
      out.push(`endpoint ${e}: reached by the kernel's rules, not in the desired state`);
  if (d.json.masquerade !== l.json.masquerade)
    out.push(
      `masquerade: the kernel says ${l.json.masquerade ? 'yes' : 'no'}, the desired state says ${d.json.masquerade ? 'yes' : 'no'}`,
    );
  return out;
}

/** The whole state's render, asked for only when the kernel's path leaves the rendered part. */
function memo(f: (() => string) | undefined): () => string | undefined {
  let done = false;
  let v: string | undefined;
  return () => {
    if (!done) {
      done = true;
      v = f?.();
    }
    return v;
  };
}

/**
 * Quotes a kernel rule as `render` prints it: the rendered rule of the same table and chain that
 * iptables-save prints as `s.rule` (or `s.rule` itself). `tag` keeps the part's and the whole
 * render's lookups apart.
 */
function iptablesQuoter(
  family: ExplainContext['state']['family'],
): (t: IPTablesTables, tag: string, s: TraceStep) => string | undefined {
  const rendered = new Map<string, Map<string, string>>();
  return (t, tag, s) => {
    const k = `${tag} ${s.table} ${s.chain}`;
    let m = rendered.get(k);
    if (!m) {
      m = new Map();
      for (const r of t.tables.get(s.table)?.get(s.chain) ?? []) {
        const line = `-A ${s.chain} ${r}`;
        m.set(savedForm(line, family) ?? line, line);
        m.set(line, line);
      }
      rendered.set(k, m);
    }
    return m.get(s.rule);
  };
}

/**
 * The iptables rules on the desired path (not on the kernel's path) that the kernel lacks: a missing
 * chain, a flushed chain, a missing rule (in the rule's own spelling or iptables-save's).
 */
function missingIPTablesRules(
  steps: readonly TraceStep[],
  onPath: ReadonlySet<string>,
  kernel: IPTablesTables,
  desired: IPTablesTables,
  family: ExplainContext['state']['family'],
): string[] {
  const out: string[] = [];
  const body = (x: string): string => x.slice(x.indexOf(' ', 3) + 1);
  const chainSets = new Map<string, Set<string>>();
  const kernelHas = (table: string, chain: string, rules: readonly string[], rule: string): boolean => {
    const k = `${table} ${chain}`;
    let set = chainSets.get(k);
    if (!set) chainSets.set(k, (set = new Set(rules)));
    return set.has(rule);
  };
  for (const s of steps) {
    if (onPath.has(stepKey(s))) continue;
    const chain = kernel.tables.get(s.table)?.get(s.chain);
    const want = desired.tables.get(s.table)?.get(s.chain) ?? [];
    if (!chain) out.push(`chain ${s.table} ${s.chain} is missing from the kernel`);
    else if (chain.length === 0 && want.length > 0) out.push(`chain ${s.table} ${s.chain} was flushed`);
    else {
      const saved = savedForm(s.rule, family) ?? s.rule;
      if (
        !kernelHas(s.table, s.chain, chain, body(saved)) &&
        !kernelHas(s.table, s.chain, chain, body(s.rule))
      )
        out.push(`rule missing from the kernel: ${s.table}: ${s.rule}`);
    }
  }
  return out;
}

function compareIPTables(
  ctx: ExplainContext,
  liveText: string,
  p: Packet,
  opts: LiveOptions,
): LiveComparison {
  const desiredTables = tablesFromText(ctx.rules);
  const liveTables: IPTablesTables = tablesFromSave(liveText, LIVE_TABLES);
  const desired = explain(ctx, p);
  const raw = explainWith(new IPTablesTracer(liveTables), ctx, p, desired.why);
  const whole = memo(opts.whole);
  let wholeTables: IPTablesTables | undefined;
  // Quote kernel rules as render prints them: find the rendered rule iptables-save prints this way.
  const renderedIn = iptablesQuoter(ctx.state.family);
  const renderedOf = (s: TraceStep): string | undefined => {
    const mine = renderedIn(desiredTables, 'part', s);
    if (mine !== undefined) return mine;
    // A rule outside the rendered part (the kernel sent the packet somewhere the desired state does
    // not): look it up in the whole state's render before calling it foreign.
    const w = whole();
    if (w === undefined || w === ctx.rules) return undefined;
    wholeTables ??= tablesFromText(w);
    return renderedIn(wholeTables, 'whole', s);
  };
  const foreign: string[] = [];
  const steps = raw.json.steps.map((s) => {
    const r = renderedOf(s);
    if (r === undefined) foreign.push(`${s.table}: ${s.rule}`);
    return r === undefined ? s : { ...s, rule: r };
  });
  const live: Explanation = { ...raw, json: { ...raw.json, steps } };
  const differences = answerDifferences(desired, live);
  const onPath = new Set(steps.map(stepKey));
  differences.push(
    ...missingIPTablesRules(desired.json.steps, onPath, liveTables, desiredTables, ctx.state.family),
  );
  for (const f of foreign) differences.push(`a rule that is not ours is on the path: ${f}`);
  return { desired, live, differences: dedupe(differences) };
}

function compareNFTables(
  ctx: ExplainContext,
  liveText: string,
  p: Packet,
  opts: LiveOptions,
): LiveComparison {
  const fam = ctx.state.family === 'IPv6' ? 'ip6' : 'ip';
  const desiredModel: TableModel = applyScript(undefined, ctx.rules);
  const liveModel = parseTableListing(liveText);
  const desired = explain(ctx, p);
  const raw = explainWith(new NftTracer(liveModel, fam), ctx, p, desired.why);
  const whole = memo(opts.whole);
  let wholeModel: TableModel | undefined;
  const wholeOf = (): TableModel | undefined => {
    const w = whole();
    if (w === undefined || w === ctx.rules) return undefined;
    return (wholeModel ??= applyScript(undefined, w));
  };
  const prefix = `add rule ${fam} kube-proxy `;
  const body = (s: TraceStep): string => s.rule.slice(prefix.length + s.chain.length + 1);
  const normed = new Map<TableModel, Map<string, Map<string, string>>>();
  // The rendered rule of `m`'s chain that nft lists as `rule` (nft respells a few statements).
  const ruleIn = (m: TableModel, chain: string, rule: string): string | undefined => {
    let byChain = normed.get(m);
    if (!byChain) normed.set(m, (byChain = new Map<string, Map<string, string>>()));
    let n = byChain.get(chain);
    if (!n) {
      n = new Map();
      for (const r of m.chains.get(chain) ?? []) if (!n.has(nftNorm(r))) n.set(nftNorm(r), r);
      byChain.set(chain, n);
    }
    return n.get(nftNorm(rule));
  };
  // Quote the kernel's rule as render prints it when the desired chain has the same rule.
  const steps = raw.json.steps.map((s) => {
    if (!s.rule.startsWith(prefix)) return s;
    const mine = ruleIn(desiredModel, s.chain, body(s));
    return mine === undefined ? s : { ...s, rule: `${prefix}${s.chain} ${mine}` };
  });
  const live: Explanation = { ...raw, json: { ...raw.json, steps } };
  const differences = answerDifferences(desired, live);
  const onPath = new Set(steps.map(stepKey));
  const desiredKeys = new Set(desired.json.steps.map(stepKey));
  for (const s of desired.json.steps) {
    if (onPath.has(stepKey(s))) continue;
    const el = ELEMENT.exec(s.rule);
    if (el) {
      const set = liveModel.sets.get(el[1]!);
      const have = set?.elements.get(el[2]!);
      if (!set) differences.push(`set ${el[1]} is missing from the kernel`);
      else if (have === undefined) differences.push(`map element missing from the kernel: ${s.rule}`);
      else if (have !== (el[3] ?? ''))
        differences.push(`map element differs: ${s.rule}; the kernel has ${have}`);
      continue;
    }
    const chain = liveModel.chains.get(s.chain);
    const want = desiredModel.chains.get(s.chain) ?? [];
    if (!chain) differences.push(`chain ${s.chain} is missing from the kernel`);
    else if (chain.length === 0 && want.length > 0) differences.push(`chain ${s.chain} was flushed`);
    else if (ruleIn(liveModel, s.chain, body(s)) === undefined)
      differences.push(`rule missing from the kernel: ${s.rule}`);
  }
  const ours = (m: TableModel, s: TraceStep, el: RegExpExecArray | null): boolean =>
    el
      ? m.sets.get(el[1]!)?.elements.get(el[2]!) === (el[3] ?? '')
      : s.rule.startsWith(prefix) && (m.chains.get(s.chain) ?? []).includes(body(s));
  for (const s of steps) {
    if (desiredKeys.has(stepKey(s))) continue;
    const el = ELEMENT.exec(s.rule);
    if (ours(desiredModel, s, el)) continue;
    // Outside the rendered part: ours if the whole state's render has it.
    const w = wholeOf();
    if (w && ours(w, s, el)) continue;
    differences.push(`${el ? 'an element' : 'a rule'} that is not ours is on the path: ${s.rule}`);
  }
  return { desired, live, differences: dedupe(differences) };
}

/** What `--live` reads in IPVS mode: the IPVS kernel state (as the proxier reads it) and iptables-save. */
export interface IPVSLive {
  /** `ipvsadm -Sn`, `ipset save` (our sets) and kube-ipvs0's addresses, parsed by the IPVS backend's readers. */
  readonly kernel: KernelState;
  /** iptables-save of every table (filter and nat are read). */
  readonly iptables: string;
}

/** What the kernel holds, for the mode: iptables-save or `nft list table` text, or the IPVS state. */
export type LiveRules = string | IPVSLive;

/**
 * The IPVS tracer's model of what the kernel holds. Rules are spelled as `render` prints them
 * (ipvsadm lines via the backend's vsLine/rsLine). A real server of weight 0 (draining, or its
 * endpoint unhealthy) takes no new connection, so the trace leaves it out.
 */
export function ipvsModelFromKernel(live: IPVSLive): IPVSModel {
  const services = new Map<string, IPVSService>();
  for (const vs of live.kernel.vss.values()) {
    const v = { ...vs, realServers: [], service: '' };
    services.set(vs.key, {
      key: vs.key,
      rule: vsLine(v),
      vaddr: vs.address,
      vproto: vs.protocol.toLowerCase(),
      vport: vs.port,
      realServers: [...vs.reals.values()]
        .filter((rs) => rs.weight > 0)
        .map((rs) => ({ ip: rs.ip, port: rs.port, rule: rsLine(v, rs) })),
    });
  }
  const sets = new Map<string, IPSetModel>();
  for (const [name, s] of live.kernel.sets) sets.set(name, { name, type: s.type, members: s.entries });
  return {
    addresses: live.kernel.addresses,
    sets,
    services,
    tables: tablesFromSave(live.iptables, LIVE_TABLES),
  };
}

/** `-a -t VIP -r RIP:PORT ...`: the real server's `RIP:PORT`. */
const realOf = (rule: string): string | undefined => / -r (\S+)/.exec(rule)?.[1];

function compareIPVSLive(
  ctx: ExplainContext,
  liveState: IPVSLive,
  p: Packet,
  opts: LiveOptions,
): LiveComparison {
  const desiredModel = ipvsModelFromText(ctx.rules);
  const liveModel = ipvsModelFromKernel(liveState);
  const desired = explain(ctx, p);
  const raw = explainWith(new IPVSTracer(liveModel), ctx, p, desired.why);
  const whole = memo(opts.whole);
  let wholeModel: IPVSModel | undefined;
  const wholeOf = (): IPVSModel | undefined => {
    const w = whole();
    if (w === undefined || w === ctx.rules) return undefined;
    return (wholeModel ??= ipvsModelFromText(w));
  };
  // iptables glue: quote kernel rules as render prints them (the saved form maps back to ours).
  const quote = iptablesQuoter(ctx.state.family);
  const renderedIn = (m: IPVSModel, tag: string, s: TraceStep): string | undefined => quote(m.tables, tag, s);
  const differences: string[] = [];
  const foreign: string[] = [];
  const steps = raw.json.steps.map((s) => {
    if (s.table === 'ipvs') {
      // Ours if the part (or else the whole state) has this virtual server; a real server it does
      // not have shows as an endpoint the desired state does not reach.
      if (!desiredModel.services.has(s.chain) && !wholeOf()?.services.has(s.chain))
        foreign.push(`ipvs: ${s.rule}`);
      return s;
    }
    const r =
      renderedIn(desiredModel, 'part', s) ?? (wholeOf() ? renderedIn(wholeOf()!, 'whole', s) : undefined);
    if (r === undefined) foreign.push(`${s.table}: ${s.rule}`);
    return r === undefined ? s : { ...s, rule: r };
  });
  const live: Explanation = { ...raw, json: { ...raw.json, steps } };
  differences.push(...answerDifferences(desired, live));
  // What the part of the state this packet can touch programs, against the kernel: its virtual and
  // real servers, its ipset members, its kube-ipvs0 addresses (sets of things, so the part is exact).
  const vsName = (key: string): string =>
    key.replace(/^(tcp|udp|sctp) /, (m) => `${m.trim().toUpperCase()} `);
  for (const [key, vs] of desiredModel.services) {
    const have = liveState.kernel.vss.get(key);
    if (!have) {
      differences.push(`virtual server ${vsName(key)} is missing from the kernel: ${vs.rule}`);
      continue;
    }
    const haveRule = liveModel.services.get(key)!.rule;
    if (haveRule !== vs.rule)
      differences.push(`virtual server ${vsName(key)} differs: ${vs.rule}; the kernel has ${haveRule}`);
    for (const rs of vs.realServers) {
      const real = have.reals.get(realOf(rs.rule) ?? '');
      if (!real)
        differences.push(
          `real server ${realOf(rs.rule)} of virtual server ${vsName(key)} is missing from the kernel: ${rs.rule}`,
        );
      else if (real.weight === 0)
        differences.push(
          `real server ${realOf(rs.rule)} of virtual server ${vsName(key)} has weight 0 in the kernel: ${rs.rule}`,
        );
    }
  }
  for (const [name, set] of desiredModel.sets) {
    const have = liveModel.sets.get(name);
    if (!have) {
      if (set.members.size > 0) differences.push(`ipset ${name} is missing from the kernel`);
      continue;
    }
    for (const m of set.members)
      if (!have.members.has(m)) differences.push(`ipset member missing from the kernel: add ${name} ${m}`);
  }
  for (const a of desiredModel.addresses)
    if (!liveModel.addresses.has(a)) differences.push(`address ${a} is not bound to ${DUMMY_DEVICE}`);
  // The iptables glue on the desired path.
  const onPath = new Set(steps.map(stepKey));
  differences.push(
    ...missingIPTablesRules(
      desired.json.steps.filter((s) => s.table !== 'ipvs'),
      onPath,
      liveModel.tables,
      desiredModel.tables,
      ctx.state.family,
    ),
  );
  for (const f of foreign)
    differences.push(
      f.startsWith('ipvs: ')
        ? `a virtual server that is not ours is on the path: ${f.slice(6)}`
        : `a rule that is not ours is on the path: ${f}`,
    );
  return { desired, live, differences: dedupe(differences) };
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * Compares the kernel's rules (`liveText`: iptables-save of nat and filter, or `nft list table`)
 * with the desired state's for `p`. Throws an Error when the kernel text cannot be read.
 */
export function compareLive(
  ctx: ExplainContext,
  live: LiveRules,
  p: Packet,
  opts: LiveOptions = {},
): LiveComparison {
  if (ctx.mode === 'ipvs') {
    if (typeof live === 'string') throw new RangeError('explain --live: IPVS mode reads the IPVS state');
    return compareIPVSLive(ctx, live, p, opts);
  }
  if (typeof live !== 'string') throw new RangeError(`explain --live: mode ${ctx.mode} reads rule text`);
  if (ctx.mode === 'iptables') return compareIPTables(ctx, live, p, opts);
  if (ctx.mode === 'nftables') return compareNFTables(ctx, live, p, opts);
  throw new RangeError(`explain --live: mode ${ctx.mode} is not supported`);
}

/** The text form of a live comparison: the kernel's trace, then each difference or that they agree. */
export function formatLiveLines(c: LiveComparison): string[] {
  if (c.differences.length === 0) return ["live: the kernel's rules give the desired state's answer"];
  return c.differences.map((d) => `differs: ${d}`);
}
