/**
 * The demo (README's run command): demo backends on 127.0.0.1, kube-proxy-ts in userspace mode on the
 * examples/ manifests, and a client that keeps sending requests through the services' NodePorts and
 * prints where they landed. Edit examples/*.yaml while it runs and the spread follows.
 * Needs no root and programs no firewall rule. Ctrl-C stops it cleanly.
 *
 *   node dist/demo/demo.js [--manifests=DIR] [--rounds=N] [--interval-ms=MS]
 */
import { createServer, connect, type Server } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Writable } from 'node:stream';
import '../backends/index.js';
import { parseCommandLine } from '../config/load.js';
import { runDaemon } from '../app/proxy-server.js';
import { createLogger } from '../observability/logger.js';

const TCP_BACKENDS = [18081, 18082, 18083];
const UDP_BACKEND = 18084;
const NODE_IP = '127.0.0.1';

function arg(name: string, def: string): string {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
}

/** A backend that answers every connection with its name, like a pod running an echo server. */
function startTcpBackend(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => {
      c.on('error', () => {});
      c.end(`backend-${port}\n`);
    });
    s.once('error', reject);
    s.listen(port, NODE_IP, () => {
      resolve(s);
    });
  });
}

function startUdpBackend(port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      s.send(`udp-backend-${port} got "${msg.toString()}"`, rinfo.port, rinfo.address);
    });
    s.once('error', reject);
    s.bind(port, NODE_IP, () => {
      resolve(s);
    });
  });
}

/** One TCP request through the proxy: the backend's name, or the error kind. */
function ask(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ host: NODE_IP, port });
    let data = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve('timeout');
    }, 2000);
    c.on('data', (d: Buffer) => (data += d.toString()));
    c.on('end', () => {
      clearTimeout(timer);
      resolve(data.trim() || 'empty reply');
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(
        e.code === 'ECONNREFUSED'
          ? 'refused'
          : e.code === 'ECONNRESET'
            ? 'reset (no endpoints)'
            : (e.code ?? 'error'),
      );
    });
  });
}

function askUdp(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve('no reply');
    }, 1000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send('hello', port, NODE_IP);
  });
}

function tally(replies: string[]): string {
  const m = new Map<string, number>();
  for (const r of replies) m.set(r, (m.get(r) ?? 0) + 1);
  return [...m]
    .sort()
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
}

/** Turns the daemon's JSON log lines into short readable ones (info and above). */
function readableLog(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        try {
          const o = JSON.parse(line) as { level: number; msg: string };
          const lvl = o.level >= 50 ? 'ERROR ' : o.level >= 40 ? 'WARN ' : '';
          process.stdout.write(`  proxy | ${lvl}${o.msg}\n`);
        } catch {
          process.stdout.write(`  proxy | ${line}\n`);
        }
      }
      cb();
    },
  });
}

async function main(): Promise<void> {
  const manifests = arg('manifests', 'examples');
  const rounds = Number(arg('rounds', '0'));
  const intervalMs = Number(arg('interval-ms', '3000'));

  console.log('kube-proxy-ts demo: userspace mode on the manifests in', manifests);
  const servers = await Promise.all(TCP_BACKENDS.map(startTcpBackend));
  const udp = await startUdpBackend(UDP_BACKEND);
  console.log(
    `  demo backends: tcp ${TCP_BACKENDS.map((p) => `${NODE_IP}:${p}`).join(' ')}, udp ${NODE_IP}:${UDP_BACKEND}`,
  );

  const cmd = parseCommandLine([
    '--proxy-mode=userspace',
    `--manifests=${manifests}`,
    '--hostname-override=demo-node',
    '--healthz-bind-address=127.0.0.1:10256',
    '--metrics-bind-address=127.0.0.1:10249',
    '--iptables-min-sync-period=0s',
    // Never program the machine's own firewall from the demo: listen directly instead of portals.
    '--userspace-portals=false',
  ]);
  const daemon = await runDaemon(cmd, createLogger(0, readableLog()));
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping: proxy listeners, demo backends');
    await daemon.stop();
    for (const s of servers) s.close();
    udp.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  await daemon.firstSync;
  console.log('\nhealth: http://127.0.0.1:10256/healthz   metrics: http://127.0.0.1:10249/metrics');
  console.log(
    `edit ${manifests}/demo.yaml (say, delete the web-18083 EndpointSlice) and watch the spread change; Ctrl-C stops.\n`,
  );

  for (let round = 1; rounds === 0 || round <= rounds; round++) {
    const web: string[] = [];
    for (let i = 0; i < 9; i++) web.push(await ask(30080));
    const sticky: string[] = [];
    for (let i = 0; i < 6; i++) sticky.push(await ask(30081));
    const dns = await askUdp(30053);
    console.log(`round ${round}`);
    console.log(`  web    ${NODE_IP}:30080  round robin     -> ${tally(web)}`);
    console.log(`  sticky ${NODE_IP}:30081  ClientIP sticky -> ${tally(sticky)}`);
    console.log(`  echo   ${NODE_IP}:30053  udp             -> ${dns}`);
    if (rounds === 0 || round < rounds) await new Promise((r) => setTimeout(r, intervalMs));
  }
  await stop(0);
}

main().catch((err: unknown) => {
  console.error('demo failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
