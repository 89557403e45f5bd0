/**
 * Upstream's nfacct counters in iptables mode (root only; iptables-legacy and iptables-nft): the real
 * daemon in the lab's node namespace creates the two nfacct objects, references them in its rules as
 * upstream does, and serves them on /metrics. Real connections to 127.0.0.1:<nodePort> from the node
 * must move kubeproxy_iptables_localhost_nodeports_accepted_packets_total by at least the number of
 * connections (one counted packet per new connection: the first, which the nat rule sees).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, type ScenarioContext } from './scenarios/index.js';
import { scrapeMetrics, startScenarioDaemon } from './scenarios/daemon.js';

const LOCALHOST = 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total';
const INVALID = 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total';

for (const backend of ['legacy', 'nft'] as const) {
  const iptables = `iptables-${backend}`;
  const skip = (): string | undefined => {
    if (process.getuid?.() !== 0) return 'needs root';
    for (const tool of [iptables, 'curl', 'nfacct'])
      if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
    return labSkipReason();
  };

  describe(`iptables mode (${backend}) counts into upstream's nfacct objects`, { skip: skip() }, () => {
    let ctx: ScenarioContext;
    let dispose: (() => Promise<void>) | undefined;
    let daemon: LabProcess;

    before(async () => {
      ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: true }));
      daemon = startScenarioDaemon(ctx, { mode: 'iptables', backend });
      await daemon.waitForOutput(/"msg":"sync done"/, 120_000);
    });

    after(async () => {
      await daemon?.stop(20_000);
      await dispose?.();
    });

    const scrape = (): Promise<string> => scrapeMetrics(ctx);
    const value = (text: string, name: string): number => {
      const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
      assert.ok(
        m,
        `${name} is on /metrics:\n${text
          .split('\n')
          .filter((l) => l.includes('iptables'))
          .join('\n')}`,
      );
      return Number(m[1]);
    };

    test('the objects exist, the rules reference them, and a localhost NodePort connection moves the counter', async () => {
      const objects = (await ctx.lab.exec('node', 'nfacct', ['list'])).stdout;
      assert.match(objects, /= ct_state_invalid_dropped_pkts;/);
      assert.match(objects, /= localhost_nps_accepted_pkts;/);
      const nat = (await ctx.lab.exec('node', iptables, ['-w', '-t', 'nat', '-S', 'KUBE-NODEPORTS'])).stdout;
      assert.match(
        nat,
        /-d 127\.0\.0\.0\/8 .*--dport 30080 -m nfacct --nfacct-name +localhost_nps_accepted_pkts/,
      );
      const filter = (await ctx.lab.exec('node', iptables, ['-w', '-t', 'filter', '-S', 'KUBE-FORWARD']))
        .stdout;
      assert.match(
        filter,
        /--ctstate INVALID -m nfacct --nfacct-name +ct_state_invalid_dropped_pkts -j DROP/,
      );

      const before = await scrape();
      const lo0 = value(before, LOCALHOST);
      assert.ok(value(before, INVALID) >= 0);
      const lo = await ctx.lab.tcpMany('node', '127.0.0.1', 30080, 5);
      assert.equal(lo.ok, 5, JSON.stringify(lo.errors));
      const lo1 = value(await scrape(), LOCALHOST);
      assert.ok(lo1 - lo0 >= 5, `the counter moved by ${lo1 - lo0} for 5 connections`);
      // The node IP's NodePort is not a localhost one: it does not count.
      const ip = await ctx.lab.tcpMany('node', ctx.lab.node.ip, 30080, 3);
      assert.equal(ip.ok, 3, JSON.stringify(ip.errors));
      assert.equal(value(await scrape(), LOCALHOST), lo1);
    });
  });
}
