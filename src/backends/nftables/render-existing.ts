/**
 * What our table holds in the kernel right now, read back before a full sync, and which of its sets
 * that sync can keep. Pure: the proxier runs nft with {@link listScript} and hands the text here.
 *
 * Only the kernel-filled sets (ClientIP affinity: `flags dynamic`, filled by `update @set` from the
 * packet path) are worth keeping: every other set and map gets its elements from us and is rebuilt.
 * A kept set must have the same name, kind and definition as the one the layout wants, so keeping
 * it leaves the table exactly as a fresh load would, plus the clients the kernel remembered.
 */
import { TABLE_COMMENT, TABLE_NAME, type NftLayout, type NftSet } from './render-layout.js';

/**
 * The read-back, for `nft -t -f -`: terse (no elements), and only lists whose cost does not grow
 * with the elements (nft 1.0.6 fetches every element of the table for `list table`, even terse:
 * ~1 s at 10k services; these take milliseconds). `list sets` comes first and names our table, so
 * the whole script fails ("No such file or directory") when the table is missing. nft 1.0.6 has no
 * per-table form of `list maps` and `list chains`, and even `list sets table …` prints the sets of
 * every table of the family: the parser reads only our table's blocks. Read-only.
 */
export function listScript(family: 'ip' | 'ip6'): string {
  return `list sets table ${family} ${TABLE_NAME}\nlist maps ${family}\nlist chains ${family}\n`;
}

/** One named set or map as listed: its properties by first word ("type", "flags", "timeout", …). */
export interface ExistingSet {
  readonly name: string;
  readonly kind: 'set' | 'map';
  readonly props: ReadonlyMap<string, string>;
}

/** Our table as listed: the names of its chains and its sets/maps with their definitions. */
export interface ExistingTable {
  readonly family: 'ip' | 'ip6';
  readonly chains: readonly string[];
  readonly sets: readonly ExistingSet[];
}

/** Why a listing cannot be used for a keeping full sync (the caller then replaces the table whole). */
export type ParseResult =
  { readonly ok: true; readonly table: ExistingTable } | { readonly ok: false; readonly reason: string };

