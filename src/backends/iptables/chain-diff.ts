/**
 * Pure helpers the iptables executor uses to turn the renderer's documents into the smallest
 * equivalent `iptables-restore --noflush` input, given what the kernel already holds.
 *
 * Why: with iptables-nft (1.8.9), every `:CHAIN` line naming a chain that already exists costs a
 * userspace flush that grows with the table; an upstream-shaped full sync of 10k services × 5
 * endpoints (60k chains) did not finish in 120 s here (see bench/iptables and the lab README),
 * while declaring only the chains whose rules changed takes as long as a partial sync. Chains are
 * compared by their exact rule text, so a chain is skipped only when the kernel holds precisely the
 * rules we would write.
 */
import { isServiceChainName } from './hash.js';

/** One table section of a restore document split by chain. */
export interface SplitTable {
  /** Chains in declaration order. */
  readonly chains: readonly string[];
  /**
   * Per chain, its rule lines (`-A CHAIN ...`, document order) joined by '\n' into one flat string
   * (chainContent), '' for a chain without rules. One string per chain, not an array of rule strings:
   * at 10,000 Services that is 63,000 strings instead of 180,000 (see docs/benchmarks.md, memory).
   */
  readonly rules: ReadonlyMap<string, string>;
  /** `-X CHAIN` lines, in order. */
  readonly deletes: readonly string[];
  /**
   * Declared chains whose rules were left out because the kernel already holds them as recorded
   * (the renderer's settledChains): `rules` has no entry for them; never write them.
   */
  readonly settled: ReadonlySet<string>;
}

/**
 * Splits one `*table ... COMMIT` section (as the renderer writes it) by chain. Throws RangeError on
 * a line it does not understand (the renderer only writes `:`, `-A`, `-X`, `*` and COMMIT lines).
 */
export function splitTable(section: string): SplitTable {
  return splitLines([section.split('\n')]);
}

/**
 * splitTable over the lines themselves (no '\n' at their ends), given as several arrays read in
 * order: the renderer's chain and rule lines, without joining them into one document first;
 * `contents` adds chains whose rules are already joined (the renderer's serviceChainContents).
 */
export function splitLines(
  groups: readonly (readonly string[])[],
  contents?: ReadonlyMap<string, string>,
  settled: ReadonlySet<string> = new Set(),
): SplitTable {
  const chains: string[] = [];
  // Only chains with rules get a list (with the renderer's grouping, a few dispatch chains).
  const lists = new Map<string, string[]>();
  const deletes: string[] = [];
  for (const lines of groups) {
    for (const line of lines) {
      if (line === '' || line.startsWith('*') || line === 'COMMIT' || line.startsWith('#')) continue;
      if (line.startsWith(':')) {
        const sp = line.indexOf(' ');
        chains.push(detach(sp < 0 ? line.slice(1) : line.slice(1, sp)));
      } else if (line.startsWith('-A ')) {
        const sp = line.indexOf(' ', 3);
        const name = sp < 0 ? line.slice(3) : line.slice(3, sp);
        let list = lists.get(name);
        if (!list) lists.set(detach(name), (list = []));
        list.push(line);
      } else if (line.startsWith('-X ')) {
        deletes.push(detach(line.slice(3).trim()));
      } else {
        throw new RangeError(`restore document: unexpected line ${JSON.stringify(line.slice(0, 80))}`);
      }
    }
  }
  const rules = new Map<string, string>();
  for (const name of chains) if (!settled.has(name)) rules.set(name, '');
  for (const [name, list] of lists) rules.set(name, chainContent(list));
  // Chains whose rules come already joined (the renderer's groupServiceChains); declared above.
  if (contents) for (const [name, content] of contents) rules.set(name, content);
  return { chains, rules, deletes, settled };
}

/**
 * What the kernel holds for one chain, as far as the proxier knows: a record of the exact rule text
 * written (recordOf). Compare records, never a record with a content.
 */
export type KnownChains = Map<string, string>;

/**
 * The content key of a chain: its rules joined, as one flat string of its own (never a slice or a
 * rope of a bigger text, which it would keep alive for as long as the proxier keeps the record).
 */
export function chainContent(rules: readonly string[]): string {
  if (rules.length === 0) return '';
  return rules.length === 1 ? detach(rules[0]!) : rules.join('\n');
}

/**
 * The record (KnownChains) of `chain` written with `content`. Service chains (KUBE-SVC-, KUBE-SEP-,
 * ...: hash.ts isServiceChainName) are only ever compared whole, so their record is the digest of
 * their rule lines (ChainDigest, ~40 bytes): at 50,000 Services the contents themselves were ~120 MB
 * kept between syncs. Other chains (the dispatch chains partial syncs merge into and edit in place)
 * keep their content.
 */
export function recordOf(chain: string, content: string): string {
  if (!isServiceChainName(chain)) return content;
  const d = new ChainDigest();
  for (let from = 0; from < content.length;) {
    let nl = content.indexOf('\n', from);
    if (nl < 0) nl = content.length;
    d.add(content, from, nl);
    from = nl + 1;
  }
  return d.value();
}

