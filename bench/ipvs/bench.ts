/**
 * IPVS mode sync benchmark. Needs a kernel with IPVS, so run it in the VM:
 *   e2e/vm/run-in-ipvs-vm.sh node --import tsx bench/ipvs/bench.ts [1000,5000,10000]
 * For each size: N ClusterIP services x 5 endpoints, programmed by the real IPVSProxier into a
 * network namespace made for the run (kpt-bench-<pid>, deleted afterwards): first full sync on an
 * empty namespace, a full re-sync (reads the kernel back, nothing to change), then partial syncs with
 * 1 and 10 services' endpoints changed. Prints a table (wall ms, median of 3 for the partial syncs).
 * Under TCG emulation every number is several times what real hardware gives.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { run } from '../../src/exec/run.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import { desiredStatesFromObjects } from '../../src/proxy/state-from-objects.js';
import type { KubeObject } from '../../src/model/types.js';
import type { DesiredState } from '../../src/proxy/types.js';
import { IPVSProxier } from '../../src/backends/ipvs/proxier.js';
import { toolsFor, type Exec } from '../../src/backends/iptables/tools.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { familyOptions } from '../../test/golden/iptables/scenarios.js';

const sizes = (process.argv[2] ?? '1000,5000,10000').split(',').map(Number);
const NS = `kpt-bench-${process.pid}`;
const EPS = 5;

const svcIP = (i: number): string => `172.30.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const epIP = (i: number, k: number, gen: number): string => `10.${(Math.floor(i / 250) % 200) + gen * 50}.${i % 250}.${k + 1}`;

function objects(n: number, changed: ReadonlySet<number>, gen: number): KubeObject[] {
  const objs: KubeObject[] = [makeNode('node-1', ['10.100.0.2'])];
  for (let i = 0; i < n; i++) {
    objs.push(makeService('bench', `s${i}`, { clusterIP: svcIP(i) }));
    const g = changed.has(i) ? gen : 0;
    objs.push(makeSlice('bench', `s${i}`, `s${i}-1`, Array.from({ length: EPS }, (_, k) => ({ ip: epIP(i, k, g), nodeName: 'node-1' }))));
  }
  return objs;
}

const stateOf = (objs: KubeObject[]): DesiredState => desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: 'node-1' })[0]!;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const inNs: Exec = (cmd, args, opts) => run('ip', ['netns', 'exec', NS, cmd, ...args], opts);

function cleanupNs(): void {
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}
process.on('exit', cleanupNs);

// A fresh VM has nothing loaded; ipvsadm fails with "Invalid operation" until ip_vs and the scheduler are in.
for (const m of ['ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_lc', 'ip_vs_sh', 'nf_conntrack', 'dummy', 'xt_set', 'xt_ipvs']) {
  const r = spawnSync('modprobe', [m], { encoding: 'utf8' });
  if (r.status !== 0) console.error(`modprobe ${m} failed: ${(r.stderr || '').trim()}`);
}
if (spawnSync('ipvsadm', ['-Ln']).status !== 0) throw new Error('ipvsadm -Ln fails: this kernel has no usable IPVS (run the benchmark in the VM)');

const rows: string[] = [];
/** The proxier's phases (IPVSProxier.last.phases), in order: render and diff are in-process, the rest spawn a tool. */
const PHASES = ['render', 'read', 'setup', 'diff', 'ipset', 'iptables', 'ipvs', 'link', 'conntrack'] as const;
for (const n of sizes) {
  cleanupNs();
  if (spawnSync('ip', ['netns', 'add', NS]).status !== 0) throw new Error(`cannot create netns ${NS}`);
  // Without lo up a new netns has no local routing table, so the kernel classes every real server
  // address as non-unicast and rejects it (ipvsadm: "Invalid operation ... address not unicast").
  if (spawnSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']).status !== 0) throw new Error(`cannot bring lo up in ${NS}`);
  const p = new IPVSProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    exec: inNs,
    iptables: toolsFor((process.env.KUBE_PROXY_IPTABLES_BACKEND as 'legacy' | 'nft' | undefined) ?? 'nft', 'IPv4'),
    writeSysctl: () => undefined,
    graceful: { checkIntervalMs: 3_600_000, timeoutMs: 3_600_000 },
  });
  const base = stateOf(objects(n, new Set(), 0));
  let t = performance.now();
  await p.sync(base, true);
  const fullMs = performance.now() - t;
  const fullPhases = p.last!.phases;
  t = performance.now();
  await p.sync(base, true);
  const resyncMs = performance.now() - t;
  const resyncPhases = p.last!.phases;
  const partial = async (k: number): Promise<{ ms: number; phases: Record<string, number> }> => {
    const times: number[] = [];
    let phases: Record<string, number> = {};
    for (let rep = 1; rep <= 3; rep++) {
      const changed = new Set(Array.from({ length: k }, (_, j) => (j * 997 + rep) % n));
      const s = stateOf(objects(n, changed, rep));
      const t0 = performance.now();
      await p.sync(s, false);
      times.push(performance.now() - t0);
      phases = { ...p.last!.phases };
      await p.sync(base, false); // back to the base (also a partial sync), not timed
    }
    return { ms: median(times), phases };
  };
  const one = await partial(1);
  const ten = await partial(10);
  await p.close();
  const f = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
  const ph = (o: Readonly<Record<string, number>>): string => PHASES.map((k) => (o[k] ?? 0).toFixed(1)).join(' / ');
  rows.push(`| ${n} | ${n * EPS} | full sync, empty netns | ${f(fullMs)} | ${ph(fullPhases)} |`);
  rows.push(`| ${n} | ${n * EPS} | full re-sync, nothing changed | ${f(resyncMs)} | ${ph(resyncPhases)} |`);
  rows.push(`| ${n} | ${n * EPS} | 1 service changed (median of 3) | ${f(one.ms)} | ${ph(one.phases)} |`);
  rows.push(`| ${n} | ${n * EPS} | 10 services changed (median of 3) | ${f(ten.ms)} | ${ph(ten.phases)} |`);
  console.error(`n=${n} done`);
  cleanupNs();
}
const cpu = cpus()[0]?.model ?? '?';
const kernel = readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`command: e2e/vm/run-in-ipvs-vm.sh node --import tsx bench/ipvs/bench.ts ${sizes.join(',')}`);
console.log(`machine: ${kernel}; ${cpus().length} vCPU (${cpu}); ${(totalmem() / 2 ** 30).toFixed(1)} GiB; iptables backend ${process.env.KUBE_PROXY_IPTABLES_BACKEND ?? 'nft'}; ${EPS} endpoints per service, ClusterIP TCP`);
console.log('');
console.log(`| services | real servers | sync | wall | phases ms: ${PHASES.join(' / ')} |`);
console.log('|---:|---:|---|---:|---|');
for (const r of rows) console.log(r);
