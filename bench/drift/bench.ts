/**
 * Benchmark (not a test; root only): the cost of the periodic drift check (issue #11) at N services ×
 * 5 endpoints, in nftables mode and in iptables mode (iptables-legacy and iptables-nft), each in a
 * network namespace this script creates and removes. A worker in the namespace programs the state with
 * the real proxier (one full sync), then runs `checkDrift()` K times and measures, per check:
 *  - wall time;
 *  - the daemon's own CPU (process.cpuUsage: user + system, every thread);
 *  - the CPU of the tools it ran (cutime + cstime of /proc/self/stat: children the process has waited
 *    for, which is every spawn through exec/ once it resolved), in clock ticks.
 * iptables mode also polls its canary chain every syncPeriod (`iptables -t mangle -S
 * KUBE-PROXY-CANARY`); that read is measured the same way and added to the period's cost.
 * The share is (daemon CPU + tools CPU) / syncPeriod, as % of one core, at the mode's default
 * syncPeriod (src/config/defaults.ts). Target (#11): ≤ 2 %.
 *   node --import tsx bench/drift/bench.ts [--sizes=10000] [--checks=10] [--modes=nftables,legacy,nft]
 * Prints the machine, the load average and a markdown table.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { processRssBytes, run } from '../../src/exec/run.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import { IPTablesProxier } from '../../src/backends/iptables/proxier.js';
import { KUBE_PROXY_CANARY } from '../../src/backends/iptables/render.js';
import { NFTablesProxier, nftLister, nftTableExists } from '../../src/backends/nftables/proxier.js';
import { nftDriftWatch, type NftDriftWatch } from '../../src/backends/nftables/drift-watch.js';
import { findNft, nftFullReader, nftRunner } from '../../src/exec/nft.js';
import { toolsFor } from '../../src/exec/iptables.js';
import { defaultProxyConfig } from '../../src/config/defaults.js';
import type { Proxier } from '../../src/backends/backend.js';
import { benchOptions, makeWorkload } from '../iptables/workload.js';
import { CLK_TCK, childrenCpuMs } from '../common/proc-cpu.js';
import { runWorkerInNetns } from '../common/netns-worker.js';

type Mode = 'nftables' | 'legacy' | 'nft';
const M = 5;

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));

/** The default syncPeriod of a mode (ms), as the daemon would run its check. */
function syncPeriodMs(mode: Mode): number {
  const c = defaultProxyConfig();
  return mode === 'nftables' ? c.nftables.syncPeriodMs : c.iptables.syncPeriodMs;
}

interface Cost {
  wallMs: number;
  selfMs: number;
  childMs: number;
}

async function measure(k: number, fn: () => Promise<unknown>): Promise<Cost> {
  let wall = 0;
  let self = 0;
  const c0 = childrenCpuMs();
  for (let i = 0; i < k; i++) {
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall += performance.now() - t0;
    const u = process.cpuUsage(u0);
    self += (u.user + u.system) / 1000;
  }
  return { wallMs: wall / k, selfMs: self / k, childMs: (childrenCpuMs() - c0) / k };
}

interface WorkerResult {
  mode: Mode;
  n: number;
  checks: number;
  syncMs: number;
  findings: number;
  /** The check as it runs every period (nftables: the gate is closed, nothing changed). */
  drift: Cost;
  /** nftables: a check whose gate is open (another process touched our table): the read-back. */
  read: Cost | null;
  /** nftables: CPU ms of `nft monitor` while the proxier re-synced 10 services / the whole state. */
  monitorPartialMs: number | null;
  monitorFullMs: number | null;
  /** nftables: the monitor's resident memory after the full re-sync (kB). */
  monitorRssKb: number | null;
  canary: Cost | null;
  periodMs: number;
}

