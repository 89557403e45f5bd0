/**
 * nft script text for a layout: the full form (replace the whole table atomically, keeping the
 * affinity sets' remembered clients when the table could be read back) and the incremental form
 * (only what changed since the layout the kernel last accepted). Pure.
 */
import { TABLE_COMMENT, TABLE_NAME, type NftChain, type NftLayout, type NftSet } from './render-layout.js';
import { keptSets, type ExistingTable } from './render-existing.js';

/** Elements per `add element` statement: keeps statements short without one statement per element. */
export const ELEMENTS_PER_STATEMENT = 64;

function elementStatements(
  verb: 'add' | 'delete',
  head: string,
  items: readonly string[],
  out: string[],
): void {
  for (let i = 0; i < items.length; i += ELEMENTS_PER_STATEMENT)
    out.push(`${verb} element ${head} { ${items.slice(i, i + ELEMENTS_PER_STATEMENT).join(', ')} }`);
}

function item(key: string, value: string): string {
  return value === '' ? key : `${key} : ${value}`;
}

/**
 * `add element` statements for a whole set, straight from its map: no list of every item first (at
 * 50,000 services that list, its [key, value] pairs and their item strings were ~100 MB of garbage
 * at the peak of a full sync).
 */
function mapStatements(head: string, elems: ReadonlyMap<string, string>, out: string[]): void {
  const batch: string[] = [];
  for (const [k, v] of elems) {
    batch.push(item(k, v));
    if (batch.length === ELEMENTS_PER_STATEMENT) {
      out.push(`add element ${head} { ${batch.join(', ')} }`);
      batch.length = 0;
    }
  }
  if (batch.length > 0) out.push(`add element ${head} { ${batch.join(', ')} }`);
}

function chainDecl(head: string, c: NftChain): string {
  return c.hook === undefined ? `add chain ${head} ${c.name}` : `add chain ${head} ${c.name} { ${c.hook} }`;
}

function setDecl(head: string, s: NftSet): string {
  return `add ${s.kind} ${head} ${s.name} { ${s.spec} }`;
}

/**
 * The whole table in one transaction. Atomic: packets see the old table or the new one. Other
 * tables are never named.
 *
 * Without `existing` (the table is missing or could not be read back): `add table` (so the delete
 * cannot fail on a missing table), `delete table`, then everything re-created.
 *
 * With `existing` (our table as listed just before): every existing chain is flushed (no rule then
 * references a chain or a set), every existing set and map is deleted except the kept ones (their
 * verdict elements were the only other references to chains), every existing chain is deleted, and
 * the layout is created as in a fresh table. The kept sets are the kernel-filled affinity sets the
 * layout still wants with the same definition ({@link keptSets}): their `add set` is a no-op and
 * their elements (the clients the kernel remembered) stay. The result is the same table as a fresh
 * load, plus those elements.
 */
export function fullScript(layout: NftLayout, existing?: ExistingTable): string {
  return replaceScript(layout, existing).script;
}

/** {@link fullScript}, and the names of the sets it keeps. */
export function replaceScript(
  layout: NftLayout,
  existing?: ExistingTable,
): { script: string; kept: readonly string[] } {
  const head = `${layout.family} ${TABLE_NAME}`;
  const out: string[] = [`add table ${head} { comment "${TABLE_COMMENT}" ; }`];
  let kept: readonly string[] = [];
  if (!existing) out.push(`delete table ${head}`, `add table ${head} { comment "${TABLE_COMMENT}" ; }`);
  else {
    if (existing.family !== layout.family) throw new RangeError('nftables full script: families differ');
    const keep = keptSets(existing, layout);
    kept = [...keep];
    for (const c of existing.chains) out.push(`flush chain ${head} ${c}`);
    for (const s of existing.sets) if (!keep.has(s.name)) out.push(`delete ${s.kind} ${head} ${s.name}`);
    for (const c of existing.chains) out.push(`delete chain ${head} ${c}`);
  }
  appendBody(layout, head, out);
  return { script: out.join('\n') + '\n', kept };
}

/** The table as it would be created in an empty namespace (what `render` prints). */
export function createScript(layout: NftLayout): string {
  const head = `${layout.family} ${TABLE_NAME}`;
  const out = [`add table ${head} { comment "${TABLE_COMMENT}" ; }`];
  appendBody(layout, head, out);
  return out.join('\n') + '\n';
}

