/**
 * Crash safety (root only, issue #13), in nftables and iptables (nft backend) modes, with 5,000 Services
 * from the manifests source:
 *   - kill -9 in the middle of the initial sync (while the restore tool runs, when possible): the
 *     restarted daemon converges to the complete state, 5000/5000 cluster IPs, and they answer;
 *   - kill -9 while steady, and the restart after it: no connection fails (the kernel keeps serving the
 *     rules; the restarted daemon adopts or rewrites them without a gap).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab, type LabProcess } from './lab/topology.js';
import { pollUntil } from './lab/poll.js';
import { slice, svc, NODE_NAME } from './scenarios/index.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const N = 5000;
const vip = (i: number): string => `10.97.${i >> 8}.${i & 255}`;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const t of ['nft', 'iptables-nft-save'])
    if (spawnSync(t, ['--version']).error) return `${t} is not installed`;
  return labSkipReason();
}

/** Direct children of `pid` (the restore tool the daemon is running, if any). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const MODES = [
  {
    mode: 'nftables',
    count: async (lab: Lab): Promise<number> => {
      const r = await lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', 'cluster-ips'], {
        allowFail: true,
      });
      return new Set(r.stdout.match(/10\.97\.\d+\.\d+/g) ?? []).size;
    },
  },
  {
    mode: 'iptables',
    count: async (lab: Lab): Promise<number> => {
      const r = await lab.exec('node', 'iptables-nft-save', ['-t', 'nat'], { allowFail: true });
      const ips = [...r.stdout.matchAll(/^-A KUBE-SERVICES -d (10\.97\.\d+\.\d+)\/32 .*cluster IP/gm)].map(
        (m) => m[1],
      );
      return new Set(ips).size;
    },
  },
] as const;

for (const { mode, count } of MODES) {
  describe(`kill -9 in ${mode} mode with ${N} Services`, { skip: skipReason() }, () => {
    let lab: Lab;
    let dir: string;
    let daemon: LabProcess;
    const diagnostics = (): string => `daemon:\n${daemon.tail(20)}`;
    const start = (): LabProcess =>
      lab.spawnInNode(
        process.execPath,
        [
          '--import',
          'tsx',
          DAEMON,
          `--proxy-mode=${mode}`,
          `--manifests=${dir}`,
          `--hostname-override=${NODE_NAME}`,
          '--cluster-cidr=10.244.0.0/16',
          '--healthz-bind-address=127.0.0.1:10256',
          '--metrics-bind-address=127.0.0.1:10249',
          '--iptables-min-sync-period=0s',
          '-v=2',
        ],
        { ...process.env, KUBE_PROXY_IPTABLES_BACKEND: 'nft' },
      );
    const converged = async (): Promise<number> => {
      const t0 = Date.now();
      await pollUntil(`${N}/${N} cluster IPs programmed`, async () => (await count(lab)) === N, {
        timeoutMs: 90_000,
        intervalMs: 500,
        diagnostics,
      });
      return Date.now() - t0;
    };

    before(async () => {
      lab = await createLab({ pods: ['client', 'b1'] });
      await lab.startBackend('b1', { tcpPorts: [8080] });
      dir = mkdtempSync(join(tmpdir(), 'kpt-crash-'));
      const items: unknown[] = [
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: NODE_NAME },
          status: { addresses: [{ type: 'InternalIP', address: lab.node.ip }] },
        },
      ];
      for (let i = 0; i < N; i++) {
        items.push(
          svc(`s${i}`, {
            clusterIP: vip(i),
            clusterIPs: [vip(i)],
            ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
          }),
          slice(`s${i}`, [{ ip: lab.pod('b1').ip }]),
        );
      }
      // JSON: parsed natively, so the test measures the proxy, not the YAML parser.
      writeFileSync(join(dir, 'services.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    });

    after(async () => {
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('kill -9 during the initial sync: the restarted daemon converges to the complete state', async () => {
      daemon = start();
      await daemon.waitForOutput(/programming the data plane/, 90_000);
      // Wait for the restore tool to run, so the kill lands mid-transaction; else kill during rendering.
      const end = Date.now() + 20_000;
      let during = 'rendering';
      while (Date.now() < end) {
        if (children(daemon.pid).length > 0) {
          during = 'the restore tool running';
          break;
        }
        if (/sync done/.test(daemon.stderr)) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      daemon.signal('SIGKILL');
      await daemon.stop(5_000);
      const before = await count(lab);
      console.log(`${mode}: killed during ${during}; ${before}/${N} cluster IPs in the kernel then`);
      daemon = start();
      const ms = await converged();
      console.log(`${mode}: restarted daemon converged to ${N}/${N} in ${ms} ms`);
      const sample = [0, 1, 777, 2500, 4096, N - 1];
      for (const i of sample) {
        const r = await lab.tcp('client', vip(i), 80, { timeoutMs: 2_000 });
        assert.ok(r.ok, `${vip(i)}: ${JSON.stringify(r)}\n${diagnostics()}`);
      }
    });

    test('kill -9 while steady, and the restart: no connection fails', async () => {
      const results = { ok: 0, failed: [] as string[] };
      let running = true;
      const loop = (async () => {
        let i = 0;
        while (running) {
          const ip = vip((i++ * 97) % N);
          const r = await lab.tcp('client', ip, 80, { timeoutMs: 1_000 });
          if (r.ok) results.ok++;
          else results.failed.push(`${ip}: ${r.error}`);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      await new Promise((r) => setTimeout(r, 1_000));
      daemon.signal('SIGKILL');
      await daemon.stop(5_000);
      await new Promise((r) => setTimeout(r, 2_000));
      daemon = start();
      await pollUntil('the restarted daemon synced', () => Promise.resolve(/sync done/.test(daemon.stderr)), {
        timeoutMs: 90_000,
        diagnostics,
      });
      await new Promise((r) => setTimeout(r, 2_000));
      running = false;
      await loop;
      console.log(
        `${mode}: kill -9 while steady: ${results.ok} connections ok, ${results.failed.length} failed`,
      );
      assert.deepEqual(results.failed, []);
      assert.ok(results.ok > 20);
      assert.equal(await count(lab), N);
      await daemon.stop(20_000);
    });
  });
}
