/**
 * Drift repair in iptables mode (root only; iptables-legacy and iptables-nft): the real daemon in
 * the lab's node namespace with a 2 s syncPeriod. While traffic flows, the jump from nat PREROUTING
 * into KUBE-SERVICES is deleted next to a rule another owner added to the same built-in chain. The
 * drift check must name it in a warning, count it, and a full sync must put it back; the other
 * owner's rule must survive and never be reported.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, type ScenarioContext } from './scenarios/index.js';
import { scrapeMetrics, startScenarioDaemon, waitUntilServing, WEB_IP as WEB } from './scenarios/daemon.js';

const OTHER = ['-p', 'tcp', '--dport', '9999', '-m', 'comment', '--comment', 'other-owner', '-j', 'ACCEPT'];

for (const backend of ['legacy', 'nft'] as const) {
  const iptables = `iptables-${backend}`;
  const skip = (): string | undefined => {
    if (process.getuid?.() !== 0) return 'needs root';
    for (const tool of [iptables, 'curl'])
      if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
    return labSkipReason();
  };

  describe(`iptables mode (${backend}) repairs a removed jump`, { skip: skip() }, () => {
    let ctx: ScenarioContext;
    let dispose: (() => Promise<void>) | undefined;
    let daemon: LabProcess;

    before(async () => {
      ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: true }));
      daemon = startScenarioDaemon(ctx, {
        mode: 'iptables',
        backend,
        args: ['--iptables-sync-period=2s', '--iptables-min-sync-period=0s'],
      });
      await waitUntilServing(ctx, daemon);
    });

    after(async () => {
      await daemon?.stop(20_000);
      await dispose?.();
    });

    test("the PREROUTING jump removed beside another owner's rule: named, counted, repaired; the other rule stays", async () => {
      await new Promise((r) => setTimeout(r, 4_500));
      assert.doesNotMatch(daemon.stderr, /"msg":"drift: /, 'an intact node is never reported');
      await ctx.lab.exec('node', iptables, ['-w', '-t', 'nat', '-I', 'PREROUTING', '1', ...OTHER]);
      const rules = (await ctx.lab.exec('node', iptables, ['-w', '-t', 'nat', '-S', 'PREROUTING'])).stdout;
      const appended = rules.split('\n').filter((l) => l.startsWith('-A PREROUTING '));
      const n = appended.findIndex((l) => l.endsWith('-j KUBE-SERVICES'));
      assert.ok(n >= 0, rules);
      await ctx.lab.exec('node', iptables, ['-w', '-t', 'nat', '-D', 'PREROUTING', String(n + 1)]);
      assert.equal((await ctx.lab.tcp('client', WEB, 80, { timeoutMs: 500 })).ok, false, 'the jump is gone');
      const line = await ctx.until(
        'the drift warning',
        () =>
          Promise.resolve(
            daemon.stderr
              .split('\n')
              .find((l) => /drift: jump from nat PREROUTING to KUBE-SERVICES missing/.test(l)),
          ),
        20_000,
      );
      assert.match(line, /"level":40/);
      await ctx.until(
        'web answers again',
        async () => (await ctx.lab.tcp('client', WEB, 80, { timeoutMs: 1000 })).ok,
      );
      const metrics = await scrapeMetrics(ctx);
      assert.match(metrics, /kubeproxy_sync_proxy_rules_drift_total\{ip_family="IPv4",object="jump"\} [1-9]/);
      const after = (await ctx.lab.exec('node', iptables, ['-w', '-t', 'nat', '-S', 'PREROUTING'])).stdout;
      assert.match(after, /other-owner/, "the other owner's rule survived");
      assert.doesNotMatch(daemon.stderr, /drift: .*other-owner/);
      const t = await ctx.lab.tcpMany('client', WEB, 80, 10);
      assert.equal(t.ok, 10, JSON.stringify(t));
    });
  });
}
