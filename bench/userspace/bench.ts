// Userspace relay benchmark (not a test): the same load against a backend directly, through our
// relay (variants), and through HAProxy in TCP mode (if installed). Loopback only, bounded duration.
//   node --import tsx bench/userspace/bench.ts [--seconds=5] [--connections=32] [--rounds=1]
//     [--only=direct,ours,ours-tsx,floor-pipe,floor-onread,haproxy1,haproxy2,hwm,workers2,read32k,read64k,
//       floor-nagle,floor-keepalive,floor-nopause] [--cases=ka,nc,bulk]
//     [--before=REV]  (a git revision, e.g. main: adds the variant "before", REV's relay)
// "ours" runs the relay as the daemon ships it (tsc output, built into a temporary directory); "ours-tsx"
// runs the source through tsx (esbuild adds a __name helper call to every closure). floor-* are the
// least a Node relay can do (floor-relay.mjs). With --rounds=N every variant runs N times, interleaved,
// and the summary gives each round's ratios to HAProxy (1 thread) of the same round.
// Needs `wrk` for the HTTP cases (apt-get install -y wrk haproxy). Prints a markdown table.
// The machine's cores are shared by the load generator, the proxy and the backend: numbers are
// relative, not absolute capacity.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const SECONDS = Number(argv.get('seconds') ?? 5);
const CONNECTIONS = Number(argv.get('connections') ?? 32);
const ROUNDS = Number(argv.get('rounds') ?? 1);
const ONLY = (argv.get('only') ?? 'direct,ours,ours-tsx,floor-pipe,floor-onread,haproxy1,haproxy2').split(
  ',',
);
const BEFORE = argv.get('before');
const CASES = new Set((argv.get('cases') ?? 'ka,nc,bulk').split(','));
const HTTP_PORTS = [19101, 19102, 19103];
const BULK_PORT = 19110;
const FRONT_PORT = 18080;
const FRONT_BULK = 18081;
const CLK_TCK = 100;
const here = new URL('.', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'kpt-bench-'));
const children: ChildProcess[] = [];
const workDirs: string[] = [];

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function cpuTicks(pids: readonly number[]): number {
  let t = 0;
  for (const pid of pids) {
    try {
      // Fields after the ")" of comm: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      t += Number(f[11]) + Number(f[12]);
    } catch {
      /* process gone */
    }
  }
  return t;
}

function startChild(
  cmd: string,
  args: string[],
  readyLine: RegExp | undefined,
): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      reject(new Error(`${cmd} exited (${code}): ${err.slice(-500)}`));
    });
    if (!readyLine) {
      resolve({ child, line: '' });
      return;
    }
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = readyLine.exec(out);
      if (m) resolve({ child, line: m[0] });
    });
  });
}

async function waitListening(host: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, host, () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => {
        r(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${host}:${port} never listened`);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      r();
      return;
    }
    child.removeAllListeners('exit');
    child.once('exit', () => {
      r();
    });
    child.kill('SIGTERM');
  });
}

interface WrkResult {
  rps: number;
  p99ms: number;
  errors: string;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function wrk(url: string, close: boolean): Promise<WrkResult> {
  return new Promise((resolve) => {
    const args = [
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${SECONDS}s`,
      '--latency',
      ...(close ? ['-H', 'Connection: close'] : []),
      url,
    ];
    const w = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    w.stdout.on('data', (d: Buffer) => (out += d.toString()));
    w.on('exit', () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
      const sock = /Socket errors: (.*)/.exec(out)?.[1] ?? '';
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
      resolve({
        rps,
        p99ms: p99,
        errors: [sock, non2xx ? `non-2xx ${non2xx}` : ''].filter(Boolean).join('; '),
      });
    });
  });
}

/** Reads from a bulk source for SECONDS and returns MB/s (1 MB = 1e6 bytes). */
function bulk(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const start = process.hrtime.bigint();
    const c = net.connect({ host, port });
    c.on('data', (d: Buffer) => (bytes += d.length));
    c.on('error', reject);
    setTimeout(() => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      c.destroy();
      resolve(bytes / secs / 1e6);
    }, SECONDS * 1000);
  });
}

interface Row {
  key: string;
  name: string;
  keepAlive?: WrkResult;
  perConn?: WrkResult;
  mbps: number;
  cpu: { keepAlive: number; perConn: number; bulk: number } | undefined;
}

