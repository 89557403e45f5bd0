// Proves the e2e lab itself with hand-written rules, before any proxy mode relies on it.
// Root only: every test skips with the reason when namespaces cannot be made here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createLab,
  labSkipReason,
  LabExecError,
  listNamespaces,
  parseReply,
  sweepStaleLabs,
  tally,
  type Lab,
} from './topology.js';

const skip = labSkipReason();
const VIP = '172.30.0.1';
const VIP6 = 'fd00:10:96::1';
const NODEPORT = 30080;

/** A small kube-proxy-shaped nat table: ClusterIP split 50/50, NodePort with masquerade, hairpin masquerade. */
function natRules(b1: string, b2: string): string {
  return `*nat
:KPT-SERVICES - [0:0]
:KPT-NODEPORTS - [0:0]
:KPT-POSTROUTING - [0:0]
:KPT-MARK-MASQ - [0:0]
:KPT-SVC - [0:0]
:KPT-EXT - [0:0]
:KPT-SEP1 - [0:0]
:KPT-SEP2 - [0:0]
:KPT-SVC-UDP - [0:0]
-A PREROUTING -j KPT-SERVICES
-A OUTPUT -j KPT-SERVICES
-A POSTROUTING -j KPT-POSTROUTING
-A KPT-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KPT-MARK-MASQ -j MARK --or-mark 0x4000
-A KPT-SERVICES -d ${VIP}/32 -p tcp -m tcp --dport 80 -j KPT-SVC
-A KPT-SERVICES -d ${VIP}/32 -p udp -m udp --dport 53 -j KPT-SVC-UDP
-A KPT-SERVICES -m addrtype --dst-type LOCAL -j KPT-NODEPORTS
-A KPT-NODEPORTS -p tcp -m tcp --dport ${NODEPORT} -j KPT-EXT
-A KPT-EXT -j KPT-MARK-MASQ
-A KPT-EXT -j KPT-SVC
-A KPT-SVC ! -s 10.244.0.0/16 -j KPT-MARK-MASQ
-A KPT-SVC -m statistic --mode random --probability 0.5 -j KPT-SEP1
-A KPT-SVC -j KPT-SEP2
-A KPT-SEP1 -s ${b1}/32 -j KPT-MARK-MASQ
-A KPT-SEP1 -p tcp -j DNAT --to-destination ${b1}:8080
-A KPT-SEP2 -s ${b2}/32 -j KPT-MARK-MASQ
-A KPT-SEP2 -p tcp -j DNAT --to-destination ${b2}:8080
-A KPT-SVC-UDP -m statistic --mode random --probability 0.5 -p udp -j DNAT --to-destination ${b1}:5353
-A KPT-SVC-UDP -p udp -j DNAT --to-destination ${b2}:5353
COMMIT
`;
}