/** Names we can write back into a script unquoted (ours all are; anything else means "not ours"). */
const NAME = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const HEADER = /^\t([a-z]+(?: [a-z]+)?) (.+) \{$/;
const TABLE = /^table (\S+) (\S+) \{$/;

/**
 * Parses nft's listing of tables (the output of {@link listScript}, or of `nft -t list table`):
 * one or more `table <family> <name> { … }` blocks; only `<family> kube-proxy` blocks are read.
 * Refuses (ok: false) anything in our table it does not fully understand: a table comment other than
 * ours, table flags, object kinds we never create (flowtables, counters, quotas, ct objects, …),
 * names we could not write back, a malformed listing, or no block of our table at all.
 */
export function parseTableListing(text: string, family: 'ip' | 'ip6'): ParseResult {
  const lines = text.split('\n');
  const chains: string[] = [];
  const sets: ExistingSet[] = [];
  const seen = new Set<string>();
  let found = false;
  /** undefined: between tables; otherwise whether the open table block is ours. */
  let inTable: boolean | undefined;
  let open: { kind: string; name: string; props: Map<string, string> } | undefined;
  for (const line of lines) {
    if (inTable === undefined) {
      if (line.trim() === '') continue;
      const t = TABLE.exec(line);
      if (!t) return { ok: false, reason: `unexpected line outside a table ${JSON.stringify(line)}` };
      inTable = t[1] === family && t[2] === TABLE_NAME;
      found ||= inTable;
      continue;
    }
    if (line === '}') {
      if (open) return { ok: false, reason: `unterminated ${open.kind} ${open.name}` };
      inTable = undefined;
      continue;
    }
    if (!inTable) continue;
    if (open) {
      if (line === '\t}') {
        const key = `${open.kind === 'chain' ? 'chain' : 'set'}\0${open.name}`;
        if (seen.has(key)) return { ok: false, reason: `${open.kind} ${open.name} listed twice` };
        seen.add(key);
        if (open.kind === 'chain') chains.push(open.name);
        else sets.push({ name: open.name, kind: open.kind as 'set' | 'map', props: open.props });
        open = undefined;
        continue;
      }
      // Chain bodies are hooks and rules: only the names matter. Set bodies are "key value" lines.
      if (open.kind !== 'chain' && line.startsWith('\t\t') && !line.startsWith('\t\t\t')) {
        const body = line.slice(2);
        const sp = body.indexOf(' ');
        const key = sp < 0 ? body : body.slice(0, sp);
        if (open.props.has(key))
          return { ok: false, reason: `${open.kind} ${open.name}: property ${key} listed twice` };
        open.props.set(key, sp < 0 ? '' : body.slice(sp + 1));
      }
      continue;
    }
    if (line.trim() === '') continue;
    const h = HEADER.exec(line);
    if (h) {
      const [, kind, name] = h as unknown as [string, string, string];
      if (kind !== 'chain' && kind !== 'set' && kind !== 'map')
        return { ok: false, reason: `table holds a ${kind} (${name}), which we never create` };
      if (!NAME.test(name)) return { ok: false, reason: `unexpected ${kind} name ${JSON.stringify(name)}` };
      open = { kind, name, props: new Map() };
      continue;
    }
    // `list table` prints the comment; the per-kind lists do not.
    if (line === `\tcomment "${TABLE_COMMENT}"`) continue;
    return { ok: false, reason: `unexpected table line ${JSON.stringify(line)}` };
  }
  if (inTable !== undefined) return { ok: false, reason: 'listing does not end with the table' };
  if (!found) return { ok: false, reason: `no table ${family} ${TABLE_NAME} in the listing` };
  return { ok: true, table: { family, chains, sets } };
}

/** nft's time text ("5m", "3h", "6m40s", "1d2h", "300s", "250ms") in milliseconds; undefined if not one. */
export function parseNftDuration(text: string): number | undefined {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (!m || text === '') return undefined;
  const [d, h, mi, s, ms] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return (((d * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms;
}

/** Size nft gives a dynamic set created without one (listed as `size 65535`). */
const DEFAULT_DYNAMIC_SIZE = '65535';

/** A set definition in comparable form: property -> normalised value. */
function canonical(
  props: ReadonlyMap<string, string>,
  dynamicDefaultSize: boolean,
): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const [k, v] of props) {
    if (k === 'flags')
      out.set(
        k,
        v
          .split(',')
          .map((f) => f.trim())
          .sort()
          .join(','),
      );
    else if (k === 'timeout' || k === 'gc-interval') {
      const ms = parseNftDuration(v);
      if (ms === undefined) return undefined;
      out.set(k, String(ms));
    } else out.set(k, v);
  }
  if (dynamicDefaultSize && out.get('size') === DEFAULT_DYNAMIC_SIZE) out.delete('size');
  return out;
}

/** Properties of an `add set` spec ("type ipv4_addr ; flags dynamic,timeout ; timeout 300s ;"). */
function specProps(spec: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of spec.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const sp = p.indexOf(' ');
    m.set(sp < 0 ? p : p.slice(0, sp), sp < 0 ? '' : p.slice(sp + 1));
  }
  return m;
}

/** A set whose elements the kernel adds (ClientIP affinity); the layout never lists elements for it. */
export function isKernelFilled(s: NftSet): boolean {
  if (s.kind !== 'set') return false;
  const flags = specProps(s.spec).get('flags') ?? '';
  return flags.split(',').some((f) => f.trim() === 'dynamic');
}

/** True when the listed set is exactly what `add set` of `want` creates (same kind and definition). */
export function sameDefinition(have: ExistingSet, want: NftSet): boolean {
  if (have.kind !== want.kind) return false;
  const w = canonical(specProps(want.spec), false);
  const wantsSize = w?.has('size') ?? false;
  const h = canonical(have.props, !wantsSize);
  if (!w || !h || w.size !== h.size) return false;
  for (const [k, v] of w) if (h.get(k) !== v) return false;
  return true;
}

/**
 * The sets of `existing` a full sync to `layout` keeps with their elements: kernel-filled sets the
 * layout still wants, with the same definition. Everything else in the table is deleted and
 * re-created.
 */
export function keptSets(existing: ExistingTable, layout: NftLayout): Set<string> {
  const keep = new Set<string>();
  if (existing.family !== layout.family) return keep;
  for (const have of existing.sets) {
    const want = layout.sets.get(have.name);
    if (want && isKernelFilled(want) && sameDefinition(have, want)) keep.add(have.name);
  }
  return keep;
}
