/**
 * API-server faults against the real daemon (root only, issue #13): nftables mode in the lab's node
 * namespace, the fake API server as a process in the same namespace, a client pod connecting to a
 * programmed Service every ~100 ms throughout. For each fault (the server down at start; a watch cut;
 * 410 Gone; 500 and 429 with Retry-After; a server that accepts and then hangs; 401) the test checks:
 *   - no connection fails and the programmed table is not rewritten while the fault lasts
 *     (`nft -a` handles unchanged: a flush or rewrite would renumber them);
 *   - one log line for the fault kind, however many retries;
 *   - a Service created during the fault goes live after it (the time is printed);
 *   - a hung server is noticed within 60 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab, type LabProcess } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';
import { kubeadmKubeconfig } from '../test/fixtures/kubeadm.js';
import { slice, svc } from './scenarios/index.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const FAKE_API = fileURLToPath(new URL('./lab/fake-apiserver-main.ts', import.meta.url));
const TOKEN = 'fault-token';
const NODE = 'node-1';
const PORT = 16443;
const VIP = '10.96.0.10';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('nft', ['--version']).error) return 'nft is not installed';
  return labSkipReason();
}

describe(
  'API-server faults: the daemon keeps serving and converges after each',
  { skip: skipReason() },
  () => {
    let lab: Lab;
    let dir: string;
    let api: LabProcess | undefined;
    let daemon: LabProcess;
    let seq = 0;
    let svcN = 20;
    const traffic = { ok: 0, failed: [] as string[], running: true };
    let loop: Promise<void> | undefined;

    const diagnostics = (): string => `daemon:\n${daemon.tail(30)}\napi:\n${api?.tail(5) ?? ''}`;
    const apiCommand = async (cmd: Record<string, unknown>): Promise<void> => {
      const n = ++seq;
      api!.stdin?.write(`${JSON.stringify({ seq: n, ...cmd })}\n`);
      const m = await api!.waitForOutput(new RegExp(`^(done|error) ${n}\\b.*$`, 'm'));
      assert.equal(m[1], 'done', m[0]);
    };
    /** The daemon's log lines (pino JSON on stderr) with message `msg`, at info level or above. */
    const lines = (msg: string): number =>
      daemon.stderr
        .split('\n')
        .filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`) && !l.startsWith('{"level":20')).length;
    const table = async (): Promise<string> =>
      (await lab.exec('node', 'nft', ['-a', 'list', 'table', 'ip', 'kube-proxy'])).stdout;
    const startApi = async (): Promise<void> => {
      api = lab.spawnInNode(process.execPath, [
        '--import',
        'tsx',
        FAKE_API,
        `--token=${TOKEN}`,
        `--port=${PORT}`,
      ]);
      await api.waitForOutput(/fake-apiserver listening/, 30_000);
    };
    /** A new Service with one endpoint (b2); returns its cluster IP. */
    const addService = async (): Promise<string> => {
      const n = ++svcN;
      const ip = `10.96.0.${n}`;
      await apiCommand({
        op: 'apply',
        resource: 'services',
        obj: svc(`s${n}`, {
          type: 'ClusterIP',
          clusterIP: ip,
          clusterIPs: [ip],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
        }),
      });
      await apiCommand({
        op: 'apply',
        resource: 'endpointslices',
        obj: slice(`s${n}`, [{ ip: lab.pod('b2').ip, node: NODE }]),
      });
      return ip;
    };
    /** ms from now until `ip`:80 answers from the client pod. */
    const liveAfter = async (ip: string, timeoutMs = 30_000): Promise<number> => {
      const t0 = Date.now();
      await pollUntil(
        `${ip} reachable`,
        async () => (await lab.tcp('client', ip, 80, { timeoutMs: 500 })).ok,
        { timeoutMs, intervalMs: 50, diagnostics },
      );
      return Date.now() - t0;
    };
    /**
     * Runs `during` with the fault in force, and checks: no connection failed and the table was not
     * rewritten meanwhile, and `line` was logged exactly once.
     */
    const underFault = async (line: string, during: () => Promise<void>): Promise<void> => {
      const tableBefore = await table();
      const failedBefore = traffic.failed.length;
      const okBefore = traffic.ok;
      await during();
      assert.equal(await table(), tableBefore, 'the table was rewritten during the fault');
      assert.deepEqual(traffic.failed.slice(failedBefore), [], 'a connection failed during the fault');
      assert.ok(traffic.ok > okBefore, 'traffic flowed during the fault');
      assert.equal(lines(line), 1, `one "${line}" line\n${diagnostics()}`);
    };
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

    before(async () => {
      lab = await createLab({ pods: ['client', 'b1', 'b2'] });
      dir = mkdtempSync(join(tmpdir(), 'kpt-faults-'));
      for (const b of ['b1', 'b2']) await lab.startBackend(b, { tcpPorts: [8080] });
      const kc = join(dir, 'kubeconfig');
      writeFileSync(kc, kubeadmKubeconfig(`http://127.0.0.1:${PORT}`, TOKEN));
      daemon = lab.spawnInNode(process.execPath, [
        '--import',
        'tsx',
        DAEMON,
        '--proxy-mode=nftables',
        `--kubeconfig=${kc}`,
        `--hostname-override=${NODE}`,
        '--cluster-cidr=10.244.0.0/16',
        '--healthz-bind-address=127.0.0.1:10256',
        '--metrics-bind-address=127.0.0.1:10249',
        // No periodic resync during the test: any table rewrite would be the fault's doing.
        '--iptables-sync-period=1h',
        '--iptables-min-sync-period=0s',
        '-v=2',
      ]);
    });

    after(async () => {
      traffic.running = false;
      await loop;
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the server down at start: one line, then steady soon after it comes up', async () => {
      await daemon.waitForOutput(/cannot reach the API server/, 30_000);
      await sleep(3_000);
      assert.equal(lines('cannot reach the API server; retrying'), 1, diagnostics());
      await startApi();
      const t0 = Date.now();
      await apiCommand({
        op: 'apply',
        resource: 'nodes',
        obj: {
          metadata: { name: NODE },
          status: { addresses: [{ type: 'InternalIP', address: lab.node.ip }] },
        },
      });
      await apiCommand({
        op: 'apply',
        resource: 'services',
        obj: svc('web', {
          type: 'ClusterIP',
          clusterIP: VIP,
          clusterIPs: [VIP],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
        }),
      });
      await apiCommand({
        op: 'apply',
        resource: 'endpointslices',
        obj: slice('web', [
          { ip: lab.pod('b1').ip, node: NODE },
          { ip: lab.pod('b2').ip, node: NODE },
        ]),
      });
      await liveAfter(VIP);
      console.log(`server down at start: live ${Date.now() - t0} ms after the server came up`);
      assert.equal(lines('API server requests succeed again'), 1);
      // From here on, a client connects to the VIP every ~100 ms until the end of the file.
      loop = (async () => {
        while (traffic.running) {
          const r = await lab.tcp('client', VIP, 80, { timeoutMs: 1_000 });
          if (r.ok) traffic.ok++;
          else traffic.failed.push(`${new Date().toISOString()} ${r.error}`);
          await sleep(100);
        }
      })();
    });

    test('a watch cut mid-stream and 410 Gone: the changes made meanwhile arrive', async () => {
      await apiCommand({ op: 'drop' });
      const a = await addService();
      console.log(`watch cut: live after ${await liveAfter(a)} ms`);
      await apiCommand({ op: 'expire' });
      const b = await addService();
      console.log(`410 Gone: live after ${await liveAfter(b)} ms`);
      assert.deepEqual(traffic.failed, []);
    });

    for (const code of [500, 429]) {
      test(`HTTP ${code} with Retry-After: 1 on every request for 6 s`, async () => {
        let ip = '';
        const line =
          code === 429
            ? 'the API server is throttling requests; retrying'
            : `the API server answers ${code}; retrying`;
        await underFault(line, async () => {
          await apiCommand({ op: 'failAll', code, retryAfter: 1 });
          await apiCommand({ op: 'drop' });
          ip = await addService();
          await sleep(6_000);
        });
        await apiCommand({ op: 'failAll', code: null });
        const ms = await liveAfter(ip);
        console.log(`HTTP ${code}: the Service created during the errors is live ${ms} ms after they ended`);
      });
    }

    test('a server that accepts and then hangs is noticed within 60 s; converges after', async () => {
      let ip = '';
      await underFault('the API server stopped answering; reconnecting and relisting', async () => {
        await apiCommand({ op: 'hang' });
        const t0 = Date.now();
        // The fake holds requests (commands still work: they come over stdin, not HTTP).
        ip = await addService();
        await daemon.waitForOutput(/the API server stopped answering/, 60_000);
        console.log(`hang noticed after ${Date.now() - t0} ms`);
        assert.ok(Date.now() - t0 <= 60_000);
      });
      await apiCommand({ op: 'unhang' });
      const ms = await liveAfter(ip);
      console.log(`hang: the Service created during it is live ${ms} ms after it ended`);
    });

    test('401 (credentials revoked): one clear error line, rules kept; steady once the token works again', async () => {
      let ip = '';
      await underFault("not authorized: check the kubeconfig's credentials", async () => {
        await apiCommand({ op: 'setToken', token: 'rotated-elsewhere' });
        await apiCommand({ op: 'drop' });
        ip = await addService();
        await daemon.waitForOutput(/not authorized: check the kubeconfig's credentials/, 20_000);
        await sleep(5_000);
      });
      await apiCommand({ op: 'setToken', token: TOKEN });
      const ms = await liveAfter(ip);
      console.log(`401: live ${ms} ms after the token works again`);
      assert.deepEqual(traffic.failed, []);
      console.log(`connections during the whole file: ${traffic.ok} ok, ${traffic.failed.length} failed`);
    });
  },
);
