/**
 * Memory of the real daemon at scale (root): a fresh lab node per mode, the built daemon
 * (bin/kube-proxy.js; run `npm run build` first) on a manifests folder of N Services × 5 endpoints,
 * one file per Service (its Service and slice as JSON documents), and VmHWM / VmRSS read from
 * /proc/<daemon pid>/status after the first full sync. Optionally a churn run afterwards: `rate`
 * Services a second get a new set of endpoints (their file rewritten), with VmRSS and VmHWM every minute.
 *   node --import tsx bench/memory/bench.ts [services=10000]
 *     [modes=nftables,iptables-legacy,iptables-nft; also userspace, and ipvs in the IPVS VM]
 *     [churnSeconds=0] [rate=20]
 * Prints a markdown table (and one row per churn minute). KPT_BENCH_DRIFT_SYNC=1 (iptables modes) then
 * forces a full sync of the running daemon and prints its own peak; KPT_BENCH_RESTART=1 then restarts
 * the daemon on the programmed node and prints a row for its first full sync (it adopts the rules in place).
 */
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, type LabProcess } from '../../e2e/lab/topology.js';
import { pollUntil } from '../../e2e/lab/poll.js';
import { nodeFile, serviceFile } from './fixture.js';

// userspace: the relay with its NAT portals (the default --userspace-portals) through iptables-nft.
// ipvs: run inside the IPVS VM (e2e/vm/run-in-ipvs-vm.sh; this kernel has no IPVS).
type Mode = 'nftables' | 'iptables-legacy' | 'iptables-nft' | 'userspace' | 'ipvs';
const NODE_NAME = 'node-1';
// KPT_BENCH_ROOT: another checkout's build (a baseline to compare with, in the same run).
const ROOT = process.env.KPT_BENCH_ROOT ?? fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/kube-proxy.js');
// The environment and node flags of bin/kube-proxy.js's `#!/usr/bin/env -S [NAME=VALUE...] node ...`
// line: the daemon runs with them when started as a program (the image, the DaemonSet), so the
// benchmark starts it with them too.
const SHEBANG = (/^#!\S*env -S (.*)$/m.exec(readFileSync(BIN, 'utf8').split('\n')[0] ?? '')?.[1] ?? '')
  .split(' ')
  .filter(Boolean);
const NODE_AT = SHEBANG.indexOf('node');
const SHEBANG_ENV = Object.fromEntries(
  SHEBANG.slice(0, Math.max(0, NODE_AT)).map((a) => a.split('=', 2) as [string, string]),
);
const SHEBANG_FLAGS = NODE_AT < 0 ? [] : SHEBANG.slice(NODE_AT + 1);
const DIST = join(ROOT, 'dist/main.js');

const n = Number(process.argv[2] ?? 10_000);
const modes = (process.argv[3] ?? 'nftables,iptables-legacy,iptables-nft').split(',') as Mode[];
const churnSeconds = Number(process.argv[4] ?? 0);
const rate = Number(process.argv[5] ?? 20);

function status(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss: mb('VmRSS'), hwm: mb('VmHWM') };
}

/**
 * The daemon's child processes (nft monitor, the kept nft -i, iptables tools of the moment) with
 * their VmRSS, e.g. "nft 171 + nft 4 MB": the pod's memory counts them too.
 */
function children(pid: number): string {
  const out: string[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) {
        if (c === '') continue;
        const comm = readFileSync(`/proc/${c}/comm`, 'utf8').trim();
        out.push(`${comm} ${status(Number(c)).rss.toFixed(0)}`);
      }
  } catch {
    /* a child exited while we looked */
  }
  return out.length === 0 ? '-' : `${out.join(' + ')} MB`;
}

const fullSyncs = (d: LabProcess): number =>
  d.stderr.split('\n').filter((l) => /"msg":"sync done"/.test(l) && /"full":true/.test(l)).length;
/**
 * Counts the daemon's "sync done" lines as they come. The lab keeps only the last 4 MiB of a
 * process's output, which at -v=2 under churn is ~15 minutes, so counting that tail undercounted
 * longer runs; this is called every second and counts the lines newer than the last one counted.
 */
function syncCounter(d: LabProcess): () => number {
  let count = 0;
  let lastTime = '';
  return () => {
    for (const l of d.stderr.split('\n')) {
      if (!/"msg":"sync done"/.test(l)) continue;
      const time = /"time":"([^"]+)"/.exec(l)?.[1] ?? '';
      if (time <= lastTime) continue;
      lastTime = time;
      count++;
    }
    return count;
  };
}

/**
 * KPT_BENCH_TRACE=FILE: the daemon's VmRSS every 100 ms (ms since `t0`) and its output, written to
 * FILE.<label> when the returned function is called; a no-op without the variable.
 */