/** CPU ms of a running child (utime + stime of /proc/<pid>/stat). */
function pidCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** The pid of our running `nft monitor` child. */
function monitorPid(): number {
  const kids = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(' ');
  for (const k of kids) {
    if (k === '') continue;
    if (readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0').includes('monitor')) return Number(k);
  }
  throw new Error('no nft monitor child');
}

async function worker(mode: Mode, n: number, checks: number): Promise<void> {
  const w = makeWorkload(n, M);
  const options = benchOptions();
  const logger = createMemoryLogger();
  let p: Proxier;
  let canary: (() => Promise<unknown>) | undefined;
  let watch: NftDriftWatch | undefined;
  if (mode === 'nftables') {
    // As nftablesBackend.create wires it, with the watch kept at hand to open its gate.
    const nft = findNft();
    const wt = nftDriftWatch(nft, 'ip', logger);
    watch = wt;
    const apply = nftRunner(nft, run, (pid) => {
      wt.gate.ownPid(pid);
    });
    p = new NFTablesProxier({ logger, options }, apply, false, nftLister(nft), nftTableExists(nft), {
      script: nftFullReader(nft),
      watch: wt,
    });
  } else {
    const tools = toolsFor(mode, 'IPv4');
    const ip = new IPTablesProxier({ logger, options, tools, canaryPeriodMs: 0, conntrackCleanup: false });
    await ip.start();
    p = ip;
    // The canary poll, as the proxier's monitor runs it every syncPeriod.
    canary = () => run(tools.iptables, ['-w', '-t', 'mangle', '-S', KUBE_PROXY_CANARY], { okCodes: [0, 1] });
  }
  const t0 = performance.now();
  await p.sync(w.initial, true);
  const syncMs = performance.now() - t0;
  w.commit(w.initial);
  // One unmeasured check: the first one pays for lazy work (module warm-up, JIT).
  const first = await p.checkDrift!();
  const drift = await measure(checks, () => p.checkDrift!());
  const canaryCost = canary ? await measure(checks, canary) : null;
  let read: Cost | null = null;
  let monitorPartialMs: number | null = null;
  let monitorFullMs: number | null = null;
  let monitorRssKb: number | null = null;
  if (watch) {
    const gate = watch.gate;
    read = await measure(checks, async () => {
      gate.suspect();
      const f = await p.checkDrift!();
      if (f.length) throw new Error(`drift found: ${JSON.stringify(f)}`);
    });
    const mon = monitorPid();
    const settle = () => new Promise((r) => setTimeout(r, 2000));
    let m0 = pidCpuMs(mon);
    const s10 = w.change(10);
    await p.sync(s10, false);
    w.commit(s10);
    await settle();
    monitorPartialMs = pidCpuMs(mon) - m0;
    m0 = pidCpuMs(mon);
    await p.sync(s10, true);
    await settle();
    monitorFullMs = pidCpuMs(mon) - m0;
    monitorRssKb = (processRssBytes(mon) ?? 0) / 1024;
  }
  await p.close();
  const res: WorkerResult = {
    mode,
    n,
    checks,
    syncMs,
    findings: first.length,
    drift,
    read,
    monitorPartialMs,
    monitorFullMs,
    monitorRssKb,
    canary: canaryCost,
    periodMs: syncPeriodMs(mode),
  };
  console.log(`RESULT ${JSON.stringify(res)}`);
}

const f0 = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);

function main(): void {
  const sizes = (argv.get('sizes') ?? '10000').split(',').map(Number);
  const checks = Number(argv.get('checks') ?? 10);
  const modes = (argv.get('modes') ?? 'nftables,legacy,nft').split(',') as Mode[];
  const self = fileURLToPath(import.meta.url);
  const ver = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return `${cmd}: not found`;
    }
  };
  console.log(
    `machine: nproc=${execFileSync('nproc', { encoding: 'utf8' }).trim()}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${ver('nft', ['--version'])}, ${ver('iptables-legacy', ['--version'])}, ${ver('iptables-nft', ['--version'])}, node ${process.version}; CLK_TCK=${CLK_TCK}`,
  );
  console.log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log('');
  console.log(
    '| mode | services × endpoints | full sync | drift check: wall | daemon CPU | tools CPU | canary poll CPU | CPU per period | syncPeriod | % of one core | findings |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const extra: string[] = [];
  for (const n of sizes) {
    for (const mode of modes) {
      const r = runWorkerInNetns<WorkerResult>(
        `kpt-${process.pid}-drift-${mode}`.slice(0, 30),
        self,
        [mode, String(n), String(checks)],
        { timeoutMs: 900_000, maxBuffer: 64 * 1024 * 1024 },
      );
      if (!r.ok) {
        console.log(`| ${mode} | ${n} × ${M} | worker failed: ${r.error} |`);
        continue;
      }
      const x = r.result;
      const canaryMs = x.canary ? x.canary.selfMs + x.canary.childMs : 0;
      const per = x.drift.selfMs + x.drift.childMs + canaryMs;
      console.log(
        `| ${mode === 'nftables' ? 'nftables' : `iptables-${mode}`} | ${n} × ${M} | ${f0(x.syncMs)} | ${f0(x.drift.wallMs)} | ${f0(x.drift.selfMs)} | ${f0(x.drift.childMs)} | ${x.canary ? f0(canaryMs) : '–'} | ${f0(per)} | ${x.periodMs / 1000} s | ${((100 * per) / x.periodMs).toFixed(2)} % | ${x.findings} |`,
      );
      if (x.read)
        extra.push(
          `nftables ${n} × ${M}: a check whose gate is open (the table read back): wall ${f0(x.read.wallMs)}, daemon CPU ${f0(x.read.selfMs)}, nft CPU ${f0(x.read.childMs)} (${((100 * (x.read.selfMs + x.read.childMs)) / x.periodMs).toFixed(2)} % of one core if it happened every period); nft monitor CPU: ${f0(x.monitorPartialMs ?? 0)} for a partial sync of 10 services, ${f0(x.monitorFullMs ?? 0)} for a full re-sync; its RSS ${((x.monitorRssKb ?? 0) / 1024).toFixed(0)} MB`,
        );
    }
  }
  console.log('');
  for (const l of extra) console.log(l);
  console.log('');
  console.log(
    `load average at end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
}

if (process.argv[2] === '--worker')
  await worker(process.argv[3] as Mode, Number(process.argv[4]), Number(process.argv[5]));
else main();
