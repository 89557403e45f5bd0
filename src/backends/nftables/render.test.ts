import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertGolden } from '../../../test/golden/golden.js';
import { SCENARIOS, familyOptions, statesOf, NODE } from '../../../test/golden/nftables/scenarios.js';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import type { KubeObject } from '../../model/types.js';
import { validateServiceCIDR } from '../../model/validate.js';
import { renderNFTables } from './render.js';
import { buildLayout, nodePortIPs } from './render-layout.js';
import { hashAndTruncate, endpointBase, servicePortBase } from './names.js';

const v4 = familyOptions('IPv4');

function layoutOf(objects: KubeObject[], opts = v4) {
  return buildLayout(statesOf(objects)[0]!, opts);
}

for (const [name, objects] of Object.entries(SCENARIOS)) {
  test(`golden: ${name}`, () => {
    assertGolden(`nftables/${name}`, renderNFTables(statesOf(objects), [v4]));
  });
}

test('golden: dual-stack render labels each family', () => {
  const objs = [
    makeNode(NODE, ['192.168.0.2', 'fd00:192::2']),
    makeService('ns1', 'ds', {
      clusterIP: '172.30.0.50',
      clusterIPs: ['172.30.0.50', 'fd00:172:30::50'],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
    }),
    makeSlice('ns1', 'ds', 'ds-v4', [{ ip: '10.180.0.1', nodeName: NODE }]),
    makeSlice('ns1', 'ds', 'ds-v6', [{ ip: 'fd00:10::1', nodeName: NODE }]),
  ];
  const text = renderNFTables(statesOf(objs, ['IPv4', 'IPv6']), [v4, familyOptions('IPv6')]);
  assert.match(text, /^# family: ipv4\n/);
  assert.match(text, /\n# family: ipv6\nadd table ip6 kube-proxy/);
  assert.match(text, /dnat ip6 to ip6 daddr \. tcp dport \. numgen random mod 1 map @cluster-targets-tcp/);
  assertGolden('nftables/dual-stack', text);
});

test('render is byte-identical for the same input', () => {
  const all = Object.values(SCENARIOS)[0]!;
  assert.equal(renderNFTables(statesOf(all), [v4]), renderNFTables(statesOf(all), [v4]));
});

test('object names match upstream (upstream pkg/proxy/nftables/proxier.go)', () => {
  const spn = { namespace: 'ns1', name: 'svc1', port: 'p80', protocol: 'TCP' as const };
  assert.equal(hashAndTruncate(servicePortBase(spn)), 'ULMVA6XW-ns1/svc1/tcp/p80');
  assert.equal(
    hashAndTruncate(endpointBase(spn, '10.180.0.1', 80)),
    '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80',
  );
  assert.ok(hashAndTruncate('x'.repeat(300)).endsWith('...'));
  assert.equal(hashAndTruncate('x'.repeat(300)).length, 240);
});

test('no endpoints: REJECT through reject-chain; cluster IP still in cluster-ips', () => {
  const l = layoutOf(SCENARIOS['no-endpoints']!);
  assert.equal(l.elements.get('no-endpoint-services')!.get('172.30.0.49 . tcp . 80'), 'goto reject-chain');
  assert.equal(l.elements.get('no-endpoint-nodeports')!.get('tcp . 30089'), 'goto reject-chain');
  assert.ok(l.elements.get('cluster-ips')!.has('172.30.0.49'));
  assert.equal(l.elements.get('service-ips')!.size, 0);
});

test('eTP=Local without local endpoints: external addresses DROP, cluster IP still served', () => {
  const l = layoutOf(SCENARIOS['etp-local-no-local-endpoints']!);
  assert.equal(l.elements.get('no-endpoint-nodeports')!.get('tcp . 30081'), 'drop');
  assert.equal(l.elements.get('no-endpoint-services')!.get('192.168.99.11 . tcp . 80'), 'drop');
  assert.equal(l.elements.get('service-ips')!.get('172.30.0.43 . tcp . 80')!, 'goto cluster-tcp-1');
  // hasEndpoints: the external chain exists, with only the short-circuit rules (no local chain to go to).
  const ext = [...l.chains.values()].find((c) => c.name.startsWith('external-') && c.name.includes('/'))!;
  assert.deepEqual(
    ext.rules.map((r) => r.replace(/ comment .*/, '').replace(/service-\S+/, 'SVC')),
    [
      'ip saddr 10.0.0.0/8 goto SVC',
      'fib saddr type local jump mark-for-masquerade',
      'fib saddr type local goto SVC',
    ],
  );
});

test('iTP=Local: the cluster IP goes to the local chain with local endpoints only', () => {
  const l = layoutOf(SCENARIOS['itp-local']!);
  const target = l.elements.get('service-ips')!.get('172.30.0.44 . tcp . 80')!;
  assert.equal(target, 'goto cluster-tcp-1');
  assert.match(l.chains.get('cluster-tcp-1')!.rules.at(-1)!, /numgen random mod 1 map @cluster-targets-tcp/);
  assert.deepEqual(
    [...l.elements.get('cluster-targets-tcp')!],
    [['172.30.0.44 . 80 . 0', '10.180.0.7 . 80']],
  );
});

test('LoadBalancerSourceRanges: firewall element + allow pairs, nested ranges merged, VIP allowed when the node is in range', () => {
  const l = layoutOf(SCENARIOS['loadbalancer-source-ranges']!);
  assert.deepEqual([...l.elements.get('firewall-ips')!.keys()], ['1.2.3.4 . tcp . 80']);
  assert.deepEqual(
    [...l.elements.get('firewall-allow')!.keys()],
    [
      '1.2.3.4 . tcp . 80 . 1.2.3.4/32',
      '1.2.3.4 . tcp . 80 . 192.168.0.0/24',
      '1.2.3.4 . tcp . 80 . 203.0.113.0/24',
    ],
  );
});

test('firewall element exists even without endpoints (upstream nftables)', () => {
  const objs = SCENARIOS['loadbalancer-source-ranges']!.filter((o) => o.kind !== 'EndpointSlice');
  const l = layoutOf(objs);
  assert.equal(l.elements.get('firewall-ips')!.size, 1);
  assert.equal(l.elements.get('no-endpoint-services')!.get('1.2.3.4 . tcp . 80'), 'goto reject-chain');
});

test('ClientIP affinity: per-endpoint chains and dynamic sets with the timeout; choice through endpoint-chains', () => {
  const l = layoutOf(SCENARIOS.affinity!);
  const sets = [...l.sets.values()].filter((s) => s.name.startsWith('affinity-'));
  assert.equal(sets.length, 2);
  for (const s of sets) assert.match(s.spec, /flags dynamic,timeout ; timeout 300s/);
  assert.equal(l.elements.get('endpoint-chains')!.size, 2);
  const ep = [...l.chains.values()].filter((c) => c.name.startsWith('endpoint-'));
  assert.deepEqual(ep[0]!.rules[1], 'meta l4proto tcp dnat ip to 10.180.0.10:80');
  assert.match(ep[0]!.rules[0]!, /^update @affinity-\S+ \{ ip saddr \}$/);
});

test('hairpin: every reachable endpoint IP is in endpoint-hairpin', () => {
  const l = layoutOf(SCENARIOS['basic-clusterip']!);
  assert.deepEqual([...l.elements.get('endpoint-hairpin')!.keys()].sort(), [
    '10.180.0.1 . 10.180.0.1',
    '10.180.0.2 . 10.180.0.2',
    '10.180.2.1 . 10.180.2.1',
  ]);
});

test('nodePortAddresses: unset means the primary node IP; a zero CIDR means every local address but loopback', () => {
  const s = statesOf(SCENARIOS.nodeport!)[0]!;
  assert.deepEqual(nodePortIPs(s, v4), ['192.168.0.2']);
  const all = familyOptions('IPv4', { nodePortAddresses: { matchAll: true, ips: [], cidrs: ['0.0.0.0/0'] } });
  assert.equal(nodePortIPs(s, all), 'all');
  const l = buildLayout(s, all);
  assert.ok(!l.sets.has('nodeport-ips'));
  assert.ok(
    l.chains
      .get('services')!
      .rules.includes(
        'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
      ),
  );
  const lo = familyOptions('IPv4', {
    nodePortAddresses: {
      matchAll: false,
      ips: ['127.0.0.1', '192.168.0.2'],
      cidrs: ['127.0.0.0/8', '192.168.0.0/24'],
    },
  });
  assert.deepEqual(nodePortIPs(s, lo), ['192.168.0.2']);
});

test('service CIDRs: unallocated addresses are dropped after the reject of known cluster IPs', () => {
  const objs: KubeObject[] = [
    ...SCENARIOS['basic-clusterip']!,
    validateServiceCIDR({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'kubernetes' },
      spec: { cidrs: ['172.30.0.0/16'] },
    }),
  ];
  const s = statesOf(objs)[0]!;
  assert.deepEqual(s.serviceCIDRs, ['172.30.0.0/16']);
  const l = buildLayout(s, v4);
  assert.deepEqual(l.chains.get('cluster-ips-check')!.rules, [
    'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    'ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"',
  ]);
});

test('masqueradeAll marks cluster IP traffic; no detector means no internal masquerade rule', () => {
  const s = statesOf(SCENARIOS['basic-clusterip']!)[0]!;
  const all = buildLayout(s, familyOptions('IPv4', { masqueradeAll: true }));
  const none = buildLayout(s, familyOptions('IPv4', { localDetector: { kind: 'none' } }));
  const svc = (l: typeof all) => l.chains.get('cluster-tcp-3')!.rules;
  assert.equal(svc(all)[0], 'jump mark-for-masquerade');
  assert.ok(!svc(none).some((r) => r.includes('mark-for-masquerade')));
  const br = buildLayout(s, familyOptions('IPv4', { localDetector: { kind: 'prefix', prefix: 'veth' } }));
  assert.equal(svc(br)[0], 'iifname != veth* jump mark-for-masquerade');
  // Affinity services keep a per-service chain, whose masquerade rule matches the cluster IP (upstream).
  const aff = buildLayout(statesOf(SCENARIOS.affinity!)[0]!, familyOptions('IPv4', { masqueradeAll: true }));
  const affChain = [...aff.chains.values()].find(
    (c) => c.name.startsWith('service-') && c.name.includes('/'),
  )!;
  assert.equal(affChain.rules[0], 'ip daddr 172.30.0.46 jump mark-for-masquerade');
});

test('terminating fallback: serving+terminating endpoints are used when none is ready, non-serving never', () => {
  const l = layoutOf(SCENARIOS['terminating-fallback']!);
  assert.deepEqual([...l.elements.get('cluster-targets-tcp')!.values()], ['10.180.0.13 . 80']);
});

test('an unsafe option is refused with its name and value', () => {
  const s = statesOf(SCENARIOS['basic-clusterip']!)[0]!;
  assert.throws(
    () =>
      buildLayout(
        s,
        familyOptions('IPv4', { localDetector: { kind: 'bridge', iface: 'br0; flush ruleset' } }),
      ),
    /unsafe bridge interface "br0; flush ruleset"/,
  );
});
