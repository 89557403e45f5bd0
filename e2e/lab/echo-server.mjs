// Backend for the e2e lab; runs inside a pod namespace (started by topology.ts through `ip netns exec`).
// Every TCP connection gets one line `<name> client=<ip:port>` and is then closed; every UDP
// datagram gets the same text back. The client address is what the kernel handed the socket, so
// tests can tell whether the proxy masqueraded the packet.
//
// usage: node echo-server.mjs <name> <tcpPorts|-> <udpPorts|-> <v6:0|1>
// Prints one JSON line {"ready":true,...} on stdout once every socket is bound, or {"ready":false,"error":...}.
import net from 'node:net';
import dgram from 'node:dgram';
import process from 'node:process';

const [name = 'unnamed', tcpArg = '-', udpArg = '-', v6Arg = '0'] = process.argv.slice(2);
const ports = (s) => (s === '-' || s === '' ? [] : s.split(',').map(Number));
const tcpPorts = ports(tcpArg);
const udpPorts = ports(udpArg);
const families = v6Arg === '1' ? ['0.0.0.0', '::'] : ['0.0.0.0'];

// IPv6 peers are bracketed so `ip:port` stays unambiguous.
const fmt = (address, port) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

function listenTcp(port, host) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.end(`${name} client=${fmt(sock.remoteAddress, sock.remotePort)}\n`);
    });
    server.once('error', reject);
    // ipv6Only keeps the v4 listener separate, so v4 peers never show up as ::ffff:a.b.c.d
    server.listen({ port, host, ipv6Only: host === '::' }, () => resolve(server));
  });
}

function listenUdp(port, host) {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: host === '::' });
    sock.once('error', reject);
    sock.on('message', (_msg, rinfo) => {
      sock.send(`${name} client=${fmt(rinfo.address, rinfo.port)}\n`, rinfo.port, rinfo.address);
    });
    sock.bind({ port, address: host }, () => {
      sock.removeListener('error', reject);
      sock.on('error', () => {});
      resolve(sock);
    });
  });
}

try {
  const jobs = [];
  for (const host of families) {
    for (const p of tcpPorts) jobs.push(listenTcp(p, host));
    for (const p of udpPorts) jobs.push(listenUdp(p, host));
  }
  await Promise.all(jobs);
  process.stdout.write(JSON.stringify({ ready: true, name, tcpPorts, udpPorts, pid: process.pid }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ready: false, error: String(err?.message ?? err) }) + '\n');
  process.exit(1);
}
// The lab kills us by pid; also go away when the parent closes our stdin (parent died).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