describe('network-namespace lab', { skip }, () => {
  let lab: Lab;

  before(async () => {
    sweepStaleLabs();
    lab = await createLab({ pods: ['a', 'b1', 'b2'], ipv6: true });
    await Promise.all([
      lab.startBackend('b1', { tcpPorts: [8080], udpPorts: [5353] }),
      lab.startBackend('b2', { tcpPorts: [8080], udpPorts: [5353] }),
      lab.startBackend('node', { tcpPorts: [8080] }),
    ]);
  });
  after(async () => {
    await lab?.destroy();
  });

  test('pod to pod directly: the backend sees the client pod IP', async () => {
    const r = await lab.tcp('a', lab.pod('b1').ip, 8080);
    assert.ok(r.ok, JSON.stringify(r));
    const p = parseReply(r.reply);
    assert.equal(p?.backend, 'b1');
    assert.equal(p?.clientIp, lab.pod('a').ip);
    assert.equal(p?.clientPort, r.localPort);
  });

  test('tcpMany makes n separate connections', async () => {
    const t = await lab.tcpMany('a', lab.pod('b2').ip, 8080, 20, { concurrency: 4 });
    assert.deepEqual(
      { total: t.total, ok: t.ok, backends: t.backends, clients: t.clients, errors: t.errors },
      {
        total: 20,
        ok: 20,
        backends: { b2: 20 },
        clients: { [lab.pod('a').ip]: 20 },
        errors: {},
      },
    );
    const ports = new Set(t.results.map((r) => r.localPort));
    assert.equal(ports.size, 20);
  });

  for (const mode of ['legacy', 'nft'] as const) {
    test(`iptables-${mode}-restore: ClusterIP DNAT splits over two backends, NodePort and hairpin masquerade`, async () => {
      const b1 = lab.pod('b1').ip;
      const b2 = lab.pod('b2').ip;
      await lab.exec('node', `iptables-${mode}-restore`, ['-w'], { input: natRules(b1, b2) });
      try {
        const fromPod = await lab.tcpMany('a', VIP, 80, 100);
        assert.equal(fromPod.ok, 100, JSON.stringify(fromPod.errors));
        assert.ok(
          (fromPod.backends['b1'] ?? 0) > 0 && (fromPod.backends['b2'] ?? 0) > 0,
          JSON.stringify(fromPod.backends),
        );
        assert.deepEqual(fromPod.clients, { [lab.pod('a').ip]: 100 }, 'pod source IP is kept');

        const fromExt = await lab.tcpMany('ext', lab.node.ip, NODEPORT, 30);
        assert.equal(fromExt.ok, 30, JSON.stringify(fromExt.errors));
        assert.deepEqual(fromExt.clients, { [lab.node.bridgeIp]: 30 }, 'NodePort traffic is masqueraded');

        const fromNode = await lab.tcpMany('node', VIP, 80, 30);
        assert.equal(fromNode.ok, 30, JSON.stringify(fromNode.errors));

        // b1 → VIP → b1 needs bridge hairpin + masquerade; b1 → VIP → b2 keeps b1's IP.
        const hairpin = await lab.tcpMany('b1', VIP, 80, 30);
        assert.equal(hairpin.ok, 30, JSON.stringify(hairpin.errors));
        for (const r of hairpin.results) {
          const p = r.ok ? parseReply(r.reply) : undefined;
          assert.equal(p?.clientIp, p?.backend === 'b1' ? lab.node.bridgeIp : b1, JSON.stringify(r));
        }

        // One UDP socket = one conntrack flow = one backend, whatever the statistic rule draws.
        const udp = await lab.udpMany('a', VIP, 53, 10, { sourcePort: 40000 });
        assert.equal(udp.ok, 10, JSON.stringify(udp.errors));
        assert.equal(Object.keys(udp.backends).length, 1, JSON.stringify(udp.backends));
        assert.deepEqual(udp.clients, { [lab.pod('a').ip]: 10 });
        const ct = await lab.exec('node', 'conntrack', ['-L', '-p', 'udp', '--orig-dst', VIP]);
        assert.match(ct.stdout, /sport=40000 dport=53/);
      } finally {
        // A full restore of an empty table flushes and deletes every nat chain of this backend.
        await lab.exec('node', `iptables-${mode}-restore`, ['-w'], { input: '*nat\nCOMMIT\n' });
        await lab.exec('node', 'conntrack', ['-F'], { allowFail: true });
      }
      const left = await lab.exec('node', `iptables-${mode}-save`, ['-t', 'nat']);
      assert.doesNotMatch(left.stdout, /KPT-/);
    });
  }

  test('IPv6: pod to pod, and an ip6tables DNAT ClusterIP', async () => {
    const [b1, b2] = [lab.pod('b1').ipv6!, lab.pod('b2').ipv6!];
    const direct = await lab.tcp('a', b1, 8080);
    assert.ok(direct.ok, JSON.stringify(direct));
    assert.equal(parseReply(direct.reply)?.clientIp, lab.pod('a').ipv6);
    const rules = `*nat
:KPT-SVC - [0:0]
-A PREROUTING -d ${VIP6}/128 -p tcp -m tcp --dport 80 -j KPT-SVC
-A KPT-SVC -m statistic --mode random --probability 0.5 -p tcp -j DNAT --to-destination [${b1}]:8080
-A KPT-SVC -p tcp -j DNAT --to-destination [${b2}]:8080
COMMIT
`;
    await lab.exec('node', 'ip6tables-nft-restore', ['-w'], { input: rules });
    try {
      // First contact with each backend over IPv6 waits on neighbour discovery; resolve it before
      // counting so one slow first exchange cannot turn into a counted timeout.
      for (const b of [b1, b2]) await lab.tcp('a', b, 8080, { timeoutMs: 5000 });
      // 5 s per connection: a lost SYN is retransmitted after 1 s and again after 3 s (one of 100
      // timed out at the 2 s default in a clean-clone CI run on a busy machine).
      const t = await lab.tcpMany('a', VIP6, 80, 100, { timeoutMs: 5000 });
      assert.equal(t.ok, 100, JSON.stringify(t.errors));
      assert.ok((t.backends['b1'] ?? 0) > 0 && (t.backends['b2'] ?? 0) > 0, JSON.stringify(t.backends));
      assert.deepEqual(t.clients, { [lab.pod('a').ipv6!]: 100 });
    } finally {
      await lab.exec('node', 'ip6tables-nft-restore', ['-w'], { input: '*nat\nCOMMIT\n' });
    }
  });

  test('UDP round trip, and several datagrams from one source port', async () => {
    const r = await lab.udp('a', lab.pod('b1').ip, 5353);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(parseReply(r.reply)?.clientIp, lab.pod('a').ip);
    const t = await lab.udpMany('a', lab.pod('b2').ip, 5353, 3, { sourcePort: 40100 });
    assert.deepEqual(
      t.results.map((x) => (x.ok ? x.reply : x.error)),
      Array(3).fill(`b2 client=${lab.pod('a').ip}:40100`),
    );
  });

  test('external client reaches the node IP (IPv4 and IPv6)', async () => {
    const r4 = await lab.tcp('ext', lab.node.ip, 8080);
    assert.ok(r4.ok, JSON.stringify(r4));
    assert.equal(parseReply(r4.reply)?.clientIp, lab.ext.ip);
    const r6 = await lab.tcp('ext', lab.node.ipv6!, 8080);
    assert.ok(r6.ok, JSON.stringify(r6));
    assert.equal(parseReply(r6.reply)?.clientIp, lab.ext.ipv6);
  });

  test('errors are classified: refused (nothing listening), timeout (DROP), UDP port unreachable', async () => {
    const b2 = lab.pod('b2').ip;
    assert.deepEqual(await lab.tcp('a', b2, 8081, { timeoutMs: 2000 }), { ok: false, error: 'refused' });
    const drop = ['-d', b2, '-p', 'tcp', '--dport', '8081', '-j', 'DROP'];
    await lab.exec('node', 'iptables-legacy', ['-w', '-I', 'FORWARD', ...drop]);
    try {
      const r = await lab.tcp('a', b2, 8081, { timeoutMs: 300 });
      assert.equal(r.ok ? 'ok' : r.error, 'timeout');
    } finally {
      await lab.exec('node', 'iptables-legacy', ['-w', '-D', 'FORWARD', ...drop]);
    }
    const u = await lab.udp('a', b2, 5354, { timeoutMs: 2000 });
    assert.equal(u.ok ? 'ok' : u.error, 'refused');
  });

  test('exec reports a failing command with its name and stderr; allowFail returns it', async () => {
    await assert.rejects(
      lab.exec('node', 'iptables-legacy', ['-t', 'nat', '-X', 'NO-SUCH-CHAIN']),
      (err: unknown) => {
        assert.ok(err instanceof LabExecError);
        assert.match(err.message, /iptables-legacy -t nat -X NO-SUCH-CHAIN/);
        return true;
      },
    );
    const r = await lab.exec('node', 'sh', ['-c', 'echo out; echo err >&2; exit 3'], { allowFail: true });
    assert.deepEqual(r, { code: 3, signal: null, stdout: 'out\n', stderr: 'err\n' });
    assert.throws(() => lab.resolveNs('kpt-not-ours'), /not a namespace of lab/);
  });

  test('spawnInNode runs in the node namespace and captures output', async () => {
    const p = lab.spawnInNode('sh', ['-c', 'ip -o -4 addr show dev cbr0; echo started; exec sleep 60']);
    await p.waitForOutput(/started/);
    assert.match(p.stdout, /10\.244\.0\.1\/24/);
    const exit = await p.stop();
    assert.equal(exit.signal, 'SIGTERM');
  });

  test('stop() of a process that ignores SIGTERM kills it and resolves (the wait keeps the loop alive)', async () => {
    // The process and its pipes are unref'd: the wait after SIGKILL must hold the event loop itself
    // (without it node:test reports a promise still pending when the event loop resolved).
    const p = lab.spawnInNode('sh', ['-c', 'trap "" TERM; echo started; while :; do sleep 1; done']);
    await p.waitForOutput(/started/);
    const exit = await p.stop(200);
    assert.equal(exit.signal, 'SIGKILL');
  });
});

