/**
 * The IPVS tracer's own pieces: ipset matching per set type and flags, reading the render text
 * (fwmark services left out, a malformed line named), persistence, SCTP, IPv6, and the node's own
 * connection to an LB VIP whose source ranges exclude the node (KUBE-IPVS-OUT-FILTER).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, familyOptions, statesOf } from '../../test/golden/nftables/scenarios.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { ipvsExplainContext } from '../../test/fixtures/ipvs-explain.js';
import { renderIPVSText } from '../backends/ipvs/render.js';
import { explain, formatText, nodeLocalAddresses, type ExplainContext } from './explain.js';
import { ipvsModelFromText, setMatcher, IPVSTracer, type IPSetModel } from './ipvs-trace.js';
import type { Packet } from './packet.js';

const probe = (over: Partial<Packet> = {}): Packet => ({
  protocol: 'TCP',
  src: '10.0.0.1',
  srcPort: 40000,
  dst: '172.30.0.1',
  dstPort: 80,
  ...over,
});

const set = (type: string, members: string[]): IPSetModel => ({ name: 'S', type, members: new Set(members) });

describe('set matching', () => {
  test('hash:ip, hash:ip,port, hash:ip,port,ip by their flags', () => {
    assert.equal(setMatcher(set('hash:ip', ['172.30.0.1']), ['dst'])!(probe()), true);
    assert.equal(setMatcher(set('hash:ip', ['172.30.0.1']), ['src'])!(probe()), false);
    const ipPort = set('hash:ip,port', ['172.30.0.1,tcp:80']);
    assert.equal(setMatcher(ipPort, ['dst', 'dst'])!(probe()), true);
    assert.equal(setMatcher(ipPort, ['dst', 'dst'])!(probe({ protocol: 'UDP' })), false);
    assert.equal(setMatcher(ipPort, ['dst', 'dst'])!(probe({ dstPort: 81 })), false);
    // src,dst: the source address with the destination port (IPVS mode without a detector).
    assert.equal(setMatcher(ipPort, ['src', 'dst'])!(probe({ src: '172.30.0.1', dst: '9.9.9.9' })), true);
    const loop = set('hash:ip,port,ip', ['10.0.0.1,tcp:80,10.0.0.1']);
    assert.equal(setMatcher(loop, ['dst', 'dst', 'src'])!(probe({ dst: '10.0.0.1' })), true);
    assert.equal(
      setMatcher(loop, ['dst', 'dst', 'src'])!(probe({ dst: '10.0.0.1', src: '10.0.0.2' })),
      false,
    );
  });
  test('hash:ip,port,net matches the source by prefix; bitmap:port by the port', () => {
    const net = set('hash:ip,port,net', ['1.2.3.4,tcp:80,203.0.113.0/24', '1.2.3.4,tcp:80,192.168.0.7']);
    const m = setMatcher(net, ['dst', 'dst', 'src'])!;
    assert.equal(m(probe({ dst: '1.2.3.4', src: '203.0.113.200' })), true);
    assert.equal(m(probe({ dst: '1.2.3.4', src: '192.168.0.7' })), true);
    assert.equal(m(probe({ dst: '1.2.3.4', src: '192.168.0.8' })), false);
    assert.equal(m(probe({ dst: '1.2.3.5', src: '203.0.113.200' })), false);
    const ports = setMatcher(set('bitmap:port', ['30080']), ['dst'])!;
    assert.equal(ports(probe({ dstPort: 30080 })), true);
    assert.equal(ports(probe({ dstPort: 30081 })), false);
  });
  test('a flag count that does not fit the type is not understood', () => {
    assert.equal(setMatcher(set('hash:ip,port', []), ['dst']), undefined);
    assert.equal(setMatcher(set('list:set', []), ['dst']), undefined);
  });
});

describe('reading the render text', () => {
  test('fwmark services are left out; a malformed line is named', () => {
    const m = ipvsModelFromText(
      '# ipvs\n-A -f 1 -s rr\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n',
    );
    assert.deepEqual([...m.services.keys()], ['tcp 10.0.0.1:80']);
    assert.throws(() => ipvsModelFromText('# ipvs\n-a -t 10.0.0.2:80 -r 10.1.0.1:80 -m -w 1\n'), /ipvs line/);
    assert.throws(
      () => ipvsModelFromText('# ipset\nadd NOPE 1.2.3.4\n'),
      /cannot read ipset line "add NOPE 1.2.3.4"/,
    );
  });
});

const ctxOf = ipvsExplainContext;

describe('tracing', () => {
  test('persistence: every real server of the virtual server is listed', () => {
    const e = explain(
      ctxOf(SCENARIOS.affinity!),
      probe({ src: '10.1.2.3', dst: '172.30.0.46', dstPort: 80 }),
    );
    assert.equal(e.json.verdict, 'DNAT');
    assert.deepEqual(e.json.endpoints, ['10.180.0.10:80', '10.180.0.11:80']);
    assert.ok(
      e.json.steps.some((s) => s.table === 'ipvs' && / -p 300$/.test(s.rule)),
      formatText(e),
    );
    assert.ok(e.why.reasons.some((r) => /never match a NEW connection/.test(r)));
  });
  test('SCTP virtual servers are traced', () => {
    const e = explain(
      ctxOf(SCENARIOS['sctp-udp']!),
      probe({ protocol: 'SCTP', src: '10.1.2.3', dst: '172.30.0.47', dstPort: 9999 }),
    );
    assert.equal(e.json.verdict, 'DNAT', formatText(e));
    assert.ok(
      e.json.steps.some((s) => s.rule.startsWith('-A --sctp-service 172.30.0.47:9999')),
      formatText(e),
    );
  });
  test('IPv6: KUBE-6- sets and bracketed virtual servers', () => {
    const objs = [
      makeNode('node-1', ['fd00::2']),
      makeService('ns', 's', { clusterIP: 'fd00:30::1', ipFamilies: ['IPv6'] }),
      makeSlice('ns', 's', 's-a', [{ ip: 'fd00:180::1', nodeName: 'node-2' }], undefined, {
        addressType: 'IPv6',
      }),
    ];
    const ctx = ctxOf(objs, 'IPv6');
    const e = explain(ctx, probe({ src: 'fd00:99::1', dst: 'fd00:30::1' }));
    assert.equal(e.json.verdict, 'DNAT', `${ctx.rules}\n${formatText(e)}`);
    assert.deepEqual(e.json.endpoints, ['[fd00:180::1]:80']);
    assert.ok(
      e.json.steps.some((s) => s.rule.includes('KUBE-6-CLUSTER-IP')),
      formatText(e),
    );
  });
  test("the node's own connection from an LB VIP its source ranges exclude is dropped in filter OUTPUT", () => {
    const objs = [
      makeNode('node-1', ['192.168.0.2']),
      makeService(
        'ns',
        'lb',
        {
          clusterIP: '172.30.0.5',
          type: 'LoadBalancer',
          loadBalancerSourceRanges: ['203.0.113.0/24'],
          ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30005 }],
        },
        { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } },
      ),
      makeSlice('ns', 'lb', 'lb-a', [{ ip: '10.180.0.1', nodeName: 'node-2' }]),
    ];
    const ctx = ctxOf(objs);
    const fromVIP = explain(ctx, probe({ src: '1.2.3.4', dst: '1.2.3.4' }));
    assert.equal(fromVIP.source, 'node');
    assert.equal(fromVIP.json.verdict, 'DROP', formatText(fromVIP));
    assert.equal(fromVIP.why.expected, 'DROP');
    assert.ok(
      fromVIP.json.steps.some((s) => s.chain === 'KUBE-IPVS-OUT-FILTER'),
      formatText(fromVIP),
    );
    const fromNode = explain(ctx, probe({ src: '192.168.0.2', dst: '1.2.3.4' }));
    assert.equal(fromNode.json.verdict, 'DNAT', formatText(fromNode));
    assert.equal(fromNode.why.expected, 'DNAT');
    const outside = explain(ctx, probe({ src: '8.8.8.8', dst: '1.2.3.4' }));
    assert.equal(outside.json.verdict, 'DROP', formatText(outside));
    const admitted = explain(ctx, probe({ src: '203.0.113.9', dst: '1.2.3.4' }));
    assert.deepEqual(admitted.json.endpoints, ['10.180.0.1:80'], formatText(admitted));
    assert.equal(admitted.json.masquerade, true);
  });
  test('a tracer is reusable across packets', () => {
    const ctx = ctxOf(SCENARIOS['basic-clusterip']!);
    const t = new IPVSTracer(ipvsModelFromText(ctx.rules));
    const env = { isLocal: () => false, source: 'outside' as const };
    const a = t.trace(probe({ dst: '172.30.0.41' }), env);
    const b = t.trace(probe({ dst: '172.30.0.41' }), env);
    assert.deepEqual(a, b);
  });
});

describe('NodePort addresses', () => {
  test("with the machine's addresses, NodePorts answer on each but kube-ipvs0's and loopback, as the daemon programs them", () => {
    const objs = [
      makeNode('node-1', ['10.100.0.2']),
      makeService('ns', 'np', {
        type: 'NodePort',
        clusterIP: '172.30.9.1',
        ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30080 }],
      }),
      makeSlice('ns', 'np', 'np-a', [{ ip: '10.180.9.1', nodeName: 'node-2' }]),
    ];
    const [state] = statesOf(objs);
    const options = familyOptions('IPv4');
    const localAddresses = [
      { iface: 'eth0', address: '10.100.0.2' },
      { iface: 'eth1', address: '192.168.5.5' },
      { iface: 'kube-ipvs0', address: '172.30.9.1' },
      { iface: 'lo', address: '127.0.0.1' },
    ];
    const ctx: ExplainContext = {
      mode: 'ipvs',
      state: state!,
      options,
      rules: renderIPVSText([state!], [options], localAddresses),
      interfaceAddresses: localAddresses.map((a) => a.address),
      localAddresses,
    };
    const to = (dst: string): ReturnType<typeof explain> =>
      explain(ctx, probe({ src: '10.1.2.3', dst, dstPort: 30080 }));
    for (const dst of ['10.100.0.2', '192.168.5.5']) {
      const e = to(dst);
      assert.equal(e.json.verdict, 'DNAT', formatText(e));
      assert.equal(e.json.frontend, 'nodePort');
      assert.deepEqual(e.json.endpoints, ['10.180.9.1:80']);
      assert.ok(
        e.json.steps.some((s) => s.rule === `-A -t ${dst}:30080 -s rr`),
        formatText(e),
      );
    }
    for (const dst of ['172.30.9.1', '127.0.0.1']) {
      const e = to(dst);
      assert.notEqual(e.json.verdict, 'DNAT', formatText(e));
      assert.equal(e.json.frontend, null);
    }
    // `kube-proxy render` (no machine facts) puts them on the node IPs only.
    const without: ExplainContext = {
      mode: 'ipvs',
      state: state!,
      options,
      rules: renderIPVSText([state!], [options]),
      interfaceAddresses: ctx.interfaceAddresses,
    };
    assert.equal(
      explain(without, probe({ src: '10.1.2.3', dst: '192.168.5.5', dstPort: 30080 })).json.frontend,
      null,
    );
    assert.equal(
      explain(without, probe({ src: '10.1.2.3', dst: '10.100.0.2', dstPort: 30080 })).json.verdict,
      'DNAT',
    );
  });
});

describe("the machine's addresses", () => {
  test('are used only on the node: explain elsewhere renders NodePorts on the node IPs', () => {
    const here = [
      { iface: 'eth0', address: '10.100.0.2' },
      { iface: 'eth1', address: 'fe80::1%eth1' },
    ];
    assert.equal(nodeLocalAddresses(here, ['10.100.0.2']), here);
    assert.equal(nodeLocalAddresses(here, ['10.100.0.9']), undefined);
    assert.equal(nodeLocalAddresses([{ iface: 'eth0', address: 'fd00:0::2' }], ['fd00::2'])?.length, 1);
  });
});
