/**
 * The drop-in test (root only): the built CLI runs with exactly the argv of kubeadm's kube-proxy
 * DaemonSet — `kube-proxy --config=<dir>/config.conf --hostname-override=<node>` — in the lab's node
 * namespace, on kubeadm's config.conf (mode "" = iptables, healthz and metrics on their defaults) and
 * kubeconfig.conf, against the fake API server running in the same namespace. Nothing else is passed:
 * no mode, no addresses, no iptables backend override. It must start, list and watch with the
 * kubeconfig's token, program iptables so real connections reach the pods, follow a watch event,
 * and answer /healthz, /livez and /metrics where upstream does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab, type LabProcess } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';
import { clusterObjects, writeKubeadmFiles } from '../test/fixtures/kubeadm.js';
import { slice, svc } from './scenarios/index.js';

const CLI = fileURLToPath(new URL('../bin/kube-proxy.js', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const FAKE_API = fileURLToPath(new URL('./lab/fake-apiserver-main.ts', import.meta.url));
const TOKEN = 'kubeadm-token';
const NODE = 'node-1';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['iptables', 'iptables-restore', 'iptables-save', 'curl']) {
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  }
  return labSkipReason();
}

const skip = skipReason();

describe(
  'kubeadm drop-in: the exact DaemonSet argv in a node namespace, against the API server',
  { skip },
  () => {
    let lab: Lab;
    let dir: string;
    let api: LabProcess;
    let daemon: LabProcess;
    let seq = 0;

    const diagnostics = (): string => `daemon:\n${daemon.tail(30)}\napi:\n${api.tail(10)}`;
    const until = <T>(
      what: string,
      fn: () => Promise<T | undefined | false>,
      timeoutMs = 20_000,
    ): Promise<T> => pollUntil(what, fn, { timeoutMs, diagnostics });
    /** Sends one command to the fake API server and waits for its acknowledgement. */
    const apiCommand = async (cmd: Record<string, unknown>): Promise<void> => {
      const n = ++seq;
      api.stdin?.write(`${JSON.stringify({ seq: n, ...cmd })}\n`);
      const m = await api.waitForOutput(new RegExp(`^(done|error) ${n}\\b.*$`, 'm'));
      assert.equal(m[1], 'done', m[0]);
    };
    const curl = async (url: string): Promise<{ code: number; body: string }> => {
      const r = await lab.exec('node', 'curl', ['-s', '-m', '2', '-w', '\n%{http_code}', url], {
        allowFail: true,
      });
      const i = r.stdout.lastIndexOf('\n');
      return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
    };

    before(async () => {
      assert.ok(
        existsSync(DIST_MAIN),
        'dist/main.js is missing: run `npm run build` (scripts/test.sh does) before the e2e tests',
      );
      lab = await createLab({ pods: ['client', 'b1', 'b2'] });
      dir = mkdtempSync(join(tmpdir(), 'kpt-kubeadm-'));
      for (const b of ['b1', 'b2']) await lab.startBackend(b, { tcpPorts: [8080] });
      api = lab.spawnInNode(process.execPath, ['--import', 'tsx', FAKE_API, `--token=${TOKEN}`]);
      const url = (await api.waitForOutput(/fake-apiserver listening (http:\/\/\S+)/, 30_000))[1]!;
      for (const { resource, obj } of clusterObjects(NODE, lab.node.ip, [
        lab.pod('b1').ip,
        lab.pod('b2').ip,
      ])) {
        await apiCommand({ op: 'apply', resource, obj });
      }
      const conf = writeKubeadmFiles(dir, url, TOKEN);
      // kubeadm's container command, verbatim but for the folder: no other flag, no environment override.
      daemon = lab.spawnInNode(process.execPath, [CLI, `--config=${conf}`, `--hostname-override=${NODE}`]);
    });

    after(async () => {
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('starts in iptables mode (config mode "") and syncs', async () => {
      // At kubeadm's verbosity 0 the daemon logs no per-sync line: watch the tables instead.
      await daemon.waitForOutput(/programming the data plane/, 60_000);
      const nat = await until('web programmed', async () => {
        const text = (await lab.exec('node', 'iptables-save', ['-t', 'nat'])).stdout;
        // The jumps are ensured after the restore: wait for both, not just the service chain.
        return /^-A KUBE-SERVICES .*default\/web:http cluster IP.* -j KUBE-SVC-\w+$/m.test(text) &&
          /^-A PREROUTING .*-j KUBE-SERVICES$/m.test(text)
          ? text
          : undefined;
      });
      assert.match(nat, /^-A PREROUTING .*-j KUBE-SERVICES$/m);
    });

    test('lists and watches with the kubeconfig token and upstream selectors, for the overridden node name', () => {
      const reqs = api.stdout.split('\n').filter((l) => l.startsWith('request '));
      assert.ok(reqs.length >= 3, `requests seen:\n${reqs.join('\n')}`);
      assert.deepEqual(
        reqs.filter((l) => !l.endsWith(' auth=ok')),
        [],
        'every request carried the token',
      );
      assert.ok(
        reqs.some((l) => l.includes('/api/v1/nodes?') && l.includes('fieldSelector=metadata.name%3Dnode-1')),
        'the Node is selected by --hostname-override',
      );
      assert.ok(
        reqs.some((l) => l.includes('/api/v1/services?') && l.includes('watch=true')),
        'services are watched',
      );
      assert.ok(
        reqs.some((l) => l.includes('/apis/discovery.k8s.io/v1/endpointslices?') && l.includes('watch=true')),
        'endpointslices are watched',
      );
    });

    test('a client pod reaches both endpoints through the cluster IP', async () => {
      const t = await until('web reachable', async () => {
        const r = await lab.tcpMany('client', '10.96.0.10', 80, 20);
        return r.ok === 20 ? r : undefined;
      });
      assert.ok(
        (t.backends.b1 ?? 0) > 0 && (t.backends.b2 ?? 0) > 0,
        `spread: ${JSON.stringify(t.backends)}`,
      );
    });

    test('/healthz on 0.0.0.0:10256, /livez, and /metrics on 127.0.0.1:10249 (the config file leaves them empty)', async () => {
      const hz = await until('healthz 200', async () => {
        const r = await curl(`http://${lab.node.ip}:10256/healthz`);
        return r.code === 200 ? r : undefined;
      });
      const body = JSON.parse(hz.body) as Record<string, unknown>;
      assert.equal(body.nodeEligible, true);
      assert.equal(typeof body.lastUpdated, 'string');
      assert.equal((await curl('http://127.0.0.1:10256/livez')).code, 200);
      const metrics = await curl('http://127.0.0.1:10249/metrics');
      assert.equal(metrics.code, 200);
      assert.match(metrics.body, /^kubeproxy_sync_proxy_rules_duration_seconds_count(\{[^}]*\})? [1-9]/m);
      assert.notEqual(
        (await curl(`http://${lab.node.ip}:10249/metrics`)).code,
        200,
        'metrics only on loopback',
      );
    });

    test('a Service created through the API server reaches the data plane', async () => {
      await apiCommand({
        op: 'apply',
        resource: 'services',
        obj: svc('web2', {
          type: 'ClusterIP',
          clusterIP: '10.96.0.11',
          clusterIPs: ['10.96.0.11'],
          selector: { app: 'web2' },
          ports: [{ name: 'http', port: 8081, protocol: 'TCP', targetPort: 8080 }],
        }),
      });
      await apiCommand({
        op: 'apply',
        resource: 'endpointslices',
        obj: slice('web2', [{ ip: lab.pod('b2').ip, node: NODE }]),
      });
      const t = await until('web2 reachable', async () => {
        const r = await lab.tcpMany('client', '10.96.0.11', 8081, 5);
        return r.ok === 5 ? r : undefined;
      });
      assert.equal(t.backends.b2, 5);
    });

    test('SIGTERM: the daemon exits 0 and leaves the rules in place (upstream does not flush on exit)', async () => {
      const exit = await daemon.stop(20_000);
      assert.equal(exit.code, 0, diagnostics());
      assert.equal((await lab.tcpMany('client', '10.96.0.10', 80, 5)).ok, 5);
    });
  },
);
