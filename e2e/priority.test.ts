/**
 * Important Services first (root only): on a fresh node whose first full sync takes seconds
 * (10,000 Services × 5 endpoints), the kubernetes Service answers real connections before that full
 * sync ends, in iptables (legacy and nft) and nftables modes. The order is asserted; the times are
 * printed (bench/priority/bench.ts records them in docs/benchmarks.md), never asserted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labSkipReason } from './lab/topology.js';
import { runPriorityScenario, type PriorityMode } from './scenarios/priority.js';

const N = 10_000;
const TOOLS: Record<PriorityMode, string> = {
  'iptables-legacy': 'iptables-legacy-restore',
  'iptables-nft': 'iptables-nft-restore',
  nftables: 'nft',
};

function skipReason(mode: PriorityMode): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync(TOOLS[mode], ['--version']).error) return `${TOOLS[mode]} is not installed`;
  return labSkipReason();
}

describe('the kubernetes Service answers before the first full sync ends', () => {
  for (const mode of ['iptables-legacy', 'iptables-nft', 'nftables'] as const) {
    test(`${mode}, ${N} services × 5 endpoints`, { skip: skipReason(mode), timeout: 600_000 }, async (t) => {
      const r = await runPriorityScenario(mode, N);
      t.diagnostic(JSON.stringify(r));
      assert.ok(
        r.stateToAnswerMs < r.stateToFullMs,
        `answered ${r.stateToAnswerMs} ms after the state, full sync done after ${r.stateToFullMs} ms`,
      );
    });
  }
});
