/**
 * `kube-proxy explain --live` (root only): with the daemon running in the lab's node namespace,
 * explain --live (run in the same namespace) agrees with the desired state and exits 0; after one
 * map element (nftables) or one rule (iptables-nft) is deleted behind the daemon's back, it names
 * the missing object and exits 3.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, type ScenarioContext } from './scenarios/index.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const t of ['nft', 'iptables-nft-save', 'iptables-nft-restore'])
    if (spawnSync(t, ['--version']).error) return `${t} is not installed`;
  return labSkipReason();
}

const MODES = [
  { mode: 'nftables', ready: /nftables sync done/ },
  { mode: 'iptables', ready: /iptables sync/ },
] as const;

for (const m of MODES) {
  describe(`explain --live behind a running daemon (${m.mode})`, { skip: skipReason() }, () => {
    let ctx: ScenarioContext;
    let dispose: (() => Promise<void>) | undefined;
    let daemon: LabProcess;
    const common = (): string[] => [
      `--proxy-mode=${m.mode}`,
      `--manifests=${ctx.dir}`,
      '--hostname-override=node-1',
      '--cluster-cidr=10.244.0.0/16',
    ];
    const env = { ...process.env, KUBE_PROXY_IPTABLES_BACKEND: 'nft' };

    before(async () => {
      ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: false }));
      daemon = ctx.lab.spawnInNode(
        process.execPath,
        [
          '--import',
          'tsx',
          DAEMON,
          ...common(),
          '--healthz-bind-address=',
          '--metrics-bind-address=127.0.0.1:10249',
          // No periodic resync repairs the tampering during the test.
          '--iptables-sync-period=1h',
          '--iptables-min-sync-period=0s',
          '-v=2',
        ],
        env,
      );
      ctx.diagnostics = () => `daemon:\n${daemon.tail(30)}`;
      await daemon.waitForOutput(m.ready, 60_000);
    });
    after(async () => {
      await daemon?.stop(20_000);
      await dispose?.();
    });

    const explainLive = async (): Promise<{ code: number; out: string }> => {
      const r = await ctx.lab.exec(
        'node',
        'env',
        [
          'KUBE_PROXY_IPTABLES_BACKEND=nft',
          process.execPath,
          '--import',
          'tsx',
          DAEMON,
          'explain',
          ...common(),
          '--protocol=TCP',
          `--source=${ctx.ip.client}`,
          '--destination=172.30.0.10:80',
          '--live',
        ],
        { allowFail: true, timeoutMs: 60_000 },
      );
      return { code: r.code ?? -1, out: r.stdout + r.stderr };
    };

    test('agrees (exit 0) while the kernel holds what the daemon programmed', async () => {
      const r = await explainLive();
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /verdict: DNAT to /);
      assert.match(r.out, /live: the kernel's rules give the desired state's answer/);
    });

    const debugExplain = async (extra = ''): Promise<Record<string, unknown>> => {
      const url = `http://127.0.0.1:10249/debug/explain?protocol=TCP&source=${ctx.ip.client}&destination=172.30.0.10:80${extra}`;
      const r = await ctx.lab.exec('node', 'curl', ['-s', '-m', '20', url]);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };

    test('GET /debug/explain answers with the same JSON from the daemon state', async () => {
      const j = await debugExplain();
      assert.equal(j.verdict, 'DNAT', JSON.stringify(j));
      assert.deepEqual(
        [...(j.endpoints as string[])].sort(),
        [`${ctx.ip.b1}:8080`, `${ctx.ip.b2}:8080`].sort(),
      );
      assert.equal(j.service, 'default/web:http');
      assert.equal(j.frontend, 'clusterIP');
      const bad = await ctx.lab.exec('node', 'curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://127.0.0.1:10249/debug/explain?protocol=TCP&source=1.2.3&destination=172.30.0.10:80',
      ]);
      assert.equal(bad.stdout, '400');
      const live = await debugExplain('&live=1');
      assert.deepEqual(live.differences, [], JSON.stringify(live));
    });

    test('names what was deleted behind the daemon and exits 3', async () => {
      const b2 = `${ctx.ip.b2}:8080`;
      if (m.mode === 'nftables') {
        const listing = (
          await ctx.lab.exec('node', 'nft', ['list', 'map', 'ip', 'kube-proxy', 'cluster-targets-tcp'])
        ).stdout;
        const slot = new RegExp(
          `172\\.30\\.0\\.10 \\. 80 \\. (\\d+) : ${ctx.ip.b2.replaceAll('.', '\\.')} \\. 8080`,
        ).exec(listing);
        assert.ok(slot, listing);
        await ctx.lab.exec('node', 'nft', [
          'delete',
          'element',
          'ip',
          'kube-proxy',
          'cluster-targets-tcp',
          `{ 172.30.0.10 . 80 . ${slot[1]} }`,
        ]);
        const r = await explainLive();
        assert.equal(r.code, 3, r.out);
        assert.match(
          r.out,
          new RegExp(
            `differs: map element missing from the kernel: add element ip kube-proxy cluster-targets-tcp \\{ 172\\.30\\.0\\.10 \\. 80 \\. ${slot[1]} : `,
          ),
        );
        assert.ok(r.out.includes(`differs: endpoint ${b2}: in the desired state, not reached`), r.out);
        const live = await debugExplain('&live=1');
        assert.ok(
          (live.differences as string[]).some((d) => d.startsWith('map element missing')),
          JSON.stringify(live),
        );
      } else {
        const save = (await ctx.lab.exec('node', 'iptables-nft-save', ['-t', 'nat'])).stdout;
        const line = save
          .split('\n')
          .find((l) => l.startsWith('-A KUBE-SVC-') && l.includes(`default/web:http -> ${b2}`));
        assert.ok(line, save);
        await ctx.lab.exec('node', 'iptables-nft-restore', ['-w', '--noflush'], {
          input: `*nat\n-D ${line.slice(3)}\nCOMMIT\n`,
        });
        const r = await explainLive();
        assert.equal(r.code, 3, r.out);
        assert.match(
          r.out,
          /differs: rule missing from the kernel: nat: -A KUBE-SVC-\S+ -m comment --comment "default\/web:http -> /,
        );
        assert.ok(r.out.includes(`differs: endpoint ${b2}: in the desired state, not reached`), r.out);
      }
    });
  });
}
