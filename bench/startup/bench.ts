/**
 * Startup on a big state: how long the manifests source takes to load N Services + N EndpointSlices
 * (5 endpoints each) from disk, in several file layouts, and how much memory it takes. Each case runs
 * in a fresh child process (a cold heap, its own peak RSS). Prints a markdown table.
 *   node --import tsx bench/startup/bench.ts [services=10000] [layout...]
 *   node --import tsx bench/startup/bench.ts --write <dir> <layout> <n>   (then --child <dir> <n>)
 * Layouts:
 *   json-files   N+2 files: node.json, cidr.json, svc-i.json (a v1 List: the Service and its slice)
 *   json-docs    N+2 .yaml files holding JSON documents separated by `---` (kubectl -o json, joined)
 *   yaml-files   N+2 .yaml files in block YAML (kubectl -o yaml style), two documents each
 *   json-lists   two big files: services.json (a List: Node, ServiceCIDR, N Services), slices.json
 *   yaml-lists   the same two Lists in block YAML (.yaml)
 * "load" is start() to the last 'synced' event (read + parse + validate + compose + deliver); "build"
 * is the desired state built from those events by the StateTracker (the first sync's pure part).
 * "main thread CPU" is the load's CPU time on the main thread alone: on a shared machine, the wall
 * time without the waits for a CPU. KPT_BENCH_NODE_FLAGS (space-separated) are passed to each child,
 * e.g. --max-semi-space-size=4 as bin/kube-proxy.js runs the daemon.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { mainThreadCpuMs } from '../common/proc-cpu.js';

type Obj = Record<string, unknown>;
export const LAYOUTS = ['json-files', 'json-docs', 'yaml-files', 'json-lists', 'yaml-lists'] as const;
type Layout = (typeof LAYOUTS)[number];

const NODE = 'node-1';

function ip(base: number, i: number): string {
  const v = base + i;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Service i: ClusterIP in 172.30.0.0/16 + 10.96/12 style addresses, every tenth a NodePort. */
export function service(i: number): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: `ns${i % 50}`, name: `svc-${i}`, labels: { app: `app-${i}` } },
    spec: {
      type: i % 10 === 0 ? 'NodePort' : 'ClusterIP',
      clusterIP: ip(0x0a600000, i + 10),
      selector: { app: `app-${i}` },
      ports: [
        {
          name: 'http',
          port: 80,
          protocol: 'TCP',
          targetPort: 8080,
          ...(i % 10 === 0 ? { nodePort: 30000 + (i % 2700) } : {}),
        },
      ],
    },
  };
}

