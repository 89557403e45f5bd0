// Does nft overlap its work with ours when the full-sync script is streamed to `nft -f -` as it is
// rendered? (Benchmark, not a test; root.) Renders the full script of N ClusterIP services × 5
// endpoints once, then in a fresh network namespace loads it with `nft -f -` three ways per round:
// written at once, and paced over PACE seconds in 50 pieces (what a streaming render would look
// like to nft). If nft parsed while reading, the paced load would end about when its input does.
//   node --import tsx bench/nftables/stream.ts [N=10000] [PACE=1] [rounds=3]
import { execFileSync, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { childrenCpuMs } from '../common/proc-cpu.js';
import type { KubeObject } from '../../src/model/types.js';
import { desiredStatesFromObjects } from '../../src/proxy/state-from-objects.js';
import { buildLayout } from '../../src/backends/nftables/render-layout.js';
import { createScript } from '../../src/backends/nftables/render-script.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { familyOptions } from '../../test/fixtures/options.js';

const N = Number(process.argv[2] ?? 10_000);
const PACE_S = Number(process.argv[3] ?? 1);
const ROUNDS = Number(process.argv[4] ?? 3);
const PIECES = 50;
const NS = `kpt-bench-stream-${process.pid}`;
const ip4 = (n: number) => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

function script(): string {
  const objs: KubeObject[] = [makeNode('node-1', ['10.100.0.2'])];
  for (let i = 0; i < N; i++) {
    const name = `svc-${String(i).padStart(6, '0')}`;
    objs.push(makeService('bench', name, { clusterIP: ip4((172 << 24) | (16 << 16) | (i + 1)) }));
    const base = (10 << 24) | (128 << 16) | (i * 5);
    const eps = Array.from({ length: 5 }, (_, k) => ({ ip: ip4(base + k), nodeName: 'node-2' }));
    objs.push(makeSlice('bench', name, `${name}-a`, eps));
  }
  const state = desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: 'node-1' })[0]!;
  return createScript(buildLayout(state, familyOptions()));
}

/** Loads `text` with `nft -f -` in the namespace, in `pieces` writes spread over `paceMs`. */
async function load(
  text: string,
  pieces: number,
  paceMs: number,
): Promise<{ wallMs: number; cpuMs: number }> {
  execFileSync('ip', ['netns', 'exec', NS, 'nft', 'delete', 'table', 'ip', 'kube-proxy'], {
    stdio: 'ignore',
  });
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const child = spawn('ip', ['netns', 'exec', NS, 'nft', '-f', '-'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const step = Math.ceil(text.length / pieces);
  for (let i = 0; i < pieces; i++) {
    child.stdin.write(text.slice(i * step, (i + 1) * step));
    if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs / pieces));
  }
  child.stdin.end();
  const code = await exited;
  if (code !== 0) throw new Error(`nft -f - exited ${code}`);
  return { wallMs: performance.now() - t0, cpuMs: childrenCpuMs() - cpu0 };
}

async function main(): Promise<void> {
  const text = script();
  execFileSync('ip', ['netns', 'add', NS]);
  try {
    // An empty table to delete before each load.
    execFileSync('ip', ['netns', 'exec', NS, 'nft', 'add', 'table', 'ip', 'kube-proxy']);
    console.log(
      `${N} services × 5: script ${(text.length / 1e6).toFixed(1)} MB; load ${loadavg()[0]!.toFixed(1)}`,
    );
    console.log('| round | at once: wall / nft CPU | paced over ' + `${PACE_S} s: wall / nft CPU |`);
    console.log('|---:|---:|---:|');
    for (let r = 1; r <= ROUNDS; r++) {
      const once = await load(text, 1, 0);
      const paced = await load(text, PIECES, PACE_S * 1000);
      const f = (x: { wallMs: number; cpuMs: number }) =>
        `${(x.wallMs / 1000).toFixed(2)} s / ${(x.cpuMs / 1000).toFixed(2)} s`;
      console.log(`| ${r} | ${f(once)} | ${f(paced)} |`);
    }
    console.log(`load ${loadavg()[0]!.toFixed(1)} at the end`);
  } finally {
    execFileSync('ip', ['netns', 'del', NS]);
  }
}

await main();
