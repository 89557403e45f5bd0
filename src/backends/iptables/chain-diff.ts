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
  /** Rule lines (`-A CHAIN ...`) per chain, in document order; chains without rules map to []. */
  readonly rules: ReadonlyMap<string, readonly string[]>;
  /** `-X CHAIN` lines, in order. */
  readonly deletes: readonly string[];
}

/**
 * Splits one `*table ... COMMIT` section (as the renderer writes it) by chain. Throws RangeError on
 * a line it does not understand (the renderer only writes `:`, `-A`, `-X`, `*` and COMMIT lines).
 */
export function splitTable(section: string): SplitTable {
  const chains: string[] = [];
  const rules = new Map<string, string[]>();
  const deletes: string[] = [];
  for (const line of section.split('\n')) {
    if (line === '' || line.startsWith('*') || line === 'COMMIT' || line.startsWith('#')) continue;
    if (line.startsWith(':')) {
      const sp = line.indexOf(' ');
      const name = sp < 0 ? line.slice(1) : line.slice(1, sp);
      chains.push(name);
      if (!rules.has(name)) rules.set(name, []);
    } else if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const name = sp < 0 ? line.slice(3) : line.slice(3, sp);
      let list = rules.get(name);
      if (!list) rules.set(name, (list = []));
      list.push(line);
    } else if (line.startsWith('-X ')) {
      deletes.push(line.slice(3).trim());
    } else {
      throw new RangeError(`restore document: unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  return { chains, rules, deletes };
}

/** What the kernel holds for one chain, as far as the proxier knows: the exact rule text written. */
export type KnownChains = Map<string, string>;

/** The content key of a chain: its rules joined. */
export function chainContent(rules: readonly string[]): string {
  return rules.join('\n');
}

/**
 * The `-A` lines per chain of one table's `iptables-save` output, in order (chains without rules map
 * to []). iptables-save prints rules in its own normal form, not as written: compare them with ours
 * through save-normalize.ts, or only by count.
 */
export function parseSave(saveText: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of saveText.split('\n')) {
    if (line.startsWith(':')) {
      const sp = line.indexOf(' ');
      // A copy, not a slice: V8 slices keep their parent alive, and the chain names outlive this
      // sync (the proxier's natChains), which held the whole save text (~18 MB at 10,000 Services).
      const name = detach(sp < 0 ? line.slice(1) : line.slice(1, sp));
      if (!out.has(name)) out.set(name, []);
    } else if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const name = sp < 0 ? line.slice(3) : line.slice(3, sp);
      let list = out.get(name);
      if (!list) out.set(detach(name), (list = []));
      list.push(line);
    }
  }
  return out;
}

/** The same characters without a reference to the string they were cut from (see parseSave). */
function detach(s: string): string {
  // The concatenation is flattened into a new string before the slice is taken from it.
  return ` ${s}`.slice(1);
}

/**
 * Keeps only the `known` entries the kernel confirms: the chain exists in `saved` with the same
 * number of rules we wrote. Anything else (flushed tables, a chain edited by hand, a deleted chain)
 * is forgotten, so the next restore rewrites it. Returns how many entries were dropped.
 */
export function reconcileKnown(known: KnownChains, saved: ReadonlyMap<string, readonly string[]>): number {
  let dropped = 0;
  for (const [chain, content] of known) {
    const n = content === '' ? 0 : content.split('\n').length;
    if (saved.get(chain)?.length !== n) {
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
 * Whether `lines` (one chain's `-A` lines, as parseSave gives them per chain) hold the jump: a rule
 * that targets `target` and, when given, carries `comment`. iptables-save reorders matches, so the
 * check looks at the parts that identify kube-proxy's jumps rather than the whole text. Taking the
 * parsed chain rather than the save text matters at scale: a nat save at 10,000 services is ~18 MB,
 * and splitting it once per jump cost more than the save itself.
 */
export function hasJump(lines: readonly string[] | undefined, target: string, comment: string): boolean {
  if (!lines) return false;
  for (const line of lines) {
    if (!line.endsWith(`-j ${target}`)) continue;
    if (comment === '' || line.includes(`--comment "${comment}"`) || line.includes(`--comment ${comment} `))
      return true;
  }
  return false;
}
