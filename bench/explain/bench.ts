// kube-proxy explain benchmark (not a test). For N services × 5 endpoints (default 10,000), in
// every mode:
//  - CLI after load: what `kube-proxy explain` does once the state is loaded: pick the service ports
//    the packet can touch, render their rules, load them into the tracer, trace one packet (to the
//    last service);
//  - whole render: the same with every service port rendered (what the CLI did before, and what the
//    daemon does once per synced state);
//  - /debug/explain: one trace on the tracer the daemon keeps per synced state (median of 50,
//    random services, warm);
//  - --live (root, with --live): the whole render loaded into a fresh network namespace; then what
//    `explain --live` does after loading: render the touched part, read the kernel back with the
//    CLI's readers (one iptables-legacy-save / nft list table, through `ip netns exec`), compare.
//   node --import tsx bench/explain/bench.ts [--services=10000] [--live] [--modes=iptables,nftables]
// Prints a markdown table and the machine facts.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createLab } from '../../e2e/lab/topology.js';
import { run, type Exec } from '../../src/exec/run.js';
import { iptablesSave, toolsFor } from '../../src/exec/iptables.js';
import { nftListTable } from '../../src/exec/nft.js';
import type { KubeObject } from '../../src/model/types.js';
import type { FamilyOptions } from '../../src/proxy/options.js';
import { desiredStatesFromObjects } from '../../src/proxy/state-from-objects.js';
import '../../src/backends/index.js';
import { getBackend } from '../../src/backends/backend.js';
import { explainWith, loadTracer, type ExplainContext } from '../../src/explain/explain.js';
import { scopeForPacket } from '../../src/explain/scope.js';
import { compareLive, type IPVSLive } from '../../src/explain/live.js';
import { ipvsModelFromText } from '../../src/explain/ipvs-trace.js';
import {
  emptyKernelState,
  parseDeviceAddresses,
  parseIPSetSave,
  parseIPVSSave,
} from '../../src/backends/ipvs/diff.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { familyOptions } from '../../test/fixtures/options.js';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const N = Number(argv.get('services') ?? 10000);
const LIVE = argv.has('live');
const EPS = 5;
const MODES = (argv.get('modes') ?? 'iptables,nftables,ipvs,userspace').split(',');

const ip4 = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const clusterIP = (i: number): string => ip4((172 << 24) | (16 << 16) | (i + 1));

function objects(): KubeObject[] {
  const objs: KubeObject[] = [makeNode('node-1', ['10.100.0.2'])];
  for (let i = 0; i < N; i++) {
    const name = `svc-${String(i).padStart(6, '0')}`;
    // Every tenth service is a NodePort: the tracer walks KUBE-NODEPORTS / service-nodeports too.
    const np = i % 10 === 0;
    objs.push(
      makeService('bench', name, {
        clusterIP: clusterIP(i),
        ...(np
          ? {
              type: 'NodePort',
              ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30000 + (i % 2700) }],
            }
          : {}),
      }),
    );
    const base = (10 << 24) | (128 << 16) | (i * EPS);
    objs.push(
      makeSlice(
        'bench',
        name,
        `${name}-a`,
        Array.from({ length: EPS }, (_, k) => ({ ip: ip4(base + k), nodeName: 'node-2' })),
      ),
    );
  }
  return objs;
}

