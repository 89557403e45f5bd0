/**
 * nftables mode end to end (root only): the real daemon runs in the lab's node namespace on a
 * manifests folder, and real TCP/UDP connections check where they land and what source the backend
 * saw. The mode-independent scenarios come from e2e/scenarios (the same list as iptables mode); the
 * nftables-only behaviours (undefined port REJECT, unallocated service-CIDR DROP, our own table,
 * --cleanup) are checked here. The machine's own namespace must not change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { labSkipReason, type ConnResult, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, SCENARIOS, type ScenarioContext, svc, slice } from './scenarios/index.js';
import { startScenarioDaemon } from './scenarios/daemon.js';
import { endpointObjectNames } from '../src/backends/nftables/names.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['nft', 'conntrack', 'curl'])
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  return labSkipReason();
}

/** `nft list tables` of the machine's own namespace: read-only, to prove we never touch it. */
function rootTables(): string {
  return spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;
}

const errOf = (r: ConnResult): string | undefined => (r.ok ? undefined : r.error);

describe('nftables mode in the lab', { skip: skipReason() }, () => {
  let ctx: ScenarioContext;
  let dispose: (() => Promise<void>) | undefined;
  let daemon: LabProcess;
  let tablesBefore: string;

  const startDaemon = (): LabProcess => {
    return startScenarioDaemon(ctx, {
      mode: 'nftables',
      healthz: '0.0.0.0:10256',
      args: ['--iptables-min-sync-period=0s'],
    });
  };
  /** SIGTERM, up to 20 s for a clean exit (SIGKILL after that). */
  const stopDaemon = async (d: LabProcess): Promise<void> => {
    await d.stop(20_000);
  };
  /** The fields of the daemon's log lines with message `msg` (pino JSON lines on stderr). */
  const logLines = (d: LabProcess, msg: string): Record<string, unknown>[] =>
    d.stderr
      .split('\n')
      .filter((l) => l.includes(`"msg":"${msg}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    tablesBefore = rootTables();
    assert.doesNotMatch(tablesBefore, /kube-proxy/, 'the root namespace already has a kube-proxy table');
    ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: false }));
    daemon = startDaemon();
    await daemon.waitForOutput(/nftables sync done/, 60_000);
  });

  after(async () => {
    await dispose?.();
    const t = rootTables();
    assert.doesNotMatch(t, /kube-proxy/, 'a kube-proxy table appeared in the root namespace');
    assert.equal(t, tablesBefore, 'the root namespace tables changed');
  });

  test('the table is ours: ip kube-proxy with its comment, in the node namespace; no iptables rules', async () => {
    const r = await ctx.lab.exec('node', 'nft', ['list', 'tables']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['table ip kube-proxy']);
    const t = await ctx.lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy']);
    assert.match(t.stdout, /comment "rules for kube-proxy"/);
  });

  test('nftables only: a cluster IP on an undefined port is rejected', async () => {
    const r = await ctx.lab.tcp('client', '172.30.0.10', 81, { timeoutMs: 1500 });
    assert.equal(errOf(r), 'refused');
  });

  test('nftables only: an unallocated address in the service CIDR is dropped', async () => {
    const r = await ctx.lab.tcp('client', '172.30.0.99', 80, { timeoutMs: 800 });
    assert.equal(errOf(r), 'timeout');
  });

  for (const s of SCENARIOS) {
    test(s.name, () => s.run(ctx));
  }

  test('a connection whose first SYN left while the node had no rules completes once the daemon has synced (its un-NATed conntrack flow is deleted)', async () => {
    const sourcePort = 40_100;
    // Conntrack tracks a namespace's flows only while some rule there uses it: a node always has
    // such rules (kubelet's, the CNI's); this lab node has only ours, so the test keeps one of its own.
    const own = 'kpt-e2e-conntrack';
    await ctx.lab.exec('node', 'nft', ['-f', '-'], {
      input: `add table ip ${own}\nadd chain ip ${own} c { type filter hook prerouting priority 0 ; }\nadd rule ip ${own} c ct state new accept\n`,
    });
    const stuck = new RegExp(
      `SYN_SENT src=\\S+ dst=172\\.30\\.0\\.10 sport=${sourcePort} dport=80 .*src=172\\.30\\.0\\.10 `,
    );
    const synSent = async () =>
      (await ctx.lab.exec('node', 'conntrack', ['-L', '-p', 'tcp', '--state', 'SYN_SENT'])).stdout;
    try {
      await stopDaemon(daemon);
      await ctx.lab.exec('node', 'nft', ['delete', 'table', 'ip', 'kube-proxy']);
      // No rules: the SYN leaves un-DNATed and nobody answers it; conntrack keeps its flow in SYN_SENT,
      // un-NATed, for 120 s, and every SYN of the same tuple (retransmissions, or a new attempt from
      // the same source port) matches that flow instead of the NAT rules.
      const before = await ctx.lab.tcp('client', '172.30.0.10', 80, { sourcePort, timeoutMs: 1000 });
      assert.equal(before.ok, false, 'no rules, no answer');
      assert.match(await synSent(), stuck, 'the un-NATed flow the test relies on exists');
    } finally {
      daemon = startDaemon();
      await daemon.waitForOutput(/nftables sync done/, 60_000);
    }
    try {
      await daemon.waitForOutput(/deleted un-NATed TCP SYN_SENT conntrack entries/, 10_000);
      const after = await ctx.lab.tcp('client', '172.30.0.10', 80, { sourcePort, timeoutMs: 3000 });
      assert.ok(after.ok, `the same tuple is DNATed now: ${JSON.stringify(after)}\n${ctx.diagnostics()}`);
      assert.doesNotMatch(await synSent(), stuck);
    } finally {
      await ctx.lab.exec('node', 'nft', ['delete', 'table', 'ip', own]);
    }
  });

  test('ClientIP affinity survives a daemon restart: the full sync keeps the affinity sets and the clients they hold', async () => {
    const pods = ['b1', 'b2', 'b3'] as const;
    const setOf = (pod: (typeof pods)[number]) =>
      endpointObjectNames(
        { namespace: 'default', name: 'sticky', port: 'http', protocol: 'TCP' },
        ctx.ip[pod],
        8080,
      ).affinitySet;
    const client = new RegExp(`[{ ,]${ctx.ip.client.replaceAll('.', '\\.')}[ ,}]`);
    const holdsClient = async (pod: (typeof pods)[number]) =>
      client.test(
        (await ctx.lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', setOf(pod)])).stdout,
      );

    const first = await ctx.lab.tcpMany('client', '172.30.0.19', 80, 20);
    assert.equal(first.ok, 20, JSON.stringify(first.errors));
    const landed = Object.keys(first.backends);
    assert.equal(landed.length, 1, JSON.stringify(first.backends));
    const chosen = landed[0] as (typeof pods)[number];
    assert.ok(pods.includes(chosen), chosen);
    for (const p of pods)
      assert.equal(await holdsClient(p), p === chosen, `affinity set of ${p} before the restart`);

    await stopDaemon(daemon);
    daemon = startDaemon();
    await daemon.waitForOutput(/nftables sync done/, 60_000);
    const [sync] = logLines(daemon, 'nftables sync done');
    // The restarted daemon's first sync is a full one, over the table it read back.
    assert.equal(sync?.full, true, JSON.stringify(sync));
    assert.equal(sync?.replaced, 'read', JSON.stringify(sync));
    assert.ok(Number(sync?.kept) >= 3, JSON.stringify(sync));

    // Before any new packet: the kernel still remembers the client, in the same endpoint's set only.
    for (const p of pods)
      assert.equal(
        await holdsClient(p),
        p === chosen,
        `affinity set of ${p} after the restart's full sync\n${ctx.diagnostics()}`,
      );
    const again = await ctx.lab.tcpMany('client', '172.30.0.19', 80, 20);
    assert.equal(again.ok, 20, JSON.stringify(again.errors));
    assert.deepEqual(
      Object.keys(again.backends),
      [chosen],
      `the client still lands on ${chosen}: ${JSON.stringify(again.backends)}`,
    );
  });

  test('a partial sync removes a deleted service: its elements go, its cluster IP then drops', async () => {
    ctx.write('gone.yaml', [svc('gone', { clusterIP: '172.30.0.40' }), slice('gone', [{ ip: ctx.ip.b3 }])]);
    await ctx.until(
      'gone reachable',
      async () => (await ctx.lab.tcpMany('client', '172.30.0.40', 80, 3)).ok === 3,
    );
    ctx.write('gone.yaml', []);
    await ctx.until(
      'gone dropped as an unallocated service-CIDR address',
      async () => errOf(await ctx.lab.tcp('client', '172.30.0.40', 80, { timeoutMs: 500 })) === 'timeout',
    );
    const set = await ctx.lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', 'cluster-ips']);
    assert.doesNotMatch(set.stdout, /172\.30\.0\.40\b/);
  });

  test('--cleanup deletes the table', async () => {
    daemon.signal('SIGTERM');
    await ctx.lab.exec(
      'node',
      process.execPath,
      ['--import', 'tsx', DAEMON, '--cleanup', '--proxy-mode=nftables'],
      { allowFail: true },
    );
    const r = await ctx.lab.exec('node', 'nft', ['list', 'tables']);
    assert.doesNotMatch(r.stdout, /kube-proxy/);
  });
});
