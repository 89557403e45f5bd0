/**
 * The nftables packet tracer: runs one NEW connection's first packet through the `kube-proxy` table
 * (as nft-table-model.ts holds it after applying `kube-proxy render` output or a listing) and says
 * what the kernel does with it. It reads the statement forms our layout writes
 * (docs/nftables-layout.md): matches on addresses, sets, concatenations and fib, verdict maps,
 * `numgen` picks into maps, dnat, marks, masquerade. Semantics as the iptables tracer's: only NEW
 * connections (`ct state new` matches; `ct status dnat` once translated), an affinity set
 * (`saddr @affinity-…`, filled by other connections) never matches, a `numgen` pick lists every slot
 * in order, masquerade iff the mark was set anywhere. Base chains run by hook, then priority.
 * Pure.
 */
import { cidrContains, parseCIDR } from '../net/ip.js';
import type { TableModel } from './nft-table-model.js';
import {
  combineBranches,
  mergeSteps,
  type Packet,
  type TraceEnv,
  type TraceResult,
  type TraceStep,
} from './packet.js';

interface State {
  dst: string;
  dstPort: number;
  mark: number;
  marked: boolean;
  dnat: string | undefined;
  verdict: 'ACCEPT' | 'DROP' | 'REJECT' | undefined;
  steps: { phase: number; step: TraceStep }[];
}

interface Ctx {
  readonly model: TableModel;
  readonly p: Packet;
  readonly env: TraceEnv;
  readonly st: State;
}

/** A value a selector yields: one string, or several (a numgen pick: every slot). */
type Sel = (c: Ctx) => string[];

type Stmt =
  | { kind: 'test'; test: (c: Ctx) => boolean }
  | { kind: 'vmap'; key: Sel; map: string }
  | { kind: 'verdict'; verdict: 'jump' | 'goto'; chain: string }
  | { kind: 'verdict'; verdict: 'return' | 'drop' | 'reject' | 'accept' }
  | { kind: 'mark'; op: 'or' | 'xor'; value: number }
  | { kind: 'dnat'; literal?: string; key?: Sel; map?: string }
  | { kind: 'masquerade' };

interface Compiled {
  readonly stmts: readonly Stmt[];
  readonly unreadable?: string;
}

/** Splits a rule into tokens: quoted strings and `{ … }` groups stay whole. */
function tokens(rule: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (c === ' ') {
      i++;
      continue;
    }
    if (c === '"') {
      const j = rule.indexOf('"', i + 1);
      out.push(rule.slice(i, j < 0 ? rule.length : j + 1));
      i = j < 0 ? rule.length : j + 1;
      continue;
    }
    if (c === '{') {
      const j = rule.indexOf('}', i);
      out.push(rule.slice(i, j < 0 ? rule.length : j + 1));
      i = j < 0 ? rule.length : j + 1;
      continue;
    }
    let j = i;
    while (j < rule.length && rule[j] !== ' ') j++;
    out.push(rule.slice(i, j));
    i = j;
  }
  return out;
}

const PROTOS = new Set(['tcp', 'udp', 'sctp']);

/** A value test for one literal: address or prefix, protocol name, number, or `a-b` range. */
function literalTest(v: string): (x: string) => boolean {
  if (v.includes('/')) {
    const c = parseCIDR(v);
    if (!c) throw new Error(`bad prefix ${v}`);
    return (x) => {
      try {
        return cidrContains(c, x);
      } catch {
        return false;
      }
    };
  }
  const range = /^(\d+)-(\d+)$/.exec(v);
  if (range) return (x) => Number(x) >= Number(range[1]) && Number(x) <= Number(range[2]);
  return (x) => x === v;
}

/** The table's sets, with a fast path for exact keys and a scan for interval sets. */
function inSet(m: TableModel, name: string, key: string): boolean {
  const s = m.sets.get(name);
  // Kernel-filled sets (ClientIP affinity) hold clients of other connections: never a match here.
  if (!s || s.spec.includes('dynamic')) return false;
  if (s.elements.has(key)) return true;
  if (!s.spec.includes('interval')) return false;
  const parts = key.split(' . ');
  for (const k of s.elements.keys()) {
    const kp = k.split(' . ');
    if (kp.length === parts.length && kp.every((v, i) => literalTest(v)(parts[i]!))) return true;
  }
  return false;
}

