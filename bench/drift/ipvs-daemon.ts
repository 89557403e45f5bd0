/**
 * Benchmark (not a test; no root): the daemon's share of the IPVS drift check (issue #11) at N
 * services × 5 endpoints. This machine's kernel has no IPVS, so the kernel and its tools are the
 * in-memory fake of the IPVS tests (test/fixtures/ipvs-kernel.ts), which answers `ipvsadm -Sn`,
 * `ipset save` and `ip -o addr show` in the tools' real text formats. The real IPVSProxier programs
 * the state (one full sync), the three answers are captured once, and then `checkDrift()` runs against
 * those captured texts: what is timed is only the daemon's side. The first check after a sync that
 * wrote parses and compares everything; later checks whose answers are unchanged (the steady state:
 * IPVS syncs every syncPeriod, and one that changes nothing writes nothing) only digest them. The tools' own CPU needs a kernel
 * with IPVS (under the qemu TCG VM it is emulation-bound, tens of times slower than hardware).
 *   node --import tsx bench/drift/ipvs-daemon.ts [--sizes=10000] [--checks=5]
 */
import { loadavg } from 'node:os';
import type { Exec } from '../../src/exec/run.js';
import { defaultProxyConfig } from '../../src/config/defaults.js';
import { FakeKernel, makeIPVSProxier } from '../../test/fixtures/ipvs-kernel.js';
import { benchOptions, makeWorkload } from '../iptables/workload.js';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const sizes = (argv.get('sizes') ?? '10000').split(',').map(Number);
const checks = Number(argv.get('checks') ?? 5);
const periodMs = defaultProxyConfig().ipvs.syncPeriodMs;

console.log(
  `node ${process.version}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log('');
console.log(
  '| services × endpoints | virtual servers | real servers | text read (ipvsadm / ipset / ip) | first check after a write: daemon CPU | steady check: daemon CPU (median) | findings | steady, % of one core at the default syncPeriod |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const n of sizes) {
  const w = makeWorkload(n, 5);
  const kernel = new FakeKernel();
  const options = benchOptions();
  const p = makeIPVSProxier(kernel, options);
  await p.sync(w.initial, true);
  // The kernel's answers, captured once: the checks below time only the daemon's side.
  const answers = new Map<string, string>();
  const captured: Exec = async (cmd, args, opts) => {
    const key = `${cmd} ${args.join(' ')}`;
    let out = answers.get(key);
    if (out === undefined) {
      out = (await kernel.exec(cmd, args, opts)).stdout;
      answers.set(key, out);
    }
    return { code: 0, stdout: out, stderr: '', durationMs: 0 };
  };
  (p as unknown as { exec: Exec }).exec = captured;
  // Capture the answers first (the fake kernel's own work is not the daemon's), then force the next
  // check to compare afresh, as after a sync that wrote.
  await p.checkDrift();
  (p as unknown as { cleanRead: undefined }).cleanRead = undefined;
  const f0 = process.cpuUsage();
  await p.checkDrift();
  const f = process.cpuUsage(f0);
  const firstMs = (f.user + f.system) / 1000;
  const cpu: number[] = [];
  const wall: number[] = [];
  let findings = 0;
  for (let i = 0; i < checks; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    findings = (await p.checkDrift()).length;
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const snap = kernel.snapshot();
  const vss = snap.vss.filter((l) => !l.includes('/')).length;
  const rss = snap.vss.length - vss;
  const kb = (s: string): string => `${(s.length / 1024).toFixed(0)} KB`;
  const texts = [...answers.values()];
  console.log(
    `| ${n} × 5 | ${vss} | ${rss} | ${texts.map(kb).join(' / ')} | ${firstMs.toFixed(0)} ms | ${med(cpu).toFixed(1)} ms (wall ${med(wall).toFixed(1)} ms) | ${findings} | ${((100 * med(cpu)) / periodMs).toFixed(2)} % |`,
  );
  await p.close();
}