/** How many rules a record (recordOf) counts. */
export function recordRules(chain: string, record: string): number {
  return isServiceChainName(chain) ? digestRules(record) : countRules(record);
}

/** The rule lines of a chain content ('' has none). */
export function contentRules(content: string): string[] {
  return content === '' ? [] : content.split('\n');
}

/** How many rules a chain content holds, without splitting it. */
export function countRules(content: string): number {
  if (content === '') return 0;
  let n = 1;
  for (let i = content.indexOf('\n'); i >= 0; i = content.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The `-A` lines per chain of one table's `iptables-save` output, in order, as one content string per
 * chain ('' for chains without rules): SaveReader keeping every chain's text, hashing none.
 * iptables-save prints rules in its own normal form, not as written: compare them with ours through
 * save-normalize.ts, or only by count.
 */
export function parseSave(saveText: string): Map<string, string> {
  const reader = new SaveReader('all', () => false);
  reader.push(saveText);
  return reader.end().texts;
}

/**
 * The same characters without a reference to the string they were cut from (see SaveReader): a flat
 * copy of their own. (`' ' + s` sliced again, the old way, is itself a slice of a one-character-longer
 * copy: 80 bytes for a 25-character chain name against 48, bench/memory/strings.ts.) JSON's round
 * trip copies any string exactly.
 */
export function detach(s: string): string {
  // V8 makes no slices shorter than 13 characters: those are copies already.
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}

/**
 * Keeps only the `known` entries the kernel confirms: the chain exists in `saved` (SavedTable.chains:
 * digests) with the same
 * number of rules we wrote. Anything else (flushed tables, a chain edited by hand, a deleted chain)
 * is forgotten, so the next restore rewrites it. Returns how many entries were dropped.
 */
export function reconcileKnown(known: KnownChains, saved: ReadonlyMap<string, string>): number {
  let dropped = 0;
  for (const [chain, record] of known) {
    const have = saved.get(chain);
    if (have === undefined || digestRules(have) !== recordRules(chain, record)) {
      known.delete(chain);
      dropped++;
    }
  }
  return dropped;
}

/** The comment of a jump's argv (the element after `--comment`), or ''. */
export function commentOf(args: readonly string[]): string {
  const i = args.indexOf('--comment');
  return i >= 0 ? (args[i + 1] ?? '') : '';
}

/**
 * Whether `content` (one chain's `-A` lines, as parseSave gives them per chain) holds the jump: a rule
 * that targets `target` and, when given, carries `comment`. iptables-save reorders matches, so the
 * check looks at the parts that identify kube-proxy's jumps rather than the whole text. Taking the
 * parsed chain rather than the save text matters at scale: a nat save at 10,000 services is ~18 MB,
 * and splitting it once per jump cost more than the save itself.
 */
export function hasJump(content: string | undefined, target: string, comment: string): boolean {
  if (!content) return false;
  for (const line of content.split('\n')) {
    if (!line.endsWith(`-j ${target}`)) continue;
    if (comment === '' || line.includes(`--comment "${comment}"`) || line.includes(`--comment ${comment} `))
      return true;
  }
  return false;
}

/**
 * A chain's rule lines folded into a short record: `"<rules> <lane1> <lane2>"`, two independent
 * 32-bit multiplicative hashes (cyrb53's lanes) over every line and its '\n'. A full sync keeps the
 * saved chains in this form instead of the save text (at 50,000 Services the nat save is ~90 MB and
 * would sit beside the whole render): adoption compares our rules' predicted save lines with it
 * (digestLines), and the record check reads its rule count (digestRules). Two different chains
 * match only by a 64-bit collision of both lanes with the same rule count.
 */
export class ChainDigest {
  private rules = 0;
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;

  /**
   * `countOnly`: count the lines, hash nothing; the value (`"<rules> -"`) then matches no digest.
   * For saved chains the proxier has a record of: only their rule count is compared (reconcileKnown).
   */
  constructor(private readonly countOnly = false) {}

  /** Continues `value` (a digest of the first lines of a chain) with more lines. */
  static resume(value: string): ChainDigest {
    const [n, a, b] = value.split(' ');
    const d = new ChainDigest(a === '-');
    d.rules = Number(n);
    if (a !== '-') {
      d.h1 = parseInt(a!, 36) | 0;
      d.h2 = parseInt(b!, 36) | 0;
    }
    return d;
  }

  /** Folds in one line (without its '\n'), or `line.slice(from, to)` without copying it. */
  add(line: string, from = 0, to = line.length): void {
    if (this.countOnly) {
      this.rules++;
      return;
    }
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = from; i < to; i++) {
      const c = line.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    this.h1 = Math.imul(h1 ^ 10, 2654435761);
    this.h2 = Math.imul(h2 ^ 10, 1597334677);
    this.rules++;
  }

  /**
   * One flat string (`join`: a template would make a rope of five strings, ~180 bytes against 40,
   * and the record keeps one per service chain: 300,000 at 50,000 Services).
   */
  value(): string {
    if (this.countOnly) return [this.rules, '-'].join(' ');
    return [this.rules, (this.h1 >>> 0).toString(36), (this.h2 >>> 0).toString(36)].join(' ');
  }
}

/** The digest of a chain without rules. */
export const EMPTY_DIGEST = new ChainDigest().value();

/** The digest of a chain holding `lines` (in order). */
export function digestLines(lines: Iterable<string>): string {
  const d = new ChainDigest();
  for (const l of lines) d.add(l);
  return d.value();
}

/** How many rules a digest (ChainDigest) counts. */
export function digestRules(digest: string): number {
  return parseInt(digest, 10);
}

/**
 * Cuts a text that arrives in chunks of any size into lines: `onLine(text, from, to)` for each line
 * (`text.slice(from, to)`, without its '\n'), in order, without copying lines out of a chunk.
 */
export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (text: string, from: number, to: number) => void) {}

  push(chunk: string): void {
    const text = this.rest === '' ? chunk : this.rest + chunk;
    let pos = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', pos)) {
      this.onLine(text, pos, nl);
      pos = nl + 1;
    }
    this.rest = detach(text.slice(pos));
  }

  /** The last line, when the text does not end with '\n'. */
  end(): void {
    if (this.rest !== '') this.onLine(this.rest, 0, this.rest.length);
    this.rest = '';
  }
}