const ms = (t0: number): number => performance.now() - t0;
const fmt = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const t0 = performance.now();
  const [state] = desiredStatesFromObjects(objects(), { families: ['IPv4'], nodeName: 'node-1' });
  const loadMs = ms(t0);
  const opts: FamilyOptions = familyOptions({ localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/16'] } });
  const rows: string[] = [];
  for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace'] as const) {
    if (!MODES.includes(mode)) continue;
    const backend = getBackend(mode)!;
    const last = {
      protocol: 'TCP' as const,
      src: '10.244.0.10',
      srcPort: 0,
      dst: clusterIP(N - 1),
      dstPort: 80,
    };
    // The CLI's path: the touched service ports only.
    const s0 = performance.now();
    const part = backend.render([scopeForPacket(state!, last)], [opts], [state!]);
    const partCtx: ExplainContext = {
      mode,
      state: state!,
      options: opts,
      rules: part,
      interfaceAddresses: ['10.100.0.2'],
    };
    const partAnswer = explainWith(loadTracer(partCtx), partCtx, last);
    const cliMs = ms(s0);
    if (partAnswer.json.endpoints.length !== EPS)
      throw new Error(`${mode}: unexpected answer ${JSON.stringify(partAnswer.json)}`);
    const t1 = performance.now();
    const rules = backend.render([state!], [opts]);
    const renderMs = ms(t1);
    const ctx: ExplainContext = {
      mode,
      state: state!,
      options: opts,
      rules,
      interfaceAddresses: ['10.100.0.2'],
    };
    const t2 = performance.now();
    const tracer = loadTracer(ctx);
    const tracerMs = ms(t2);
    const t3 = performance.now();
    const first = explainWith(tracer, ctx, last);
    const firstMs = ms(t3);
    if (first.json.endpoints.length !== EPS)
      throw new Error(`${mode}: unexpected answer ${JSON.stringify(first.json)}`);
    const warm: number[] = [];
    for (let k = 0; k < 50; k++) {
      const i = Math.floor(Math.random() * N);
      const t = performance.now();
      explainWith(tracer, ctx, { ...last, dst: clusterIP(i) });
      warm.push(ms(t));
    }
    let liveMs = '';
    if (LIVE && (mode === 'iptables' || mode === 'nftables')) {
      const lab = await createLab({ pods: 0 });
      try {
        if (mode === 'iptables')
          await lab.exec('node', 'iptables-legacy-restore', ['-w', '--noflush'], {
            input: rules,
            timeoutMs: 300_000,
          });
        else await lab.exec('node', 'nft', ['-f', '-'], { input: rules, timeoutMs: 300_000 });
        const t4 = performance.now();
        const partRules = backend.render([scopeForPacket(state!, last)], [opts], [state!]);
        const partMs = ms(t4);
        const t5 = performance.now();
        // Read as the CLI does (exec/: one iptables-save; nft's listing through a file), in the lab's
        // node namespace.
        const inNode: Exec = (cmd, args, o) => run('ip', ['netns', 'exec', lab.node.ns, cmd, ...args], o);
        const live =
          mode === 'iptables'
            ? await iptablesSave(inNode, toolsFor('legacy', 'IPv4'), undefined, 600_000)
            : await nftListTable('ip', 'kube-proxy', 'nft', inNode);
        const readMs = ms(t5);
        const t6 = performance.now();
        let wholeRenders = 0;
        const cmp = compareLive({ ...ctx, rules: partRules }, live, last, {
          whole: () => (wholeRenders++, backend.render([state!], [opts])),
        });
        const cmpMs = ms(t6);
        if (cmp.differences.length > 0)
          throw new Error(`${mode}: live differs: ${cmp.differences.join('; ')}`);
        liveMs = `${fmt(partMs + readMs + cmpMs)} (render ${fmt(partMs)}, read ${fmt(readMs)}, compare ${fmt(cmpMs)}${wholeRenders > 0 ? ', with a whole render' : ''})`;
      } finally {
        await lab.destroy();
      }
    }
    if (LIVE && mode === 'ipvs') {
      // No IPVS in this kernel: the tools' text is written from the whole render in their formats
      // (ipvsadm -Sn, ipset save, ip -o addr) and parsed as `--live` parses it; read not measured.
      const sections = new Map<string, string[]>();
      let cur = '';
      for (const l of rules.split('\n')) {
        const h = /^# (link|sysctl|ipset|ipvs|iptables)$/.exec(l);
        if (h) sections.set((cur = h[1]!), []);
        else if (cur !== '' && l !== '') sections.get(cur)!.push(l);
      }
      const iptables = ipvsModelFromText(rules).tables.saveAll();
      const t4 = performance.now();
      const partRules = backend.render([scopeForPacket(state!, last)], [opts], [state!]);
      const partMs = ms(t4);
      const t5 = performance.now();
      const kernel = emptyKernelState();
      for (const [k, vs] of parseIPVSSave(sections.get('ipvs')!.join('\n'))) kernel.vss.set(k, vs);
      const ipset = sections.get('ipset')!;
      const ours = new Set(ipset.filter((l) => l.startsWith('create ')).map((l) => l.split(' ')[1]!));
      for (const [k, set] of parseIPSetSave(ipset.join('\n'), ours)) kernel.sets.set(k, set);
      kernel.device = true;
      const addrs = sections
        .get('link')!
        .filter((l) => l.startsWith('address add '))
        .map((l) => `9: kube-ipvs0    inet ${l.split(' ')[2]} scope global kube-ipvs0`);
      for (const a of parseDeviceAddresses(addrs.join('\n'))) kernel.addresses.add(a);
      const live: IPVSLive = { kernel, iptables };
      const parseMs = ms(t5);
      const t6 = performance.now();
      let wholeRenders = 0;
      const cmp = compareLive({ ...ctx, rules: partRules }, live, last, {
        whole: () => (wholeRenders++, backend.render([state!], [opts])),
      });
      const cmpMs = ms(t6);
      if (cmp.differences.length > 0) throw new Error(`${mode}: live differs: ${cmp.differences.join('; ')}`);
      liveMs = `${fmt(partMs + parseMs + cmpMs)} without the read (render ${fmt(partMs)}, parse ${fmt(parseMs)}, compare ${fmt(cmpMs)}${wholeRenders > 0 ? ', with a whole render' : ''}; no kernel IPVS here)`;
    }
    rows.push(
      `| ${mode} | ${fmt(cliMs)} | ${fmt(renderMs + tracerMs + firstMs)} (render ${fmt(renderMs)}, load ${fmt(tracerMs)}, trace ${fmt(firstMs)}) | ${fmt(median(warm))} (max ${fmt(Math.max(...warm))}) | ${liveMs || 'not run'} |`,
    );
  }
  console.log(`explain at ${N} services × ${EPS} endpoints (state built in ${fmt(loadMs)})\n`);
  console.log(
    '| mode | CLI after load (one explain) | whole render + load + trace | /debug/explain (warm, median of 50) | --live after load (render + read + compare) |',
  );
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log(`\nmachine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`);
}

await main();
