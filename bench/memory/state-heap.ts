/**
 * The live heap the daemon holds per Service outside the proxier, in-process and deterministic: the
 * manifests source reads a folder of N Services × 5 endpoints laid out as bench/memory/bench.ts lays
 * it out (one `svc-i.yaml` per Service: its Service and slice as JSON documents, plus the Node), its
 * events go into a StateTracker as the daemon's do, and the IPv4 state is built and committed (the
 * first sync's pure part). After each stage a full collection (`global.gc()`) and V8's heapUsed:
 *   loaded   source started to its `synced` events, every event applied to the tracker
 *   built    + build('IPv4') and commit(): the service-port states, endpoints, sorted keys
 *   churned  every Service's file rewritten once with new endpoints (the daemon bench's churn, write
 *            then rename), rescanned through the source's watch, built and committed: each committed
 *            entry now has its change fingerprint, as after a long churn
 *   no source  then the source stopped and dropped: what it kept for itself (its per-file records,
 *            the delivered map, allocations) is the difference
 * Each case runs in a fresh child process (`node --expose-gc --import tsx`), so roots can be compared
 * in one run, alternating:
 *   node --import tsx bench/memory/state-heap.ts [N=10000 ...] [--root DIR ...] [--reps R]
 * `--root DIR` imports src/ from another checkout (e.g. /work/main for main); default this checkout.
 * KPT_STATE_HEAP_SNAPSHOT=DIR writes a heap snapshot of each child into DIR, at "built" or at the stage
 * KPT_STATE_HEAP_SNAPSHOT_AT names ("churned").
 * Prints a markdown table (MB are 10^6 bytes; "B/svc" is bytes per Service of the stage's growth).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { nodeFile, serviceFile } from './fixture.js';

const HERE = fileURLToPath(new URL('../..', import.meta.url));
const NODE_NAME = 'node-1';

function writeFolder(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-state-heap-'));
  writeFileSync(join(dir, 'node.yaml'), nodeFile(NODE_NAME, '10.0.0.2'));
  writeServices(dir, n);
  return dir;
}

/** Every Service's file at generation 0 (before each case: the previous case's churn moved them on). */
function writeServices(dir: string, n: number): void {
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `svc-${i}.yaml`), serviceFile(i));
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapMB(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 1e6;
}

interface ChildResult {
  base: number;
  loaded: number;
  built: number;
  churned: number;
  noSource: number;
  ports: number;
}

/** KPT_STATE_HEAP_SNAPSHOT=DIR: a heap snapshot at KPT_STATE_HEAP_SNAPSHOT_AT (a stage; "built"). */
function snapshot(stage: string, ports: number): void {
  const dir = process.env.KPT_STATE_HEAP_SNAPSHOT;
  if (!dir || stage !== (process.env.KPT_STATE_HEAP_SNAPSHOT_AT ?? 'built')) return;
  mkdirSync(dir, { recursive: true });
  writeHeapSnapshot(join(dir, `state-heap-${stage}-${ports}-${process.pid}.heapsnapshot`));
}