function traceDaemon(d: LabProcess, t0: number, label: string): () => void {
  const file = process.env.KPT_BENCH_TRACE;
  if (!file) return () => undefined;
  const trace: string[] = [];
  const sampler = setInterval(() => {
    try {
      trace.push(`${Date.now() - t0} ${status(d.pid).rss.toFixed(0)}`);
    } catch {
      /* exited */
    }
  }, 100);
  return () => {
    clearInterval(sampler);
    writeFileSync(`${file}.${label}`, [...trace, '--- stdout', d.stdout, '--- stderr', d.stderr].join('\n'));
  };
}

async function runMode(mode: Mode): Promise<void> {
  const lab = await createLab({ pods: ['b1'] });
  const dir = mkdtempSync(join(tmpdir(), 'kpt-memory-'));
  let daemon: LabProcess | undefined;
  try {
    writeFileSync(join(dir, 'node.yaml'), nodeFile(NODE_NAME, lab.node.ip));
    for (let i = 0; i < n; i++) writeFileSync(join(dir, `svc-${i}.yaml`), serviceFile(i, 0));
    const t0 = Date.now();
    const start = (): LabProcess =>
      lab.spawnInNode(
        process.execPath,
        [
          // e.g. KPT_BENCH_NODE_FLAGS=--heapsnapshot-signal=SIGUSR2 (KPT_BENCH_SNAPSHOT=1 then takes one)
          ...SHEBANG_FLAGS,
          ...(process.env.KPT_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
          BIN,
          `--proxy-mode=${mode === 'iptables-legacy' || mode === 'iptables-nft' ? 'iptables' : mode}`,
          `--manifests=${dir}`,
          `--hostname-override=${NODE_NAME}`,
          '--cluster-cidr=10.244.0.0/16',
          '--service-cluster-ip-range=172.30.0.0/16',
          '--healthz-bind-address=',
          '--metrics-bind-address=',
          '--logging-format=json',
          '-v=2',
        ],
        {
          ...SHEBANG_ENV,
          KUBE_PROXY_IPTABLES_BACKEND: mode === 'iptables-legacy' ? 'legacy' : 'nft',
        },
      );
    daemon = start();
    const d = daemon;
    const endTrace = traceDaemon(d, t0, mode);
    // KPT_BENCH_TIMEOUT_S: how long to wait for the first full sync (default 600 s). When it does
    // not come, the row says so with the memory held until then, and the next mode runs.
    const timeoutMs = Number(process.env.KPT_BENCH_TIMEOUT_S ?? 600) * 1000;
    try {
      await pollUntil('the first full sync', () => Promise.resolve(fullSyncs(d) > 0 || undefined), {
        timeoutMs,
        intervalMs: 500,
        diagnostics: () => d.tail(20),
      });
    } catch (e) {
      const s = status(d.pid);
      endTrace();
      console.log(
        `| ${mode} | ${n} x 5 | no full sync in ${timeoutMs / 1000} s | ${s.hwm.toFixed(0)} MB | ${s.rss.toFixed(0)} MB | ${children(d.pid)} | load ${loadavg()[0]!.toFixed(1)} |`,
      );
      console.error(e instanceof Error ? e.message.split('\n')[0] : e);
      console.error(
        d.stderr
          .split('\n')
          .filter((l) => /"level":[4-6]0/.test(l))
          .slice(-5)
          .join('\n'),
      );
      return;
    }
    const firstMs = Date.now() - t0;
    // Let the post-sync garbage settle (a rescan or two runs meanwhile).
    await new Promise((r) => setTimeout(r, 10_000));
    const s = status(d.pid);
    // With churn the trace runs on through it (KPT_BENCH_TRACE shows the churn's RSS and GC lines too).
    if (churnSeconds <= 0) endTrace();
    console.log(
      `| ${mode} | ${n} x 5 | ${(firstMs / 1000).toFixed(1)} s | ${s.hwm.toFixed(0)} MB | ${s.rss.toFixed(0)} MB | ${children(d.pid)} | load ${loadavg()[0]!.toFixed(1)} |`,
    );
    if (process.env.KPT_BENCH_SNAPSHOT) {
      process.kill(d.pid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 60_000));
      console.log(`heap snapshot written in ${process.cwd()}`);
    }
    if (churnSeconds > 0) {
      // Churn: `rate` Services a second get new endpoints (atomic rewrite: write then rename).
      const start = Date.now();
      let gen = 1;
      let changes = 0;
      let nextReport = start + 60_000;
      const syncs = syncCounter(d);
      const syncs0 = syncs();
      // KPT_BENCH_SNAPSHOT_MINUTES=1,10: a heap snapshot at those churn minutes (needs the
      // --heapsnapshot-signal=SIGUSR2 node flag in KPT_BENCH_NODE_FLAGS); compare two in DevTools.
      const snapshotAt = new Set(
        (process.env.KPT_BENCH_SNAPSHOT_MINUTES ?? '').split(',').filter(Boolean).map(Number),
      );
      while (Date.now() - start < churnSeconds * 1000) {
        const tick = Date.now();
        for (let k = 0; k < rate; k++) {
          const i = Math.floor(Math.random() * n);
          const tmp = join(dir, `.svc-${i}.tmp`);
          writeFileSync(tmp, serviceFile(i, gen++));
          renameSync(tmp, join(dir, `svc-${i}.yaml`));
          changes++;
        }
        const synced = syncs();
        if (Date.now() >= nextReport) {
          const m = status(d.pid);
          console.log(
            `| ${mode} churn | minute ${Math.round((Date.now() - start) / 60_000)} | ${changes} changes, ${synced - syncs0} syncs | ${m.hwm.toFixed(0)} MB | ${m.rss.toFixed(0)} MB | ${children(d.pid)} | load ${loadavg()[0]!.toFixed(1)} |`,
          );
          const minute = Math.round((Date.now() - start) / 60_000);
          if (snapshotAt.has(minute)) process.kill(d.pid, 'SIGUSR2');
          nextReport += 60_000;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
      }
      endTrace();
    }
    if (process.env.KPT_BENCH_DRIFT_SYNC && (mode === 'iptables-legacy' || mode === 'iptables-nft')) {
      // A running daemon's later full sync (as its hourly one): it reads the saves of the whole
      // ruleset with its record of what it wrote intact. Forced by removing our jump from nat
      // PREROUTING (the drift check, every syncPeriod, finds it), with the peak counter reset first
      // (clear_refs 5), so the row's VmHWM is this sync's alone.
      const before = fullSyncs(d);
      writeFileSync(`/proc/${d.pid}/clear_refs`, '5');
      const f0 = Date.now();
      const endDriftTrace = traceDaemon(d, f0, `${mode}.drift`);
      await lab.exec(lab.node, mode === 'iptables-legacy' ? 'iptables-legacy' : 'iptables-nft', [
        '-w',
        '-t',
        'nat',
        '-D',
        'PREROUTING',
        '-m',
        'comment',
        '--comment',
        'kubernetes service portals',
        '-j',
        'KUBE-SERVICES',
      ]);
      await pollUntil(
        'the full sync after the drift',
        () => Promise.resolve(fullSyncs(d) > before || undefined),
        {
          timeoutMs: 600_000,
          intervalMs: 500,
          diagnostics: () => d.tail(20),
        },
      );
      const fullMs = Date.now() - f0;
      await new Promise((res) => setTimeout(res, 10_000));
      const fs = status(d.pid);
      endDriftTrace();
      console.log(
        `| ${mode} later full sync | ${n} x 5 | ${(fullMs / 1000).toFixed(1)} s (drift found, then synced) | ${fs.hwm.toFixed(0)} MB | ${fs.rss.toFixed(0)} MB | ${children(d.pid)} | load ${loadavg()[0]!.toFixed(1)} |`,
      );
    }
    if (process.env.KPT_BENCH_RESTART) {
      // A restart onto the programmed node: the first full sync then reads and parses saves of the
      // whole ruleset (iptables) and adopts what is already there.
      await daemon.stop(30_000);
      const r0 = Date.now();
      daemon = start();
      const r = daemon;
      const endRestartTrace = traceDaemon(r, r0, `${mode}.restart`);
      await pollUntil(
        'the first full sync after the restart',
        () => Promise.resolve(fullSyncs(r) > 0 || undefined),
        {
          timeoutMs: 600_000,
          intervalMs: 500,
          diagnostics: () => r.tail(20),
        },
      );
      const restartMs = Date.now() - r0;
      await new Promise((res) => setTimeout(res, 10_000));
      const rs = status(r.pid);
      endRestartTrace();
      console.log(
        `| ${mode} restart | ${n} x 5 | ${(restartMs / 1000).toFixed(1)} s | ${rs.hwm.toFixed(0)} MB | ${rs.rss.toFixed(0)} MB | ${children(r.pid)} | load ${loadavg()[0]!.toFixed(1)} |`,
      );
    }
  } finally {
    await daemon?.stop(30_000);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!existsSync(DIST)) throw new Error('dist/main.js is missing: run `npm run build` first');
console.log(
  `node ${process.version}; daemon: ${Object.entries(SHEBANG_ENV)
    .map(([k, v]) => `${k}=${v} `)
    .join('')}node ${[...SHEBANG_FLAGS, BIN].join(' ')}; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(
  '| mode | services x endpoints / churn | state -> first full sync | VmHWM | VmRSS | children: VmRSS | load |',
);
console.log('|---|---|---:|---:|---:|---|---|');
for (const mode of modes) await runMode(mode);
