/**
 * iptables mode end to end (root only), once with iptables-legacy and once with iptables-nft: the
 * real daemon (e2e/run-daemon.ts) runs in the lab's node namespace on a manifests folder, and the
 * shared scenarios (e2e/scenarios) send real TCP/UDP traffic. The machine's own namespace is only
 * read (iptables-save), before and after, to prove nothing was programmed there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, SCENARIOS, type ScenarioContext, svc, slice } from './scenarios/index.js';
import { startScenarioDaemon } from './scenarios/daemon.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const BACKENDS = ['legacy', 'nft'] as const;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of BACKENDS) {
    for (const tool of [`iptables-${b}`, `iptables-${b}-restore`, `iptables-${b}-save`]) {
      if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
    }
  }
  if (spawnSync('conntrack', ['--version']).error) return 'conntrack is not installed';
  if (spawnSync('curl', ['--version']).error) return 'curl is not installed';
  return labSkipReason();
}

/** KUBE-* chain declarations in the machine's own namespace, per backend (read-only). */
function rootKubeChains(): string {
  return BACKENDS.map((b) => {
    const out = spawnSync(`iptables-${b}-save`, [], { encoding: 'utf8' }).stdout;
    return `${b}: ${out
      .split('\n')
      .filter((l) => l.startsWith(':KUBE-'))
      .map((l) => l.split(' ')[0])
      .sort()
      .join(' ')}`;
  }).join('\n');
}

const skip = skipReason();
let rootBefore = '';

before(() => {
  if (!skip) rootBefore = rootKubeChains();
});

after(() => {
  if (!skip) assert.equal(rootKubeChains(), rootBefore, 'KUBE- chains changed in the root namespace');
});