/** One measurement in this process (run with --expose-gc). */
async function child(root: string, dir: string): Promise<ChildResult> {
  if (!gc) throw new Error('run the child with node --expose-gc');
  const src = (p: string): string => pathToFileURL(join(root, 'src', p)).href;
  const { createManifestSource } = (await import(
    src('sources/manifest-source.ts')
  )) as typeof import('../../src/sources/manifest-source.js');
  const { StateTracker } = (await import(
    src('proxy/state-tracker.ts')
  )) as typeof import('../../src/proxy/state-tracker.js');
  const { createMemoryLogger } = (await import(
    src('observability/logger.ts')
  )) as typeof import('../../src/observability/logger.js');
  const silent = createMemoryLogger();
  const logger = { ...silent, debug: () => undefined, trace: () => undefined, child: () => logger };
  const base = heapMB();
  let source: ReturnType<typeof createManifestSource> | undefined = createManifestSource({
    dir,
    scope: { nodeName: NODE_NAME, serviceCIDRs: true },
    logger,
    serviceClusterIPRanges: ['172.30.0.0/16'],
    nodePortRange: { min: 30000, max: 32767 },
    rescanIntervalMs: 0,
  });
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE_NAME, waitForNode: true });
  let sliceUpdates = 0;
  let lastEvent = 0;
  await source.start((ev) => {
    lastEvent = Date.now();
    if (ev.type === 'update' && ev.object.kind === 'EndpointSlice') sliceUpdates++;
    tracker.onEvent(ev);
  });
  const loaded = heapMB();
  const state = tracker.build('IPv4');
  tracker.commit(state);
  const ports = state.services.size;
  const built = heapMB();
  snapshot('built', ports);
  // Churn's steady state: every Service's file rewritten once with new endpoints (as the daemon
  // bench's churn does, write then rename), rescanned, built and committed, so that every committed
  // entry carries its change fingerprint, as after an hour of churn.
  for (let i = 0; i < ports; i++) {
    const tmp = join(dir, `.svc-${i}.yaml.tmp`);
    writeFileSync(tmp, serviceFile(i, 1));
    renameSync(tmp, join(dir, `svc-${i}.yaml`));
  }
  // Every slice updated, then the watch quiet for 2 s (a scan still reading would hold its files).
  for (let waited = 0; sliceUpdates < ports || Date.now() - lastEvent < 2000; waited += 50) {
    if (waited > 300_000) throw new Error(`only ${sliceUpdates} of ${ports} slices were updated`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const next = tracker.build('IPv4');
  if (next.changedServices.size !== ports) throw new Error(`${next.changedServices.size} changed`);
  tracker.commit(next);
  const churned = heapMB();
  snapshot('churned', ports);
  await source.stop();
  source = undefined;
  // A closed fs.watch handle lets go of its listeners (and with them the source) a turn later.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 10));
  const noSource = heapMB();
  // Keep the tracker (and so the state) alive until here.
  if (tracker.build('IPv4').services.size !== ports) throw new Error('state changed');
  return { base, loaded, built, churned, noSource, ports };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const r = await child(args[1]!, args[2]!);
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const sizes: number[] = [];
  const roots: string[] = [];
  let reps = 1;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--root') roots.push(resolve(args[++i]!));
    else if (args[i] === '--reps') reps = Number(args[++i]);
    else sizes.push(Number(args[i]));
  }
  if (sizes.length === 0) sizes.push(10_000);
  if (roots.length === 0) roots.push(HERE);
  console.log(
    `node ${process.version}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    '| root | services | loaded (validated objects, tracker, source) | state (build + commit) | heapUsed at "built" | B/svc above base | after churn | source\'s own records (after churn) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const n of sizes) {
    const dir = writeFolder(n);
    try {
      for (let rep = 0; rep < reps; rep++) {
        for (const root of roots) {
          writeServices(dir, n);
          const out = spawnSync(
            process.execPath,
            [
              '--expose-gc',
              '--max-semi-space-size=4',
              '--import',
              'tsx',
              fileURLToPath(import.meta.url),
              '--child',
              root,
              dir,
            ],
            { encoding: 'utf8', cwd: HERE, maxBuffer: 1 << 26, env: process.env },
          );
          if (out.status !== 0) throw new Error(`child failed (${out.status}): ${out.stderr}`);
          const r = JSON.parse(out.stdout.trim().split('\n').pop()!) as ChildResult;
          if (r.ports !== n) throw new Error(`expected ${n} service ports, got ${r.ports}`);
          const f = (x: number): string => `${x.toFixed(1)} MB`;
          console.log(
            `| ${root} | ${n} | ${f(r.loaded - r.base)} | ${f(r.built - r.loaded)} | ${f(r.built)} | ${(((r.built - r.base) * 1e6) / n).toFixed(0)} | ${f(r.churned)} | ${f(r.churned - r.noSource)} |`,
          );
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

await main();
