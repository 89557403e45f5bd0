/**
 * The nftables proxier's record of what the kernel holds, as a pure reference-counting model: the
 * base, each service port's fragment, and the objects they add up to. A partial sync applies the
 * changed fragments (remove old, add new) and diffs only the objects that changed (touchedLayouts);
 * a full sync compares the whole programmed layout. No I/O: the proxier executes the scripts.
 */
import type { ServicePortState } from '../../proxy/types.js';
import type { NftChain, NftLayout, NftSet, ServiceFragment } from './render-layout.js';

/**
 * What the kernel holds, as last programmed: the base, each service port's fragment, and the
 * objects they add up to. An object contributed by several fragments (a class chain, a hairpin pair,
 * a cluster IP with several ports) has its extra references counted in `refs`; most have none, so
 * the common case allocates nothing per element.
 */
export interface Programmed {
  readonly baseKey: string;
  readonly frags: Map<string, { readonly sp: ServicePortState; readonly frag: ServiceFragment }>;
  readonly chains: Map<string, NftChain>;
  readonly sets: Map<string, NftSet>;
  readonly elems: Map<string, Map<string, string>>;
  /** "c\0name", "s\0name" or "e\0set\0key" -> reference count, only when above 1. */
  readonly refs: Map<string, number>;
}

/** Records the first "before" value of every object a sync touches, to diff only those. */
export class Touched {
  readonly chains = new Map<string, NftChain | undefined>();
  readonly sets = new Map<string, NftSet | undefined>();
  readonly elems = new Map<string, Map<string, string | undefined>>();
}

function change<T>(
  table: Map<string, T>,
  refs: Map<string, number>,
  refPrefix: string,
  name: string,
  value: T,
  delta: 1 | -1,
  seen: Map<string, T | undefined> | undefined,
): void {
  const cur = table.get(name);
  if (seen && !seen.has(name)) seen.set(name, cur);
  if (delta === 1) {
    if (cur !== undefined) {
      const k = refPrefix + name;
      refs.set(k, (refs.get(k) ?? 1) + 1);
    }
    table.set(name, value);
    return;
  }
  if (cur === undefined) return;
  const k = refPrefix + name;
  const c = refs.get(k);
  if (c === undefined) table.delete(name);
  else if (c <= 2) refs.delete(k);
  else refs.set(k, c - 1);
}

const ELEM_PREFIXES = new Map<string, string>();
function elemPrefix(set: string): string {
  let p = ELEM_PREFIXES.get(set);
  if (p === undefined) ELEM_PREFIXES.set(set, (p = `e\0${set}\0`));
  return p;
}

/** Adds (delta 1) or removes (delta -1) one fragment's objects, counting shared ones; records what it touches in `t`. */
export function apply(prog: Programmed, frag: ServiceFragment, delta: 1 | -1, t: Touched | undefined): void {
  for (const c of frag.sharedChains) change(prog.chains, prog.refs, 'c\0', c.name, c, delta, t?.chains);
  for (const c of frag.chains) change(prog.chains, prog.refs, 'c\0', c.name, c, delta, t?.chains);
  for (const s of frag.sets) change(prog.sets, prog.refs, 's\0', s.name, s, delta, t?.sets);
  const el = frag.elements;
  for (let i = 0; i < el.length; i += 3) {
    const set = el[i]!;
    const key = el[i + 1]!;
    const value = el[i + 2]!;
    let m = prog.elems.get(set);
    if (!m) prog.elems.set(set, (m = new Map<string, string>()));
    let seen: Map<string, string | undefined> | undefined;
    if (t) {
      seen = t.elems.get(set);
      if (!seen) t.elems.set(set, (seen = new Map<string, string | undefined>()));
    }
    change(m, prog.refs, elemPrefix(set), key, value, delta, seen);
  }
}

/** The before/after layouts of only the touched objects: diffScript of these is the transaction. */
export function touchedLayouts(family: 'ip' | 'ip6', prog: Programmed, t: Touched): [NftLayout, NftLayout] {
  const mk = (): {
    chains: Map<string, NftChain>;
    sets: Map<string, NftSet>;
    elements: Map<string, Map<string, string>>;
  } => ({
    chains: new Map(),
    sets: new Map(),
    elements: new Map(),
  });
  const before = mk();
  const after = mk();
  for (const [name, was] of t.chains) {
    if (was) before.chains.set(name, was);
    const now = prog.chains.get(name);
    if (now) after.chains.set(name, now);
  }
  for (const [name, was] of t.sets) {
    if (was) before.sets.set(name, was);
    const now = prog.sets.get(name);
    if (now) after.sets.set(name, now);
  }
  for (const [set, keys] of t.elems) {
    const b = new Map<string, string>();
    const a = new Map<string, string>();
    const cur = prog.elems.get(set);
    for (const [key, was] of keys) {
      if (was !== undefined) b.set(key, was);
      const now = cur?.get(key);
      if (now !== undefined) a.set(key, now);
    }
    before.elements.set(set, b);
    after.elements.set(set, a);
  }
  return [
    { family, ...before, skipped: [] },
    { family, ...after, skipped: [] },
  ];
}

/** The whole table from the base and the programmed objects (same order as buildLayout gives); no copies. */
export function programmedLayout(base: NftLayout, prog: Programmed): NftLayout {
  const chains = new Map(base.chains);
  for (const [name, c] of prog.chains) chains.set(name, c);
  const sets = new Map(base.sets);
  for (const [name, st] of prog.sets) sets.set(name, st);
  const elements = new Map<string, ReadonlyMap<string, string>>();
  // Fragments never add to the sets the base fills (nodeport-ips, pod-cidrs).
  for (const [set, m] of base.elements) elements.set(set, m.size > 0 ? m : (prog.elems.get(set) ?? m));
  return { family: base.family, chains, sets, elements, skipped: [] };
}
