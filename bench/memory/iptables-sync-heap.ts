/**
 * The live heap of an iptables first full sync's pure part, stage by stage, in-process: the state of
 * N Services × 5 endpoints (bench/iptables/workload.ts), then renderWhole (the proxier's render,
 * split per chain), then planRestores (the restores' lines and the pending records), each result
 * held while the next is measured. After each stage two full collections (`--expose-gc`) and V8's
 * heapUsed; "MB" are 10^6 bytes.
 *   node --expose-gc --import tsx bench/memory/iptables-sync-heap.ts [N=50000] [nft|legacy]
 * What the daemon's first sync holds at its peak (before the first restore) is the sum of the rows.
 */
import { loadavg } from 'node:os';
import { renderWhole, planRestores, type ChainBook } from '../../src/backends/iptables/planner.js';
import { benchOptions, makeWorkload } from '../iptables/workload.js';

const n = Number(process.argv[2] ?? 50000);
const backend = process.argv[3] ?? 'nft';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1e6;
};

const h0 = heap();
const w = makeWorkload(n, 5);
const h1 = heap();
const book: ChainBook = {
  known: { filter: new Map(), nat: new Map() },
  natChains: new Set(),
  chainsByService: new Map(),
  ruleTotals: { filter: 0, nat: 0 },
  incrementalReady: false,
};
const rendered = renderWhole(w.initial, benchOptions(), true, book, false);
const h2 = heap();
const plan = planRestores(rendered.filterT, rendered.natT, book, backend === 'nft' ? 1000 : Infinity);
const h3 = heap();
(rendered.natT.rules as Map<string, string>).clear();
const h4 = heap();
let chars = 0;
let lines = 0;
for (const r of plan.restores)
  for (const l of r.lines) {
    chars += l.length;
    lines++;
  }
console.log(`node ${process.version}, ${n} Services x 5, ${backend}; load ${loadavg()[0]!.toFixed(1)}`);
console.log('| stage | heapUsed | growth |');
console.log('|---|---:|---:|');
const row = (name: string, h: number, prev: number): void => {
  console.log(`| ${name} | ${h.toFixed(1)} MB | ${(h - prev).toFixed(1)} MB |`);
};
row('base', h0, h0);
row('state (workload)', h1, h0);
row(`renderWhole (${rendered.natT.chains.length} nat chains)`, h2, h1);
row(
  `planRestores (${plan.restores.length} restores, ${lines} lines, ${(chars / 1e6).toFixed(1)} M chars)`,
  h3,
  h2,
);
row('split contents cleared (as the proxier does)', h4, h3);
// Keep every result alive to here.
if (rendered.natT.chains.length + plan.restores.length < 0) console.log(w, rendered, plan);
