/**
 * Benchmark: desired-state computation in the core (StateTracker), N services x M endpoints.
 * Prints a markdown table: full build (events in + build + commit, median of 5: wall, process CPU, and
 * the main thread's CPU alone, which on a shared machine is the wall time without the waits for a
 * CPU), then 1 and 10 changed services after it (median of 21), and RSS (growth is the tracker's own
 * memory).
 *   node --expose-gc --import tsx bench/core/desired-state.ts [N...]
 * Objects are built through the real validators (as a source would deliver them), outside the timing.
 */
import { StateTracker } from '../../src/proxy/state-tracker.js';
import { validateEndpointSlice, validateService } from '../../src/model/validate.js';
import type { EndpointSlice, Service } from '../../src/model/types.js';
import { mainThreadCpuMs } from '../common/proc-cpu.js';

const M = 5;
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const Ns = sizes.length ? sizes : [1000, 10000, 30000];

function ip(base: number, i: number): string {
  const v = base + i;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
function service(i: number): Service {
  return validateService({
    kind: 'Service',
    metadata: { namespace: `ns${i % 50}`, name: `svc-${i}` },
    spec: { clusterIP: ip(0x0a600000, i + 10), ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  });
}
function slice(i: number, gen: number): EndpointSlice {
  return validateEndpointSlice({
    kind: 'EndpointSlice',
    metadata: {
      namespace: `ns${i % 50}`,
      name: `svc-${i}-abc`,
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: M }, (_, k) => ({
      addresses: [ip(0x0af40000, i * M + k + gen)],
      conditions: { ready: true },
      nodeName: `node-${k}`,
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const rows: string[] = [];
for (const N of Ns) {
  const services = Array.from({ length: N }, (_, i) => service(i));
  const slices = Array.from({ length: N }, (_, i) => slice(i, 0));
  gc();
  const rssBefore = process.memoryUsage().rss;
  // Full build: median of 5 fresh trackers (wall and CPU time; the machine is shared and noisy).
  const fullWall: number[] = [];
  const fullCpu: number[] = [];
  const fullMain: number[] = [];
  let t!: StateTracker;
  for (let rep = 0; rep < 5; rep++) {
    gc();
    t = new StateTracker({ families: ['IPv4'], nodeName: 'node-0' });
    const c0 = process.cpuUsage();
    const m0 = mainThreadCpuMs();
    const t0 = performance.now();
    for (const s of services) t.onEvent({ type: 'add', object: s });
    for (const s of slices) t.onEvent({ type: 'add', object: s });
    t.onEvent({ type: 'synced', kind: 'Service' });
    t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
    const st = t.build('IPv4');
    t.commit(st);
    fullWall.push(performance.now() - t0);
    fullMain.push(mainThreadCpuMs() - m0);
    const c = process.cpuUsage(c0);
    fullCpu.push((c.user + c.system) / 1000);
    if (st.services.size !== N) throw new Error(`expected ${N} service ports, got ${st.services.size}`);
  }
  const full = median(fullWall);
  const fullC = median(fullCpu);
  const fullM = median(fullMain);
  gc();
  const rss = process.memoryUsage().rss;

  let gen = 0;
  const changed = (k: number, rounds: number): number => {
    const times: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const a = performance.now();
      for (let j = 0; j < k; j++) {
        const i = (r * 7919 + j * 104729) % N;
        t.onEvent({ type: 'update', old: slices[i]!, object: slice(i, ++gen) });
      }
      const s = t.build('IPv4');
      t.commit(s);
      times.push(performance.now() - a);
      if (s.changedServices.size !== k)
        throw new Error(`expected ${k} changed, got ${s.changedServices.size}`);
    }
    return median(times);
  };
  const one = changed(1, 21);
  const ten = changed(10, 21);
  rows.push(
    `| ${N} x ${M} | ${full.toFixed(1)} ms (cpu ${fullC.toFixed(1)} ms, main thread ${fullM.toFixed(1)} ms) | ${one.toFixed(3)} ms | ${ten.toFixed(3)} ms | ${((rss - rssBefore) / 1048576).toFixed(0)} MB | ${(rss / 1048576).toFixed(0)} MB |`,
  );
}
console.log(
  '| services x endpoints | full build (median of 5) | 1 changed (median of 21) | 10 changed (median of 21) | RSS growth | RSS total |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
