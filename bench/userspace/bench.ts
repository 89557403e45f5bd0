// Userspace relay benchmark (not a test): the same load against a backend directly, through our
// relay (variants), and through HAProxy in TCP mode (if installed). Loopback only, bounded duration.
//   node --import tsx bench/userspace/bench.ts [--seconds=5] [--connections=32]
// Needs `wrk` for the HTTP cases (apt-get install -y wrk haproxy). Prints a markdown table.
// The machine's cores are shared by the load generator, the proxy and the backend: numbers are
// relative, not absolute capacity.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';

const argv = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const SECONDS = Number(argv.get('seconds') ?? 5);
const CONNECTIONS = Number(argv.get('connections') ?? 32);
const HTTP_PORTS = [19101, 19102, 19103];
const BULK_PORT = 19110;
const FRONT_PORT = 18080;
const FRONT_BULK = 18081;
const CLK_TCK = 100;
const here = new URL('.', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'kpt-bench-'));
const children: ChildProcess[] = [];

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
  name: string;
  keepAlive?: WrkResult;
  perConn?: WrkResult;
  mbps: number;
  cpu: { keepAlive: number; perConn: number; bulk: number } | undefined;
}

async function measure(
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
  const keepAlive = useWrk ? await timed('keepAlive', () => wrk(url, false)) : undefined;
  const perConn = useWrk ? await timed('perConn', () => wrk(url, true)) : undefined;
  const mbps = await timed('bulk', () => bulk(host, bulkPort));
  process.stderr.write(`done: ${name}\n`);
  return { name, keepAlive, perConn, mbps, cpu: pids.length > 0 ? cpu : undefined };
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

  rows.push(await measure('direct (backend, no proxy)', '127.0.0.1', HTTP_PORTS[0]!, BULK_PORT, []));

  const relayVariants: { name: string; address: string; opts: Record<string, unknown> }[] = [
    { name: 'kube-proxy-ts userspace (1 process)', address: '127.0.0.50', opts: {} },
    {
      name: 'kube-proxy-ts userspace, highWaterMark 256 KiB',
      address: '127.0.0.51',
      opts: { highWaterMark: 256 * 1024 },
    },
    { name: 'kube-proxy-ts userspace, 2 cluster workers', address: '127.0.0.52', opts: { workers: 2 } },
  ];
  for (const v of relayVariants) {
    const args = {
      httpPorts: HTTP_PORTS,
      bulkPort: BULK_PORT,
      address: v.address,
      port: FRONT_PORT,
      bulkPortFront: FRONT_BULK,
      ...v.opts,
    };
    const { child, line } = await startChild(
      'node',
      ['--import', 'tsx', join(here, 'proxy-child.ts'), JSON.stringify(args)],
      /ready( \d+)+/,
    );
    const pids = line.split(' ').slice(1).map(Number);
    if (!pids.includes(child.pid!)) pids.push(child.pid!);
    rows.push(await measure(v.name, v.address, FRONT_PORT, FRONT_BULK, pids));
    await stop(child);
  }

  if (haveHaproxy) {
    for (const threads of [1, 2]) {
      const address = `127.0.0.${52 + threads}`;
      const cfg = haproxyConfig(
        threads,
        `frontend web\n  mode tcp\n  bind ${address}:${FRONT_PORT}\n  default_backend web\n\nbackend web\n  mode tcp\n  balance roundrobin\n${HTTP_PORTS.map((p, i) => `  server s${i} 127.0.0.1:${p}\n`).join('')}\n` +
          `frontend bulk\n  mode tcp\n  bind ${address}:${FRONT_BULK}\n  default_backend bulk\n\nbackend bulk\n  mode tcp\n  server s0 127.0.0.1:${BULK_PORT}\n`,
      );
      const { child } = await startChild('haproxy', ['-db', '-f', cfg], undefined);
      rows.push(
        await measure(
          `HAProxy ${haproxyVersion()} TCP mode roundrobin, ${threads} thread${threads > 1 ? 's' : ''}`,
          address,
          FRONT_PORT,
          FRONT_BULK,
          [child.pid!],
        ),
      );
      await stop(child);
    }
  }

  const fmt = (n: number | undefined, d = 0): string =>
    n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d);
  const cpuPct = (s: number | undefined): string =>
    s === undefined ? '-' : `${fmt(s, 2)} s (${fmt((s / SECONDS) * 100)}%)`;
  const out: string[] = [];
  out.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, Node ${process.version}`,
  );
  out.push(
    `Load: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s (keep-alive; and with "Connection: close" = one TCP connection per request); bulk = one TCP stream read for ${SECONDS} s. Backend: ${backendName}; bulk source: node.`,
  );
  out.push(
    'All processes (load generator, proxy, backend) share the same cores: compare rows, not absolute capacity.',
  );
  out.push('');
  out.push(
    '| path | req/s keep-alive | p99 ms | req/s new conn | p99 ms | bulk MB/s | proxy CPU keep-alive | proxy CPU new conn | proxy CPU bulk | errors |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const errs = [r.keepAlive?.errors, r.perConn?.errors].filter(Boolean).join(' / ');
    out.push(
      `| ${r.name} | ${fmt(r.keepAlive?.rps)} | ${fmt(r.keepAlive?.p99ms, 2)} | ${fmt(r.perConn?.rps)} | ${fmt(r.perConn?.p99ms, 2)} | ${fmt(r.mbps)} | ${cpuPct(r.cpu?.keepAlive)} | ${cpuPct(r.cpu?.perConn)} | ${cpuPct(r.cpu?.bulk)} | ${errs || '-'} |`,
    );
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
}
