/**
 * What a chain digest costs per character: the record of every service chain of a full render
 * (chain-diff.ts recordOf: ChainDigest's two 32-bit lanes in JS) against Node's native hashes over
 * the same contents (`crypto.hash`, one call per chain, Node >= 20.12; `createHash`). In-process.
 *   node --import tsx bench/iptables/digest.ts [N=10000] [reps=5]
 * Prints the median ms and ns per character of each.
 */
import { createHash, hash } from 'node:crypto';
import { loadavg } from 'node:os';
import { recordOf } from '../../src/backends/iptables/chain-diff.js';
import { renderIPTables } from '../../src/backends/iptables/render.js';
import { benchOptions, makeWorkload } from './workload.js';

const n = Number(process.argv[2] ?? 10000);
const reps = Number(process.argv[3] ?? 5);
const plan = renderIPTables(makeWorkload(n, 5).initial, benchOptions(), {
  full: true,
  groupServiceChains: true,
});
const chains = [...plan.serviceChainContents];
let chars = 0;
for (const [, c] of chains) chars += c.length;

const oneShot = (hash as unknown) === undefined ? undefined : hash;
const cases: [string, (chain: string, content: string) => string][] = [
  ['recordOf (JS lanes)', (chain, content) => recordOf(chain, content)],
  ['createHash sha1', (_c, content) => createHash('sha1').update(content).digest('base64')],
];
if (oneShot) cases.push(['crypto.hash sha1', (_c, content) => oneShot('sha1', content, 'base64')]);

console.log(
  `node ${process.version}; ${n} Services x 5: ${chains.length} service chains, ${(chars / 1e6).toFixed(1)} M characters; load ${loadavg()[0]!.toFixed(1)}`,
);
console.log('| digest | median ms | ns per character |');
console.log('|---|---:|---:|');
for (const [name, f] of cases) {
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (const [chain, content] of chains) sink += f(chain, content).length;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  console.log(`| ${name} | ${ms.toFixed(1)} | ${((ms * 1e6) / chars).toFixed(2)} |${sink < 0 ? ' ' : ''}`);
}
