/**
 * The iptables packet tracer: runs one NEW connection's first packet through the nat and filter
 * tables (as iptables-tables.ts holds them after loading `kube-proxy render` output or an
 * iptables-save) and says what the kernel does with it. Semantics of upstream's proxier-test tracer:
 * - only NEW connections: `--ctstate NEW` matches, RELATED/ESTABLISHED/INVALID never do, DNAT does
 *   once a DNAT happened; `-m recent --rcheck` (affinity from other connections) never matches;
 * - `-m statistic` is a fork: the rule both matches and does not, so every endpoint the chain can
 *   reach is listed, in rule order;
 * - masquerade is true iff the packet got the masquerade mark anywhere;
 * - addrtype LOCAL is decided by env.isLocal (the caller adds 127.0.0.0/8 and ::1 in iptables mode).
 * Hooks: from the node: nat OUTPUT, filter OUTPUT, nat POSTROUTING, then filter INPUT when the
 * (translated) destination is local; from elsewhere: nat PREROUTING, then filter INPUT when the
 * destination is local, else filter FORWARD and nat POSTROUTING. IPVS mode's glue runs here too, with
 * {@link IPTablesExtensions}: `-m set` over the rendered ipset members, `-m ipvs`, the kube-ipvs0
 * addresses as local ones, and an IPVS stage (after filter INPUT for arriving packets, after nat
 * OUTPUT for the node's own) that forks per real server. Pure.
 */
import { canonicalIP, cidrContains, parseCIDR, type CIDR } from '../net/ip.js';
import type { IPTablesTables } from './iptables-tables.js';
import {
  combineBranches,
  mergeSteps,
  type Packet,
  type TraceEnv,
  type TraceResult,
  type TraceStep,
} from './packet.js';

