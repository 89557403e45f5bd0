// Runs inside the client namespace: N sequential TCP connects to ip:port, printing JSON
// { ok, failed, seconds, p50Ms, p99Ms }. The connect time is the SYN / SYN-ACK round trip, which is
// where the first packet of a connection walks the NAT rules.
import * as net from 'node:net';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

const [ip, portText, nText] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText);
const times = [];
let failed = 0;
const one = () =>
  new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host: ip, port });
    const timer = setTimeout(() => {
      failed++;
      s.destroy();
      resolve();
    }, 2000);
    s.once('connect', () => {
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      clearTimeout(timer);
      s.destroy();
      resolve();
    });
    s.once('error', () => {
      failed++;
      clearTimeout(timer);
      resolve();
    });
  });
const start = process.hrtime.bigint();
for (let i = 0; i < n; i++) await one();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? NaN;
process.stdout.write(
  JSON.stringify({ ok: times.length, failed, seconds, p50Ms: q(0.5), p99Ms: q(0.99) }) + '\n',
);