for (const backend of BACKENDS) {
  describe(`iptables mode (${backend}) in the lab`, { skip }, () => {
    let ctx: ScenarioContext;
    let dispose: (() => Promise<void>) | undefined;
    let daemon: LabProcess;

    const startDaemon = (): LabProcess => {
      return startScenarioDaemon(ctx, {
        mode: 'iptables',
        backend,
        healthz: '0.0.0.0:10256',
        args: ['--iptables-min-sync-period=0s', '--iptables-sync-period=3s'],
      });
    };
    /** SIGTERM, up to 20 s for a clean exit (SIGKILL after that). */
    const stopDaemon = async (d: LabProcess): Promise<void> => {
      await d.stop(20_000);
    };

    const save = async (table: string, b: string = backend): Promise<string> =>
      (await ctx.lab.exec('node', `iptables-${b}-save`, ['-t', table])).stdout;

    before(async () => {
      ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: true }));
      daemon = startDaemon();
      await daemon.waitForOutput(/iptables sync/, 60_000);
    });

    after(async () => {
      await dispose?.();
    });

    test(`rules are in the ${backend} tables of the node namespace, the jumps are in place, and route_localnet is on`, async () => {
      const nat = await save('nat');
      assert.match(nat, /^:KUBE-SERVICES /m);
      assert.match(nat, /^-A PREROUTING .*-j KUBE-SERVICES$/m);
      assert.match(nat, /^-A OUTPUT .*-j KUBE-SERVICES$/m);
      assert.match(nat, /^-A POSTROUTING .*-j KUBE-POSTROUTING$/m);
      assert.match(await save('mangle'), /^:KUBE-PROXY-CANARY /m);
      const filter = await save('filter');
      assert.match(filter, /^-A FORWARD .*-j KUBE-FORWARD$/m);
      const other = backend === 'nft' ? 'legacy' : 'nft';
      assert.doesNotMatch(await save('nat', other), /KUBE-SERVICES/, `nothing in the ${other} tables`);
      const rl = await ctx.lab.exec('node', 'cat', ['/proc/sys/net/ipv4/conf/all/route_localnet']);
      assert.equal(rl.stdout.trim(), '1');
    });

    for (const s of SCENARIOS) {
      test(s.name, () => s.run(ctx));
    }

    test('a deleted service loses its chains in a partial sync; the metrics count the rules', async () => {
      ctx.write('gone.yaml', [svc('gone', { clusterIP: '172.30.0.40' }), slice('gone', [{ ip: ctx.ip.b3 }])]);
      const chainsOf = (text: string): string[] =>
        (/-A KUBE-SERVICES .*default\/gone:http cluster IP.* -j (KUBE-SVC-\w+)/.exec(text) ?? []).slice(1);
      const svcChain = await ctx.until('gone programmed', async () => chainsOf(await save('nat'))[0]);
      assert.ok(only3(await ctx.lab.tcpMany('client', '172.30.0.40', 80, 5)));
      ctx.write('gone.yaml', []);
      await ctx.until('gone chains deleted', async () => !(await save('nat')).includes(svcChain));
      const metrics = await ctx.lab.exec('node', 'curl', ['-s', '-m', '2', 'http://127.0.0.1:10249/metrics']);
      assert.match(
        metrics.stdout,
        /kubeproxy_sync_proxy_rules_iptables_total\{[^}]*table="nat"[^}]*\} [1-9]/,
      );
    });

    test('flushed tables are noticed through the mangle canary and reprogrammed by a full sync', async () => {
      // What a firewall reload does to our namespace: flush and delete every chain of nat and mangle.
      for (const table of ['nat', 'mangle']) {
        await ctx.lab.exec('node', `iptables-${backend}`, ['-w', '-t', table, '-F']);
        await ctx.lab.exec('node', `iptables-${backend}`, ['-w', '-t', table, '-X']);
      }
      const down = await ctx.lab.tcp('client', '172.30.0.10', 80, { timeoutMs: 800 });
      assert.equal(down.ok, false, 'the flush took the service down');
      // --iptables-sync-period=3s: the canary is polled every 3 s.
      await ctx.until(
        'service back after the canary resync',
        async () => (await ctx.lab.tcpMany('client', '172.30.0.10', 80, 5)).ok === 5,
        30_000,
      );
      const nat = await save('nat');
      assert.match(nat, /^-A PREROUTING .*-j KUBE-SERVICES$/m);
      assert.match(await save('mangle'), /^:KUBE-PROXY-CANARY /m);
    });

    test('rules survive the daemon exiting; a restarted daemon takes them over without flushing', async (t) => {
      const chains = (text: string): string =>
        text
          .split('\n')
          .filter((l) => l.startsWith(':KUBE-'))
          .sort()
          .join('\n');
      const before = chains(await save('nat'));
      /** Stops the daemon, checks traffic without it, then restarts it under traffic. */
      const takeover = async (): Promise<{
        failures: string[];
        firstSync: Record<string, unknown>;
        report: string;
      }> => {
        await stopDaemon(daemon);
        assert.equal(chains(await save('nat')), before, 'the chains stay after exit');
        assert.equal(
          (await ctx.lab.tcpMany('client', '172.30.0.10', 80, 10)).ok,
          10,
          'traffic still flows with no daemon',
        );
        // Earlier tests sent SYNs to this address while it had no rules (the flush test's probe):
        // conntrack keeps such a flow un-NATed in SYN_SENT for 120 s, and a new connection that
        // happens to reuse its client port matches it and leaves un-DNATed (seen: a "timeout" or
        // "host-unreachable" with the rules in place and no daemon running). Start clean.
        const stale = await ctx.lab.exec('node', 'conntrack', ['-D', '-p', 'tcp', '-d', '172.30.0.10'], {
          allowFail: true,
        });
        const staleFlows = /(\d+) flow entries have been deleted/.exec(stale.stderr)?.[1] ?? '0';
        let running = true;
        const failures: string[] = [];
        const t0 = Date.now();
        const traffic = (async () => {
          for (let i = 0; running && i < 1000; i++) {
            const at = Date.now() - t0;
            for (const r of (await ctx.lab.tcpMany('client', '172.30.0.10', 80, 5)).results)
              if (!r.ok) failures.push(`batch at +${at} ms: ${JSON.stringify(r)}`);
          }
        })();
        let firstSync: Record<string, unknown> = {};
        try {
          daemon = startDaemon();
          firstSync = JSON.parse(
            (await daemon.waitForOutput(/^\{.*"msg":"iptables sync".*\}$/m, 60_000))[0],
          ) as Record<string, unknown>;
        } finally {
          running = false;
          await traffic;
        }
        const synced = Date.now() - t0;
        let report = `first sync at +${synced} ms; ${staleFlows} stale flow(s) to the address deleted before\n`;
        if (failures.length > 0) {
          // The service's conntrack entries tell a rule gap (un-DNATed SYN_SENT) from an ARP miss.
          const ct = (
            await ctx.lab.exec('node', 'conntrack', ['-L', '-d', '172.30.0.10'], { allowFail: true })
          ).stdout;
          const neigh = (await ctx.lab.exec('client', 'ip', ['-s', 'neigh', 'show'], { allowFail: true }))
            .stdout;
          report += `client neighbours:\n${neigh}\nnode conntrack, not TIME_WAIT:\n${ct
            .split('\n')
            .filter((l) => !l.includes('TIME_WAIT'))
            .join('\n')}\n${ctx.diagnostics()}`;
        }
        return { failures, firstSync, report };
      };
      let run = await takeover();
      // A SYN that left un-DNATed (conntrack: SYN_SENT with its reply un-NATed) was seen now and
      // then, before the new daemon could have run a command: a stale flow from an earlier test
      // (see the conntrack flush above, added for it). Should it still happen, it is reported here
      // and the takeover is measured once more: the claim must hold on that run with no failure.
      if (
        run.failures.length > 0 &&
        run.failures.every((f) => f.includes('"host-unreachable"') || f.includes('"timeout"'))
      ) {
        t.diagnostic(`takeover run 1: ${run.failures.length} failed connection(s); ${run.report}`);
        run = await takeover();
      }
      const { failures, firstSync } = run;
      assert.deepEqual(failures, [], `no connection failed while the new daemon took over: ${run.report}`);
      assert.equal(chains(await save('nat')), before);
      // The chains already hold exactly our rules: the first sync adopts them and rewrites none.
      assert.equal(firstSync.full, true);
      assert.ok(Number(firstSync.chainsAdopted) > 10, `adopted: ${JSON.stringify(firstSync)}`);
      assert.equal(
        firstSync.chainsWritten,
        0,
        `rewritten after the restart: ${JSON.stringify(firstSync)}\n${daemon
          .tail(200)
          .split('\n')
          .filter((l) => l.includes('differs from ours'))
          .join('\n')}`,
      );
      const nat = await save('nat');
      assert.equal(
        nat.split('\n').filter((l) => /^-A PREROUTING .*-j KUBE-SERVICES$/.test(l)).length,
        1,
        'the jump is not duplicated',
      );
    });

    test('--cleanup removes every chain and jump of this mode (the kubelet KUBE-FIREWALL stays)', async () => {
      await stopDaemon(daemon);
      await ctx.lab.exec(
        'node',
        process.execPath,
        ['--import', 'tsx', DAEMON, '--cleanup', '--proxy-mode=iptables'],
        { allowFail: true },
      );
      for (const table of ['nat', 'filter', 'mangle']) {
        const text = await save(table);
        const left = text.split('\n').filter((l) => /KUBE-/.test(l) && !/KUBE-FIREWALL/.test(l));
        assert.deepEqual(left, [], `${table} still has kube-proxy lines`);
      }
    });
  });
}

function only3(t: { ok: number; total: number; backends: Readonly<Record<string, number>> }): boolean {
  return t.ok === t.total && t.backends.b3 === t.total;
}