/** Splits a rule into words the way iptables-save quotes them (double quotes group, and are dropped). */
export function ruleWords(rule: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let any = false;
  for (let i = 0; i < rule.length; i++) {
    const c = rule[i]!;
    if (c === '"') {
      quoted = !quoted;
      any = true;
    } else if (c === '\\' && quoted && i + 1 < rule.length) {
      cur += rule[++i]!;
    } else if (c === ' ' && !quoted) {
      if (any || cur !== '') out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || cur !== '') out.push(cur);
  return out;
}

interface PacketState {
  dst: string;
  /** The virtual server IPVS took the packet through (what `-m ipvs --vaddr` sees), if any. */
  ipvs: { vaddr: string; vproto: string; vport: number } | undefined;
  dstPort: number;
  mark: number;
  dnat: string | undefined;
  marked: boolean;
  verdict: 'ACCEPT' | 'DROP' | 'REJECT' | undefined;
  steps: { phase: number; step: TraceStep }[];
}

type Match = (p: Packet, st: PacketState, env: TraceEnv) => boolean;

type Target =
  | { kind: 'none' }
  | { kind: 'jump' | 'goto'; chain: string }
  | { kind: 'return' | 'accept' | 'drop' | 'reject' | 'masquerade' }
  | { kind: 'mark'; or: number; xor: number; and: number }
  | { kind: 'dnat'; to: string };

interface ParsedRule {
  readonly text: string;
  readonly matches: readonly Match[];
  /** `-m statistic`: the rule may or may not match (a fork). */
  readonly random: boolean;
  readonly target: Target;
  /** Set when a word was not understood: the rule never matches. */
  readonly unreadable?: string;
}

function parseMark(s: string): { value: number; mask: number } {
  const [v, m] = s.split('/');
  const value = Number(v);
  return { value, mask: m === undefined ? 0xffffffff : Number(m) };
}

function cidrMatch(text: string): (ip: string) => boolean {
  const c: CIDR | undefined = parseCIDR(
    text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`,
  );
  if (!c) throw new Error(`bad address ${text}`);
  // A single address (most rules: -d <cluster IP>) is a string compare of canonical forms: the
  // tracer scans every dispatch rule of a 10k-service table per packet.
  const host = canonicalIP(text.split('/')[0]!);
  if (host !== undefined && c.prefix === (c.family === 'IPv6' ? 128 : 32)) return (ip) => ip === host;
  return (ip) => {
    try {
      return cidrContains(c, ip);
    } catch {
      return false; // the other family never matches
    }
  };
}

function ifaceMatch(pattern: string): (iface: string | undefined) => boolean {
  if (pattern.endsWith('+')) {
    const prefix = pattern.slice(0, -1);
    return (iface) => iface !== undefined && iface.startsWith(prefix);
  }
  return (iface) => iface === pattern;
}

/** What a `-m set --match-set` rule asks of the packet: its addresses and ports after any translation. */
export interface SetProbe {
  readonly protocol: Packet['protocol'];
  readonly src: string;
  readonly srcPort: number;
  readonly dst: string;
  readonly dstPort: number;
}

/**
 * Extensions a mode's glue rules need beyond plain iptables: `-m set` (IPVS mode's ipsets). Without
 * one, a rule using it is unreadable.
 */
export interface IPTablesExtensions {
  /** A matcher for `--match-set NAME FLAGS` (flags split at commas), or undefined for an unknown set. */
  readonly matchSet?: (name: string, flags: readonly string[]) => ((p: SetProbe) => boolean) | undefined;
  /**
   * The IPVS stage: the virtual server a packet to (protocol, dst, dstPort) reaches, if any. With it,
   * the tracer runs IPVS where the kernel does (LOCAL_IN for arriving packets, LOCAL_OUT for the node's own).
   */
  readonly ipvs?: (protocol: Packet['protocol'], dst: string, dstPort: number) => IPVSService | undefined;
  /** Extra local addresses (IPVS mode binds every service address to kube-ipvs0). */
  readonly localAddresses?: ReadonlySet<string>;
}

/** One virtual server as the IPVS stage sees it: its rule and its real servers, each with its rule. */
export interface IPVSService {
  readonly key: string;
  readonly rule: string;
  readonly vaddr: string;
  readonly vproto: string;
  readonly vport: number;
  readonly realServers: readonly { readonly ip: string; readonly port: number; readonly rule: string }[];
}

/** Parses one rule (`-A CHAIN` already stripped). Words it does not know make the rule unreadable. */
export function parseRule(text: string, ext: IPTablesExtensions = {}): ParsedRule {
  const w = ruleWords(text);
  const matches: Match[] = [];
  let random = false;
  let target: Target = { kind: 'none' };
  let unreadable: string | undefined;
  let neg = false;
  // MARK's options follow `-j MARK`: collected here, put into the target at the end.
  const mark = { or: 0, xor: 0, and: 0xffffffff };
  const add = (m: Match): void => {
    const n = neg;
    neg = false;
    matches.push(n ? (p, st, env) => !m(p, st, env) : m);
  };
  try {
    for (let i = 0; i < w.length; i++) {
      const a = w[i]!;
      const next = (): string => {
        const v = w[++i];
        if (v === undefined) throw new Error(`${a} needs a value`);
        return v;
      };
      switch (a) {
        case '!':
          neg = true;
          break;
        case '-m': {
          const mod = next();
          // Modules whose options are handled below, or that carry no condition of their own.
          if (
            ![
              'comment',
              'tcp',
              'udp',
              'sctp',
              'addrtype',
              'conntrack',
              'mark',
              'statistic',
              'recent',
              'nfacct',
              'physdev',
              ...(ext.matchSet ? ['set'] : []),
              ...(ext.ipvs ? ['ipvs'] : []),
            ].includes(mod)
          )
            throw new Error(`-m ${mod}`);
          break;
        }
        case '--comment':
        case '--nfacct-name':
          next();
          break;
        case '-p': {
          const proto = next().toUpperCase();
          add((p) => p.protocol === proto);
          break;
        }
        case '-s': {
          const m = cidrMatch(next());
          add((p) => m(p.src));
          break;
        }
        case '-d': {
          const m = cidrMatch(next());
          add((_p, st) => m(st.dst));
          break;
        }
        case '--dport': {
          const port = Number(next());
          add((_p, st) => st.dstPort === port);
          break;
        }
        case '--sport': {
          const port = Number(next());
          add((p) => p.srcPort === port);
          break;
        }
        case '-i': {
          const m = ifaceMatch(next());
          add((_p, _st, env) => m(env.source === 'pod' ? env.podInterface : undefined));
          break;
        }
        case '--dst-type': {
          if (next() !== 'LOCAL') throw new Error('--dst-type other than LOCAL');
          add((_p, st, env) => env.isLocal(st.dst));
          break;
        }
        case '--src-type': {
          if (next() !== 'LOCAL') throw new Error('--src-type other than LOCAL');
          add((p, _st, env) => env.isLocal(p.src));
          break;
        }
        case '--ctstate': {
          const states = next().split(',');
          add((_p, st) => states.includes('NEW') || (states.includes('DNAT') && st.dnat !== undefined));
          break;
        }
        case '--mark': {
          const { value, mask } = parseMark(next());
          add((_p, st) => (st.mark & mask) >>> 0 === value >>> 0);
          break;
        }
        case '--mode':
          if (next() !== 'random') throw new Error('statistic mode other than random');
          break;
        case '--probability':
          next();
          random = true;
          break;
        case '--physdev-is-in':
          // No bridge in the model: a packet never arrives through a bridge port (br_netfilter).
          add(() => false);
          break;
        case '--match-set': {
          const name = next();
          const flags = next().split(',');
          const m = ext.matchSet?.(name, flags);
          if (!m) throw new Error(`--match-set ${name}: no such set`);
          add((p, st) =>
            m({ protocol: p.protocol, src: p.src, srcPort: p.srcPort, dst: st.dst, dstPort: st.dstPort }),
          );
          break;
        }
        case '--vaddr': {
          const v = canonicalIP(next());
          add((_p, st) => st.ipvs !== undefined && st.ipvs.vaddr === v);
          break;
        }
        case '--vproto': {
          const v = next().toLowerCase();
          add((_p, st) => st.ipvs !== undefined && st.ipvs.vproto === v);
          break;
        }
        case '--vport': {
          const v = Number(next());
          add((_p, st) => st.ipvs !== undefined && st.ipvs.vport === v);
          break;
        }
        case '--rcheck':
          // Affinity: an entry exists only for a client seen before on another connection.
          add(() => false);
          break;
        case '--name':
        case '--seconds':
          next();
          break;
        case '--set':
        case '--reap':
          break;
        case '-j':
        case '-g': {
          const t = next();
          if (a === '-g') target = { kind: 'goto', chain: t };
          else if (t === 'RETURN') target = { kind: 'return' };
          else if (t === 'ACCEPT') target = { kind: 'accept' };
          else if (t === 'DROP') target = { kind: 'drop' };
          else if (t === 'REJECT') target = { kind: 'reject' };
          else if (t === 'MASQUERADE') target = { kind: 'masquerade' };
          else if (t === 'MARK') target = { kind: 'mark', ...mark };
          else if (t === 'DNAT') target = { kind: 'dnat', to: '' };
          else if (/^[A-Z]/.test(t) && /^[A-Z][A-Z0-9-]*$/.test(t) && !['SNAT', 'LOG', 'NFLOG'].includes(t))
            target = { kind: 'jump', chain: t };
          else throw new Error(`-j ${t}`);
          break;
        }
        case '--or-mark':
          mark.or = Number(next());
          break;
        case '--xor-mark':
          mark.xor = Number(next());
          break;
        case '--set-xmark': {
          const { value, mask } = parseMark(next());
          mark.and = ~mask >>> 0;
          mark.xor = value;
          break;
        }
        case '--to-destination':
          if (target.kind === 'dnat') target = { kind: 'dnat', to: next() };
          else next();
          break;
        case '--random-fully':
        case '--random':
          break;
        default:
          throw new Error(a);
      }
    }
    if (target.kind === 'mark') target = { kind: 'mark', ...mark };
  } catch (err) {
    unreadable = err instanceof Error ? err.message : String(err);
  }
  return unreadable === undefined
    ? { text, matches, random, target }
    : { text, matches: [], random: false, target: { kind: 'none' }, unreadable };
}

/** The host part of a DNAT target ("10.0.0.1:80", "[fd00::1]:80"). */
function splitTarget(to: string, fallbackPort: number): { ip: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(to) ?? /^([^:]+)(?::(\d+))?$/.exec(to);
  if (!m) return { ip: to, port: fallbackPort };
  return { ip: m[1]!, port: m[2] === undefined ? fallbackPort : Number(m[2]) };
}

/**
 * The IPv4 address a rule's un-negated `-d ADDR[/32]` option names (outside any quoted comment), or
 * undefined when it has none or another form: a rule with one cannot match another destination, so
 * the tracer skips it unparsed (a 10k-service KUBE-SERVICES is read, not parsed, on the way).
 */
export function exactDestination(rule: string): string | undefined {
  let k = 0; // where `-d` starts
  if (!rule.startsWith('-d ')) {
    const j = rule.indexOf(' -d ');
    if (j < 0) return undefined;
    k = j + 1;
  }
  if (rule.endsWith('! ', k)) return undefined;
  let quotes = 0;
  for (let q = rule.indexOf('"'); q >= 0 && q < k; q = rule.indexOf('"', q + 1)) quotes++;
  if (quotes % 2 !== 0) return undefined;
  const end = rule.indexOf(' ', k + 3);
  const word = rule.slice(k + 3, end < 0 ? rule.length : end);
  const addr = word.endsWith('/32') ? word.slice(0, -3) : word;
  return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr) ? addr : undefined;
}

interface LoadedChain {
  readonly raw: readonly string[];
  readonly parsed: (ParsedRule | undefined)[];
  /** exactDestination of each rule, null when it has none (computed on first use). */
  readonly dst: (string | null | undefined)[];
}

/** A loaded rule set: parses each rule once, on first use (a 10k-service table is mostly never read). */
export class IPTablesTracer {
  private readonly chains = new Map<string, LoadedChain>();
  private readonly unreadable = new Set<string>();

  constructor(
    private readonly tables: IPTablesTables,
    private readonly ext: IPTablesExtensions = {},
  ) {}

  private chainRules(table: string, chain: string): LoadedChain | undefined {
    const key = `${table} ${chain}`;
    let c = this.chains.get(key);
    if (!c) {
      const raw = this.tables.tables.get(table)?.get(chain);
      if (!raw) return undefined;
      c = {
        raw,
        parsed: new Array<ParsedRule | undefined>(raw.length),
        dst: new Array<string | null>(raw.length),
      };
      this.chains.set(key, c);
    }
    return c;
  }

  /** Traces `p` (see the file comment for the semantics). */
  trace(p: Packet, outerEnv: TraceEnv): TraceResult {
    this.unreadable.clear();
    const extra = this.ext.localAddresses;
    const env: TraceEnv = extra
      ? { ...outerEnv, isLocal: (ip) => extra.has(ip) || outerEnv.isLocal(ip) }
      : outerEnv;
    const start: PacketState = {
      ipvs: undefined,
      dst: p.dst,
      dstPort: p.dstPort,
      mark: 0,
      dnat: undefined,
      marked: false,
      verdict: undefined,
      steps: [],
    };
    let branches: PacketState[] = [start];
    const hook = (table: string, chain: string, phase: number): void => {
      const out: PacketState[] = [];
      for (const st of branches) {
        if (st.verdict === 'DROP' || st.verdict === 'REJECT') {
          out.push(st);
          continue;
        }
        for (const b of this.run(table, chain, 0, st, p, env, phase, 0)) {
          // ACCEPT ends this hook only; the packet goes on to the next one.
          if (b.end === 'accept' && b.st.verdict === undefined) b.st.verdict = 'ACCEPT';
          out.push(b.st);
        }
      }
      branches = out;
    };
    // IPVS takes a packet to a virtual server where the kernel's ip_vs hooks sit: after filter INPUT
    // (LOCAL_IN) for arriving packets, right after nat OUTPUT (LOCAL_OUT) for the node's own. A
    // scheduler is a fork: every real server is a branch, in ipvsadm order.
    const ipvs = this.ext.ipvs;
    const ipvsStage = (phase: number): void => {
      if (!ipvs) return;
      const out: PacketState[] = [];
      for (const st of branches) {
        const vs =
          st.verdict === 'DROP' || st.verdict === 'REJECT' || st.ipvs !== undefined
            ? undefined
            : ipvs(p.protocol, st.dst, st.dstPort);
        if (!vs) {
          out.push(st);
          continue;
        }
        st.steps.push({ phase, step: { table: 'ipvs', chain: vs.key, rule: vs.rule } });
        st.ipvs = { vaddr: vs.vaddr, vproto: vs.vproto, vport: vs.vport };
        if (vs.realServers.length === 0) {
          // ip_vs_leave: no destination to schedule; the kernel answers ICMP port unreachable.
          st.verdict = 'REJECT';
          out.push(st);
          continue;
        }
        for (const rs of vs.realServers) {
          const b = clone(st);
          b.steps.push({ phase, step: { table: 'ipvs', chain: vs.key, rule: rs.rule } });
          b.dst = rs.ip;
          b.dstPort = rs.port;
          b.dnat = rs.ip.includes(':') ? `[${rs.ip}]:${rs.port}` : `${rs.ip}:${rs.port}`;
          out.push(b);
        }
      }
      branches = out;
    };
    // Each branch routes by its own (translated) destination.
    if (ipvs && env.source === 'node') {
      hook('nat', 'OUTPUT', 0);
      ipvsStage(1);
      hook('filter', 'OUTPUT', 2);
      hook('nat', 'POSTROUTING', 3);
      const all = branches;
      branches = all.filter((b) => b.ipvs === undefined && env.isLocal(b.dst));
      hook('filter', 'INPUT', 4);
      branches = [...branches, ...all.filter((b) => !(b.ipvs === undefined && env.isLocal(b.dst)))];
    } else if (ipvs) {
      hook('nat', 'PREROUTING', 0);
      const all = branches;
      branches = all.filter((b) => env.isLocal(b.dst));
      hook('filter', 'INPUT', 1);
      ipvsStage(2);
      const viaIPVS = branches.filter((b) => b.ipvs !== undefined);
      const local = branches.filter((b) => b.ipvs === undefined);
      branches = all.filter((b) => !env.isLocal(b.dst));
      hook('filter', 'FORWARD', 3);
      branches = [...viaIPVS, ...branches];
      // IPVS sends the translated packet out through POSTROUTING, as a forwarded one goes.
      hook('nat', 'POSTROUTING', 4);
      branches = [...local, ...branches];
    } else if (env.source === 'node') {
      hook('nat', 'OUTPUT', 0);
      hook('filter', 'OUTPUT', 1);
      hook('nat', 'POSTROUTING', 2);
      const all = branches;
      branches = all.filter((b) => env.isLocal(b.dst));
      hook('filter', 'INPUT', 3);
      branches = [...branches, ...all.filter((b) => !env.isLocal(b.dst))];
    } else {
      hook('nat', 'PREROUTING', 0);
      const all = branches;
      branches = all.filter((b) => env.isLocal(b.dst));
      hook('filter', 'INPUT', 1);
      const local = branches;
      branches = all.filter((b) => !env.isLocal(b.dst));
      hook('filter', 'FORWARD', 2);
      hook('nat', 'POSTROUTING', 3);
      branches = [...local, ...branches];
    }
    const combined = combineBranches(
      branches.map((b) => ({
        ...(b.dnat !== undefined ? { endpoint: b.dnat } : {}),
        ...(b.verdict !== undefined ? { verdict: b.verdict } : {}),
        marked: b.marked,
      })),
    );
    return {
      ...combined,
      steps: mergeSteps(branches.map((b) => b.steps)),
      unreadable: [...this.unreadable],
    };
  }

  /** Runs chain from rule `i`; returns every branch with how it left the chain. */
  private run(
    table: string,
    chain: string,
    i: number,
    st: PacketState,
    p: Packet,
    env: TraceEnv,
    phase: number,
    depth: number,
  ): { st: PacketState; end: End }[] {
    const loaded = this.chainRules(table, chain);
    if (!loaded || depth > 64) return [{ st, end: 'return' }];
    const out: { st: PacketState; end: End }[] = [];
    for (; i < loaded.raw.length; i++) {
      let d = loaded.dst[i];
      if (d === undefined) loaded.dst[i] = d = exactDestination(loaded.raw[i]!) ?? null;
      if (d !== null && d !== st.dst) continue;
      const r = (loaded.parsed[i] ??= parseRule(loaded.raw[i]!, this.ext));
      if (r.unreadable !== undefined) {
        this.unreadable.add(`-A ${chain} ${r.text}`);
        continue;
      }
      if (!r.matches.every((m) => m(p, st, env))) continue;
      const other = r.random ? clone(st) : undefined;
      st.steps.push({ phase, step: { table, chain, rule: `-A ${chain} ${r.text}` } });
      const res = this.apply(table, chain, i, r.target, st, p, env, phase, depth);
      if (res === 'next') continue;
      out.push(...res);
      // A statistic rule also does not match: that branch goes on with the next rule.
      if (other) out.push(...this.run(table, chain, i + 1, other, p, env, phase, depth));
      return out;
    }
    // Off the end: a user chain returns; a built-in chain's policy (ACCEPT wherever we program) ends
    // the hook without being a verdict of ours, which is the same thing for the hook loop.
    out.push({ st, end: 'return' });
    return out;
  }

  /** Applies rule `i`'s target: 'next' for a non-terminating one, else the branches leaving the chain. */
  private apply(
    table: string,
    chain: string,
    i: number,
    t: Target,
    st: PacketState,
    p: Packet,
    env: TraceEnv,
    phase: number,
    depth: number,
  ): 'next' | { st: PacketState; end: End }[] {
    switch (t.kind) {
      case 'none':
        return 'next';
      case 'return':
        return [{ st, end: 'return' }];
      case 'accept':
        return [{ st, end: 'accept' }];
      case 'drop':
      case 'reject':
        st.verdict = t.kind === 'drop' ? 'DROP' : 'REJECT';
        return [{ st, end: t.kind }];
      case 'masquerade':
        st.marked = true;
        return [{ st, end: 'snat' }];
      case 'mark':
        st.mark = (((st.mark & t.and) | t.or) ^ t.xor) >>> 0;
        if (t.or !== 0) st.marked = true;
        return 'next';
      case 'dnat': {
        const { ip, port } = splitTarget(t.to, st.dstPort);
        st.dst = ip;
        st.dstPort = port;
        st.dnat = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
        return [{ st, end: 'dnat' }];
      }
      case 'jump':
      case 'goto': {
        const out: { st: PacketState; end: End }[] = [];
        for (const b of this.run(table, t.chain, 0, st, p, env, phase, depth + 1)) {
          if (b.end !== 'return' || t.kind === 'goto') out.push(b);
          else out.push(...this.run(table, chain, i + 1, b.st, p, env, phase, depth));
        }
        return out;
      }
    }
  }
}

type End = 'return' | 'accept' | 'drop' | 'reject' | 'dnat' | 'snat';

function clone(st: PacketState): PacketState {
  return { ...st, steps: [...st.steps] };
}
