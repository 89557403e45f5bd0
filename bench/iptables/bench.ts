/**
 * Benchmark (not a test): the real IPTablesProxier at 1k/5k/10k/30k services × 5 endpoints, on
 * iptables-legacy and iptables-nft, each case in a fresh network namespace, beside an upstream-shaped
 * restore (one `--noflush` restore declaring every chain) of the same ruleset. Needs root.
 *   node --import tsx bench/iptables/bench.ts [N...]            (default 1000 5000 10000 30000)
 *   BENCH_TIMEOUT_S=120 bounds each timed step (printed as "> 120 s")
 *   BENCH_BACKENDS=nft (or legacy) runs one backend only; BENCH_SKIP_UPSTREAM=1 skips the upstream-shaped restore
 * "partial, 1 svc" is the median of 5 syncs (each changing another service's endpoints), shown with our
 * compute in it; "kernel floor" is the median of 5 restores of the smallest commit of the same kind at
 * that size (one new chain holding one jump, which makes nf_tables validate the whole table).
 * Prints the machine and a markdown table.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run, ExecError, type RunOptions, type RunResult } from '../../src/exec/run.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import { IPTablesProxier } from '../../src/backends/iptables/proxier.js';
import { renderIPTables } from '../../src/backends/iptables/render.js';
import { toolsFor, type IPTablesBackendKind } from '../../src/exec/iptables.js';
import { benchOptions, makeWorkload } from './workload.js';
import { runWorkerInNetns } from '../common/netns-worker.js';

const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 120);
const M = 5;

interface WorkerResult {
  n: number;
  backend: IPTablesBackendKind;
  renderMs: number;
  initialMs: number | null;
  fullMs: number | null;
  restartFullMs: number | null;
  partial1Ms: number | null;
  partial1ComputeMs: number | null;
  partial10Ms: number | null;
  floorMs: number | null;
  upstreamMs: number | null;
  computeShare: string;
  rules: number;
  chains: number;
}

async function timed(fn: () => Promise<unknown>): Promise<number | null> {
  const t0 = performance.now();
  try {
    await fn();
    return performance.now() - t0;
  } catch (err) {
    if (err instanceof ExecError && err.code === 'KP_ERR_EXEC_TIMEOUT') return null;
    throw err;
  }
}

async function worker(n: number, backend: IPTablesBackendKind): Promise<void> {
  const w = makeWorkload(n, M);
  const opts = benchOptions();
  const tools = toolsFor(backend, 'IPv4');
  const timeoutExec = async (cmd: string, args: readonly string[], o?: RunOptions): Promise<RunResult> => {
    const r = await run(cmd, args, { ...o, timeoutMs: TIMEOUT_S * 1000 });
    const input = o?.input ?? '';
    if (process.env.BENCH_DEBUG && input.length < 5000)
      console.error(`${cmd} ${args.join(' ')} ${r.durationMs.toFixed(0)} ms\n${input}`);
    return r;
  };
  const mk = (): IPTablesProxier =>
    new IPTablesProxier({
      logger: createMemoryLogger(),
      options: opts,
      tools,
      exec: timeoutExec,
      canaryPeriodMs: 0,
      conntrackCleanup: false,
      ...(process.env.BENCH_CHUNK ? { maxChainsPerRestore: Number(process.env.BENCH_CHUNK) } : {}),
    });

  // Render alone, warm (second run), as the daemon's steady state sees it.
  renderIPTables(w.initial, opts, { full: true });
  const r0 = performance.now();
  const plan = renderIPTables(w.initial, opts, { full: true });
  const renderMs = performance.now() - r0;

  const p = mk();
  await p.start();
  const initialMs = await timed(() => p.sync(w.initial, true));
  const initialStats = p.stats();
  w.commit(w.initial);
  const fullMs = initialMs === null ? null : await timed(() => p.sync(w.initial, true));
  // A restarted proxy has no record of what is in the kernel: its first full sync compares the
  // iptables-save text with what its rules print as and adopts the chains that match.
  const restarted = mk();
  const restartFullMs = initialMs === null ? null : await timed(() => restarted.sync(w.initial, true));
  if (process.env.BENCH_DEBUG)
    console.error('initial', JSON.stringify(initialStats), '\nrestart', JSON.stringify(restarted.stats()));
  let partial1Ms: number | null = null;
  let partial1ComputeMs: number | null = null;
  let partial10Ms: number | null = null;
  let floorMs: number | null = null;
  if (initialMs !== null) {
    // Keep using `p` (one more full sync first) for the partial syncs.
    await p.sync(w.initial, true);
    const ones: number[] = [];
    const computes: number[] = [];
    for (let rep = 0; rep < 5; rep++) {
      const s1 = w.change(1);
      const ms = await timed(() => p.sync(s1, false));
      if (ms === null) break;
      ones.push(ms);
      computes.push(p.stats()?.renderMs ?? 0);
      if (process.env.BENCH_DEBUG) console.error('partial1', JSON.stringify(p.stats()));
      w.commit(s1);
    }
    if (ones.length === 5) {
      partial1Ms = median(ones);
      partial1ComputeMs = median(computes);
    }
    // The floor: one commit of the same kind (a rule with a jump) at this table size.
    const floors: number[] = [];
    for (let rep = 0; rep < 5; rep++) {
      const add = '*nat\n:KUBE-BENCH-FLOOR - [0:0]\n-A KUBE-BENCH-FLOOR -j KUBE-MARK-MASQ\nCOMMIT\n';
      const ms = await timed(() => run(tools.restore, ['-w', '--noflush', '--counters'], { input: add }));
      if (ms === null) break;
      floors.push(ms);
      const del = '*nat\n:KUBE-BENCH-FLOOR - [0:0]\n-X KUBE-BENCH-FLOOR\nCOMMIT\n';
      await run(tools.restore, ['-w', '--noflush'], { input: del, timeoutMs: TIMEOUT_S * 1000 });
    }
    if (floors.length === 5) floorMs = median(floors);
    const s10 = w.change(10);
    partial10Ms = await timed(() => p.sync(s10, false));
    w.commit(s10);
  }
  const computeShare =
    initialStats && initialStats.restoreMs > 0
      ? `${((100 * initialStats.renderMs) / (initialStats.restoreMs + initialStats.saveMs)).toFixed(0)}%`
      : 'n/a';
  // Upstream-shaped: every chain declared in one --noflush restore, over the existing ruleset.
  const up = renderIPTables(w.initial, opts, { full: true });
  const upstreamMs = process.env.BENCH_SKIP_UPSTREAM
    ? -1
    : await timed(() =>
        run(tools.restore, ['-w', '--noflush', '--counters'], {
          input: up.restore,
          timeoutMs: TIMEOUT_S * 1000,
        }),
      );
  await p.close();
  const res: WorkerResult = {
    n,
    backend,
    renderMs,
    initialMs,
    fullMs,
    restartFullMs,
    partial1Ms,
    partial1ComputeMs,
    partial10Ms,
    floorMs,
    upstreamMs,
    computeShare,
    rules: plan.ruleCounts.nat.total + plan.ruleCounts.filter.total,
    chains: plan.activeNatChains.size,
  };
  console.log(`RESULT ${JSON.stringify(res)}`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fmt(ms: number | null): string {
  if (ms === -1) return 'skipped';
  if (ms === null) return `> ${TIMEOUT_S} s`;
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

function main(): void {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  const Ns = sizes.length ? sizes : [1000, 5000, 10000, 30000];
  const self = fileURLToPath(import.meta.url);
  const ipt = (cmd: string): string => {
    try {
      return execFileSync(cmd, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return `${cmd}: not found`;
    }
  };
  console.log(
    `machine: nproc=${execFileSync('nproc', { encoding: 'utf8' }).trim()}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${ipt('iptables-legacy')}, ${ipt('iptables-nft')}, node ${process.version}`,
  );
  console.log('');
  console.log(
    '| services × endpoints | backend | rules / nat chains | render | initial full sync (empty ns) | full sync (steady) | full sync after restart | partial, 1 svc changed (our compute) | kernel floor, 1 commit | partial 1 / floor | partial, 10 svcs changed | upstream-shaped full --noflush | our compute / iptables time (initial full sync) |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const n of Ns) {
    const backends = (process.env.BENCH_BACKENDS ?? 'legacy,nft').split(',') as IPTablesBackendKind[];
    for (const backend of backends) {
      const r = runWorkerInNetns<WorkerResult>(
        `kpt-${process.pid}-bench-${backend}${n}`.slice(0, 30),
        self,
        [String(n), backend],
        { timeoutMs: (TIMEOUT_S * 8 + 120) * 1000, maxBuffer: 64 * 1024 * 1024 },
      );
      if (process.env.BENCH_DEBUG) console.error(r.stderr);
      if (!r.ok) {
        console.log(`| ${n} × ${M} | ${backend} | worker failed: ${r.error} |`);
        continue;
      }
      const x = r.result;
      console.log(
        `| ${n} × ${M} | ${backend} | ${x.rules} / ${x.chains} | ${fmt(x.renderMs)} | ${fmt(x.initialMs)} | ${fmt(x.fullMs)} | ${fmt(x.restartFullMs)} | ${fmt(x.partial1Ms)} (${fmt(x.partial1ComputeMs)}) | ${fmt(x.floorMs)} | ${x.partial1Ms !== null && x.floorMs ? `${(x.partial1Ms / x.floorMs).toFixed(2)}x` : 'n/a'} | ${fmt(x.partial10Ms)} | ${fmt(x.upstreamMs)} | ${x.computeShare} |`,
      );
    }
  }
}

if (process.argv[2] === '--worker')
  await worker(Number(process.argv[3]), process.argv[4] as IPTablesBackendKind);
else main();
