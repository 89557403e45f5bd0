// `kube-proxy explain` on the command line, end to end (not a test): writes N services × 5 endpoints
// (every tenth a NodePort) as manifests files, then runs the built CLI (`node bin/kube-proxy.js
// explain`, so `npm run build` first) for one packet to the last service, in every mode, and prints
// the wall time of each run (process start to exit: module loading, manifest loading, state, render,
// trace). Profile one run with `node --cpu-prof bin/kube-proxy.js explain ...` on the same folder.
//   node --import tsx bench/explain/cli.ts [--services=10000] [--runs=3] [--keep=DIR]
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const N = Number(argv.get('services') ?? 10000);
const RUNS = Number(argv.get('runs') ?? 3);
const KEEP = argv.get('keep');
const EPS = 5;

const ip4 = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const clusterIP = (i: number): string => ip4((172 << 24) | (16 << 16) | (i + 1));

/** The manifests, 1000 services a file (under the default --manifests-max-file-size). */
function manifests(): string[] {
  const items: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      status: { addresses: [{ type: 'InternalIP', address: '10.100.0.2' }] },
    },
  ];
  for (let i = 0; i < N; i++) {
    const name = `svc-${String(i).padStart(6, '0')}`;
    const np = i % 10 === 0;
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'bench' },
      spec: {
        type: np ? 'NodePort' : 'ClusterIP',
        clusterIP: clusterIP(i),
        ports: [{ name: 'p80', port: 80, protocol: 'TCP', ...(np ? { nodePort: 30000 + (i % 2700) } : {}) }],
      },
    });
    const base = (10 << 24) | (128 << 16) | (i * EPS);
    items.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-a`, namespace: 'bench', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
      endpoints: Array.from({ length: EPS }, (_, k) => ({
        addresses: [ip4(base + k)],
        conditions: { ready: true },
        nodeName: 'node-2',
      })),
    });
  }
  const files: string[] = [];
  for (let k = 0; k < items.length; k += 2000)
    files.push(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: items.slice(k, k + 2000) }));
  return files;
}

const fmt = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);

function main(): void {
  const dir = KEEP ?? mkdtempSync(join(tmpdir(), 'kpt-explain-cli-'));
  try {
    manifests().forEach((text, k) => {
      writeFileSync(join(dir, `bench-${String(k).padStart(3, '0')}.json`), text);
    });
    const rows: string[] = [];
    for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace']) {
      const args = [
        'bin/kube-proxy.js',
        'explain',
        `--proxy-mode=${mode}`,
        `--manifests=${dir}`,
        '--hostname-override=node-1',
        '--cluster-cidr=10.244.0.0/16',
        '--v=0',
        '--protocol=TCP',
        '--source=10.244.0.10',
        `--destination=${clusterIP(N - 1)}:80`,
        '-o',
        'json',
      ];
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t = performance.now();
        const res = spawnSync(process.execPath, args, {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        });
        times.push(performance.now() - t);
        const out = JSON.parse(res.stdout) as { endpoints: string[] };
        if (res.status !== 0 || out.endpoints.length !== EPS)
          throw new Error(`${mode}: exit ${res.status}: ${res.stdout}${res.stderr}`);
      }
      rows.push(
        `| ${mode} | ${times.map(fmt).join(', ')} | ${fmt([...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!)} |`,
      );
    }
    console.log(`kube-proxy explain (CLI, end to end) at ${N} services × ${EPS} endpoints\n`);
    console.log('| mode | runs | median |');
    console.log('|---|---|---:|');
    for (const r of rows) console.log(r);
    console.log(
      `\nmachine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}`,
    );
  } finally {
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

main();