/** One table's iptables-save, as a full sync keeps it (SaveReader). */
export interface SavedTable {
  /** Every chain the save declares or has rules for -> the digest of its `-A` lines (ChainDigest). */
  readonly chains: Map<string, string>;
  /** The rule text (one content string, as parseSave gives it) of the chains asked for that exist. */
  readonly texts: Map<string, string>;
}

/**
 * Reads an iptables-save text as it arrives, in chunks of any size, into a SavedTable: the chains'
 * digests, and the text of a few chains (`keep`: the built-in chains holding our jumps, the canary).
 * Nothing else of the text is kept, so the save is never held whole (iptablesSave's `onChunk`).
 */
export class SaveReader {
  private readonly chains = new Map<string, string>();
  private readonly kept = new Map<string, string[]>();
  private readonly lines = new LineSplitter((text, from, to) => {
    this.line(text, from, to);
  });
  private cur: string | undefined;
  private digest: ChainDigest | undefined;

  /**
   * `keep`: the chains whose text is kept ('all': every chain, parseSave). `hashes`: whether a chain's lines are hashed (false: only
   * counted, ChainDigest's countOnly); a later full sync hashes only the chains it has no record of,
   * the ones it may adopt (at 10,000 Services the nat save is ~18 M characters a full sync).
   */
  constructor(
    private readonly keep: ReadonlySet<string> | 'all' = new Set(),
    private readonly hashes: (chain: string) => boolean = () => true,
  ) {}

  /** Takes the next chunk of the text. */
  push(chunk: string): void {
    this.lines.push(chunk);
  }

  /** The table, once the whole text was pushed. */
  end(): SavedTable {
    this.lines.end();
    this.flush();
    const texts = new Map<string, string>();
    for (const [c, lines] of this.kept) texts.set(c, chainContent(lines));
    return { chains: this.chains, texts };
  }

  private line(text: string, from: number, to: number): void {
    if (text.startsWith(':', from)) {
      this.flush();
      const sp = text.indexOf(' ', from);
      this.declare(detach(text.slice(from + 1, sp < 0 || sp > to ? to : sp)));
    } else if (text.startsWith('-A ', from)) {
      const sp = text.indexOf(' ', from + 3);
      const end = sp < 0 || sp > to ? to : sp;
      if (
        this.cur === undefined ||
        this.cur.length !== end - from - 3 ||
        !text.startsWith(this.cur, from + 3)
      ) {
        this.flush();
        // A declared chain's name is a copy already (the map's key); only a new one is copied.
        const slice = text.slice(from + 3, end);
        const name = this.chains.has(slice) ? slice : detach(slice);
        this.declare(name);
        this.cur = name;
        // Rules of one chain split by another chain's (not seen from iptables-save): continued.
        const before = this.chains.get(name)!;
        this.digest =
          before === EMPTY_DIGEST ? new ChainDigest(!this.hashes(name)) : ChainDigest.resume(before);
      }
      this.digest!.add(text, from, to);
      this.kept.get(this.cur)?.push(text.slice(from, to));
    } else this.flush();
  }

  private declare(name: string): void {
    if (this.chains.has(name)) return;
    this.chains.set(name, EMPTY_DIGEST);
    if (this.keep === 'all' || this.keep.has(name)) this.kept.set(name, []);
  }

  private flush(): void {
    if (this.cur !== undefined) this.chains.set(this.cur, this.digest!.value());
    this.cur = undefined;
    this.digest = undefined;
  }
}