/** Compiles one rule (the text after `add rule <family> kube-proxy <chain> `). */
export function compileRule(rule: string): Compiled {
  const t = tokens(rule);
  const stmts: Stmt[] = [];
  let i = 0;
  const peek = (k = 0): string | undefined => t[i + k];
  const take = (): string => {
    const v = t[i++];
    if (v === undefined) throw new Error('rule ends early');
    return v;
  };
  const expect = (w: string): void => {
    const v = take();
    if (v !== w) throw new Error(`expected ${w}, got ${v}`);
  };
  /** One selector: ip daddr/saddr, meta l4proto, th/tcp/udp/sctp dport, numgen, fib … type. */
  const selector = (): Sel | undefined => {
    const a = peek();
    if (a === 'ip' || a === 'ip6') {
      const which = peek(1);
      if (which === 'daddr') {
        i += 2;
        return (c) => [c.st.dst];
      }
      if (which === 'saddr') {
        i += 2;
        return (c) => [c.p.src];
      }
      return undefined;
    }
    if (a === 'meta' && peek(1) === 'l4proto') {
      i += 2;
      return (c) => [c.p.protocol.toLowerCase()];
    }
    if ((a === 'th' || PROTOS.has(a ?? '')) && peek(1) === 'dport') {
      i += 2;
      const proto = a;
      return (c) => (proto === 'th' || c.p.protocol.toLowerCase() === proto ? [String(c.st.dstPort)] : []);
    }
    if (a === 'numgen') {
      i++;
      expect('random');
      expect('mod');
      const n = Number(take());
      let base = 0;
      if (peek() === 'offset') {
        i++;
        base = Number(take());
      }
      return () => Array.from({ length: n }, (_, k) => String(base + k));
    }
    return undefined;
  };
  /** A concatenation `s1 . s2 . …`: every combination of the selectors' values. */
  const concat = (first: Sel): Sel => {
    const parts = [first];
    while (peek() === '.') {
      i++;
      const s = selector();
      if (!s) throw new Error(`cannot read concatenation at ${peek() ?? 'end'}`);
      parts.push(s);
    }
    if (parts.length === 1) return first;
    return (c) => {
      let acc = [''];
      for (const [k, s] of parts.entries()) {
        const vals = s(c);
        acc = acc.flatMap((a) => vals.map((v) => (k === 0 ? v : `${a} . ${v}`)));
      }
      return acc;
    };
  };
  try {
    while (i < t.length) {
      const w = peek()!;
      if (w === 'comment') {
        i += 2;
        continue;
      }
      if (w === 'ct') {
        i++;
        const what = take();
        const neg = peek() === '!=';
        if (neg) i++;
        const vals = take().split(',');
        if (what === 'state') {
          const hit = vals.includes('new');
          stmts.push({ kind: 'test', test: () => hit !== neg });
        } else if (what === 'status') {
          const wantDnat = vals.includes('dnat');
          stmts.push({ kind: 'test', test: (c) => (wantDnat && c.st.dnat !== undefined) !== neg });
        } else throw new Error(`ct ${what}`);
        continue;
      }
      if (w === 'fib') {
        i++;
        const which = take();
        expect('type');
        const neg = peek() === '!=';
        if (neg) i++;
        const v = take();
        if (v !== 'local') throw new Error(`fib type ${v}`);
        stmts.push({
          kind: 'test',
          test: (c) => c.env.isLocal(which === 'daddr' ? c.st.dst : c.p.src) !== neg,
        });
        continue;
      }
      if (w === 'iifname') {
        i++;
        const neg = peek() === '!=';
        if (neg) i++;
        const pat = take().replace(/^"|"$/g, '');
        const m = pat.endsWith('*')
          ? (x: string | undefined) => x?.startsWith(pat.slice(0, -1)) ?? false
          : (x: string | undefined) => x === pat;
        stmts.push({
          kind: 'test',
          test: (c) => m(c.env.source === 'pod' ? c.env.podInterface : undefined) !== neg,
        });
        continue;
      }
      if (w === 'meta' && peek(1) === 'mark') {
        i += 2;
        if (peek() === 'set') {
          i++;
          expect('meta');
          expect('mark');
          // Our scripts write `or` / `xor`; `nft list` prints them as `|` / `^` (explain --live).
          const word = take();
          const op = word === '|' ? 'or' : word === '^' ? 'xor' : word;
          if (op !== 'or' && op !== 'xor') throw new Error(`meta mark set … ${word}`);
          stmts.push({ kind: 'mark', op, value: Number(take()) });
        } else if (peek() === '&') {
          i++;
          const mask = Number(take());
          const neg = peek() === '!=';
          if (peek() === '==' || neg) i++;
          const v = Number(take());
          stmts.push({ kind: 'test', test: (c) => ((c.st.mark & mask) >>> 0 === v >>> 0) !== neg });
        } else throw new Error('meta mark');
        continue;
      }
      if (w === 'update') {
        // Fills an affinity set for later connections; nothing for this one.
        i += 2;
        if (peek()?.startsWith('{')) i++;
        continue;
      }
      if (w === 'dnat') {
        i++;
        if (peek() === 'ip' || peek() === 'ip6') i++;
        expect('to');
        const s = selector();
        if (!s) {
          stmts.push({ kind: 'dnat', literal: take() });
          continue;
        }
        const key = concat(s);
        expect('map');
        const map = take().replace(/^@/, '');
        stmts.push({ kind: 'dnat', key, map });
        continue;
      }
      if (w === 'masquerade') {
        i++;
        if (peek() === 'fully-random' || peek() === 'random') i++;
        stmts.push({ kind: 'masquerade' });
        continue;
      }
      if (w === 'jump' || w === 'goto') {
        i++;
        stmts.push({ kind: 'verdict', verdict: w, chain: take() });
        continue;
      }
      if (w === 'return' || w === 'drop' || w === 'reject' || w === 'accept') {
        i++;
        stmts.push({ kind: 'verdict', verdict: w });
        continue;
      }
      const s = selector();
      if (!s) throw new Error(`cannot read ${w}`);
      const key = concat(s);
      const op = peek();
      if (op === 'vmap') {
        i++;
        stmts.push({ kind: 'vmap', key, map: take().replace(/^@/, '') });
        continue;
      }
      const neg = op === '!=';
      if (neg || op === '==') i++;
      const rhs = take();
      if (rhs.startsWith('@')) {
        const set = rhs.slice(1);
        stmts.push({
          kind: 'test',
          test: (c) => key(c).some((k) => inSet(c.model, set, k)) !== neg,
        });
        continue;
      }
      const lits = (rhs.startsWith('{') ? rhs.slice(1, -1).split(',') : [rhs])
        .map((x) => x.trim())
        .filter((x) => x !== '')
        .map(literalTest);
      stmts.push({ kind: 'test', test: (c) => key(c).some((k) => lits.some((l) => l(k))) !== neg });
    }
  } catch (err) {
    return { stmts: [], unreadable: err instanceof Error ? err.message : String(err) };
  }
  return { stmts };
}

