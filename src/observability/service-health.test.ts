import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryLogger } from './logger.js';
import { ServiceHealthServer, serviceHealthBody, type ServiceHealthListenError } from './service-health.js';

/** A port that was free a moment ago (bind 0, read, release). */
async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) =>
    s.close(() => {
      r();
    }),
  );
  return port;
}

async function occupy(host: string, port: number): Promise<Server> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, resolve);
  });
  return s;
}

type Probe = { status: number; body: string; headers: Headers } | 'refused';

async function probe(host: string, port: number, path = '/'): Promise<Probe> {
  try {
    const r = await fetch(`http://${host}:${port}${path}`);
    return { status: r.status, body: await r.text(), headers: r.headers };
  } catch {
    return 'refused';
  }
}

function make(addresses: string[], healthy: { value: boolean }) {
  const logger = createMemoryLogger();
  const errors: ServiceHealthListenError[] = [];
  const server = new ServiceHealthServer({
    addresses,
    proxyHealthy: () => healthy.value,
    logger,
    nodeName: 'node-a',
    onListenError: (e) => errors.push(e),
  });
  return { server, logger, errors };
}

describe('serviceHealthBody', () => {
  it("matches upstream's dedented, tab-indented document exactly", () => {
    assert.equal(
      serviceHealthBody('ns1/svc1', 2, true),
      '{\n\t"service": {\n\t\t"namespace": "ns1",\n\t\t"name": "svc1"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
    );
    assert.deepEqual(JSON.parse(serviceHealthBody('a/b', 0, false)), {
      service: { namespace: 'a', name: 'b' },
      localEndpoints: 0,
      serviceProxyHealthy: false,
    });
  });
});

describe('ServiceHealthServer', () => {
  const healthy = { value: true };
  const { server, errors, logger } = make(['127.0.0.1'], healthy);
  after(() => server.close());

  it('answers 503 until a local endpoint is reported, then 200, on any path', async () => {
    const port = await freePort();
    await server.syncServices(new Map([['ns/a', port]]));
    let r = await probe('127.0.0.1', port);
    assert.ok(r !== 'refused');
    assert.equal(r.status, 503);
    assert.equal(r.body, serviceHealthBody('ns/a', 0, true));
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');

    server.syncEndpoints(new Map([['ns/a', 3]]));
    r = await probe('127.0.0.1', port, '/any/path?x=1');
    assert.ok(r !== 'refused');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      service: { namespace: 'ns', name: 'a' },
      localEndpoints: 3,
      serviceProxyHealthy: true,
    });
    assert.equal(r.headers.get('x-load-balancing-endpoint-weight'), '3');
  });

  it('answers 503 while the proxy itself is unhealthy', async () => {
    healthy.value = false;
    const port = server.activeServices().get('ns/a')!;
    const r = await probe('127.0.0.1', port);
    healthy.value = true;
    assert.ok(r !== 'refused');
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).serviceProxyHealthy, false);
    assert.equal(JSON.parse(r.body).localEndpoints, 3);
  });

  it('resets a service missing from syncEndpoints to 0 endpoints', async () => {
    server.syncEndpoints(new Map([['other/svc', 5]]));
    const r = await probe('127.0.0.1', server.activeServices().get('ns/a')!);
    assert.ok(r !== 'refused');
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).localEndpoints, 0);
  });

  it('opens new services, closes removed ones and moves a changed port', async () => {
    const portA = server.activeServices().get('ns/a')!;
    const portB = await freePort();
    await server.syncServices(
      new Map([
        ['ns/a', portA],
        ['ns/b', portB],
      ]),
    );
    assert.notEqual(await probe('127.0.0.1', portB), 'refused');

    const portB2 = await freePort();
    await server.syncServices(new Map([['ns/b', portB2]]));
    assert.deepEqual(server.activeServices(), new Map([['ns/b', portB2]]));
    assert.equal(await probe('127.0.0.1', portA), 'refused');
    assert.equal(await probe('127.0.0.1', portB), 'refused');
    const r = await probe('127.0.0.1', portB2);
    assert.ok(r !== 'refused');
    assert.equal(JSON.parse(r.body).service.name, 'b');
    assert.equal(errors.length, 0);
  });

  it('reports a port that cannot be bound, keeps the others, and retries it next sync', async () => {
    const busyPort = await freePort();
    const blocker = await occupy('127.0.0.1', busyPort);
    const goodPort = await freePort();
    await server.syncServices(
      new Map([
        ['ns/busy', busyPort],
        ['ns/good', goodPort],
      ]),
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.service, 'ns/busy');
    assert.equal(errors[0]!.port, busyPort);
    assert.match(
      errors[0]!.message,
      new RegExp(`node node-a failed to start healthcheck "ns/busy" on port ${busyPort}: .*EADDRINUSE`),
    );
    assert.ok(
      logger.entries.some(
        (e) => e.level === 'error' && e.msg === 'Failed to start healthcheck' && e.obj.service === 'ns/busy',
      ),
    );
    assert.deepEqual(server.activeServices(), new Map([['ns/good', goodPort]]));
    server.syncEndpoints(new Map([['ns/good', 1]]));
    const good = await probe('127.0.0.1', goodPort);
    assert.ok(good !== 'refused');
    assert.equal(good.status, 200);

    await new Promise<void>((r) =>
      blocker.close(() => {
        r();
      }),
    );
    await server.syncServices(
      new Map([
        ['ns/busy', busyPort],
        ['ns/good', goodPort],
      ]),
    );
    assert.equal(errors.length, 1);
    const busy = await probe('127.0.0.1', busyPort);
    assert.ok(busy !== 'refused');
    assert.equal(JSON.parse(busy.body).service.name, 'busy');
  });

  it('closes everything on close()', async () => {
    const ports = [...server.activeServices().values()];
    assert.ok(ports.length > 0);
    await server.close();
    assert.equal(server.activeServices().size, 0);
    for (const p of ports) assert.equal(await probe('127.0.0.1', p), 'refused');
  });
});

describe('ServiceHealthServer on several addresses', () => {
  it('listens on each address, and gives up the whole service when one address fails', async () => {
    const healthy = { value: true };
    const { server, errors } = make(['127.0.0.1', '127.0.0.2'], healthy);
    try {
      const port = await freePort();
      await server.syncServices(new Map([['ns/a', port]]));
      assert.notEqual(await probe('127.0.0.1', port), 'refused');
      assert.notEqual(await probe('127.0.0.2', port), 'refused');

      const port2 = await freePort();
      const blocker = await occupy('127.0.0.2', port2);
      try {
        await server.syncServices(
          new Map([
            ['ns/a', port],
            ['ns/b', port2],
          ]),
        );
        assert.equal(errors.length, 1);
        assert.equal(errors[0]!.address, '127.0.0.2');
        // The 127.0.0.1 listener opened for ns/b was closed again so a retry can bind.
        assert.equal(await probe('127.0.0.1', port2), 'refused');
        assert.deepEqual([...server.activeServices().keys()], ['ns/a']);
      } finally {
        await new Promise<void>((r) =>
          blocker.close(() => {
            r();
          }),
        );
      }
    } finally {
      await server.close();
    }
  });

  it('treats a wildcard address as every address', async () => {
    const { server } = make(['0.0.0.0'], { value: true });
    try {
      const port = await freePort();
      await server.syncServices(new Map([['ns/w', port]]));
      assert.notEqual(await probe('127.0.0.1', port), 'refused');
    } finally {
      await server.close();
    }
  });
});
