/**
 * Bytes a kept string costs in V8 by how it was built: a template literal (a rope: one 32-byte
 * header per concatenation, beside the pieces) against Array.join (one flat string). The nftables
 * fragments build their element keys and values with join for this reason (render-layout.ts), and
 * chain names are one flat string (prefixedBase32) rather than a prefix + a slice of the encoding.
 *   node --expose-gc --import tsx bench/memory/strings.ts [count=200000]
 * Prints bytes per kept string and build time per way; ratios within one run are what matter.
 */
import { createHash } from 'node:crypto';
import { base32Std, prefixedBase32 } from '../../src/backends/common/base32.js';
import { detach } from '../../src/backends/iptables/chain-diff.js';

const n = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
// Flat inputs, as validated addresses are.
const ips = Array.from({ length: n }, (_, i) => [172, 30, (i >> 8) & 255, i & 255].join('.'));

const line = (ip: string, port: number): string =>
  [
    '-A KUBE-SEP-',
    prefixedBase32('', digest(ip, port), 16),
    ` -m comment --comment "ns/svc:http" -s ${ip}/32 -j KUBE-MARK-MASQ`,
  ].join('');
const digest = (ip: string, port: number): Buffer => createHash('sha256').update(`${ip}:${port}`).digest();
const ways: Record<string, (ip: string, port: number, i: number) => string> = {
  template: (ip, port, i) => `${ip} . ${port} . ${i}`,
  join: (ip, port, i) => [ip, ' . ', port, ' . ', i].join(''),
  // A KUBE-SEP- chain name: prefix + a slice of the whole encoding, or one flat string.
  'chain name, prefix + slice': (ip, port) => 'KUBE-SEP-' + base32Std(digest(ip, port)).slice(0, 16),
  'chain name, prefixedBase32': (ip, port) => prefixedBase32('KUBE-SEP-', digest(ip, port), 16),
  // A chain name cut from a rule line that dies (the line is built flat, as the renderer's are).
  'name cut from a line: slice': (ip, port) => line(ip, port).slice(3, 28),
  "name cut from a line: (' ' + slice).slice(1)": (ip, port) => ` ${line(ip, port).slice(3, 28)}`.slice(1),
  'name cut from a line: detach': (ip, port) => detach(line(ip, port).slice(3, 28)),
};

function measure(build: (ip: string, port: number, i: number) => string): { bytes: number; ms: number } {
  gc!();
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const kept = new Array<string>(n);
  for (let i = 0; i < n; i++) kept[i] = build(ips[i]!, 80 + (i % 5), i % 5);
  const ms = performance.now() - t0;
  gc!();
  const bytes = (process.memoryUsage().heapUsed - before) / n - 8; // minus the array's slot
  // Every way must build the same text as the flat reference of its kind.
  if (kept[n - 1] !== build(ips[n - 1]!, 80 + ((n - 1) % 5), (n - 1) % 5))
    throw new Error('not deterministic');
  return { bytes, ms };
}

console.log(`| way | bytes per kept string | build ms (${n}) |`);
console.log('|---|---:|---:|');
const ip0 = ips[0]!;
if (ways.template!(ip0, 80, 0) !== ways.join!(ip0, 80, 0)) throw new Error('template and join differ');
if (ways['chain name, prefix + slice']!(ip0, 80, 0) !== ways['chain name, prefixedBase32']!(ip0, 80, 0))
  throw new Error('the two chain names differ');
for (const [name, build] of Object.entries(ways)) {
  const { bytes, ms } = measure(build);
  console.log(`| ${name} | ${bytes.toFixed(1)} | ${ms.toFixed(1)} |`);
}