/** Numeric priority of a base chain (nft's symbolic names, `name ± n`, or a number). */
function priorityOf(spec: string): number {
  const m = /priority ([^;]+?)\s*;/.exec(spec);
  if (!m) return 0;
  const names: Record<string, number> = {
    raw: -300,
    mangle: -150,
    dstnat: -100,
    filter: 0,
    security: 50,
    srcnat: 100,
  };
  const e = /^(-?\d+)$|^([a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(m[1]!.trim());
  if (!e) return 0;
  if (e[1] !== undefined) return Number(e[1]);
  const base = names[e[2]!] ?? 0;
  return e[3] === '-' ? base - Number(e[4]) : e[3] === '+' ? base + Number(e[4]) : base;
}

type End = 'return' | 'accept' | 'drop' | 'reject' | 'nat';

/** A loaded table: rules compile once, on first use. */
export class NftTracer {
  private readonly compiled = new Map<string, Compiled[]>();
  private readonly unreadable = new Set<string>();
  private readonly byHook = new Map<string, string[]>();

  /**
   * `family` is `ip` or `ip6`; `hooks` maps each base chain to its `type … hook … priority … ;`
   * spec (the model keeps them in `hooks`).
   */
  constructor(
    private readonly model: TableModel,
    private readonly family: 'ip' | 'ip6',
  ) {
    const hooks = model.hooks ?? new Map<string, string>();
    const list: { chain: string; hook: string; prio: number }[] = [];
    for (const [chain, spec] of hooks) {
      const h = /hook (\w+)/.exec(spec);
      if (h) list.push({ chain, hook: h[1]!, prio: priorityOf(spec) });
    }
    list.sort((a, b) => a.prio - b.prio);
    for (const x of list) {
      let l = this.byHook.get(x.hook);
      if (!l) this.byHook.set(x.hook, (l = []));
      l.push(x.chain);
    }
  }

  private rules(chain: string): Compiled[] | undefined {
    let c = this.compiled.get(chain);
    if (!c) {
      const raw = this.model.chains.get(chain);
      if (!raw) return undefined;
      c = raw.map(compileRule);
      this.compiled.set(chain, c);
    }
    return c;
  }

  /** Traces `p` through the table (see the file comment). */
  trace(p: Packet, env: TraceEnv): TraceResult {
    this.unreadable.clear();
    let branches: State[] = [
      {
        dst: p.dst,
        dstPort: p.dstPort,
        mark: 0,
        marked: false,
        dnat: undefined,
        verdict: undefined,
        steps: [],
      },
    ];
    let phase = 0;
    const hook = (name: string): void => {
      for (const chain of this.byHook.get(name) ?? []) {
        const out: State[] = [];
        for (const st of branches) {
          if (st.verdict === 'DROP' || st.verdict === 'REJECT') {
            out.push(st);
            continue;
          }
          for (const b of this.run(chain, 0, st, p, env, phase, 0)) {
            if (b.end === 'accept' && b.st.verdict === undefined) b.st.verdict = 'ACCEPT';
            out.push(b.st);
          }
        }
        branches = out;
        phase++;
      }
    };
    if (env.source === 'node') {
      hook('output');
      hook('postrouting');
      const all = branches;
      branches = all.filter((b) => env.isLocal(b.dst));
      hook('input');
      branches = [...branches, ...all.filter((b) => !env.isLocal(b.dst))];
    } else {
      hook('prerouting');
      const all = branches;
      branches = all.filter((b) => env.isLocal(b.dst));
      hook('input');
      const local = branches;
      branches = all.filter((b) => !env.isLocal(b.dst));
      hook('forward');
      hook('postrouting');
      branches = [...local, ...branches];
    }
    const combined = combineBranches(
      branches.map((b) => ({
        ...(b.dnat !== undefined ? { endpoint: b.dnat } : {}),
        ...(b.verdict !== undefined ? { verdict: b.verdict } : {}),
        marked: b.marked,
      })),
    );
    return { ...combined, steps: mergeSteps(branches.map((b) => b.steps)), unreadable: [...this.unreadable] };
  }

  private step(st: State, phase: number, chain: string, rule: string): void {
    st.steps.push({ phase, step: { table: `${this.family} kube-proxy`, chain, rule } });
  }

  private elementStep(st: State, phase: number, map: string, key: string, value: string): void {
    this.step(
      st,
      phase,
      map,
      `add element ${this.family} kube-proxy ${map} { ${key}${value === '' ? '' : ` : ${value}`} }`,
    );
  }

  private run(
    chain: string,
    from: number,
    st: State,
    p: Packet,
    env: TraceEnv,
    phase: number,
    depth: number,
  ): { st: State; end: End }[] {
    const rules = this.rules(chain);
    if (!rules || depth > 64) return [{ st, end: 'return' }];
    const raw = this.model.chains.get(chain)!;
    const out: { st: State; end: End }[] = [];
    for (let i = from; i < rules.length; i++) {
      const r = rules[i]!;
      const text = `add rule ${this.family} kube-proxy ${chain} ${raw[i]!}`;
      if (r.unreadable !== undefined) {
        this.unreadable.add(text);
        continue;
      }
      const res = this.exec(chain, i, r.stmts, 0, st, p, env, phase, depth, text);
      if (res === 'next') continue;
      out.push(...res);
      return out;
    }
    out.push({ st, end: 'return' });
    return out;
  }

  /**
   * Runs the statements of rule `i` from `k`. 'next' when a test failed or a map had no element
   * (the chain goes on); otherwise the branches that left this chain, each continued to its end.
   */
  private exec(
    chain: string,
    i: number,
    stmts: readonly Stmt[],
    k: number,
    st: State,
    p: Packet,
    env: TraceEnv,
    phase: number,
    depth: number,
    text: string,
  ): 'next' | { st: State; end: End }[] {
    const ctx: Ctx = { p, env, st, model: this.model };
    let recorded = false;
    const record = (): void => {
      if (!recorded) this.step(st, phase, chain, text);
      recorded = true;
    };
    for (; k < stmts.length; k++) {
      const s = stmts[k]!;
      switch (s.kind) {
        case 'test':
          if (!s.test(ctx)) return 'next';
          continue;
        case 'mark':
          record();
          st.mark = (s.op === 'or' ? st.mark | s.value : st.mark ^ s.value) >>> 0;
          if (s.op === 'or') st.marked = true;
          continue;
        case 'masquerade':
          record();
          st.marked = true;
          return [{ st, end: 'nat' }];
        case 'verdict':
          record();
          return this.verdict(chain, i, s, st, p, env, phase, depth);
        case 'vmap': {
          const m = this.model.sets.get(s.map);
          const hits = s.key(ctx).flatMap((key) => {
            const v = m?.elements.get(key);
            return v === undefined ? [] : [{ key, v }];
          });
          if (hits.length === 0) return 'next';
          record();
          const out: { st: State; end: End }[] = [];
          hits.forEach(({ key, v }, n) => {
            const b = n === hits.length - 1 ? st : clone(st);
            this.elementStep(b, phase, s.map, key, v);
            const [verdict, target] = v.split(' ');
            const stmt =
              verdict === 'jump' || verdict === 'goto'
                ? ({ kind: 'verdict', verdict, chain: target! } as const)
                : ({ kind: 'verdict', verdict: verdict as 'drop' | 'reject' | 'accept' | 'return' } as const);
            out.push(...this.verdict(chain, i, stmt, b, p, env, phase, depth));
          });
          return out;
        }
        case 'dnat': {
          record();
          const targets: { key?: string; to: string }[] = [];
          if (s.literal !== undefined) targets.push({ to: s.literal });
          else {
            const m = this.model.sets.get(s.map!);
            for (const key of s.key!(ctx)) {
              const v = m?.elements.get(key);
              if (v !== undefined) targets.push({ key, to: v });
            }
          }
          // No element: the kernel drops a packet whose NAT map lookup fails.
          if (targets.length === 0) {
            st.verdict = 'DROP';
            return [{ st, end: 'drop' }];
          }
          return targets.map((t, n) => {
            const b = n === targets.length - 1 ? st : clone(st);
            if (t.key !== undefined) this.elementStep(b, phase, s.map!, t.key, t.to);
            const { ip, port } = splitTarget(t.to, b.dstPort);
            b.dst = ip;
            b.dstPort = port;
            b.dnat = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
            return { st: b, end: 'nat' as const };
          });
        }
      }
    }
    record();
    return 'next';
  }

  private verdict(
    chain: string,
    i: number,
    s: Extract<Stmt, { kind: 'verdict' }>,
    st: State,
    p: Packet,
    env: TraceEnv,
    phase: number,
    depth: number,
  ): { st: State; end: End }[] {
    switch (s.verdict) {
      case 'return':
        return [{ st, end: 'return' }];
      case 'accept':
        return [{ st, end: 'accept' }];
      case 'drop':
        st.verdict = 'DROP';
        return [{ st, end: 'drop' }];
      case 'reject':
        st.verdict = 'REJECT';
        return [{ st, end: 'reject' }];
      case 'goto':
        return this.run(s.chain, 0, st, p, env, phase, depth + 1);
      case 'jump': {
        const out: { st: State; end: End }[] = [];
        for (const b of this.run(s.chain, 0, st, p, env, phase, depth + 1)) {
          if (b.end !== 'return') out.push(b);
          else out.push(...this.run(chain, i + 1, b.st, p, env, phase, depth));
        }
        return out;
      }
    }
  }
}

/** "ip . port" (a map value), "ip:port" or "[ip6]:port" (a literal) -> address and port. */
function splitTarget(to: string, fallbackPort: number): { ip: string; port: number } {
  const dot = /^(\S+) \. (\d+)$/.exec(to);
  if (dot) return { ip: dot[1]!, port: Number(dot[2]) };
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(to) ?? /^([^:]+)(?::(\d+))?$/.exec(to);
  if (!m) return { ip: to, port: fallbackPort };
  return { ip: m[1]!, port: m[2] === undefined ? fallbackPort : Number(m[2]) };
}

function clone(st: State): State {
  return { ...st, steps: [...st.steps] };
}
