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
  for (const name of chains) rules.set(name, '');
  for (const [name, list] of lists) rules.set(name, chainContent(list));
  // Chains whose rules come already joined (the renderer's groupServiceChains); declared above.
  if (contents) for (const [name, content] of contents) rules.set(name, content);
  return { chains, rules, deletes };
}

/** What the kernel holds for one chain, as far as the proxier knows: the exact rule text written. */
export type KnownChains = Map<string, string>;

/**
 * The content key of a chain: its rules joined, as one flat string of its own (never a slice or a
 * rope of a bigger text, which it would keep alive for as long as the proxier keeps the record).
 */
export function chainContent(rules: readonly string[]): string {
  if (rules.length === 0) return '';
  return rules.length === 1 ? detach(rules[0]!) : rules.join('\n');
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
 * chain ('' for chains without rules). iptables-save prints a chain's rules together, so each
 * content is one slice of `saveText` (it keeps the text alive while the map lives: one sync).
 * iptables-save prints rules in its own normal form, not as written: compare them with ours through
 * save-normalize.ts, or only by count.
 */
export function parseSave(saveText: string): Map<string, string> {
  const out = new Map<string, string>();
  let cur: string | undefined;
  let start = 0;
  let end = 0;
  const flush = (): void => {
    if (cur === undefined) return;
    const seg = saveText.slice(start, end);
    const before = out.get(cur);
    // Rules of one chain split by another chain's (not seen from iptables-save): appended.
    out.set(cur, before ? `${before}\n${seg}` : seg);
    cur = undefined;
  };
  let pos = 0;
  while (pos < saveText.length) {
    let nl = saveText.indexOf('\n', pos);
    if (nl < 0) nl = saveText.length;
    if (saveText.startsWith(':', pos)) {
      flush();
      const sp = saveText.indexOf(' ', pos);
      // A copy, not a slice: V8 slices keep their parent alive, and the chain names outlive this
      // sync (the proxier's natChains), which held the whole save text (~18 MB at 10,000 Services).
      const name = detach(saveText.slice(pos + 1, sp < 0 || sp > nl ? nl : sp));
      if (!out.has(name)) out.set(name, '');
    } else if (saveText.startsWith('-A ', pos)) {
      const sp = saveText.indexOf(' ', pos + 3);
      const name = saveText.slice(pos + 3, sp < 0 || sp > nl ? nl : sp);
      if (name !== cur) {
        flush();
        cur = out.has(name) ? name : detach(name);
        if (!out.has(cur)) out.set(cur, '');
        start = pos;
      }
      end = nl;
    } else flush();
    pos = nl + 1;
  }
  flush();
  return out;
}

/**
 * The same characters without a reference to the string they were cut from (see parseSave): a flat
 * copy of their own. (`' ' + s` sliced again, the old way, is itself a slice of a one-character-longer
 * copy: 80 bytes for a 25-character chain name against 48, bench/memory/strings.ts.) JSON's round
 * trip copies any string exactly.
 */
export function detach(s: string): string {
  // V8 makes no slices shorter than 13 characters: those are copies already.
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}

/**
 * Keeps only the `known` entries the kernel confirms: the chain exists in `saved` with the same
 * number of rules we wrote. Anything else (flushed tables, a chain edited by hand, a deleted chain)
 * is forgotten, so the next restore rewrites it. Returns how many entries were dropped.
 */
export function reconcileKnown(known: KnownChains, saved: ReadonlyMap<string, string>): number {
  let dropped = 0;
  for (const [chain, content] of known) {
    const have = saved.get(chain);
    if (have === undefined || countRules(have) !== countRules(content)) {
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