/** The slice of Service i: 5 ready endpoints on nodes node-0..4. */
export function slice(i: number): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: `ns${i % 50}`,
      name: `svc-${i}-abcde`,
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: 5 }, (_, k) => ({
      addresses: [ip(0x0af40000, i * 5 + k)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${k}`,
      targetRef: { kind: 'Pod', namespace: `ns${i % 50}`, name: `app-${i}-pod-${k}` },
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const nodeObj: Obj = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: NODE },
  spec: { podCIDRs: ['10.244.0.0/24'] },
  status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] },
};
const cidrObj: Obj = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name: 'kubernetes' },
  spec: { cidrs: ['10.96.0.0/12'] },
};

const yamlDocs = (objs: readonly Obj[]): string => objs.map((o) => stringify(o)).join('---\n');
const jsonDocs = (objs: readonly Obj[]): string =>
  objs.map((o) => JSON.stringify(o, null, 2)).join('\n---\n') + '\n';
const list = (items: readonly Obj[]): Obj => ({ apiVersion: 'v1', kind: 'List', items });

/** Writes the layout's files for n Services into dir. */
export function writeLayout(dir: string, layout: Layout, n: number): void {
  mkdirSync(dir, { recursive: true });
  const w = (name: string, text: string): void => {
    writeFileSync(join(dir, name), text);
  };
  switch (layout) {
    case 'json-files':
      w('node.json', JSON.stringify(nodeObj, null, 2));
      w('cidr.json', JSON.stringify(cidrObj, null, 2));
      for (let i = 0; i < n; i++) w(`svc-${i}.json`, JSON.stringify(list([service(i), slice(i)]), null, 2));
      return;
    case 'json-docs':
      w('node.yaml', jsonDocs([nodeObj]));
      w('cidr.yaml', jsonDocs([cidrObj]));
      for (let i = 0; i < n; i++) w(`svc-${i}.yaml`, jsonDocs([service(i), slice(i)]));
      return;
    case 'yaml-files':
      w('node.yaml', yamlDocs([nodeObj]));
      w('cidr.yaml', yamlDocs([cidrObj]));
      for (let i = 0; i < n; i++) w(`svc-${i}.yaml`, yamlDocs([service(i), slice(i)]));
      return;
    case 'json-lists': {
      const svcs = Array.from({ length: n }, (_, i) => service(i));
      const slices = Array.from({ length: n }, (_, i) => slice(i));
      // Compact JSON, as `kubectl get -o json` of a big list would be after `jq -c`: the 8 MiB cap.
      w('services.json', JSON.stringify(list([nodeObj, cidrObj, ...svcs])));
      w('slices.json', JSON.stringify(list(slices)));
      return;
    }
    case 'yaml-lists': {
      const svcs = Array.from({ length: n }, (_, i) => service(i));
      const slices = Array.from({ length: n }, (_, i) => slice(i));
      w('services.yaml', stringify(list([nodeObj, cidrObj, ...svcs])));
      w('slices.yaml', stringify(list(slices)));
      return;
    }
  }
}

interface ChildResult {
  loadMs: number;
  loadCpuMs: number;
  /** The main thread's CPU time during the load (no waits for a CPU, no GC helper threads). */
  loadMainCpuMs: number;
  buildMs: number;
  objects: number;
  servicePorts: number;
  errors: number;
  rssMB: number;
  hwmMB: number;
}

async function child(dir: string): Promise<void> {
  const { createManifestSource } = await import('../../src/sources/manifest-source.js');
  const { StateTracker } = await import('../../src/proxy/state-tracker.js');
  const { createMemoryLogger } = await import('../../src/observability/logger.js');
  const logger = createMemoryLogger();
  const src = createManifestSource({
    dir,
    scope: { nodeName: NODE, serviceCIDRs: true },
    logger,
    serviceClusterIPRanges: ['10.96.0.0/12'],
    nodePortRange: { min: 30000, max: 32767 },
    maxFileBytes: 64 * 1024 * 1024,
    rescanIntervalMs: 0,
    // For comparing: KPT_BENCH_WORKER_BYTES=1e9 parses every file on the main thread.
    ...(process.env.KPT_BENCH_WORKER_BYTES
      ? { workerParseBytes: Number(process.env.KPT_BENCH_WORKER_BYTES) }
      : {}),
  });
  const events: import('../../src/sources/source.js').SourceEvent[] = [];
  let synced = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const c0 = process.cpuUsage();
  const m0 = mainThreadCpuMs();
  const t0 = performance.now();
  await src.start((ev) => {
    events.push(ev);
    if (ev.type === 'synced' && ++synced === 4) done();
  });
  await all;
  const loadMs = performance.now() - t0;
  const loadMainCpuMs = mainThreadCpuMs() - m0;
  const cu = process.cpuUsage(c0);
  await src.stop();
  const t1 = performance.now();
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const ev of events) t.onEvent(ev);
  const st = t.build('IPv4');
  t.commit(st);
  const buildMs = performance.now() - t1;
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  const r: ChildResult = {
    loadMs,
    loadCpuMs: (cu.user + cu.system) / 1000,
    loadMainCpuMs,
    buildMs,
    objects: events.filter((e) => e.type === 'add').length,
    servicePorts: st.services.size,
    errors: logger.entries.filter((e) => e.level === 'error').length,
    rssMB: kb('VmRSS'),
    hwmMB: kb('VmHWM'),
  };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--write') {
    // Only write a layout (for profiling a child by hand): --write <dir> <layout> <n>
    writeLayout(args[1]!, args[2] as Layout, Number(args[3]));
    return;
  }
  if (args[0] === '--child') {
    await child(args[1]!);
    return;
  }
  const n = Number(args[0] ?? 10_000);
  const layouts = (args.slice(1).length ? args.slice(1) : LAYOUTS) as Layout[];
  const self = fileURLToPath(import.meta.url);
  const root = mkdtempSync(join(tmpdir(), 'kpt-startup-'));
  console.log(
    `node ${process.version}, ${n} services x 5 endpoints, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    '| layout | files | load (wall) | load (CPU) | load (main thread CPU) | build desired state | objects | service ports | errors | peak RSS |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  try {
    for (const layout of layouts) {
      const dir = join(root, layout);
      writeLayout(dir, layout, n);
      const files = layout.endsWith('lists') ? 2 : n + 2;
      // Three runs each (KPT_BENCH_REPS), the median by load time (the machine is shared).
      const runs: ChildResult[] = [];
      const reps = Number(process.env.KPT_BENCH_REPS ?? 3);
      for (let rep = 0; rep < reps; rep++) {
        const nodeFlags = (process.env.KPT_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
        const r = spawnSync(
          process.execPath,
          [...nodeFlags, '--import', 'tsx', self, '--child', dir, String(n)],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 24,
          },
        );
        if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
        runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult);
      }
      runs.sort((a, b) => a.loadMs - b.loadMs);
      const m = runs[Math.floor(runs.length / 2)]!;
      const s = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
      console.log(
        `| ${layout} | ${files} | ${s(m.loadMs)} | ${s(m.loadCpuMs)} | ${s(m.loadMainCpuMs)} | ${s(m.buildMs)} | ${m.objects} | ${m.servicePorts} | ${m.errors} | ${m.hwmMB.toFixed(0)} MB |`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
}

await main();
