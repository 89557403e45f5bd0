/**
 * Bytes a kept string costs in V8 by how it was built: a template literal (a rope: one 32-byte
 * header per concatenation, beside the pieces) against Array.join (one flat string). The nftables
 * fragments build their element keys and values with join for this reason (render-layout.ts).
 *   node --expose-gc --import tsx bench/memory/strings.ts [count=200000]
 * Prints bytes per kept string and build time per way; ratios within one run are what matter.
 */
const n = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
// Flat inputs, as validated addresses are.
const ips = Array.from({ length: n }, (_, i) => [172, 30, (i >> 8) & 255, i & 255].join('.'));

const ways: Record<string, (ip: string, port: number, i: number) => string> = {
  template: (ip, port, i) => `${ip} . ${port} . ${i}`,
  join: (ip, port, i) => [ip, ' . ', port, ' . ', i].join(''),
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
  if (kept[n - 1] !== `${ips[n - 1]} . ${80 + ((n - 1) % 5)} . ${(n - 1) % 5}`)
    throw new Error('wrong string');
  return { bytes, ms };
}

console.log(`| way | bytes per kept string | build ms (${n}) |`);
console.log('|---|---:|---:|');
for (const [name, build] of Object.entries(ways)) {
  const { bytes, ms } = measure(build);
  console.log(`| ${name} | ${bytes.toFixed(1)} | ${ms.toFixed(1)} |`);
}