describe('lab lifecycle', { skip }, () => {
  test('destroy kills the lab processes and removes every namespace', async () => {
    const lab = await createLab({ pods: 2 });
    assert.deepEqual(
      lab.pods.map((p) => p.name),
      ['pod1', 'pod2'],
    );
    const backend = await lab.startBackend('pod1', { tcpPorts: [8080] });
    const daemon = lab.spawnInNode('sleep', ['600']);
    assert.ok((await lab.tcp('pod2', lab.pod('pod1').ip, 8080)).ok);
    assert.equal(listNamespaces().filter((n) => n.startsWith(lab.prefix)).length, 4);
    await lab.destroy();
    assert.deepEqual(
      listNamespaces().filter((n) => n.startsWith(lab.prefix)),
      [],
    );
    assert.ok(backend.exitInfo && daemon.exitInfo, 'processes have exited');
    await lab.destroy(); // idempotent
    await assert.rejects(async () => lab.tcp('pod2', '10.244.0.10', 8080), /already destroyed/);
  });

  for (const mode of ['wait', 'forget'] as const) {
    test(`a process that ${mode === 'wait' ? 'gets SIGTERM' : 'returns without destroy()'} leaves no namespace behind`, async () => {
      const fixture = fileURLToPath(new URL('./exit-fixture.ts', import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let prefix = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (!prefix && out.includes('\n') && line) {
          prefix = (JSON.parse(line) as { prefix: string }).prefix;
          if (mode === 'wait') {
            assert.equal(
              listNamespaces().filter((n) => n.startsWith(prefix)).length,
              3,
              'lab is up while the child waits',
            );
            child.kill('SIGTERM');
          }
        }
      });
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
        (resolve) =>
          child.on('close', (c, sig) => {
            resolve({ code: c, signal: sig });
          }),
      );
      assert.ok(prefix, `child printed no prefix; stderr:\n${err}`);
      assert.deepEqual(
        { code, signal },
        mode === 'wait' ? { code: null, signal: 'SIGTERM' } : { code: 0, signal: null },
        err,
      );
      assert.deepEqual(
        listNamespaces().filter((n) => n.startsWith(prefix)),
        [],
      );
    });
  }

  test('a lab that fails half-way removes what it made and leaves foreign namespaces alone', async () => {
    const prefix = `kpt-${process.pid}-f${Math.random().toString(36).slice(2, 6)}-`;
    const foreign = `${prefix}b1`;
    assert.equal(spawnSync('ip', ['netns', 'add', foreign]).status, 0);
    try {
      await assert.rejects(createLab({ prefix, pods: ['a', 'b1', 'b2'] }), /File exists/);
      assert.deepEqual(
        listNamespaces().filter((n) => n.startsWith(prefix)),
        [foreign],
      );
    } finally {
      spawnSync('ip', ['netns', 'del', foreign]);
    }
  });

  test('sweepStaleLabs deletes namespaces of dead pids only', async () => {
    const dead = spawnSync('true').pid;
    const stale = `kpt-${dead}-zz-node`;
    const lab = await createLab({ pods: 0 });
    try {
      assert.equal(spawnSync('ip', ['netns', 'add', stale]).status, 0);
      const swept = sweepStaleLabs();
      assert.ok(swept.includes(stale), JSON.stringify(swept));
      const names = listNamespaces();
      assert.ok(!names.includes(stale));
      assert.ok(names.includes(lab.node.ns), 'a live lab is kept');
    } finally {
      spawnSync('ip', ['netns', 'del', stale]);
      await lab.destroy();
    }
  });
});