async function measure(
  key: string,
  name: string,
  host: string,
  port: number,
  bulkPort: number,
  pids: readonly number[],
): Promise<Row> {
  await waitListening(host, port);
  const url = `http://${host}:${port}/`;
  const cpu = { keepAlive: 0, perConn: 0, bulk: 0 };
  const timed = async <T>(k: keyof typeof cpu, f: () => Promise<T>): Promise<T> => {
    const t0 = cpuTicks(pids);
    const r = await f();
    cpu[k] = (cpuTicks(pids) - t0) / CLK_TCK;
    return r;
  };
  const useWrk = have('wrk');
  const keepAlive = useWrk && CASES.has('ka') ? await timed('keepAlive', () => wrk(url, false)) : undefined;
  const perConn = useWrk && CASES.has('nc') ? await timed('perConn', () => wrk(url, true)) : undefined;
  const mbps = CASES.has('bulk') ? await timed('bulk', () => bulk(host, bulkPort)) : NaN;
  process.stderr.write(
    `done: ${name} (load ${readFileSync('/proc/loadavg', 'utf8').split(' ', 3).join(' ')})\n`,
  );
  return { key, name, keepAlive, perConn, mbps, cpu: pids.length > 0 ? cpu : undefined };
}

function haproxyConfig(threads: number, body: string): string {
  const path = join(tmp, `haproxy-${Math.random().toString(36).slice(2)}.cfg`);
  writeFileSync(
    path,
    `global\n  nbthread ${threads}\n  maxconn 8000\n\ndefaults\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\n${body}`,
  );
  return path;
}

