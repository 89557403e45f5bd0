/**
 * iptables drift check (see backends/drift.ts): the jumps from the built-in chains into ours,
 * read with `iptables -S <chain>` per built-in chain (iptables-nft) or one iptables-save per table
 * (legacy, where any read copies the whole table; see the proxier's checkDrift).
 * A flushed table is the canary monitor's business (it already forces a full sync). Other owners'
 * rules in the same built-in chains are not looked at, so they are never reported. Pure.
 */
import { commentOf, hasJump, LineSplitter, parseSave } from './chain-diff.js';
import type { JumpRule } from './render.js';
import type { DriftFinding } from '../drift.js';

/** The (table, chain) pairs to read, each once, in a stable order. */
export function jumpChains(rules: readonly JumpRule[]): { table: string; chain: string }[] {
  const seen = new Map<string, { table: string; chain: string }>();
  for (const r of rules) seen.set(`${r.table} ${r.chain}`, { table: r.table, chain: r.chain });
  return [...seen.values()];
}

/**
 * The jumps of `rules` that `listings` ("table chain" -> `iptables -S chain` output, or the table's
 * iptables-save text: only the chain's `-A` lines are looked at) lack.
 * A chain with no listing is skipped (could not be read: no finding, no repair loop).
 */
export function missingJumps(
  rules: readonly JumpRule[],
  listings: ReadonlyMap<string, string>,
): DriftFinding[] {
  const out: DriftFinding[] = [];
  // Legacy hands every chain of a table the same text: parse each text once.
  const parsed = new Map<string, Map<string, string>>();
  for (const r of rules) {
    const text = listings.get(`${r.table} ${r.chain}`);
    if (text === undefined) continue;
    let chains = parsed.get(text);
    if (!chains) parsed.set(text, (chains = parseSave(text)));
    if (!hasJump(chains.get(r.chain), r.target, commentOf(r.args)))
      out.push({ object: 'jump', message: `jump from ${r.table} ${r.chain} to ${r.target} missing` });
  }
  return out;
}

/**
 * The `-A` lines of `chains` in an iptables-save text, in one pass (a legacy nat save at 10,000
 * services is ~18 MB: splitting it once per built-in chain cost more CPU than the save itself).
 */
export function chainLines(saveText: string, chains: readonly string[]): string {
  const r = chainLinesReader(chains);
  r.push(saveText);
  return r.end();
}

/**
 * chainLines over a save that arrives in chunks (run()'s onStdout): only the lines kept are held,
 * never the text (at 50,000 Services a legacy nat save is ~90 MB, read every syncPeriod).
 */
export function chainLinesReader(chains: readonly string[]): { push(chunk: string): void; end(): string } {
  const heads = chains.map((c) => `-A ${c} `);
  const out: string[] = [];
  const lines = new LineSplitter((text, from, to) => {
    // Most lines are rules of our own chains: a cheap first-character test skips the rest.
    if (!text.startsWith('-A ', from)) return;
    for (const h of heads)
      if (text.startsWith(h, from)) {
        out.push(text.slice(from, to));
        return;
      }
  });
  return {
    push: (chunk) => {
      lines.push(chunk);
    },
    end: () => {
      lines.end();
      return out.length ? `${out.join('\n')}\n` : '';
    },
  };
}