describe('lab options and helpers (no root needed)', () => {
  test('bad options are rejected before anything is created, naming the option and value', async () => {
    await assert.rejects(createLab({ pods: ['Bad'] }), /option pods: pod name "Bad"/);
    await assert.rejects(createLab({ pods: ['a', 'a'] }), /pod name "a" is repeated/);
    await assert.rejects(createLab({ pods: ['node'] }), /not be 'node' or 'ext'/);
    await assert.rejects(createLab({ pods: -1 }), /option pods: -1/);
    await assert.rejects(createLab({ prefix: 'x-' }), /option prefix: "x-"/);
  });

  test('parseReply and tally', () => {
    assert.deepEqual(parseReply('b1 client=10.244.0.10:4000\n'), {
      backend: 'b1',
      clientIp: '10.244.0.10',
      clientPort: 4000,
    });
    assert.deepEqual(parseReply('b1 client=[fd00::a]:4000'), {
      backend: 'b1',
      clientIp: 'fd00::a',
      clientPort: 4000,
    });
    assert.equal(parseReply('garbage'), undefined);
    const t = tally([
      { ok: true, reply: 'b1 client=1.2.3.4:1' },
      { ok: true, reply: 'b2 client=1.2.3.4:2' },
      { ok: false, error: 'timeout' },
    ]);
    assert.deepEqual(
      [t.total, t.ok, t.backends, t.clients, t.errors],
      [3, 2, { b1: 1, b2: 1 }, { '1.2.3.4': 2 }, { timeout: 1 }],
    );
  });
});
