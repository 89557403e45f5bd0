// Real sockets on loopback: backends on 127.0.0.1 ephemeral ports, service addresses 127.0.0.10..50
// with fixed high ports (one address per test so tests never collide).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { UserspaceProxier, type UserspaceRelayOptions } from './relay.js';
import { createUserspaceBackend, userspaceBackend, userspaceOptionsFromConfig } from './backend.js';
import type { PortalProbe } from './portal.js';
import { fakeExec } from '../../exec/fake-exec.js';
import { createMetrics } from '../../observability/metrics.js';
import { KpError } from '../../errors.js';
import { familyOptions } from '../../../test/fixtures/options.js';

const OPTS: FamilyOptions = familyOptions({ randomFully: false });

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface TestBackend {
  readonly name: string;
  readonly port: number;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/**
 * A TCP backend. mode "name": reads until the client ends, then answers "<name>:<bytes read>" and ends.
 * mode "echo": echoes everything, ends when the client ends.
 */
async function tcpBackend(name: string, mode: 'name' | 'echo' = 'name'): Promise<TestBackend> {
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    b.accepted++;
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => undefined);
    if (mode === 'echo') {
      s.pipe(s);
      return;
    }
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`${name}:${n}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const b: TestBackend = {
    name,
    port: (server.address() as net.AddressInfo).port,
    accepted: 0,
    close: async () => {
      for (const s of socks) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
  cleanups.push(() => (server.listening ? b.close() : undefined));
  return b;
}

/** Connects, writes `payload`, half-closes, and resolves with everything received until the end. */
function request(host: string, port: number, payload: string | Buffer = ''): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect({ host, port, allowHalfOpen: true }, () => c.end(payload));
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => {
      c.end();
      resolve(Buffer.concat(chunks));
    });
    c.on('error', reject);
  });
}

/** Resolves with the error code a connection attempt ends with ("" when it ends cleanly). */
function connectOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ host, port });
    c.on('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code ?? 'error');
    });
    c.on('close', () => {
      resolve('');
    });
    c.resume();
  });
}

/** Polls `cond` every 20 ms; fails after `limitMs` (a liveness bound, not a timing assertion). */
async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > limitMs) assert.fail(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stateFor(
  svc: { name: string; ip: string; port: number; protocol?: 'TCP' | 'UDP'; spec?: Record<string, unknown> },
  backendPorts: number[],
): DesiredState {
  const protocol = svc.protocol ?? 'TCP';
  const objects = [
    makeNode('node-a', ['127.0.0.2']),
    makeService('t', svc.name, {
      clusterIP: svc.ip,
      ports: [{ name: 'p', port: svc.port, protocol }],
      ...svc.spec,
    }),
    ...backendPorts.map((port, i) =>
      makeSlice(
        't',
        svc.name,
        `${svc.name}-${i}`,
        [{ ip: '127.0.0.1', nodeName: 'node-a' }],
        [{ name: 'p', port, protocol }],
      ),
    ),
  ];
  return desiredStatesFromObjects(objects, { families: ['IPv4'], nodeName: 'node-a' })[0]!;
}

function proxier(opts: UserspaceRelayOptions = {}): {
  p: UserspaceProxier;
  log: ReturnType<typeof createMemoryLogger>;
} {
  const log = createMemoryLogger();
  const p = new UserspaceProxier({ logger: log, options: OPTS }, opts);
  cleanups.push(() => p.close());
  return { p, log };
}

describe('userspace relay TCP', () => {
  it('with a health checker: its targets are the TCP endpoints; new connections skip a failing one, unless only failing ones are left', async () => {
    const bs = await Promise.all(['a', 'b'].map((n) => tcpBackend(n)));
    let targets: string[] = [];
    const unhealthy = new Set<string>();
    const health = {
      setTargets: (t: Iterable<string>) => (targets = [...t].sort()),
      isHealthy: (t: string) => !unhealthy.has(t),
      unhealthy: () => unhealthy,
    };
    const log = createMemoryLogger();
    const p = new UserspaceProxier({ logger: log, options: OPTS, health });
    cleanups.push(() => p.close());
    await p.sync(
      stateFor(
        { name: 'hc', ip: '127.0.0.42', port: 18091 },
        bs.map((b) => b.port),
      ),
    );
    assert.deepEqual(targets, bs.map((b) => `127.0.0.1:${b.port}`).sort());
    const names = async (n: number): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await request('127.0.0.42', 18091)).toString().split(':')[0]!);
      return out;
    };
    assert.deepEqual(new Set(await names(4)), new Set(['a', 'b']));
    unhealthy.add(`127.0.0.1:${bs[0]!.port}`);
    assert.deepEqual(await names(6), ['b', 'b', 'b', 'b', 'b', 'b']);
    unhealthy.add(`127.0.0.1:${bs[1]!.port}`);
    assert.deepEqual(new Set(await names(4)), new Set(['a', 'b']), 'all failing: still served');
  });

  it('a busy port fails the sync (warning, metric; the sync loop retries it) and is served once free', async () => {
    const [b] = await Promise.all([tcpBackend('a')]);
    // Someone else holds the service's address and port.
    const holder = net.createServer((s) => s.destroy());
    holder.listen(18090, '127.0.0.41');
    await once(holder, 'listening');
    const log = createMemoryLogger();
    const metrics = createMetrics({ mode: 'userspace', defaultMetrics: false });
    const p = new UserspaceProxier({ logger: log, options: OPTS, metrics });
    cleanups.push(() => p.close());
    const state = stateFor({ name: 'busy', ip: '127.0.0.41', port: 18090 }, [b.port]);
    await assert.rejects(p.sync(state), (err: unknown) => {
      assert.ok(err instanceof KpError && err.code === 'KP_ERR_LISTEN', String(err));
      assert.match(err.message, /TCP\/127\.0\.0\.41:18090 \(EADDRINUSE\)/);
      return true;
    });
    assert.ok(
      log.entries.some(
        (e) =>
          e.level === 'warn' &&
          /cannot listen on tcp 127\.0\.0\.41:18090 \(port already in use\)/.test(e.msg),
      ),
      JSON.stringify(log.entries.map((e) => e.msg)),
    );
    await assert.rejects(p.sync(state), /KP_ERR_LISTEN|cannot listen/);
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /kubeproxy_userspace_listen_failures_total\{ip_family="IPv4",protocol="TCP",code="EADDRINUSE"\} 2/,
    );
    holder.close();
    await once(holder, 'close');
    await p.sync(state);
    assert.deepEqual(p.listening(), ['TCP/127.0.0.41:18090']);
    assert.equal((await request('127.0.0.41', 18090)).toString(), 'a:0');
  });

  it('round robin spreads 30 connections evenly over 3 backends and says where the service is', async () => {
    const bs = await Promise.all(['a', 'b', 'c'].map((n) => tcpBackend(n)));
    const { p, log } = proxier();
    await p.sync(
      stateFor(
        { name: 'rr', ip: '127.0.0.10', port: 18080 },
        bs.map((b) => b.port),
      ),
    );
    assert.deepEqual(p.listening(), ['TCP/127.0.0.10:18080']);
    assert.ok(
      log.entries.some(
        (e) => e.level === 'info' && e.msg.includes('t/rr:p is now reachable at tcp 127.0.0.10:18080'),
      ),
    );
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const name = (await request('127.0.0.10', 18080)).toString().split(':')[0]!;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries([...counts].sort()), { a: 10, b: 10, c: 10 });
    await waitFor(() => p.stats().tcpActive === 0, 'connections to close');
    assert.equal(p.stats().tcpConnected, 30);
  });

  it('ClientIP affinity keeps one client on one backend', async () => {
    const bs = await Promise.all(['a', 'b', 'c'].map((n) => tcpBackend(n)));
    const { p } = proxier();
    await p.sync(
      stateFor(
        {
          name: 'sticky',
          ip: '127.0.0.11',
          port: 18080,
          spec: { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } },
        },
        bs.map((b) => b.port),
      ),
    );
    const names = new Set<string>();
    for (let i = 0; i < 10; i++) names.add((await request('127.0.0.11', 18080)).toString().split(':')[0]!);
    assert.equal(names.size, 1);
  });

  it('least-connections sends a new connection to the idle backend', async () => {
    const bs = await Promise.all(['a', 'b'].map((n) => tcpBackend(n, 'echo')));
    const { p } = proxier({ algorithm: 'least-connections' });
    await p.sync(
      stateFor(
        { name: 'lc', ip: '127.0.0.12', port: 18080 },
        bs.map((b) => b.port),
      ),
    );
    // Endpoints rotate in "ip:port" string order; hold one connection on each, then free the second.
    const [first, second] = [...bs].sort((x, y) => (`127.0.0.1:${x.port}` < `127.0.0.1:${y.port}` ? -1 : 1));
    const held = [net.connect(18080, '127.0.0.12'), net.connect(18080, '127.0.0.12')];
    for (const h of held) h.on('error', () => undefined);
    await waitFor(() => first!.accepted === 1 && second!.accepted === 1, 'two held connections');
    held[1]!.destroy();
    await waitFor(() => p.stats().tcpActive === 1, 'one connection closed');
    // Round robin would pick `first` now; least-connections picks the idle `second`.
    const c = net.connect(18080, '127.0.0.12');
    c.on('error', () => undefined);
    await waitFor(() => second!.accepted === 2, 'new connection on the idle backend');
    assert.equal(first!.accepted, 1);
    held[0]!.destroy();
    c.destroy();
  });

  it('a dead endpoint is skipped: every connection still succeeds', async () => {
    const live = await Promise.all(['a', 'b'].map((n) => tcpBackend(n)));
    const dead = await tcpBackend('dead');
    await dead.close();
    const { p } = proxier();
    await p.sync(
      stateFor({ name: 'retry', ip: '127.0.0.13', port: 18080 }, [live[0]!.port, dead.port, live[1]!.port]),
    );
    for (let i = 0; i < 9; i++) {
      const name = (await request('127.0.0.13', 18080)).toString().split(':')[0];
      assert.ok(name === 'a' || name === 'b', `got ${name}`);
    }
    assert.ok(p.stats().tcpDialFailures >= 3);
  });

  it('no endpoints: connections are reset', async () => {
    const { p } = proxier();
    await p.sync(stateFor({ name: 'none', ip: '127.0.0.14', port: 18080 }, []));
    assert.equal(await connectOutcome('127.0.0.14', 18080), 'ECONNRESET');
    assert.equal(p.stats().tcpRejected, 1);
  });

  it('all endpoints dead: the connection is reset after one try each', async () => {
    const dead = await tcpBackend('dead');
    await dead.close();
    const { p } = proxier();
    await p.sync(stateFor({ name: 'alldead', ip: '127.0.0.15', port: 18080 }, [dead.port]));
    assert.equal(await connectOutcome('127.0.0.15', 18080), 'ECONNRESET');
    assert.equal(p.stats().tcpDialFailures, 1);
  });

  it('a removed endpoint gets no new connections; an open connection to it keeps working', async () => {
    const bs = await Promise.all(['a', 'b'].map((n) => tcpBackend(n, 'echo')));
    const { p } = proxier();
    await p.sync(
      stateFor(
        { name: 'rm', ip: '127.0.0.16', port: 18080 },
        bs.map((b) => b.port),
      ),
    );
    const c = net.connect(18080, '127.0.0.16');
    c.write('ping1');
    const [first] = (await once(c, 'data')) as [Buffer];
    assert.equal(first.toString(), 'ping1');
    const gone = bs.find((b) => b.accepted === 1)!;
    const kept = bs.find((b) => b !== gone)!;
    await p.sync(stateFor({ name: 'rm', ip: '127.0.0.16', port: 18080 }, [kept.port]));
    for (let i = 0; i < 4; i++) assert.equal((await request('127.0.0.16', 18080, 'z')).toString(), 'z');
    assert.equal(gone.accepted, 1);
    assert.equal(kept.accepted, 4);
    c.write('ping2');
    const [second] = (await once(c, 'data')) as [Buffer];
    assert.equal(second.toString(), 'ping2');
    c.end();
  });

  it('a removed service closes its listener: connections are refused', async () => {
    const a = await tcpBackend('a');
    const { p, log } = proxier();
    await p.sync(stateFor({ name: 'gone', ip: '127.0.0.17', port: 18080 }, [a.port]));
    assert.match((await request('127.0.0.17', 18080)).toString(), /^a:/);
    await p.sync(
      desiredStatesFromObjects([makeNode('node-a', ['127.0.0.2'])], {
        families: ['IPv4'],
        nodeName: 'node-a',
      })[0]!,
    );
    assert.deepEqual(p.listening(), []);
    assert.equal(await connectOutcome('127.0.0.17', 18080), 'ECONNREFUSED');
    assert.ok(
      log.entries.some((e) => e.msg.includes('t/gone:p no longer reachable at tcp 127.0.0.17:18080')),
    );
  });

  it('half-close: the client ends its write side and still receives the reply', async () => {
    const a = await tcpBackend('a');
    const { p } = proxier();
    await p.sync(stateFor({ name: 'half', ip: '127.0.0.18', port: 18080 }, [a.port]));
    // The backend answers only after it sees our FIN, so the reply proves the half-open relay.
    assert.equal((await request('127.0.0.18', 18080, 'hello')).toString(), 'a:5');
  });

  it('moves a few MB byte-exact both ways', async () => {
    const a = await tcpBackend('a', 'echo');
    const { p } = proxier();
    await p.sync(stateFor({ name: 'bulk', ip: '127.0.0.19', port: 18080 }, [a.port]));
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const got = await request('127.0.0.19', 18080, data);
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data));
    await waitFor(() => p.stats().tcpActive === 0, 'connection to close');
    assert.equal(p.stats().tcpBytesToEndpoint, data.length);
    assert.equal(p.stats().tcpBytesToClient, data.length);
  });

  it('slow readers on several connections at once get their own bytes exactly (read buffers are per connection and reused)', async () => {
    // Each connection gets a different 24 MB stream; the clients stop reading for a while so the relay
    // has to stop reading from the endpoint while a client write still holds the read buffer.
    // Big enough to fill the kernel's loopback buffers, so relay writes to the client stop completing at once.
    const size = 24 * 1024 * 1024;
    const streamFor = (seed: number): Buffer => {
      const pattern = Buffer.alloc(4099 + seed);
      for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + seed * 17) & 0xff;
      return Buffer.alloc(size, pattern);
    };
    let next = 0;
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        s.end(streamFor(next++));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(
      () =>
        new Promise<void>((r) =>
          server.close(() => {
            r();
          }),
        ),
    );
    const { p } = proxier({ readBufferBytes: 4096 });
    await p.sync(
      stateFor({ name: 'slow', ip: '127.0.0.21', port: 18080 }, [(server.address() as net.AddressInfo).port]),
    );
    const read = (): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const c = net.connect({ host: '127.0.0.21', port: 18080 }, () => c.write('go'));
        c.pause();
        setTimeout(() => c.resume(), 200);
        c.on('data', (d: Buffer) => chunks.push(d));
        c.on('end', () => {
          resolve(Buffer.concat(chunks));
        });
        c.on('error', reject);
      });
    // The first connection reaches the backend first, so it gets stream 0, and so on.
    const got: Buffer[] = [];
    for (let i = 0; i < 3; i++) got.push(await read());
    const parallel = await Promise.all([read(), read(), read()]);
    got.push(...parallel);
    for (let i = 0; i < 3; i++) assert.ok(got[i]!.equals(streamFor(i)), `sequential connection ${i}`);
    // Concurrent connections reach the backend in an order we do not control: match by content.
    const want = [3, 4, 5].map(streamFor);
    for (const g of parallel)
      assert.ok(
        want.some((w) => w.equals(g)),
        'a parallel stream arrived intact',
      );
    assert.equal(new Set(parallel.map((g) => g.subarray(0, 64).toString('hex'))).size, 3);
    await waitFor(() => p.stats().tcpActive === 0, 'connections to close');
    assert.equal(p.stats().tcpBytesToClient, 6 * size);
  });

  it('an address not on this machine is logged once and the others still listen', async () => {
    const a = await tcpBackend('a');
    const { p, log } = proxier();
    // 192.0.2.0/24 (TEST-NET-1) is never local: bind fails with EADDRNOTAVAIL, nothing is bound.
    const st = stateFor(
      { name: 'mixed', ip: '127.0.0.20', port: 18080, spec: { externalIPs: ['192.0.2.55'] } },
      [a.port],
    );
    await p.sync(st);
    await p.sync(st);
    assert.deepEqual(p.listening(), ['TCP/127.0.0.20:18080']);
    const notes = log.entries.filter((e) => e.msg.includes('cannot listen on tcp 192.0.2.55:18080'));
    assert.equal(notes.length, 1);
    assert.equal(notes[0]!.obj.code, 'EADDRNOTAVAIL');
    assert.match((await request('127.0.0.20', 18080)).toString(), /^a:/);
  });
});

describe('userspace relay UDP', () => {
  async function udpBackend(name: string): Promise<{ port: number; seenFrom: Set<number> }> {
    const s = dgram.createSocket('udp4');
    const seenFrom = new Set<number>();
    s.on('message', (m, r) => {
      seenFrom.add(r.port);
      s.send(`${name}:${m.toString()}`, r.port, r.address);
    });
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    cleanups.push(() => {
      s.close();
    });
    return { port: s.address().port, seenFrom };
  }

  async function udpClient(): Promise<dgram.Socket> {
    const c = dgram.createSocket('udp4');
    c.bind(0, '127.0.0.1');
    await once(c, 'listening');
    cleanups.push(() => {
      c.close();
    });
    return c;
  }

  it('round trip: the reply comes back from the service address, one session per client', async () => {
    const bs = await Promise.all(['a', 'b'].map((n) => udpBackend(n)));
    const { p } = proxier({ udpIdleTimeoutMs: 5_000 });
    await p.sync(
      stateFor(
        { name: 'dns', ip: '127.0.0.30', port: 15353, protocol: 'UDP' },
        bs.map((b) => b.port),
      ),
    );
    const c = await udpClient();
    const replies: string[] = [];
    for (const q of ['q1', 'q2', 'q3']) {
      c.send(q, 15353, '127.0.0.30');
      const [msg, rinfo] = (await once(c, 'message')) as [Buffer, dgram.RemoteInfo];
      assert.equal(rinfo.address, '127.0.0.30');
      assert.equal(rinfo.port, 15353);
      replies.push(msg.toString());
    }
    // One client ip:port is one session: every datagram goes to the same endpoint.
    const backend = replies[0]!.split(':')[0];
    assert.deepEqual(
      replies,
      ['q1', 'q2', 'q3'].map((q) => `${backend}:${q}`),
    );
    assert.equal(p.stats().udpSessionsOpened, 1);
    // A second client gets the other endpoint (round robin).
    const c2 = await udpClient();
    c2.send('x', 15353, '127.0.0.30');
    const [m2] = (await once(c2, 'message')) as [Buffer];
    assert.notEqual(m2.toString().split(':')[0], backend);
  });

  it('an idle session is freed after udpIdleTimeoutMs; the next datagram opens a new one', async () => {
    const b = await udpBackend('a');
    const { p } = proxier({ udpIdleTimeoutMs: 100 });
    await p.sync(stateFor({ name: 'idle', ip: '127.0.0.31', port: 15353, protocol: 'UDP' }, [b.port]));
    const c = await udpClient();
    c.send('1', 15353, '127.0.0.31');
    await once(c, 'message');
    assert.equal(p.stats().udpActiveSessions, 1);
    await waitFor(() => p.stats().udpActiveSessions === 0, 'session expiry');
    assert.equal(p.stats().udpSessionsClosed, 1);
    c.send('2', 15353, '127.0.0.31');
    const [m] = (await once(c, 'message')) as [Buffer];
    assert.equal(m.toString(), 'a:2');
    assert.equal(p.stats().udpSessionsOpened, 2);
    assert.equal(b.seenFrom.size, 2); // a fresh socket per session
  });

  it('datagrams with no endpoint are dropped and counted', async () => {
    const { p } = proxier();
    await p.sync(stateFor({ name: 'udpnone', ip: '127.0.0.32', port: 15353, protocol: 'UDP' }, []));
    const c = await udpClient();
    c.send('x', 15353, '127.0.0.32');
    await waitFor(() => p.stats().udpDropped === 1, 'drop counted');
    assert.equal(p.stats().udpSessionsOpened, 0);
  });
});

describe('userspaceBackend', () => {
  it('registers mode userspace, renders the table and the portal section, creates a direct proxier when not root', async () => {
    assert.equal(userspaceBackend.mode, 'userspace');
    // Never probe the machine's firewall from a unit test: pretend not to be root.
    const backend = createUserspaceBackend({ probe: { isRoot: false } });
    const st = stateFor({ name: 'r', ip: '127.0.0.40', port: 18080 }, [9999]);
    const text = backend.render([st], [OPTS]);
    assert.match(text, /t\/r:p\s+TCP\s+127\.0\.0\.40:18080\s+clusterIP\s+127\.0\.0\.1:9999/);
    assert.match(text, /# userspace portals IPv4/);
    assert.match(
      text,
      /-A KUBE-PORTALS-CONTAINER -m comment --comment "t\/r:p" -p tcp -m tcp -d 127\.0\.0\.40\/32 --dport 18080 -j REDIRECT --to-ports <proxy-port-1>/,
    );
    const log = createMemoryLogger();
    const px = await backend.create({ logger: log, options: OPTS });
    assert.ok(px instanceof UserspaceProxier);
    assert.equal(px.mode, 'direct');
    assert.ok(
      log.entries.some((e) => e.level === 'warn' && /direct listening \(not running as root\)/.test(e.msg)),
    );
    await px.close();
    await backend.cleanup(createMemoryLogger());
  });

  it('userspaceOptionsFromConfig: algorithm, portals switch, port range ("" and 0-0 mean ephemeral)', () => {
    assert.deepEqual(
      userspaceOptionsFromConfig({
        userspaceBalancer: 'least-connections',
        portRange: '',
        userspacePortals: true,
      }),
      { algorithm: 'least-connections', portals: 'auto' },
    );
    assert.deepEqual(
      userspaceOptionsFromConfig({
        userspaceBalancer: 'round-robin',
        portRange: '0-0',
        userspacePortals: false,
      }),
      { algorithm: 'round-robin', portals: 'off' },
    );
    assert.deepEqual(
      userspaceOptionsFromConfig({
        userspaceBalancer: 'round-robin',
        portRange: '40000+9',
        userspacePortals: true,
      }).portRange,
      { min: 40000, max: 40009 },
    );
  });
});

describe('userspace relay in portal mode (fake iptables, loopback sockets)', () => {
  interface Call {
    cmd: string;
    args: readonly string[];
    input?: string;
  }
  function fake(): { probe: PortalProbe; calls: Call[] } {
    const { exec, calls } = fakeExec(({ cmd, args }) => ({
      stdout: cmd.endsWith('-save')
        ? '*nat\n:KUBE-PORTALS-CONTAINER - [0:0]\n:KUBE-PORTALS-HOST - [0:0]\nCOMMIT\n'
        : '',
      // -C finds nothing (exit 1); -D finds nothing more after the first (exit 1 after one success is fine).
      code: args.includes('-C') || args.includes('-D') ? 1 : 0,
    }));
    return {
      probe: { exec, isRoot: true, find: (c) => c, env: { KUBE_PROXY_IPTABLES_BACKEND: 'nft' } },
      calls,
    };
  }

  it('binds a proxy port, programs REDIRECT/DNAT to it, relays through it, logs a summary, removes rules on close', async () => {
    const b = await tcpBackend('pa');
    cleanups.push(() => b.close());
    const { probe, calls } = fake();
    const backend = createUserspaceBackend({ probe, portalListenAddress: '127.0.0.1' });
    const log = createMemoryLogger();
    const created = await backend.create({ logger: log, options: OPTS });
    assert.ok(created instanceof UserspaceProxier);
    const px = created;
    cleanups.push(() => px.close());
    assert.equal(px.mode, 'portal');
    await px.sync(stateFor({ name: 'pm', ip: '172.30.9.9', port: 80 }, [b.port]), true);
    const ports = [...px.proxyPorts().entries()];
    assert.equal(ports.length, 1);
    const [id, proxyPort] = ports[0]!;
    assert.equal(id, 'TCP/portal/t/pm:p/TCP|internal');
    const restore = calls.find((c) => c.cmd === 'iptables-nft-restore');
    assert.ok(
      restore?.input?.includes(`-d 172.30.9.9/32 --dport 80 -j REDIRECT --to-ports ${proxyPort}`),
      restore?.input,
    );
    assert.ok(
      restore?.input?.includes(`-j DNAT --to-destination 127.0.0.2:${proxyPort}`),
      'host traffic goes to the node IP',
    );
    assert.equal(
      calls.filter((c) => c.args.includes('-I') || c.args.includes('-A')).length,
      5,
      'all five jumps added',
    );
    // What REDIRECT would deliver: a connection to the proxy port reaches the backend.
    assert.equal((await request('127.0.0.1', proxyPort, 'hi')).toString(), 'pa:2');
    const summary = log.entries.find((e) => e.msg.startsWith('userspace startup summary'));
    assert.match(
      summary?.msg ?? '',
      new RegExp(
        `portal mode.*1 reachable.*t/pm:p tcp 172\\.30\\.9\\.9:80 \\(clusterIP\\) -> proxy port ${proxyPort}`,
        's',
      ),
    );
    // Unchanged state, partial sync: no second restore.
    const before = calls.length;
    await px.sync(stateFor({ name: 'pm', ip: '172.30.9.9', port: 80 }, [b.port]), false);
    assert.equal(calls.length, before);
    await px.close();
    const after = calls.slice(before).map((c) => `${c.cmd} ${c.args.join(' ')}`);
    assert.ok(
      after.some((c) => / -t nat -X KUBE-PORTALS-CONTAINER$/.test(c)),
      after.join('\n'),
    );
    assert.ok(
      after.some((c) => / -t nat -D PREROUTING .*KUBE-PORTALS-CONTAINER$/.test(c)),
      after.join('\n'),
    );
  });

  it('takes proxy ports from the range, per protocol, skipping ports held by others', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen({ host: '127.0.0.1', port: 0 }, r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          holder.close(() => {
            r();
          });
        }),
    );
    const held = (holder.address() as net.AddressInfo).port;
    const { probe } = fake();
    const backend = createUserspaceBackend({
      probe,
      portalListenAddress: '127.0.0.1',
      portRange: { min: held, max: held + 40 },
    });
    const created = await backend.create({ logger: createMemoryLogger(), options: OPTS });
    assert.ok(created instanceof UserspaceProxier);
    const px = created;
    cleanups.push(() => px.close());
    await px.sync(stateFor({ name: 'pr', ip: '172.30.9.10', port: 80 }, [9]), true);
    const port = [...px.proxyPorts().values()][0]!;
    assert.ok(port > held && port <= held + 40, `port ${port} in range and not the held ${held}`);
  });
});
