// nftables mode benchmark (not a test; root only). One run measures, for 1k/5k/10k/30k services × 5
// endpoints, each in a fresh network namespace:
//  - the real NFTablesProxier: first full sync, 1 and 10 changed services (partial), a full re-sync;
//  - an upstream-shaped ruleset (a chain per service and per endpoint, an anonymous numgen vmap per
//    service) loaded with `nft -f`, bounded by a timeout;
//  - first-packet cost: new TCP connections/s and connect latency p50/p99 from a client pod to a
//    ClusterIP at 1k and 30k services, for nftables mode and for iptables mode (the iptables renderer's
//    output loaded with iptables-legacy-restore).
//   node --import tsx bench/nftables/bench.ts [--sizes=1000,5000,10000,30000] [--upstream-timeout=120]
//     [--upstream-max=N] [--latency=1] [--connects=2000]
// --upstream-max: sizes above N do not load the upstream shape or candidate B (they are quadratic and a
// load cannot be interrupted once the kernel holds it); --latency=0 skips the first-packet rows.
// Each sync row also splits the first full sync (JS render / read-back / nft) and measures the floor:
// the same script's `nft -f` alone, `nft -c` (parse, evaluate and the kernel's check, no commit), and
// the element statements alone loaded over the rest (the data nft must parse in any case).
// Partial syncs go through one kept `nft -i` (as the daemon does); the same changes through a fresh
// `nft -f -` each are measured beside them.
// Prints a markdown table and the machine facts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab } from '../../e2e/lab/topology.js';
import { run, ExecError } from '../../src/exec/run.js';
import { nftSessionRunner } from '../../src/exec/nft.js';
import { createMemoryLogger } from '../../src/observability/logger.js';
import type { KubeObject } from '../../src/model/types.js';
import type { FamilyOptions } from '../../src/proxy/options.js';
import type { DesiredState, Endpoint, ServicePortState } from '../../src/proxy/types.js';
import { desiredStatesFromObjects } from '../../src/proxy/state-from-objects.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { NFTablesProxier } from '../../src/backends/nftables/proxier.js';
import { listScript } from '../../src/backends/nftables/render-existing.js';
import { renderIPTables } from '../../src/backends/iptables/render.js';
import { familyOptions } from '../../test/fixtures/options.js';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const SIZES = (argv.get('sizes') ?? '1000,5000,10000,30000').split(',').map(Number);
const UPSTREAM_TIMEOUT_S = Number(argv.get('upstream-timeout') ?? 120);
const UPSTREAM_MAX = Number(argv.get('upstream-max') ?? Infinity);
const CONNECTS = Number(argv.get('connects') ?? 2000);
const LATENCY_SIZES = argv.get('latency') === '0' ? [] : [SIZES[0]!, SIZES.at(-1)!];
const EPS = 5;
const NODE = 'node-1';
const CLIENT = fileURLToPath(new URL('./connect-client.mjs', import.meta.url));
const PROBE_IP = '172.31.255.1';