function appendBody(layout: NftLayout, head: string, out: string[]): void {
  for (const c of layout.chains.values()) out.push(chainDecl(head, c));
  for (const s of layout.sets.values()) out.push(setDecl(head, s));
  for (const c of layout.chains.values())
    for (const r of c.rules) out.push(`add rule ${head} ${c.name} ${r}`);
  for (const [set, elems] of layout.elements) {
    if (elems.size > 0) mapStatements(`${head} ${set}`, elems, out);
  }
}

/** Counts of what an incremental script changes (for logs and tests). */
export interface DiffStats {
  chainsAdded: number;
  chainsRewritten: number;
  chainsDeleted: number;
  setsAdded: number;
  setsDeleted: number;
  elementsAdded: number;
  elementsDeleted: number;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The transaction that turns `prev` (what the kernel holds, as last programmed) into `next`, or ''
 * when nothing changed. Order matters to the kernel: new chains first (elements and rules may
 * name them); flush changed and removed chains before deleting the sets their rules reference;
 * element deletes before the deletion of the chains those elements jump to.
 */
export function diffScript(prev: NftLayout, next: NftLayout): { script: string; stats: DiffStats } {
  if (prev.family !== next.family) throw new RangeError('nftables diff: families differ');
  const head = `${next.family} ${TABLE_NAME}`;
  const stats: DiffStats = {
    chainsAdded: 0,
    chainsRewritten: 0,
    chainsDeleted: 0,
    setsAdded: 0,
    setsDeleted: 0,
    elementsAdded: 0,
    elementsDeleted: 0,
  };

  const changedSets = new Set<string>();
  const removedSets: NftSet[] = [];
  const addedSets: NftSet[] = [];
  for (const [name, s] of prev.sets) {
    const n = next.sets.get(name);
    if (!n) removedSets.push(s);
    else if (n.kind !== s.kind || n.spec !== s.spec) {
      changedSets.add(name);
      removedSets.push(s);
      addedSets.push(n);
    }
  }
  for (const [name, s] of next.sets) if (!prev.sets.has(name)) addedSets.push(s);

  const refersToChangedSet = (rules: readonly string[]) =>
    changedSets.size > 0 &&
    rules.some((r) => [...changedSets].some((s) => r.includes(`@${s} `) || r.endsWith(`@${s}`)));

  const newChains: NftChain[] = [];
  const rewritten: NftChain[] = [];
  const removedChains: string[] = [];
  for (const [name, c] of next.chains) {
    const p = prev.chains.get(name);
    if (!p) newChains.push(c);
    else if (!sameRules(p.rules, c.rules) || refersToChangedSet(p.rules)) rewritten.push(c);
  }
  for (const name of prev.chains.keys()) if (!next.chains.has(name)) removedChains.push(name);

  const out: string[] = [];
  for (const c of newChains) out.push(chainDecl(head, c));
  for (const c of rewritten) out.push(`flush chain ${head} ${c.name}`);
  for (const name of removedChains) out.push(`flush chain ${head} ${name}`);
  for (const s of removedSets) out.push(`delete ${s.kind} ${head} ${s.name}`);
  for (const s of addedSets) out.push(setDecl(head, s));

  for (const [set, elems] of next.elements) {
    const before = changedSets.has(set) ? undefined : prev.elements.get(set);
    const del: string[] = [];
    const add: string[] = [];
    if (before) {
      for (const [k, v] of before) {
        const nv = elems.get(k);
        if (nv === undefined || nv !== v) del.push(k);
      }
    }
    for (const [k, v] of elems) if (before?.get(k) !== v) add.push(item(k, v));
    elementStatements('delete', `${head} ${set}`, del, out);
    elementStatements('add', `${head} ${set}`, add, out);
    stats.elementsDeleted += del.length;
    stats.elementsAdded += add.length;
  }
  for (const c of [...rewritten, ...newChains])
    for (const r of c.rules) out.push(`add rule ${head} ${c.name} ${r}`);
  for (const name of removedChains) out.push(`delete chain ${head} ${name}`);

  stats.chainsAdded = newChains.length;
  stats.chainsRewritten = rewritten.length;
  stats.chainsDeleted = removedChains.length;
  stats.setsAdded = addedSets.length;
  stats.setsDeleted = removedSets.length;
  return { script: out.length ? out.join('\n') + '\n' : '', stats };
}