async function main(): Promise<void> {
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const rows: Row[] = [];
  const haveHaproxy = have('haproxy');
  // A fast backend if HAProxy is here (C, `http-request return`), else a minimal node responder.
  let backendName: string;
  let backend: ChildProcess | undefined;
  if (haveHaproxy) {
    const cfg = haproxyConfig(
      1,
      `frontend be\n  mode http\n${HTTP_PORTS.map((p) => `  bind 127.0.0.1:${p}\n`).join('')}  http-request return status 200 content-type text/plain string ok\n`,
    );
    backend = (await startChild('haproxy', ['-db', '-f', cfg], undefined)).child;
    backendName = 'HAProxy 1 thread `http-request return` (3 ports)';
  } else {
    backendName = 'minimal node responder';
  }
  const bulkSrc = (
    await startChild(
      'node',
      [
        '--import',
        'tsx',
        join(here, 'backend-child.ts'),
        ...(haveHaproxy ? ['29101', '29102', '29103'] : HTTP_PORTS.map(String)),
        String(BULK_PORT),
      ],
      /ready/,
    )
  ).child;
  backend ??= bulkSrc;
  for (const p of HTTP_PORTS) await waitListening('127.0.0.1', p);

  // The relay as the daemon ships it: tsc output, run by plain node (tsx would transform even .js files
  // and add esbuild's __name helper to every closure). Built inside the repository (.tmp/, ignored) so
  // that node_modules and "type": "module" apply. --before=REV builds REV's src/ the same way.
  const root = join(here, '../..');
  const work = join(root, '.tmp', `bench-userspace-${process.pid}`);
  workDirs.push(work);
  const compile = (srcRoot: string, out: string): string => {
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.json'),
        compilerOptions: { noEmit: false, outDir: out, rootDir: srcRoot, sourceMap: false },
        files: [join(srcRoot, 'bench/userspace/proxy-child.ts')],
        include: [],
      }),
    );
    const tsc = spawnSync('npx', ['tsc', '-p', join(out, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
    if (tsc.status !== 0) throw new Error(`tsc build of ${srcRoot} failed`);
    return join(out, 'bench/userspace/proxy-child.js');
  };
  const compiledChild = ONLY.some((k) => ['ours', 'hwm', 'workers2', 'read32k', 'read64k'].includes(k))
    ? compile(root, join(work, 'current'))
    : '';
  let beforeChild = '';
  if (BEFORE) {
    // REV's relay with today's proxy-child (same UserspaceProxier API).
    const tree = join(work, 'before-src');
    mkdirSync(join(tree, 'bench/userspace'), { recursive: true });
    const tar = spawnSync('sh', ['-c', `git archive ${BEFORE} src test/fixtures | tar -x -C ${tree}`], {
      cwd: root,
      stdio: 'inherit',
    });
    if (tar.status !== 0) throw new Error(`git archive ${BEFORE} failed`);
    writeFileSync(join(tree, 'bench/userspace/proxy-child.ts'), readFileSync(join(here, 'proxy-child.ts')));
    beforeChild = compile(tree, join(work, 'before'));
  }
  const ours =
    (address: string, opts: Record<string, unknown>, script: string) => async (): Promise<number[]> => {
      const args = {
        httpPorts: HTTP_PORTS,
        bulkPort: BULK_PORT,
        address,
        port: FRONT_PORT,
        bulkPortFront: FRONT_BULK,
        ...opts,
      };
      const { child, line } = await startChild(
        'node',
        [...(script ? [script] : ['--import', 'tsx', join(here, 'proxy-child.ts')]), JSON.stringify(args)],
        /ready( \d+)+/,
      );
      running = child;
      const pids = line.split(' ').slice(1).map(Number);
      if (!pids.includes(child.pid!)) pids.push(child.pid!);
      return pids;
    };
  const floor = (address: string, variant: string) => async (): Promise<number[]> => {
    const { child } = await startChild(
      'node',
      [
        join(here, 'floor-relay.mjs'),
        variant,
        address,
        `${FRONT_PORT}=${HTTP_PORTS.join(',')}`,
        `${FRONT_BULK}=${BULK_PORT}`,
      ],
      /ready/,
    );
    running = child;
    return [child.pid!];
  };
  const haproxy = (address: string, threads: number) => async (): Promise<number[]> => {
    const cfg = haproxyConfig(
      threads,
      `frontend web\n  mode tcp\n  bind ${address}:${FRONT_PORT}\n  default_backend web\n\nbackend web\n  mode tcp\n  balance roundrobin\n${HTTP_PORTS.map((p, i) => `  server s${i} 127.0.0.1:${p}\n`).join('')}\n` +
        `frontend bulk\n  mode tcp\n  bind ${address}:${FRONT_BULK}\n  default_backend bulk\n\nbackend bulk\n  mode tcp\n  server s0 127.0.0.1:${BULK_PORT}\n`,
    );
    const { child } = await startChild('haproxy', ['-db', '-f', cfg], undefined);
    running = child;
    return [child.pid!];
  };
  let running: ChildProcess | undefined;
  const hv = haveHaproxy ? haproxyVersion() : '';
  const variants: { key: string; name: string; address: string; start?: () => Promise<number[]> }[] = [
    { key: 'direct', name: 'direct (backend, no proxy)', address: '127.0.0.1' },
    {
      key: 'ours',
      name: 'kube-proxy-ts userspace (1 process)',
      address: '127.0.0.50',
      start: ours('127.0.0.50', {}, compiledChild),
    },
    {
      key: 'ours-tsx',
      name: 'kube-proxy-ts userspace, source through tsx',
      address: '127.0.0.56',
      start: ours('127.0.0.56', {}, ''),
    },
    ...(BEFORE
      ? [
          {
            key: 'before',
            name: `kube-proxy-ts userspace, before (${BEFORE})`,
            address: '127.0.0.55',
            start: ours('127.0.0.55', {}, beforeChild),
          },
        ]
      : []),
    {
      key: 'hwm',
      name: 'kube-proxy-ts userspace, highWaterMark 256 KiB',
      address: '127.0.0.51',
      start: ours('127.0.0.51', { highWaterMark: 256 * 1024 }, compiledChild),
    },
    ...[32, 64].map((kib) => ({
      key: `read${kib}k`,
      name: `kube-proxy-ts userspace, ${kib} KiB read buffers`,
      address: `127.0.0.${44 + kib / 32}`,
      start: ours(`127.0.0.${44 + kib / 32}`, { readBufferBytes: kib * 1024 }, compiledChild),
    })),
    {
      key: 'workers2',
      name: 'kube-proxy-ts userspace, 2 cluster workers',
      address: '127.0.0.52',
      start: ours('127.0.0.52', { workers: 2 }, compiledChild),
    },
    {
      key: 'floor-pipe',
      name: 'floor: minimal Node relay, pipe()',
      address: '127.0.0.57',
      start: floor('127.0.0.57', 'pipe'),
    },
    {
      key: 'floor-onread',
      name: 'floor: minimal Node relay, onread + pipe()',
      address: '127.0.0.58',
      start: floor('127.0.0.58', 'onread'),
    },
    ...(['nagle', 'keepalive', 'nopause'] as const).map((mod, i) => ({
      key: `floor-${mod}`,
      name: `floor: minimal Node relay, onread + pipe(), ${{ nagle: 'noDelay off', keepalive: 'TCP keep-alive on', nopause: 'no pauseOnConnect' }[mod]}`,
      address: `127.0.0.${59 + i}`,
      start: floor(`127.0.0.${59 + i}`, `onread+${mod}`),
    })),
    ...(haveHaproxy
      ? [1, 2].map((threads) => ({
          key: `haproxy${threads}`,
          name: `HAProxy ${hv} TCP mode roundrobin, ${threads} thread${threads > 1 ? 's' : ''}`,
          address: `127.0.0.${52 + threads}`,
          start: haproxy(`127.0.0.${52 + threads}`, threads),
        }))
      : []),
  ];
  const selected = ONLY.map((k) => {
    const v = variants.find((x) => x.key === k);
    if (!v) throw new Error(`unknown variant ${k}; known: ${variants.map((x) => x.key).join(',')}`);
    return v;
  });
  const rounds: Row[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Row[] = [];
    for (const v of selected) {
      if (!v.start) {
        round.push(await measure(v.key, v.name, v.address, HTTP_PORTS[0]!, BULK_PORT, []));
        continue;
      }
      const pids = await v.start();
      round.push(await measure(v.key, v.name, v.address, FRONT_PORT, FRONT_BULK, pids));
      if (running) await stop(running);
      running = undefined;
    }
    rounds.push(round);
  }
  rows.push(...rounds.flat());

  const fmt = (n: number | undefined, d = 0): string =>
    n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d);
  const cpuPct = (s: number | undefined): string =>
    s === undefined ? '-' : `${fmt(s, 2)} s (${fmt((s / SECONDS) * 100)}%)`;
  const out: string[] = [];
  out.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, Node ${process.version}`,
  );
  out.push(`Load average before / after: ${loadBefore} / ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  out.push(
    `Load: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s (keep-alive; and with "Connection: close" = one TCP connection per request); bulk = one TCP stream read for ${SECONDS} s. Backend: ${backendName}; bulk source: node.`,
  );
  out.push(
    'All processes (load generator, proxy, backend) share the same cores: compare rows, not absolute capacity.',
  );
  out.push('');
  out.push(
    '| round | path | req/s keep-alive | p99 ms | req/s new conn | p99 ms | bulk MB/s | proxy CPU keep-alive | proxy CPU new conn | proxy CPU bulk | CPU µs/req keep-alive | CPU µs/new conn | CPU ms/MB | errors |',
  );
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const per = (cpu: number | undefined, n: number | undefined, scale: number, d: number): string =>
    cpu === undefined || n === undefined || !(n > 0) ? '-' : fmt((cpu / (n * SECONDS)) * scale, d);
  rounds.forEach((round, i) => {
    for (const r of round) {
      const errs = [r.keepAlive?.errors, r.perConn?.errors].filter(Boolean).join(' / ');
      out.push(
        `| ${i + 1} | ${r.name} | ${fmt(r.keepAlive?.rps)} | ${fmt(r.keepAlive?.p99ms, 2)} | ${fmt(r.perConn?.rps)} | ${fmt(r.perConn?.p99ms, 2)} | ${fmt(r.mbps)} | ${cpuPct(r.cpu?.keepAlive)} | ${cpuPct(r.cpu?.perConn)} | ${cpuPct(r.cpu?.bulk)} | ${per(r.cpu?.keepAlive, r.keepAlive?.rps, 1e6, 1)} | ${per(r.cpu?.perConn, r.perConn?.rps, 1e6, 0)} | ${per(r.cpu?.bulk, r.mbps, 1e3, 2)} | ${errs || '-'} |`,
      );
    }
  });
  // Each variant against HAProxy 1 thread of the same round: rate ratios and CPU-per-unit ratios.
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined || !(b > 0) ? '-' : `${fmt((a / b) * 100)}%`;
  const cpuRatio = (a: Row, b: Row, k: 'keepAlive' | 'perConn' | 'bulk'): string => {
    const n = (r: Row): number | undefined => (k === 'bulk' ? r.mbps : r[k]?.rps);
    const ca = a.cpu?.[k];
    const cb = b.cpu?.[k];
    const na = n(a);
    const nb = n(b);
    if (ca === undefined || cb === undefined || !na || !nb || !cb) return '-';
    return `${fmt(ca / na / (cb / nb), 2)}×`;
  };
  if (rounds.some((round) => round.some((r) => r.key === 'haproxy1'))) {
    out.push('');
    out.push(
      '| round | path | keep-alive rate vs HAProxy | new-conn rate vs HAProxy | bulk vs HAProxy | CPU/req keep-alive vs HAProxy | CPU/new conn vs HAProxy | CPU/MB vs HAProxy |',
    );
    out.push('|---:|---|---:|---:|---:|---:|---:|---:|');
    rounds.forEach((round, i) => {
      const h = round.find((r) => r.key === 'haproxy1');
      if (!h) return;
      for (const r of round) {
        if (r.key === 'haproxy1' || r.key === 'direct') continue;
        out.push(
          `| ${i + 1} | ${r.name} | ${ratio(r.keepAlive?.rps, h.keepAlive?.rps)} | ${ratio(r.perConn?.rps, h.perConn?.rps)} | ${ratio(r.mbps, h.mbps)} | ${cpuRatio(r, h, 'keepAlive')} | ${cpuRatio(r, h, 'perConn')} | ${cpuRatio(r, h, 'bulk')} |`,
        );
      }
    });
  }
  process.stdout.write(out.join('\n') + '\n');
  await stop(backend);
  await stop(bulkSrc);
}

function haproxyVersion(): string {
  const v = spawnSync('haproxy', ['-v']).stdout.toString();
  return /version (\S+)/.exec(v)?.[1]?.split('-')[0] ?? '';
}

try {
  await main();
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
  for (const d of workDirs) rmSync(d, { recursive: true, force: true });
}
