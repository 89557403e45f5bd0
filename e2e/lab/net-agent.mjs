// Long-lived client helper for the e2e lab; one per namespace (started through `ip netns exec`).
// Spawning a node process per connection costs ~50 ms, so the lab keeps this agent running and
// sends it requests: one JSON object per stdin line, one JSON answer per stdout line, matched by id.
//
// Requests: {id, op: 'tcp'|'udp', ip, port, timeoutMs, n, concurrency, sourcePort, sameSocket, payload}
// Answer:   {id, results: [{ok: true, reply, localPort} | {ok: false, error, localPort?}]}  or {id, fatal}
import net from 'node:net';
import dgram from 'node:dgram';
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { setTimeout, clearTimeout } from 'node:timers';
import readline from 'node:readline';

// Stable names for the errors tests assert on; anything else is passed through as the errno code.
function classify(err) {
  switch (err?.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
      return 'host-unreachable';
    case 'ENETUNREACH':
      return 'net-unreachable';
    default:
      return String(err?.code ?? err?.message ?? err);
  }
}

function tcpOnce(ip, port, timeoutMs, sourcePort) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const opts = { host: ip, port };
    if (sourcePort) opts.localPort = sourcePort;
    const sock = net.connect(opts);
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const started = Date.now();
    let connected = false;
    const onTimeout = (graced) => {
      // A timer that fires late means this process was not scheduled (a loaded machine): libuv runs
      // due timers before it polls sockets, so give pending I/O one turn before calling it a timeout.
      const lateMs = Date.now() - started - timeoutMs;
      if (!graced && lateMs > 100) {
        timer = setTimeout(() => onTimeout(true), 50);
        return;
      }
      // stage: whether the handshake completed (the path worked; the reply did not come) or not.
      finish({
        ok: false,
        error: 'timeout',
        localPort: sock.localPort,
        stage: connected ? 'reply' : 'connect',
        lateMs,
      });
    };
    let timer = setTimeout(() => onTimeout(false), timeoutMs);
    sock.on('connect', () => (connected = true));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', (err) => finish({ ok: false, error: classify(err), localPort: sock.localPort }));
    sock.on('end', () => {
      const reply = Buffer.concat(chunks).toString('utf8').trim();
      finish(
        reply
          ? { ok: true, reply, localPort: sock.localPort }
          : { ok: false, error: 'no-reply', localPort: sock.localPort },
      );
    });
  });
}

function openUdp(ip, port, sourcePort) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
    const onErr = (err) => resolve({ sock, error: classify(err) });
    sock.once('error', onErr);
    sock.bind(sourcePort ?? 0, () => {
      // connect() so the kernel reports ICMP port-unreachable to us as ECONNREFUSED
      sock.connect(port, ip, (err) => {
        sock.removeListener('error', onErr);
        resolve(err ? { sock, error: classify(err) } : { sock });
      });
    });
  });
}

function udpExchange(sock, payload, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const localPort = sock.address().port;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.removeListener('message', onMsg);
      sock.removeListener('error', onErr);
      resolve(r);
    };
    const onMsg = (msg) => finish({ ok: true, reply: msg.toString('utf8').trim(), localPort });
    const onErr = (err) => finish({ ok: false, error: classify(err), localPort });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', localPort }), timeoutMs);
    sock.on('message', onMsg);
    sock.on('error', onErr);
    sock.send(payload, (err) => err && onErr(err));
  });
}

async function udpOnce(ip, port, timeoutMs, sourcePort, payload) {
  const { sock, error } = await openUdp(ip, port, sourcePort);
  try {
    if (error) return { ok: false, error };
    return await udpExchange(sock, payload, timeoutMs);
  } finally {
    sock.close();
  }
}

async function udpSameSocket(ip, port, timeoutMs, sourcePort, payload, n) {
  const { sock, error } = await openUdp(ip, port, sourcePort);
  try {
    if (error) return Array.from({ length: n }, () => ({ ok: false, error }));
    const out = [];
    for (let i = 0; i < n; i++) out.push(await udpExchange(sock, payload, timeoutMs));
    return out;
  } finally {
    sock.close();
  }
}

// Runs `n` attempts, at most `concurrency` at a time, keeping results in attempt order.
async function many(n, concurrency, fn) {
  const results = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await fn();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  return results;
}

async function handle(req) {
  const n = Math.max(1, Math.min(Number(req.n ?? 1), 100000));
  const conc = Number(req.concurrency ?? 1);
  const timeoutMs = Number(req.timeoutMs ?? 2000);
  const payload = String(req.payload ?? 'ping');
  if (req.op === 'tcp') return many(n, conc, () => tcpOnce(req.ip, req.port, timeoutMs, req.sourcePort));
  if (req.op === 'udp') {
    if (req.sameSocket || req.sourcePort)
      return udpSameSocket(req.ip, req.port, timeoutMs, req.sourcePort, payload, n);
    return many(n, conc, () => udpOnce(req.ip, req.port, timeoutMs, undefined, payload));
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  handle(req).then(
    (results) => process.stdout.write(JSON.stringify({ id: req.id, results }) + '\n'),
    (err) => process.stdout.write(JSON.stringify({ id: req.id, fatal: String(err?.message ?? err) }) + '\n'),
  );
});
// stdin closing means the lab (our parent) is gone: leave with it.
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n');
