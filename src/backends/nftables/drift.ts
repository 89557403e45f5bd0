/**
 * nftables drift check (see backends/drift.ts): what the proxier last wrote (chains with their
 * hooks and rule counts, sets and maps, and the elements it owns) against one read-back of our
 * table (`list table`, elements included). Pure: the proxier runs {@link driftReadScript} and hands the text here;
 * drift-gate.ts decides whether a read is needed at all.
 *
 * Element checks compare counts, not texts: nft prints elements in its own spelling (IPv6
 * compression, protocol names), and a count cannot disagree with it. Kernel-filled sets (ClientIP
 * affinity) and interval sets (nft may merge their ranges) are left out of the count check.
 */
import { listFindings, type DriftFinding } from '../drift.js';
import { TABLE_NAME, type NftChain, type NftSet } from './render-layout.js';

/** What the proxier last wrote to its table (its own bookkeeping, not re-rendered). */
export interface NftExpected {
  readonly family: 'ip' | 'ip6';
  readonly chains: ReadonlyMap<string, NftChain>;
  readonly sets: ReadonlyMap<string, NftSet>;
  /** Set/map name -> element key -> value: only the sets whose elements we own. */
  readonly elems: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** Sets whose element count is checked: owned by us, not dynamic, not interval. */
export function countedSets(e: NftExpected): string[] {
  const out: string[] = [];
  for (const [name, s] of e.sets) {
    if (!e.elems.has(name)) continue;
    if (/\bflags\b[^;]*\b(dynamic|interval)\b/.test(s.spec)) continue;
    out.push(name);
  }
  return out.sort();
}

/**
 * The read-only script for `nft -f -` (not terse: the elements are needed): our table alone, with
 * its chains (hooks and rules), sets and maps (elements). One process and one kernel dump: nft 1.0.6
 * fetches the whole table for `list chain`, `list sets` or `list maps` as well, so the earlier form
 * (family-wide lists plus one `list chain` per base chain) dumped it nine times (bench/drift). It
 * fails as a whole ("No such file or directory") when our table is missing.
 */
export function driftReadScript(family: 'ip' | 'ip6'): string {
  return `list table ${family} ${TABLE_NAME}\n`;
}

const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** What the read-back says about our table. */
export interface NftReadBack {
  /** Chain name -> its hook word ("prerouting") or "" for a regular chain. */
  readonly chains: Map<string, string>;
  /** Base chain name -> its number of rules (from the `list chain` blocks). */
  readonly baseRules: Map<string, number>;
  /** Set/map name -> number of elements. */
  readonly elements: Map<string, number>;
}

const TABLE = /^table (\S+) (\S+) \{$/;
const BLOCK = /^\t(chain|set|map) (\S+) \{$/;

/**
 * Parses the output of {@link driftReadScript}: only blocks of our table are read (another table's
 * blocks, should a listing hold any, are ignored). A chain listed twice is merged. Rules are counted
 * in every chain; {@link compareNft} looks at the base chains' counts only.
 */
export function parseDriftRead(text: string, family: 'ip' | 'ip6'): NftReadBack {
  const r: NftReadBack = { chains: new Map(), baseRules: new Map(), elements: new Map() };
  let ours = false;
  let block:
    | { kind: string; name: string; rules: number; inElements: boolean; elements: number; hook: string }
    | undefined;
  for (const line of text.split('\n')) {
    const t = TABLE.exec(line);
    if (t) {
      ours = t[1] === family && t[2] === TABLE_NAME;
      continue;
    }
    if (!ours) continue;
    if (line === '}') {
      ours = false;
      continue;
    }
    const b = BLOCK.exec(line);
    if (b) {
      block = { kind: b[1]!, name: b[2]!, rules: 0, inElements: false, elements: 0, hook: '' };
      continue;
    }
    if (!block) continue;
    if (line === '\t}') {
      if (block.kind === 'chain') {
        if (!r.chains.has(block.name) || block.hook !== '') r.chains.set(block.name, block.hook);
        if (block.rules > 0 || r.baseRules.has(block.name) || block.hook !== '')
          r.baseRules.set(block.name, Math.max(block.rules, r.baseRules.get(block.name) ?? 0));
      } else r.elements.set(block.name, (r.elements.get(block.name) ?? 0) + block.elements);
      block = undefined;
      continue;
    }
    const body = line.trim();
    if (block.kind === 'chain') {
      const h = /^type \S+ hook (\S+) /.exec(body);
      if (h) block.hook = h[1]!;
      else if (body !== '') block.rules++;
      continue;
    }
    // set / map: "elements = { a, b,\n\t\t\t     c }" possibly over several lines.
    let rest = body;
    if (!block.inElements) {
      const i = rest.indexOf('elements = {');
      if (i < 0) continue;
      block.inElements = true;
      rest = rest.slice(i + 'elements = {'.length);
    }
    const end = rest.endsWith('}');
    if (end) rest = rest.slice(0, -1);
    block.elements += rest.split(',').filter((x) => x.trim() !== '').length;
    if (end) block.inElements = false;
  }
  return r;
}

/** Every difference between `e` and the read-back `r` (undefined: our table is missing). */
export function compareNft(e: NftExpected, r: NftReadBack | undefined): DriftFinding[] {
  if (!r || r.chains.size === 0)
    return [{ object: 'table', message: `table ${e.family} ${TABLE_NAME} missing` }];
  const out: DriftFinding[] = [];
  const missing = [...e.chains.keys()].filter((c) => !r.chains.has(c)).sort();
  out.push(...listFindings('chain', missing, (c) => `chain ${c} missing`, 'chains missing'));
  for (const c of [...e.chains.values()].sort(byName)) {
    if (c.hook === undefined || !r.chains.has(c.name)) continue;
    const want = /\bhook (\S+)/.exec(c.hook)?.[1] ?? '';
    const have = r.chains.get(c.name) ?? '';
    if (have !== want)
      out.push({
        object: 'chain',
        message:
          have === ''
            ? `chain ${c.name} lost its ${want} hook`
            : `chain ${c.name} hooks ${have}, not ${want}`,
      });
    const rules = r.baseRules.get(c.name) ?? 0;
    if (rules < c.rules.length)
      out.push({
        object: 'rule',
        message: `chain ${c.name} lost ${c.rules.length - rules} of its ${c.rules.length} rules`,
      });
    else if (rules > c.rules.length)
      out.push({
        object: 'rule',
        message: `chain ${c.name} has ${rules - c.rules.length} rules we did not write`,
      });
  }
  for (const name of countedSets(e)) {
    const kind = e.sets.get(name)!.kind;
    const want = e.elems.get(name)?.size ?? 0;
    const have = r.elements.get(name);
    if (have === undefined) {
      out.push({ object: kind, message: `${kind} ${name} missing` });
      continue;
    }
    if (have < want) out.push({ object: kind, message: `${kind} ${name} lost ${want - have} elements` });
    else if (have > want)
      out.push({ object: kind, message: `${kind} ${name} has ${have - want} elements we did not write` });
  }
  return out;
}
