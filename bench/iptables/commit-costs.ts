/**
 * Benchmark (not a test; root only): what single iptables commits and reads cost on a node that
 * already holds N services × 5 endpoints of our rules, per backend, each in a network namespace this
 * script creates and removes. The figures docs/benchmarks.md gives for the kernel's floor of a
 * partial sync (nf_tables validates the table when a rule with a jump is committed), for where a
 * dispatch-chain insert lands (`-I KUBE-SERVICES 1` needs no chain fetch, `-I KUBE-SERVICES N` and
 * `-D` do), and for what one read of the nat table costs iptables-legacy (the drift check).
 *   node --import tsx bench/iptables/commit-costs.ts [N=10000] [legacy,nft]
 * Each commit is timed 5 times (median), undone after each try; reads report the tool's CPU.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/exec/run.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import { IPTablesProxier } from '../../src/backends/iptables/proxier.js';
import { toolsFor, type IPTablesBackendKind } from '../../src/exec/iptables.js';
import { childrenCpuMs } from '../common/proc-cpu.js';
import { runWorkerInNetns } from '../common/netns-worker.js';
import { benchOptions, makeWorkload } from './workload.js';

const RULE = '-m comment --comment "bench/x:p80 cluster IP" -m tcp -p tcp -d 10.255.0.1 --dport 80 -j RETURN';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function worker(n: number, backend: IPTablesBackendKind): Promise<void> {
  const tools = toolsFor(backend, 'IPv4');
  const p = new IPTablesProxier({
    logger: createMemoryLogger(),
    options: benchOptions(),
    tools,
    exec: run,
    canaryPeriodMs: 0,
    conntrackCleanup: false,
  });
  await p.sync(makeWorkload(n, 5).initial, true);
  await p.close();
  const restore = (text: string) =>
    run(tools.restore, ['-w', '--noflush'], { input: text, timeoutMs: 300_000 });
  const services = (await run(tools.iptables, ['-w', '-t', 'nat', '-S', 'KUBE-SERVICES'])).stdout
    .split('\n')
    .filter((l) => l.startsWith('-A ')).length;
  /** Median wall ms of `apply` (5 tries), `undo` run untimed after each. */
  const timed = async (apply: string, undo: string): Promise<number> => {
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await restore(apply);
      ms.push(performance.now() - t0);
      await restore(undo);
    }
    return median(ms);
  };
  const nat = (...lines: string[]): string => `*nat\n${lines.join('\n')}\nCOMMIT\n`;
  const rows: [string, number][] = [];
  const add = async (what: string, apply: string, undo: string, setup?: string): Promise<void> => {
    if (setup !== undefined) await restore(setup);
    rows.push([what, await timed(apply, undo)]);
  };
  const head = nat(`-I KUBE-SERVICES 1 ${RULE}`);
  const del = nat(`-D KUBE-SERVICES ${RULE}`);
  const middle = Math.ceil(services / 2);
  await add('new empty chain', nat(':KUBE-BENCH - [0:0]'), nat(':KUBE-BENCH - [0:0]', '-X KUBE-BENCH'));
  await add(
    'new chain with one jump (-j KUBE-MARK-MASQ)',
    nat(':KUBE-BENCH - [0:0]', '-A KUBE-BENCH -j KUBE-MARK-MASQ'),
    nat(':KUBE-BENCH - [0:0]', '-X KUBE-BENCH'),
  );
  await add('-I KUBE-SERVICES 1 (head)', head, del);
  await add(`-I KUBE-SERVICES ${middle} (middle)`, nat(`-I KUBE-SERVICES ${middle} ${RULE}`), del);
  // -D needs the rule in place before each try: put it there first, and back after each.
  await add('-D of one KUBE-SERVICES rule', del, head, head);
  await restore(del);
  const cpu = async (cmd: string, args: string[]): Promise<number> => {
    const c0 = childrenCpuMs();
    await run(cmd, args, { timeoutMs: 300_000 });
    return childrenCpuMs() - c0;
  };
  const reads: [string, number][] = [
    [`${tools.save} -t nat (tool CPU)`, await cpu(tools.save, ['-t', 'nat'])],
    [
      `${tools.iptables} -t nat -S PREROUTING (tool CPU)`,
      await cpu(tools.iptables, ['-w', '-t', 'nat', '-S', 'PREROUTING']),
    ],
  ];
  console.log(`RESULT ${JSON.stringify({ n, backend, services, rows, reads })}`);
}

function main(): void {
  const n = Number(process.argv[2] ?? 10_000);
  const backends = (process.argv[3] ?? 'legacy,nft').split(',') as IPTablesBackendKind[];
  const self = fileURLToPath(import.meta.url);
  console.log(
    `node ${process.version}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log('');
  console.log('| backend | services × endpoints | what | median of 5 |');
  console.log('|---|---|---|---:|');
  for (const backend of backends) {
    const r = runWorkerInNetns<{ rows: [string, number][]; reads: [string, number][] }>(
      `kpt-${process.pid}-cc-${backend}`,
      self,
      [String(n), backend],
      { timeoutMs: 1_800_000, maxBuffer: 16 * 1024 * 1024 },
    );
    if (!r.ok) {
      console.log(`| ${backend} | ${n} × 5 | worker failed: ${r.error} | |`);
      continue;
    }
    for (const [what, ms] of r.result.rows)
      console.log(`| ${backend} | ${n} × 5 | restore: ${what} | ${ms.toFixed(0)} ms |`);
    for (const [what, ms] of r.result.reads)
      console.log(`| ${backend} | ${n} × 5 | ${what} | ${ms.toFixed(0)} ms (one run) |`);
  }
  console.log(
    `\nload average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
}

if (process.argv[2] === '--worker')
  await worker(Number(process.argv[3]), process.argv[4] as IPTablesBackendKind);
else main();
