/**
 * `kube-proxy explain` in userspace mode, proved with real connections (no root: the relay listens
 * directly on loopback NodePorts). The daemon runs on a manifests folder; for each listener explain's
 * answer (the CLI's and /debug/explain's) must be what the relay does with real TCP connections:
 * DNAT - every listed endpoint answers, in explain's rotation order, and nothing else does;
 * REJECT - the relay resets the connection; NONE - nothing listens (refused).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/backends/index.js';
import { parseCommandLine } from '../src/config/load.js';
import { runDaemon } from '../src/app/proxy-server.js';
import { runExplain } from '../src/app/explain-command.js';
import { createMemoryLogger } from '../src/observability/logger.js';

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => {
        if (a && typeof a === 'object') resolve(a.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** A NodePort in the default range that nothing on 127.0.0.1 listens on right now. */
async function freeNodePort(avoid: readonly number[]): Promise<number> {
  for (;;) {
    const p = 30000 + Math.floor(Math.random() * 2700);
    if (avoid.includes(p)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => {
        resolve(false);
      });
      s.listen(p, '127.0.0.1', () =>
        s.close(() => {
          resolve(true);
        }),
      );
    });
    if (ok) return p;
  }
}

/** A backend that answers every connection with its own address. */
function backend(ip: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => {
      c.on('error', () => {});
      c.end(`${ip}:${port}\n`);
    });
    s.once('error', reject);
    s.listen(port, ip, () => {
      resolve(s);
    });
  });
}

/** One TCP connection: the answer, or "refused" / "reset". */
function ask(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve('timeout');
    }, 5000);
    c.on('data', (d: Buffer) => (data += d.toString()));
    c.on('end', () => {
      clearTimeout(timer);
      resolve(data.trim() || 'reset');
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(
        e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' ? 'reset' : (e.code ?? 'error'),
      );
    });
  });
}

const BACKEND_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

function manifests(npRR: number, npEmpty: number, port: number): string {
  const ep = (ip: string, ready: boolean): string =>
    `  - addresses: [${ip}]\n    conditions: {ready: ${ready}}\n    nodeName: demo-node\n`;
  return [
    'apiVersion: v1\nkind: Node\nmetadata: {name: demo-node}\nstatus:\n  addresses:\n  - {type: InternalIP, address: 127.0.0.1}\n',
    `apiVersion: v1\nkind: Service\nmetadata: {name: rr, namespace: default}\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.20\n  ports:\n  - {name: http, protocol: TCP, port: 80, nodePort: ${npRR}}\n`,
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: rr-a\n  namespace: default\n  labels: {kubernetes.io/service-name: rr}\naddressType: IPv4\nports:\n- {name: http, protocol: TCP, port: ${port}}\nendpoints:\n${BACKEND_IPS.map((ip) => ep(ip, true)).join('')}${ep('127.0.0.5', false)}`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.21\n  ports:\n  - {name: http, protocol: TCP, port: 80, nodePort: ${npEmpty}}\n`,
  ].join('---\n');
}

test(
  'userspace explain: the relay does what explain says, with real connections',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpt-explain-us-'));
    const port = await freePort('127.0.0.2');
    const npRR = await freeNodePort([]);
    const npEmpty = await freeNodePort([npRR]);
    const unused = await freeNodePort([npRR, npEmpty]);
    writeFileSync(join(dir, 'm.yaml'), manifests(npRR, npEmpty, port));
    const servers = await Promise.all(BACKEND_IPS.map((ip) => backend(ip, port)));
    const [hz, mp] = [await freePort(), await freePort()];
    const common = ['--proxy-mode=userspace', `--manifests=${dir}`, '--hostname-override=demo-node'];
    const daemon = await runDaemon(
      parseCommandLine([
        ...common,
        `--healthz-bind-address=127.0.0.1:${hz}`,
        `--metrics-bind-address=127.0.0.1:${mp}`,
        '--iptables-min-sync-period=0s',
        '--userspace-portals=false',
      ]),
      createMemoryLogger(),
    );
    try {
      await daemon.firstSync;
      const cli = async (dst: number): Promise<Record<string, unknown>> => {
        let out = '';
        const code = await runExplain(
          parseCommandLine([
            'explain',
            ...common,
            '--protocol=TCP',
            '--source=127.0.0.1',
            `--destination=127.0.0.1:${dst}`,
            '-o',
            'json',
          ]),
          createMemoryLogger(),
          (s) => (out += s),
          () => {},
        );
        assert.equal(code, 0);
        return JSON.parse(out) as Record<string, unknown>;
      };
      const http = async (dst: number): Promise<Record<string, unknown>> => {
        const r = await fetch(
          `http://127.0.0.1:${mp}/debug/explain?protocol=TCP&source=127.0.0.1&destination=127.0.0.1:${dst}`,
        );
        assert.equal(r.status, 200);
        return JSON.parse(await r.text()) as Record<string, unknown>;
      };

      // DNAT: every listed endpoint answers, in the listed rotation order; the not-ready one is excluded.
      const rr = await cli(npRR);
      assert.deepEqual(await http(npRR), rr);
      assert.equal(rr.verdict, 'DNAT');
      assert.equal(rr.frontend, 'nodePort');
      assert.equal(rr.service, 'default/rr:http');
      const eps = rr.endpoints as string[];
      assert.deepEqual([...eps].sort(), BACKEND_IPS.map((ip) => `${ip}:${port}`).sort());
      assert.deepEqual(rr.excluded, [{ endpoint: `127.0.0.5:${port}`, reason: 'not ready' }]);
      const answers: string[] = [];
      for (let i = 0; i < eps.length * 3; i++) answers.push(await ask(npRR));
      const off = eps.indexOf(answers[0]!);
      assert.ok(off >= 0, `first answer ${answers[0]} is not listed: ${JSON.stringify(answers)}`);
      assert.deepEqual(
        answers,
        answers.map((_, i) => eps[(i + off) % eps.length]),
        'the relay rotates in the listed order',
      );

      // REJECT: the relay resets a TCP connection to a listener without endpoints.
      const empty = await cli(npEmpty);
      assert.deepEqual(await http(npEmpty), empty);
      assert.equal(empty.verdict, 'REJECT');
      assert.deepEqual(empty.endpoints, []);
      assert.equal(await ask(npEmpty), 'reset');

      // NONE: no listener, nothing answers.
      const none = await cli(unused);
      assert.equal(none.verdict, 'NONE');
      assert.equal(none.service, null);
      assert.equal(await ask(unused), 'refused');
    } finally {
      await daemon.stop();
      for (const s of servers) s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
