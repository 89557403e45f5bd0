/**
 * IPVS renderer: golden files (test/golden/ipvs/, regenerate with UPDATE_GOLDEN=1), spot facts that
 * match upstream's layout, and property tests (determinism, every scheduler accepted, diff of a
 * layout against itself is empty, a diff brings any kernel state to the layout).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertGolden } from '../../../test/golden/golden.js';
import { familyOptions, stateOf } from '../../../test/golden/iptables/scenarios.js';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import type { KubeObject } from '../../model/types.js';
import { buildIPVSLayout, renderIPVSFamily, renderIPVSText } from './render.js';
import { emptyKernelState, parseIPSetSave, parseIPVSConnections, parseIPVSSave, planSync } from './diff.js';
import { SCHEDULERS, familySetName } from './names.js';

const NODE_IP = '10.100.0.2';

function scenario(): KubeObject[] {
  return [
    makeNode('node-1', [NODE_IP, 'fd00:10:100::2']),
    makeService('ns1', 'web', { clusterIP: '172.30.0.10', sessionAffinity: 'ClientIP' }),
    makeSlice('ns1', 'web', 'web-1', [
      { ip: '10.0.1.1', nodeName: 'node-1' },
      { ip: '10.0.1.2', nodeName: 'node-2' },
    ]),
    makeService('ns1', 'np', {
      type: 'NodePort',
      clusterIP: '172.30.0.11',
      ports: [
        { name: 'p80', port: 80, protocol: 'TCP', nodePort: 30080 },
        { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
      ],
    }),
    makeSlice(
      'ns1',
      'np',
      'np-1',
      [{ ip: '10.0.1.3', nodeName: 'node-1' }],
      [
        { name: 'p80', port: 8080, protocol: 'TCP' },
        { name: 'dns', port: 5353, protocol: 'UDP' },
      ],
    ),
    makeService(
      'ns2',
      'lb',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.12',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 30300,
        loadBalancerSourceRanges: ['203.0.113.0/24'],
        externalIPs: ['192.0.2.20'],
        ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30081 }],
      },
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } },
    ),
    makeSlice('ns2', 'lb', 'lb-1', [
      { ip: '10.0.2.1', nodeName: 'node-1' },
      { ip: '10.0.2.2', nodeName: 'node-2' },
    ]),
    makeService(
      'ns2',
      'lbnode',
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.13',
        loadBalancerSourceRanges: ['10.100.0.0/16'],
        ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30082 }],
      },
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.11' }] } } },
    ),
    makeSlice('ns2', 'lbnode', 'lbnode-1', [{ ip: '10.0.2.3', nodeName: 'node-2' }]),
    makeService('ns3', 'empty', { clusterIP: '172.30.0.14' }),
    makeService('ns3', 'sctp', {
      type: 'NodePort',
      clusterIP: '172.30.0.15',
      ports: [{ name: 's', port: 7777, protocol: 'SCTP', nodePort: 30777 }],
    }),
    makeSlice(
      'ns3',
      'sctp',
      'sctp-1',
      [{ ip: '10.0.3.1', nodeName: 'node-2' }],
      [{ name: 's', port: 7777, protocol: 'SCTP' }],
    ),
    makeService('ns4', 'v6', { clusterIP: 'fd00:30::10', ipFamilies: ['IPv6'] }),
    makeSlice('ns4', 'v6', 'v6-1', [{ ip: 'fd00:10:1::1', nodeName: 'node-1' }]),
  ];
}

describe('ipvs render: goldens', () => {
  test('ipv4: every address kind, eTP=Local, source ranges, affinity, SCTP, no endpoints', () => {
    assertGolden(
      'ipvs/basic-ipv4',
      renderIPVSFamily(buildIPVSLayout(stateOf(scenario()), familyOptions('IPv4'))),
    );
  });
  test('ipv6: KUBE-6- set names, inet6 sets, [v6]:port virtual servers', () => {
    assertGolden(
      'ipvs/basic-ipv6',
      renderIPVSFamily(buildIPVSLayout(stateOf(scenario(), 'IPv6'), familyOptions('IPv6'))),
    );
  });
  test('masqueradeAll, no detector, strictARP, scheduler sh, nodePortAddresses restricted', () => {
    const opts = familyOptions('IPv4', {
      masqueradeAll: false,
      localDetector: { kind: 'none' },
      ipvsStrictARP: true,
      ipvsScheduler: 'sh',
      nodePortAddresses: { matchAll: false, ips: ['10.100.0.2', '10.100.0.3'], cidrs: ['10.100.0.0/24'] },
    });
    assertGolden('ipvs/options-ipv4', renderIPVSFamily(buildIPVSLayout(stateOf(scenario()), opts)));
  });
});

describe('ipvs render: upstream facts', () => {
  const layout = buildIPVSLayout(stateOf(scenario()), familyOptions('IPv4'));
  const text = renderIPVSFamily(layout);

  test('sections are labelled and in order', () => {
    const order = ['# family: ipv4', '# link', '# sysctl', '# ipset', '# ipvs', '# iptables'].map((s) =>
      text.indexOf(`${s}\n`),
    );
    assert.ok(
      order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)),
      JSON.stringify(order),
    );
  });

  test('ClusterIP, externalIPs and LB VIPs are bound to kube-ipvs0; node IPs are not', () => {
    assert.deepEqual(layout.addresses, [
      '172.30.0.10',
      '172.30.0.11',
      '172.30.0.12',
      '172.30.0.13',
      '172.30.0.14',
      '172.30.0.15',
      '192.0.2.10',
      '192.0.2.11',
      '192.0.2.20',
    ]);
  });

  test('affinity is persistence with the sticky timeout; real servers are masqueraded with weight 1', () => {
    assert.match(text, /^-A -t 172\.30\.0\.10:80 -s rr -p 10800$/m);
    assert.match(text, /^-a -t 172\.30\.0\.10:80 -r 10\.0\.1\.1:80 -m -w 1$/m);
  });

  test('eTP=Local: external VSs get only local endpoints, the cluster IP gets all; LOCAL sets filled', () => {
    assert.deepEqual(
      layout.virtualServers.get('tcp 192.0.2.10:80')!.realServers.map((r) => r.ip),
      ['10.0.2.1'],
    );
    assert.deepEqual(
      layout.virtualServers.get('tcp 10.100.0.2:30081')!.realServers.map((r) => r.ip),
      ['10.0.2.1'],
    );
    assert.deepEqual(
      layout.virtualServers.get('tcp 172.30.0.12:80')!.realServers.map((r) => r.ip),
      ['10.0.2.1', '10.0.2.2'],
    );
    assert.match(text, /^add KUBE-LOAD-BALANCER-LOCAL 192\.0\.2\.10,tcp:80$/m);
    assert.match(text, /^add KUBE-NODE-PORT-LOCAL-TCP 30081$/m);
    assert.match(text, /^add KUBE-EXTERNAL-IP-LOCAL 192\.0\.2\.20,tcp:80$/m);
    assert.match(text, /^add KUBE-HEALTH-CHECK-NODE-PORT 30300$/m);
  });

  test('eTP=Local with no local endpoint falls back to the cluster endpoints (upstream PR 97081)', () => {
    assert.deepEqual(
      layout.virtualServers.get('tcp 192.0.2.11:80')!.realServers.map((r) => r.ip),
      ['10.0.2.3'],
    );
  });

  test('source ranges: FW + SOURCE-CIDR entries; the node gets SOURCE-IP when a range holds it, else an OUT-FILTER drop', () => {
    assert.match(text, /^add KUBE-LOAD-BALANCER-SOURCE-CIDR 192\.0\.2\.10,tcp:80,203\.0\.113\.0\/24$/m);
    assert.match(text, /^add KUBE-LOAD-BALANCER-SOURCE-IP 192\.0\.2\.11,tcp:80,192\.0\.2\.11$/m);
    assert.match(
      text,
      /^-A KUBE-IPVS-OUT-FILTER -s 192\.0\.2\.10 -m ipvs --vaddr 192\.0\.2\.10 --vproto tcp --vport 80 -j DROP$/m,
    );
    assert.doesNotMatch(text, /--vaddr 192\.0\.2\.11/);
  });

  test('hairpin entries only for local endpoints; SCTP node ports per node IP', () => {
    assert.match(text, /^add KUBE-LOOP-BACK 10\.0\.1\.1,tcp:80,10\.0\.1\.1$/m);
    assert.doesNotMatch(text, /KUBE-LOOP-BACK 10\.0\.1\.2/);
    assert.match(text, /^add KUBE-NODE-PORT-SCTP-HASH 10\.100\.0\.2,sctp:30777$/m);
    assert.match(text, /^-A --sctp-service 10\.100\.0\.2:30777 -s rr$/m);
  });

  test('a service without endpoints still gets its VS (IPVS answers with a reset), and its VIP is in KUBE-IPVS-IPS', () => {
    assert.equal(layout.virtualServers.get('tcp 172.30.0.14:80')!.realServers.length, 0);
    assert.match(text, /^add KUBE-IPVS-IPS 172\.30\.0\.14$/m);
  });

  test('ipv6 set names are KUBE-6- and at most 31 characters', () => {
    assert.equal(familySetName('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'IPv6'), 'KUBE-6-LOAD-BALANCER-SOURCE-CID');
    const v6 = renderIPVSFamily(buildIPVSLayout(stateOf(scenario(), 'IPv6'), familyOptions('IPv6')));
    assert.match(v6, /^add KUBE-6-CLUSTER-IP fd00:30::10,tcp:80$/m);
    assert.match(v6, /^-A -t \[fd00:30::10\]:80 -s rr$/m);
    assert.match(v6, /-A KUBE-SERVICES -s ::1\/128 -j RETURN/);
  });

  test('an unknown scheduler is rejected with its value', () => {
    assert.throws(
      () => buildIPVSLayout(stateOf(scenario()), familyOptions('IPv4', { ipvsScheduler: 'fastest' })),
      /"fastest"/,
    );
  });
});

describe('ipvs diff and parsers', () => {
  const layout = buildIPVSLayout(stateOf(scenario()), familyOptions('IPv4'));

  test('from an empty kernel, then a second plan against the result is empty', () => {
    const k = emptyKernelState();
    const first = planSync(k, layout);
    assert.ok(
      first.ipvs.length > 0 &&
        first.ipset.length > 0 &&
        first.linkAdd.startsWith('link add kube-ipvs0 type dummy\n'),
    );
    const again = planSync(k, layout);
    assert.deepEqual([again.ipvs, again.ipset, again.linkAdd, again.linkDel], ['', '', '', '']);
  });

  test('the parsers read back what the renderer writes', () => {
    const k = emptyKernelState();
    const p = planSync(k, layout);
    const vss = parseIPVSSave(p.ipvs);
    assert.equal(vss.size, layout.virtualServers.size);
    const sets = parseIPSetSave(p.ipset, new Set(layout.sets.map((s) => s.name)));
    assert.equal(sets.get('KUBE-CLUSTER-IP')!.entries.size, 7);
    const read = { device: true, addresses: new Set(layout.addresses), vss, sets };
    const none = planSync(read, layout);
    assert.deepEqual([none.ipvs, none.ipset, none.linkAdd, none.linkDel], ['', '', '', '']);
  });

  test('a removed TCP endpoint drains (weight 0), a UDP one is deleted, a VS of a deleted service goes', () => {
    const k = emptyKernelState();
    planSync(k, layout);
    const objs = scenario().filter(
      (o) =>
        !(o.kind === 'EndpointSlice' && o.meta.name === 'np-1') &&
        !(o.kind === 'Service' && o.meta.name === 'empty'),
    );
    objs.push(
      makeSlice(
        'ns1',
        'np',
        'np-1',
        [{ ip: '10.0.1.4', nodeName: 'node-1' }],
        [
          { name: 'p80', port: 8080, protocol: 'TCP' },
          { name: 'dns', port: 5353, protocol: 'UDP' },
        ],
      ),
    );
    const p = planSync(k, buildIPVSLayout(stateOf(objs), familyOptions('IPv4')));
    assert.match(p.ipvs, /^-e -t 172\.30\.0\.11:80 -r 10\.0\.1\.3:8080 -m -w 0$/m);
    assert.match(p.ipvs, /^-d -u 172\.30\.0\.11:53 -r 10\.0\.1\.3:5353$/m);
    assert.match(p.ipvs, /^-D -t 172\.30\.0\.14:80$/m);
    assert.match(p.linkDel, /^address del 172\.30\.0\.14\/32 dev kube-ipvs0$/m);
    assert.ok(p.draining.some((d) => d.id === 'tcp 172.30.0.11:80/10.0.1.3:8080'));
    // The endpoint comes back: its weight is restored and it stops draining.
    const back = planSync(k, layout);
    assert.match(back.ipvs, /^-e -t 172\.30\.0\.11:80 -r 10\.0\.1\.3:8080 -m -w 1$/m);
    assert.ok(back.revived.includes('tcp 172.30.0.11:80/10.0.1.3:8080'));
  });

  test('excludeCIDRs protect foreign virtual servers from deletion', () => {
    const k = emptyKernelState();
    for (const [key, vs] of parseIPVSSave('-A -t 192.168.5.5:80 -s rr\n-A -t 192.168.9.9:80 -s rr\n'))
      k.vss.set(key, vs);
    const p = planSync(k, layout, ['192.168.5.0/24']);
    assert.doesNotMatch(p.ipvs, /192\.168\.5\.5/);
    assert.match(p.ipvs, /^-D -t 192\.168\.9\.9:80$/m);
  });

  test('connection counts from ipvsadm -Ln', () => {
    const c = parseIPVSConnections(
      'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  1.2.3.4:80 rr persistent 300\n  -> 10.0.0.1:8080                Masq    0      2          3\nUDP  [fd00::1]:53 wrr\n  -> [fd00::2]:53                 Masq    0      0          0\n',
    );
    assert.equal(c.get('tcp 1.2.3.4:80/10.0.0.1:8080'), 5);
    assert.equal(c.get('udp [fd00::1]:53/[fd00::2]:53'), 0);
  });
});

describe('ipvs render: properties', () => {
  const arbObjects = fc
    .record({
      n: fc.integer({ min: 0, max: 12 }),
      eps: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 12, maxLength: 12 }),
      affinity: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      local: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      nodePort: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    })
    .map(({ n, eps, affinity, local, nodePort }) => {
      const objs: KubeObject[] = [makeNode('node-1', [NODE_IP])];
      for (let i = 0; i < n; i++) {
        const np = nodePort[i]!;
        objs.push(
          makeService('ns', `s${i}`, {
            type: np ? 'NodePort' : 'ClusterIP',
            clusterIP: `172.30.1.${i + 1}`,
            ...(affinity[i] ? { sessionAffinity: 'ClientIP' } : {}),
            ...(np && local[i] ? { externalTrafficPolicy: 'Local' } : {}),
            ports: [{ name: 'p80', port: 80, protocol: 'TCP', ...(np ? { nodePort: 30000 + i } : {}) }],
          }),
        );
        const e = eps[i]!;
        if (e > 0)
          objs.push(
            makeSlice(
              'ns',
              `s${i}`,
              `s${i}-1`,
              Array.from({ length: e }, (_, k) => ({
                ip: `10.0.${i}.${k + 1}`,
                nodeName: k % 2 ? 'node-2' : 'node-1',
              })),
            ),
          );
      }
      return objs;
    });

  test('deterministic: the same input renders byte-identically, whatever the object order', () => {
    fc.assert(
      fc.property(arbObjects, (objs) => {
        const a = renderIPVSText([stateOf(objs)], [familyOptions('IPv4')]);
        const b = renderIPVSText([stateOf([...objs].reverse())], [familyOptions('IPv4')]);
        assert.equal(a, b);
      }),
      { numRuns: 40 },
    );
  });

  test('any kernel state planned toward a layout converges: a second plan is empty', () => {
    fc.assert(
      fc.property(arbObjects, arbObjects, (before, after) => {
        const k = emptyKernelState();
        planSync(k, buildIPVSLayout(stateOf(before), familyOptions('IPv4')));
        const target = buildIPVSLayout(stateOf(after), familyOptions('IPv4'));
        planSync(k, target);
        const again = planSync(k, target);
        assert.deepEqual([again.ipvs, again.ipset, again.linkAdd, again.linkDel], ['', '', '', '']);
        // Every desired VS is there with exactly its real servers (drained ones aside, which have weight 0).
        for (const vs of target.virtualServers.values()) {
          const have = k.vss.get(vs.key)!;
          const live = [...have.reals.values()].filter((r) => r.weight > 0).map((r) => `${r.ip}:${r.port}`);
          assert.deepEqual(live.sort(), vs.realServers.map((r) => `${r.ip}:${r.port}`).sort());
        }
      }),
      { numRuns: 40 },
    );
  });

  test('every kernel scheduler is accepted and written to every VS', () => {
    for (const s of SCHEDULERS) {
      const l = buildIPVSLayout(stateOf(scenario()), familyOptions('IPv4', { ipvsScheduler: s }));
      for (const vs of l.virtualServers.values()) assert.equal(vs.scheduler, s);
    }
  });
});