const opts: FamilyOptions = familyOptions({ localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/16'] } });

const ip4 = (n: number) => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** n services × 5 endpoints (ClusterIP, TCP), plus the probe service (last in sorted order) on pod b1:8080..8084. */
function stateFor(n: number, probeIP: string): DesiredState {
  const objs: KubeObject[] = [makeNode(NODE, ['10.100.0.2'])];
  for (let i = 0; i < n; i++) {
    const name = `svc-${String(i).padStart(6, '0')}`;
    objs.push(makeService('bench', name, { clusterIP: ip4((172 << 24) | (16 << 16) | (i + 1)) }));
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
  objs.push(makeService('zz-probe', 'probe', { clusterIP: PROBE_IP }));
  for (let k = 0; k < EPS; k++)
    objs.push(
      makeSlice(
        'zz-probe',
        'probe',
        `probe-${k}`,
        [{ ip: probeIP, nodeName: NODE }],
        [{ name: 'p80', port: 8080 + k, protocol: 'TCP' }],
      ),
    );
  return desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: NODE })[0]!;
}

/** A copy of `s` where the first endpoint of `k` services moved to a new address (a rolling update). */
function changed(s: DesiredState, k: number, round: number): DesiredState {
  return changedAt(s, 0, k, round);
}

function changedAt(s: DesiredState, from: number, k: number, round: number): DesiredState {
  const services = new Map(s.services);
  const names = new Set<string>();
  for (const key of s.sortedKeys.slice(from, from + k)) {
    const sp = services.get(key)!;
    const moved: Endpoint = {
      ...sp.endpoints[0]!,
      ip: `10.${200 + round}.${names.size >> 8}.${names.size & 255}`,
    };
    const eps = [{ ...moved, endpoint: `${moved.ip}:${moved.port}` }, ...sp.endpoints.slice(1)];
    const next: ServicePortState = {
      ...sp,
      endpoints: eps,
      clusterEndpoints: eps,
      allReachableEndpoints: eps,
    };
    services.set(key, next);
    names.add(sp.info.serviceName);
  }
  return { ...s, services, changedServices: names };
}

/** The upstream shape for `s`: service chain with an anonymous numgen vmap, an endpoint chain per endpoint. */
function upstreamShaped(s: DesiredState): string {
  const T = 'ip kube-proxy';
  const out = [
    `add table ${T} { comment "rules for kube-proxy" ; }`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority dstnat ; }`,
    `add chain ${T} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${T} nat-postrouting { type nat hook postrouting priority srcnat ; }`,
    `add chain ${T} services`,
    `add chain ${T} mark-for-masquerade`,
    `add chain ${T} masquerading`,
    `add map ${T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} nat-output jump services`,
    `add rule ${T} nat-postrouting jump masquerading`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark or 0x4000`,
    `add rule ${T} masquerading meta mark & 0x4000 == 0 return`,
    `add rule ${T} masquerading meta mark set meta mark xor 0x4000`,
    `add rule ${T} masquerading masquerade fully-random`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
  ];
  let i = 0;
  for (const key of s.sortedKeys) {
    const sp = s.services.get(key)!;
    const svc = `service-${i++}-${sp.info.serviceName}`;
    out.push(`add chain ${T} ${svc}`);
    const eps = sp.clusterEndpoints.map((e, j) => {
      const c = `endpoint-${i}-${j}-${e.ip}`;
      out.push(
        `add chain ${T} ${c}`,
        `add rule ${T} ${c} ip saddr ${e.ip} jump mark-for-masquerade`,
        `add rule ${T} ${c} meta l4proto tcp dnat to ${e.ip}:${e.port}`,
      );
      return c;
    });
    out.push(
      `add rule ${T} ${svc} ip daddr ${sp.info.clusterIP} ip saddr != 10.244.0.0/16 jump mark-for-masquerade`,
    );
    out.push(
      `add rule ${T} ${svc} numgen random mod ${eps.length} vmap { ${eps.map((c, j) => `${j} : goto ${c}`).join(' , ')} }`,
    );
    out.push(`add element ${T} service-ips { ${sp.info.clusterIP} . tcp . ${sp.info.port} : goto ${svc} }`);
  }
  return out.join('\n') + '\n';
}

/**
 * Layout candidate B (measured for docs/nftables-layout.md): upstream's dispatch, one plain chain per
 * service (masquerade rule + `numgen random mod N offset B` into one shared slot map), no endpoint
 * chains and no anonymous sets. The layout we ship goes further (ClusterIP traffic has no per-service chain).
 */
function perServiceChainShaped(s: DesiredState): string {
  const T = 'ip kube-proxy';
  const out = [
    `add table ${T} { comment "rules for kube-proxy" ; }`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority dstnat ; }`,
    `add chain ${T} services`,
    `add chain ${T} mark-for-masquerade`,
    `add map ${T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${T} endpoint-targets-tcp { typeof numgen random mod 1 : ip daddr . tcp dport ; }`,
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark or 0x4000`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
  ];
  let base = 0;
  let i = 0;
  for (const key of s.sortedKeys) {
    const sp = s.services.get(key)!;
    const svc = `service-${i++}-${sp.info.serviceName}`;
    const n = sp.clusterEndpoints.length;
    out.push(`add chain ${T} ${svc}`);
    out.push(
      `add rule ${T} ${svc} ip daddr ${sp.info.clusterIP} ip saddr != 10.244.0.0/16 jump mark-for-masquerade`,
    );
    out.push(
      `add rule ${T} ${svc} meta l4proto tcp dnat ip to numgen random mod ${n} offset ${base} map @endpoint-targets-tcp`,
    );
    out.push(`add element ${T} service-ips { ${sp.info.clusterIP} . tcp . ${sp.info.port} : goto ${svc} }`);
    out.push(
      `add element ${T} endpoint-targets-tcp { ${sp.clusterEndpoints.map((e, j) => `${base + j} : ${e.ip} . ${e.port}`).join(', ')} }`,
    );
    base += 8;
  }
  return out.join('\n') + '\n';
}

