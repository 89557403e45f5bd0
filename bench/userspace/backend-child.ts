// Benchmark backends, run as a child process so their CPU is not the proxy's:
// - argv[2..4]: three "HTTP" ports answering every request with a fixed 200 (keep-alive unless the
//   request says Connection: close); a minimal parser, faster than node:http, used when HAProxy is absent;
// - argv[5]: a bulk source that streams bytes until the client goes away.
// Prints "ready" on stdout once every port listens.
import * as net from 'node:net';

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok');
const ports = process.argv.slice(2).map(Number);
const httpPorts = ports.slice(0, 3);
const bulkPort = ports[3] ?? 0;

function httpServer(): net.Server {
  return net.createServer((s) => {
    let pending = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, end).toLowerCase();
        pending = pending.slice(end + 4);
        if (head.includes('connection: close')) {
          s.end(RESPONSE);
          return;
        }
        s.write(RESPONSE);
      }
    });
  });
}

const chunk = Buffer.alloc(256 * 1024, 0x61);
const bulk = net.createServer((s) => {
  s.on('error', () => undefined);
  const pump = (): void => {
    while (!s.destroyed && s.write(chunk));
  };
  s.on('drain', pump);
  pump();
});

let waiting = httpPorts.length + 1;
const ready = (): void => {
  if (--waiting === 0) process.stdout.write('ready\n');
};
for (const p of httpPorts) httpServer().listen(p, '127.0.0.1', ready);
bulk.listen(bulkPort, '127.0.0.1', ready);
