/**
 * Priority services: how soon the kubernetes Service answers real connections on a fresh node, next
 * to how long the first full sync takes (root; each case in a fresh lab). Prints a markdown table.
 *   node --import tsx bench/priority/bench.ts [services=10000]
 */
import { runPriorityScenario } from '../../e2e/scenarios/priority.js';

const n = Number(process.argv[2] ?? 10_000);
console.log(
  '| mode | services x endpoints | state -> priority sync done | state -> kubernetes answers | state -> full sync done | full sync |',
);
console.log('|---|---|---:|---:|---:|---:|');
for (const mode of ['iptables-legacy', 'iptables-nft', 'nftables'] as const) {
  const r = await runPriorityScenario(mode, n);
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `| ${mode} | ${n} x 5 | ${s(r.stateToPriorityMs)} | ${s(r.stateToAnswerMs)} | ${s(r.stateToFullMs)} | ${s(r.fullSyncMs)} |`,
  );
}