const ms = (t0: number) => performance.now() - t0;
const fmt = (v: number | string) =>
  typeof v === 'string' ? v : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`;

/** Deletes our table if it is there (a timed-out load leaves none). */
async function dropTable(lab: Lab): Promise<void> {
  await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-f', '-'], {
    input: 'add table ip kube-proxy\ndelete table ip kube-proxy\n',
  });
}

async function timeNft(lab: Lab, script: string, timeoutS: number): Promise<number | string> {
  const t0 = performance.now();
  try {
    await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-f', '-'], {
      input: script,
      timeoutMs: timeoutS * 1000,
    });
    return ms(t0);
  } catch (e) {
    if (e instanceof ExecError && e.code === 'KP_ERR_EXEC_TIMEOUT') return `> ${timeoutS} s`;
    throw e;
  }
}

interface Row {
  n: number;
  full: number;
  /** The first full sync split: JS (render + diff), the read-back, the nft transaction. */
  fullJs: number;
  fullList: number;
  fullNft: number;
  /** Floor measures on the same script (empty namespace each): nft -f, nft -c, elements alone. */
  nftAlone: number;
  nftCheck: number;
  elemsAlone: number;
  elements: number;
  one: number;
  oneSpawn: number;
  ten: number;
  resync: number;
  bytesFull: number;
  bytesOne: number;
  upstream: number | string;
  perService: number | string;
}

async function syncRow(
  n: number,
  skipUpstream: string | undefined,
  skipPerService: string | undefined,
): Promise<Row> {
  const state = stateFor(n, '10.244.0.11');
  const lab = await createLab({ pods: [] });
  const spawnNft = async (script: string) => {
    await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-f', '-'], {
      input: script,
      timeoutMs: 300_000,
    });
  };
  // As the daemon (backend.ts): small transactions to one kept `nft -i`, large ones to `nft -f -`.
  const session = nftSessionRunner('nft', {
    command: 'ip',
    args: ['netns', 'exec', lab.node.ns, 'nft', '-i'],
    fallback: spawnNft,
  });
  let viaSpawn = false;
  let applyMs = 0;
  let listMs = 0;
  let lastScript = '';
  try {
    // The daemon's full-sync path: read our table back (nft -t), then one transaction.
    const proxier = new NFTablesProxier(
      { logger: createMemoryLogger(), options: opts },
      async (script) => {
        lastScript = script;
        const t = performance.now();
        await (viaSpawn ? spawnNft(script) : session(script));
        applyMs = ms(t);
      },
      false,
      async (family) => {
        const t = performance.now();
        try {
          return (
            await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-t', '-f', '-'], {
              input: listScript(family),
              timeoutMs: 300_000,
            })
          ).stdout;
        } finally {
          listMs = ms(t);
        }
      },
    );
    let t0 = performance.now();
    await proxier.sync(state, true);
    const full = ms(t0);
    const fullNft = applyMs;
    const fullList = listMs;
    const fullJs = full - fullNft - fullList;
    const fullScript = lastScript;
    const bytesFull = proxier.last!.bytes;
    // One changed service, five times (different services): the median; then five more, each
    // through a fresh `nft -f -` (the way before the kept session).
    let s1 = state;
    const median5 = async (from: number): Promise<number> => {
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        s1 = changedAt(s1, (from + r) * 7, 1, 1 + from + r);
        t0 = performance.now();
        await proxier.sync(s1, false);
        times.push(ms(t0));
      }
      return times.sort((a, b) => a - b)[2]!;
    };
    const one = await median5(0);
    const bytesOne = proxier.last!.bytes;
    viaSpawn = true;
    const oneSpawn = await median5(5);
    viaSpawn = false;
    const s10 = changed(s1, 10, 19);
    t0 = performance.now();
    await proxier.sync(s10, false);
    const ten = ms(t0);
    t0 = performance.now();
    await proxier.sync(s10, true);
    const resync = ms(t0);
    await dropTable(lab);
    // The floor: the same script alone; `nft -c`; the element statements over the rest.
    const nftAlone = (await timeNft(lab, fullScript, 600)) as number;
    await dropTable(lab);
    t0 = performance.now();
    await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-c', '-f', '-'], {
      input: fullScript,
      timeoutMs: 600_000,
    });
    const nftCheck = ms(t0);
    const lines = fullScript.split('\n');
    const elemLines = lines.filter((l) => l.startsWith('add element '));
    await spawnNft(lines.filter((l) => !l.startsWith('add element ')).join('\n') + '\n');
    const elemsAlone = (await timeNft(lab, elemLines.join('\n') + '\n', 600)) as number;
    let elements = 0;
    for (const l of elemLines) elements += l.split(', ').length;
    await dropTable(lab);
    const perService =
      skipPerService ?? (await timeNft(lab, perServiceChainShaped(state), UPSTREAM_TIMEOUT_S));
    await dropTable(lab);
    const upstream = skipUpstream ?? (await timeNft(lab, upstreamShaped(state), UPSTREAM_TIMEOUT_S));
    return {
      n,
      full,
      fullJs,
      fullList,
      fullNft,
      nftAlone,
      nftCheck,
      elemsAlone,
      elements,
      one,
      oneSpawn,
      ten,
      resync,
      bytesFull,
      bytesOne,
      upstream,
      perService,
    };
  } finally {
    session.close();
    await lab.destroy();
  }
}

interface Lat {
  mode: string;
  n: number;
  load: number;
  connPerS: number;
  p50: number;
  p99: number;
  failed: number;
}

async function latencyRow(mode: 'nftables' | 'iptables', n: number): Promise<Lat> {
  const lab = await createLab({ pods: ['client', 'b1'] });
  try {
    await lab.startBackend('b1', { tcpPorts: [8080, 8081, 8082, 8083, 8084] });
    const state = stateFor(n, lab.pod('b1').ip);
    const t0 = performance.now();
    if (mode === 'nftables') {
      const p = new NFTablesProxier({ logger: createMemoryLogger(), options: opts }, async (script) => {
        await run('ip', ['netns', 'exec', lab.node.ns, 'nft', '-f', '-'], {
          input: script,
          timeoutMs: 300_000,
        });
      });
      await p.sync(state, true);
    } else {
      const plan = renderIPTables(state, { ...opts, localhostNodePorts: false }, { full: true });
      await run('ip', ['netns', 'exec', lab.node.ns, 'iptables-legacy-restore', '--noflush'], {
        input: plan.restore,
        timeoutMs: 600_000,
      });
      for (const j of plan.jumps) {
        // Targets the restore does not declare (KUBE-FIREWALL) are created empty, as the executor does.
        await run(
          'ip',
          ['netns', 'exec', lab.node.ns, 'iptables-legacy', '-w', '-t', j.table, '-N', j.target],
          { okCodes: [0, 1] },
        );
        await run('ip', [
          'netns',
          'exec',
          lab.node.ns,
          'iptables-legacy',
          '-w',
          '-t',
          j.table,
          '-I',
          j.chain,
          '1',
          ...j.args,
        ]);
      }
    }
    const load = ms(t0);
    // Warm up (ARP, code paths), then measure.
    await run('ip', ['netns', 'exec', lab.pod('client').ns, process.execPath, CLIENT, PROBE_IP, '80', '50']);
    const r = await run(
      'ip',
      ['netns', 'exec', lab.pod('client').ns, process.execPath, CLIENT, PROBE_IP, '80', String(CONNECTS)],
      { timeoutMs: 600_000 },
    );
    const j = JSON.parse(r.stdout) as {
      ok: number;
      failed: number;
      seconds: number;
      p50Ms: number;
      p99Ms: number;
    };
    return { mode, n, load, connPerS: j.ok / j.seconds, p50: j.p50Ms, p99: j.p99Ms, failed: j.failed };
  } finally {
    await lab.destroy();
  }
}

function facts(): string {
  const sh = (c: string, a: string[]) => {
    try {
      return execFileSync(c, a, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'n/a';
    }
  };
  return [
    `- kernel: ${sh('uname', ['-r'])}; CPU: ${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
    `- ${sh('nft', ['--version'])}; ${sh('iptables-legacy', ['--version'])}; node ${process.version}`,
    `- date: ${new Date().toISOString()}`,
  ].join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/nftables needs root (it creates network namespaces)');
  const rows: Row[] = [];
  let upstreamTooSlow: string | undefined;
  let perServiceTooSlow: string | undefined;
  process.stderr.write(`load average at the start: ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
  for (const n of SIZES) {
    process.stderr.write(`sync: ${n} services...\n`);
    const tooBig = n > UPSTREAM_MAX ? `not run (${n} > --upstream-max=${UPSTREAM_MAX})` : undefined;
    const row = await syncRow(n, tooBig ?? upstreamTooSlow, tooBig ?? perServiceTooSlow);
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
    // The upstream shape is quadratic in the kernel and cannot be interrupted once the kernel holds
    // the batch: after a timeout, larger sizes are not attempted.
    const nextN = SIZES[SIZES.indexOf(n) + 1];
    if (tooBig) continue;
    if (typeof row.upstream === 'string')
      upstreamTooSlow = `> ${UPSTREAM_TIMEOUT_S} s (not run: ${row.n} already timed out)`;
    else if (nextN !== undefined && row.upstream * (nextN / n) ** 2 > UPSTREAM_TIMEOUT_S * 1000)
      upstreamTooSlow = `> ${UPSTREAM_TIMEOUT_S} s (not run: projected ${fmt(row.upstream * (nextN / n) ** 2)} from ${fmt(row.upstream)} at ${n}, the load being quadratic)`;
    if (typeof row.perService === 'string') perServiceTooSlow = `> ${UPSTREAM_TIMEOUT_S} s (not run)`;
    else if (nextN !== undefined && row.perService * (nextN / n) ** 2 > UPSTREAM_TIMEOUT_S * 1000)
      perServiceTooSlow = `> ${UPSTREAM_TIMEOUT_S} s (not run: projected ${fmt(row.perService * (nextN / n) ** 2)})`;
  }
  const lats: Lat[] = [];
  for (const mode of ['nftables', 'iptables'] as const)
    for (const n of LATENCY_SIZES) {
      process.stderr.write(`latency: ${mode} ${n} services...\n`);
      lats.push(await latencyRow(mode, n));
      process.stderr.write(`${JSON.stringify(lats.at(-1))}\n`);
    }

  const lines: string[] = [];
  lines.push(`### nftables mode sync times (${EPS} endpoints per service; ClusterIP services)`, '');
  lines.push(
    '| services | full sync (empty ns) | 1 changed service (median of 5; kept nft -i) | same, fresh nft -f each | 10 changed services | full re-sync (over itself) | script size full / 1 change | candidate B: chain per service, shared slot map | upstream-shaped nft -f (empty ns) | speed-up vs upstream-shaped |',
  );
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const speed =
      typeof r.upstream === 'number'
        ? `${(r.upstream / r.full).toFixed(0)}x`
        : r.upstream.startsWith('not run (')
          ? 'n/a'
          : `> ${((UPSTREAM_TIMEOUT_S * 1000) / r.full).toFixed(0)}x`;
    lines.push(
      `| ${r.n} | ${fmt(r.full)} | ${fmt(r.one)} | ${fmt(r.oneSpawn)} | ${fmt(r.ten)} | ${fmt(r.resync)} | ${(r.bytesFull / 1e6).toFixed(1)} MB / ${r.bytesOne} B | ${fmt(r.perService)} | ${fmt(r.upstream)} | ${speed} |`,
    );
  }
  lines.push('', '### Where the first full sync goes, and the floor (same script, empty namespace each)', '');
  lines.push(
    '| services | first full sync | JS (render + diff) | read-back | nft transaction | nft -f alone | nft -c alone (no commit) | element statements alone | elements | upstream-shaped / elements alone |',
  );
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    lines.push(
      `| ${r.n} | ${fmt(r.full)} | ${fmt(r.fullJs)} | ${fmt(r.fullList)} | ${fmt(r.fullNft)} | ${fmt(r.nftAlone)} | ${fmt(r.nftCheck)} | ${fmt(r.elemsAlone)} | ${r.elements} | ${typeof r.upstream === 'number' ? `${(r.upstream / r.elemsAlone).toFixed(0)}x` : 'n/a'} |`,
    );
  if (lats.length > 0) {
    lines.push(
      '',
      `### First packet: ${CONNECTS} sequential new TCP connections from a pod to a ClusterIP (probe service sorted last)`,
      '',
    );
    lines.push('| mode | services | rules load | connections/s | connect p50 | connect p99 | failed |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const l of lats)
      lines.push(
        `| ${l.mode} | ${l.n} | ${fmt(l.load)} | ${l.connPerS.toFixed(0)} | ${l.p50.toFixed(3)} ms | ${l.p99.toFixed(3)} ms | ${l.failed} |`,
      );
    const nftL = lats.filter((l) => l.mode === 'nftables');
    if (nftL.length === 2)
      lines.push(
        '',
        `nftables p50 ratio ${nftL[1]!.n} / ${nftL[0]!.n} services: ${(nftL[1]!.p50 / nftL[0]!.p50).toFixed(2)}x`,
      );
  }
  lines.push(
    '',
    'Machine:',
    facts(),
    `- load average at the end: ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
