/**
 * IPVS mode sync benchmark. Needs a kernel with IPVS, so run it in the VM:
 *   e2e/vm/run-in-ipvs-vm.sh node --import tsx bench/ipvs/bench.ts [1000,5000,10000]
 * For each size: N ClusterIP services x 5 endpoints, programmed by the real IPVSProxier into a
 * network namespace made for the run (kpt-bench-<pid>, deleted afterwards): first full sync on an
 * empty namespace, a full re-sync (reads the kernel back, nothing to change), then partial syncs with
 * 1 and 10 services' endpoints changed. The states come from a real StateTracker fed update events
 * and committed after each sync, as in the daemon, so a partial sync's changedServices holds only the
 * changed services. Prints a table (wall ms of IPVSProxier.sync; for partial syncs the median of 3 runs,
 * with that run's phases).
 * Under TCG emulation every number is several times what real hardware gives.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { run } from '../../src/exec/run.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import { StateTracker } from '../../src/proxy/state-tracker.js';
import type { KubeObject } from '../../src/model/types.js';
import { IPVSProxier } from '../../src/backends/ipvs/proxier.js';
import { toolsFor, type Exec } from '../../src/exec/iptables.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { familyOptions } from '../../test/golden/iptables/scenarios.js';

const sizes = (process.argv[2] ?? '1000,5000,10000').split(',').map(Number);
const NS = `kpt-bench-${process.pid}`;
const EPS = 5;

const svcIP = (i: number): string => `172.30.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const epIP = (i: number, k: number, gen: number): string =>
  `10.${(Math.floor(i / 250) % 200) + gen * 50}.${i % 250}.${k + 1}`;

const sliceOf = (i: number, gen: number): KubeObject =>
  makeSlice(
    'bench',
    `s${i}`,
    `s${i}-1`,
    Array.from({ length: EPS }, (_, k) => ({ ip: epIP(i, k, gen), nodeName: 'node-1' })),
  );

/** N services x EPS endpoints in a StateTracker; `setGen` moves one service's endpoints (an update event). */
function cluster(n: number): { tracker: StateTracker; setGen: (i: number, gen: number) => void } {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: 'node-1' });
  tracker.onEvent({ type: 'add', object: makeNode('node-1', ['10.100.0.2']) });
  const slices: KubeObject[] = [];
  for (let i = 0; i < n; i++) {
    tracker.onEvent({ type: 'add', object: makeService('bench', `s${i}`, { clusterIP: svcIP(i) }) });
    slices.push(sliceOf(i, 0));
    tracker.onEvent({ type: 'add', object: slices[i]! });
  }
  for (const kind of ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'] as const)
    tracker.onEvent({ type: 'synced', kind });
  const setGen = (i: number, gen: number): void => {
    const object = sliceOf(i, gen);
    tracker.onEvent({ type: 'update', old: slices[i]!, object });
    slices[i] = object;
  };
  return { tracker, setGen };
}

const inNs: Exec = (cmd, args, opts) => run('ip', ['netns', 'exec', NS, cmd, ...args], opts);

function cleanupNs(): void {
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}
process.on('exit', cleanupNs);

// A fresh VM has nothing loaded; ipvsadm fails with "Invalid operation" until ip_vs and the scheduler are in.
for (const m of [
  'ip_vs',
  'ip_vs_rr',
  'ip_vs_wrr',
  'ip_vs_lc',
  'ip_vs_sh',
  'nf_conntrack',
  'dummy',
  'xt_set',
  'xt_ipvs',
]) {
  const r = spawnSync('modprobe', [m], { encoding: 'utf8' });
  if (r.status !== 0) console.error(`modprobe ${m} failed: ${(r.stderr || '').trim()}`);
}
if (spawnSync('ipvsadm', ['-Ln']).status !== 0)
  throw new Error('ipvsadm -Ln fails: this kernel has no usable IPVS (run the benchmark in the VM)');

const rows: string[] = [];
/** The proxier's phases (IPVSProxier.last.phases), in order: render and diff are in-process, the rest spawn a tool. */
const PHASES = ['render', 'read', 'setup', 'diff', 'ipset', 'iptables', 'ipvs', 'link', 'conntrack'] as const;
for (const n of sizes) {
  cleanupNs();
  if (spawnSync('ip', ['netns', 'add', NS]).status !== 0) throw new Error(`cannot create netns ${NS}`);
  // Without lo up a new netns has no local routing table, so the kernel classes every real server
  // address as non-unicast and rejects it (ipvsadm: "Invalid operation ... address not unicast").
  if (spawnSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']).status !== 0)
    throw new Error(`cannot bring lo up in ${NS}`);
  const p = new IPVSProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    exec: inNs,
    iptables: toolsFor(
      (process.env.KUBE_PROXY_IPTABLES_BACKEND as 'legacy' | 'nft' | undefined) ?? 'nft',
      'IPv4',
    ),
    writeSysctl: () => undefined,
    graceful: { checkIntervalMs: 3_600_000, timeoutMs: 3_600_000 },
  });
  const { tracker, setGen } = cluster(n);
  /** Builds the next state, syncs it (timed) and commits it, as the daemon's sync loop does. */
  const step = async (full: boolean): Promise<number> => {
    const state = tracker.build('IPv4');
    const t0 = performance.now();
    await p.sync(state, full);
    const ms = performance.now() - t0;
    tracker.commit(state);
    return ms;
  };
  const fullMs = await step(true);
  const fullPhases = p.last!.phases;
  const resyncMs = await step(true);
  const resyncPhases = p.last!.phases;
  const partial = async (k: number): Promise<{ ms: number; phases: Record<string, number> }> => {
    const runs: { ms: number; phases: Record<string, number> }[] = [];
    for (let rep = 1; rep <= 3; rep++) {
      const changed = Array.from({ length: k }, (_, j) => (j * 997 + rep) % n);
      for (const i of changed) setGen(i, rep);
      const ms = await step(false);
      if (p.last!.full || p.last!.rebuilt !== k)
        throw new Error(
          `expected a partial sync rebuilding ${k} service ports, got ${JSON.stringify(p.last)}`,
        );
      runs.push({ ms, phases: { ...p.last!.phases } });
      for (const i of changed) setGen(i, 0);
      await step(false); // back to the base (also a partial sync), not timed
    }
    // The median run, with its own phases.
    return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)]!;
  };
  const one = await partial(1);
  const ten = await partial(10);
  await p.close();
  const f = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
  const ph = (o: Readonly<Record<string, number>>): string =>
    PHASES.map((k) => (o[k] ?? 0).toFixed(1)).join(' / ');
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
console.log(
  `machine: ${kernel}; ${cpus().length} vCPU (${cpu}); ${(totalmem() / 2 ** 30).toFixed(1)} GiB; iptables backend ${process.env.KUBE_PROXY_IPTABLES_BACKEND ?? 'nft'}; ${EPS} endpoints per service, ClusterIP TCP`,
);
console.log('');
console.log(`| services | real servers | sync | wall | phases ms: ${PHASES.join(' / ')} |`);
console.log('|---:|---:|---|---:|---|');
for (const r of rows) console.log(r);
