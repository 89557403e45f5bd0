/**
 * Drift repair in nftables mode (root only): the real daemon in the lab's node namespace with a 2 s
 * syncPeriod; while traffic flows, something else changes our table (deletes a map element, flushes
 * a map, flushes a base chain, deletes the table). Each change must be found within a sync period,
 * named in a warning, counted in kubeproxy_sync_proxy_rules_drift_total{object}, and repaired so that
 * real connections work again. Another owner's table hooked on the same hooks is never touched, and
 * an intact table is never reported.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, type ScenarioContext } from './scenarios/index.js';
import { scrapeMetrics, startScenarioDaemon, waitUntilServing, WEB_IP as WEB } from './scenarios/daemon.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['nft', 'curl'])
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  return labSkipReason();
}

const OTHER = `table ip other-owner {
  chain pre { type nat hook prerouting priority dstnat - 5 ; meta l4proto tcp tcp dport 9999 counter ; }
}
`;

describe('nftables mode repairs drift', { skip: skipReason() }, () => {
  let ctx: ScenarioContext;
  let dispose: (() => Promise<void>) | undefined;
  let daemon: LabProcess;
  let seen = 0;

  const nft = (args: string[], input?: string) =>
    ctx.lab.exec('node', 'nft', args, input === undefined ? {} : { input });
  const driftCount = async (object: string): Promise<number> => {
    const m = new RegExp(
      `kubeproxy_sync_proxy_rules_drift_total\\{ip_family="IPv4",object="${object}"\\} (\\d+)`,
    ).exec(await scrapeMetrics(ctx));
    return m ? Number(m[1]) : 0;
  };
  /** Waits for the next drift warning naming `re`, then for the repair (web answers again). */
  const expectRepair = async (re: RegExp, object: string): Promise<void> => {
    const before = await driftCount(object);
    const line = await ctx.until(
      `a drift warning matching ${re}`,
      () => {
        const lines = daemon.stderr.split('\n').filter((l) => l.includes('"msg":"drift: '));
        const hit = lines.slice(seen).find((l) => re.test(l));
        return Promise.resolve(hit);
      },
      20_000,
    );
    seen = daemon.stderr.split('\n').filter((l) => l.includes('"msg":"drift: ')).length;
    assert.match(line, /"level":40/, 'a warning');
    await ctx.until('the drift counter', async () => (await driftCount(object)) > before);
    await ctx.until(
      'web answers again',
      async () => (await ctx.lab.tcp('client', WEB, 80, { timeoutMs: 1000 })).ok,
    );
    const t = await ctx.lab.tcpMany('client', WEB, 80, 10);
    assert.equal(t.ok, 10, JSON.stringify(t));
  };

  before(async () => {
    ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: false }));
    await nft(['-f', '-'], OTHER);
    daemon = startScenarioDaemon(ctx, {
      mode: 'nftables',
      args: ['--iptables-sync-period=2s', '--iptables-min-sync-period=0s'],
    });
    await waitUntilServing(ctx, daemon);
  });

  after(async () => {
    await daemon?.stop(20_000);
    await dispose?.();
  });

  test('an intact table is never reported (three periods)', async () => {
    await new Promise((r) => setTimeout(r, 6_500));
    assert.doesNotMatch(daemon.stderr, /"msg":"drift: /, daemon.tail(20));
    assert.match(daemon.stderr, /"full":false|"full":true/);
  });

  test('one map element deleted', async () => {
    await nft(['delete', 'element', 'ip', 'kube-proxy', 'service-ips', '{', `${WEB} . tcp . 80`, '}']);
    await expectRepair(/map service-ips lost 1 elements/, 'map');
  });

  test('one map flushed', async () => {
    await nft(['flush', 'map', 'ip', 'kube-proxy', 'service-ips']);
    await expectRepair(/map service-ips lost \d+ elements/, 'map');
  });

  test('a base chain flushed (the jump into our services chain)', async () => {
    await nft(['flush', 'chain', 'ip', 'kube-proxy', 'nat-prerouting']);
    await expectRepair(/chain nat-prerouting lost 1 of its 1 rules/, 'rule');
  });

  test('our table deleted', async () => {
    await nft(['delete', 'table', 'ip', 'kube-proxy']);
    await expectRepair(/table ip kube-proxy missing/, 'table');
  });

  test("another owner's table on the same hook survived every repair and was never reported", async () => {
    const other = (await nft(['list', 'table', 'ip', 'other-owner'])).stdout;
    assert.match(other, /tcp dport 9999 counter/);
    assert.doesNotMatch(daemon.stderr, /other-owner/);
  });
});
