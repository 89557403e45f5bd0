// The floor of Node's net for a TCP relay, for the userspace benchmark: the least a relay in Node can do
// per connection with public APIs, no balancer, no retries, no bookkeeping. Plain JS (no tsx) so that
// nothing but node:net is measured.
//   node bench/userspace/floor-relay.mjs <variant> <host> <listenPort>=<targetPort>[,<targetPort>...]...
// Listens on host:listenPort for each pair, relays round robin to 127.0.0.1:targetPort...
// variant: "pipe" (a.pipe(b) both ways) or "onread" (upstream read with the onread option into one
//   reused buffer, written straight to the client; the client side still a stream); "+nagle" leaves
//   noDelay off, "+keepalive" turns TCP keep-alive on for both legs, "+nopause" accepts without
//   pauseOnConnect and writes to the endpoint socket while it is still connecting.
// Prints "ready <pid>" once listening.
import * as net from 'node:net';
import { Buffer } from 'node:buffer';
import process from 'node:process';

const [spec = 'pipe', host = '127.0.0.1', ...pairs] = process.argv.slice(2);
const [variant, ...mods] = spec.split('+');
const noDelay = !mods.includes('nagle');
const keepAlive = mods.includes('keepalive');
const pauseOnConnect = !mods.includes('nopause');
const targetHost = '127.0.0.1';

function relay(client, targets, rr) {
  const targetPort = targets[rr % targets.length];
  client.on('error', () => client.destroy());
  if (variant === 'pipe') {
    const up = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay, keepAlive });
    up.on('error', () => up.destroy());
    up.on('close', (e) => e && client.destroy());
    client.on('close', (e) => e && up.destroy());
    up.pipe(client);
    client.pipe(up);
    client.resume();
    return;
  }
  // onread: the reused buffer may be read into again only once the client has taken the bytes: a write
  // that did not complete at once pauses the upstream until its callback.
  let waiting = false;
  const written = () => {
    if (waiting) {
      waiting = false;
      up.resume();
    }
  };
  const up = net.connect({
    host: targetHost,
    port: targetPort,
    allowHalfOpen: true,
    noDelay,
    keepAlive,
    onread: {
      buffer: Buffer.allocUnsafe(64 * 1024),
      callback(n, buf) {
        client.write(buf.subarray(0, n), written);
        if (client.writableLength === 0) return true;
        waiting = true;
        return false;
      },
    },
  });
  up.on('error', () => up.destroy());
  up.on('end', () => client.end());
  up.on('close', (e) => e && client.destroy());
  client.on('close', (e) => e && up.destroy());
  client.pipe(up);
  if (pauseOnConnect) client.resume();
}

let toListen = pairs.length;
for (const pair of pairs) {
  const [listen, to = ''] = pair.split('=');
  const targets = to.split(',').map(Number);
  let rr = 0;
  net
    .createServer({ allowHalfOpen: true, pauseOnConnect, noDelay, keepAlive }, (c) => relay(c, targets, rr++))
    .listen(Number(listen), host, () => {
      if (--toListen === 0) process.stdout.write(`ready ${process.pid}\n`);
    });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
