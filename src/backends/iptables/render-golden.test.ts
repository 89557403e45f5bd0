/**
 * Golden files for the iptables renderer: one per scenario in test/golden/iptables/. Regenerate with
 * UPDATE_GOLDEN=1 and review the diff. Spot assertions next to each golden pin the facts the scenario
 * is about, so a careless regeneration cannot silently bless a regression.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { assertGolden } from '../../../test/golden/golden.js';
import { familyOptions, NODE, stateOf } from '../../../test/golden/iptables/scenarios.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import type { KubeObject } from '../../model/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import { natChainsFromSave, renderIPTables, type RenderMode } from './render.js';
import { renderForDisplay } from './render-display.js';
import { servicePortChainName } from './hash.js';

const node = makeNode(NODE, ['192.168.0.2', 'fd00::2']);
const p80 = (nodePort?: number) => [
  { name: 'p80', port: 80, protocol: 'TCP', ...(nodePort ? { nodePort } : {}) },
];
const lb = (...ips: string[]) => ({ status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } });

function render(
  objects: readonly KubeObject[],
  over: Partial<FamilyOptions> = {},
  mode: Partial<RenderMode> = {},
): string {
  const plan = renderIPTables(stateOf(objects), familyOptions('IPv4', over), { full: true, ...mode });
  return plan.restore;
}

function has(text: string, line: string): void {
  assert.ok(text.split('\n').includes(line), `missing line:\n${line}\nin:\n${text}`);
}

test('basic ClusterIP with 3 endpoints', () => {
  const out = render([
    node,
    makeService('ns1', 'svc1'),
    makeSlice('ns1', 'svc1', 's1', [{ ip: '10.180.0.3' }, { ip: '10.180.0.1' }, { ip: '10.180.0.2' }]),
  ]);
  assertGolden('iptables/basic-clusterip', out);
  has(
    out,
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  );
  assert.match(
    out,
    /"ns1\/svc1:p80 -> 10\.180\.0\.2:80" -m statistic --mode random --probability 0\.5000000000 -j KUBE-SEP-/,
  );
  assert.match(out, /"ns1\/svc1:p80 -> 10\.180\.0\.3:80" -j KUBE-SEP-/);
  has(out, '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000');
});

test('NodePort', () => {
  const out = render([
    node,
    makeService('ns1', 'np', { type: 'NodePort', ports: p80(30080) }),
    makeSlice('ns1', 'np', 's', [{ ip: '10.180.0.1' }]),
  ]);
  assertGolden('iptables/nodeport', out);
  assert.match(
    out,
    /-A KUBE-NODEPORTS -m comment --comment ns1\/np:p80 -m tcp -p tcp --dport 30080 -j KUBE-EXT-/,
  );
  assert.doesNotMatch(out, /nfacct/);
});

test('LoadBalancer with source ranges (node IP inside a range)', () => {
  const out = render([
    node,
    makeService(
      'ns1',
      'lb',
      {
        type: 'LoadBalancer',
        ports: p80(30080),
        loadBalancerSourceRanges: ['203.0.113.0/25', '192.168.0.0/24'],
      },
      lb('5.6.7.8'),
    ),
    makeSlice('ns1', 'lb', 's', [{ ip: '10.180.0.1' }]),
  ]);
  assertGolden('iptables/loadbalancer-source-ranges', out);
  assert.match(
    out,
    /-A KUBE-FW-\S+ -m comment --comment "ns1\/lb:p80 loadbalancer IP" -s 5\.6\.7\.8 -j KUBE-EXT-/,
  );
  assert.match(out, /-A KUBE-PROXY-FIREWALL .* -d 5\.6\.7\.8 --dport 80 -j DROP/);
});

test('externalIPs', () => {
  const out = render([
    node,
    makeService('ns1', 'ext', { externalIPs: ['192.168.99.11', '192.168.99.12'] }),
    makeSlice('ns1', 'ext', 's', [{ ip: '10.180.0.1' }]),
  ]);
  assertGolden('iptables/external-ips', out);
  assert.match(out, /"ns1\/ext:p80 external IP" -m tcp -p tcp -d 192\.168\.99\.12 --dport 80 -j KUBE-EXT-/);
});

const etpLocal = makeService(
  'ns1',
  'loc',
  { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: p80(30080), healthCheckNodePort: 30000 },
  lb('5.6.7.8'),
);

test('eTP=Local with a local endpoint', () => {
  const out = render([
    node,
    etpLocal,
    makeSlice('ns1', 'loc', 's', [
      { ip: '10.180.0.1', nodeName: NODE },
      { ip: '10.180.0.2', nodeName: 'other' },
    ]),
  ]);
  assertGolden('iptables/etp-local', out);
  assert.match(out, /-A KUBE-EXT-(\S+) -j KUBE-SVL-\1/);
  assert.match(out, /"pod traffic for ns1\/loc:p80 external destinations" -s 10\.0\.0\.0\/8 -j KUBE-SVC-/);
  has(
    out,
    '-A KUBE-NODEPORTS -m comment --comment "ns1/loc:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
  );
});

test('eTP=Local without local endpoints: DROP', () => {
  const out = render([
    node,
    etpLocal,
    makeSlice('ns1', 'loc', 's', [{ ip: '10.180.0.2', nodeName: 'other' }]),
  ]);
  assertGolden('iptables/etp-local-no-local-endpoints', out);
  has(
    out,
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/loc:p80 has no local endpoints" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP',
  );
  assert.doesNotMatch(out, /KUBE-SVL-/);
});

test('no endpoints: REJECT', () => {
  const out = render([
    node,
    makeService(
      'ns1',
      'none',
      { type: 'LoadBalancer', externalIPs: ['192.168.99.11'], ports: p80(30080) },
      lb('5.6.7.8'),
    ),
  ]);
  assertGolden('iptables/no-endpoints', out);
  has(
    out,
    '-A KUBE-SERVICES -m comment --comment "ns1/none:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT',
  );
  has(
    out,
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/none:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT',
  );
  assert.doesNotMatch(out, /KUBE-SVC-|KUBE-EXT-|KUBE-SEP-/);
});

test('iTP=Local', () => {
  const itp = makeService('ns1', 'itp', { internalTrafficPolicy: 'Local' });
  const withLocal = render([
    node,
    itp,
    makeSlice('ns1', 'itp', 's', [{ ip: '10.180.0.1', nodeName: NODE }, { ip: '10.180.0.2' }]),
  ]);
  const noLocal = render([node, itp, makeSlice('ns1', 'itp', 's', [{ ip: '10.180.0.2' }])]);
  assertGolden('iptables/itp-local', `${withLocal}# --- without local endpoints\n${noLocal}`);
  assert.match(
    withLocal,
    /"ns1\/itp:p80 cluster IP" -m tcp -p tcp -d 172\.30\.0\.41 --dport 80 -j KUBE-SVL-/,
  );
  has(
    noLocal,
    '-A KUBE-SERVICES -m comment --comment "ns1/itp:p80 has no local endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP',
  );
});

test('ClientIP affinity', () => {
  const out = render([
    node,
    makeService('ns1', 'aff', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } },
    }),
    makeSlice('ns1', 'aff', 's', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }]),
  ]);
  assertGolden('iptables/affinity', out);
  assert.match(out, /-m recent --name (KUBE-SEP-\S+) --rcheck --seconds 300 --reap -j \1/);
  assert.match(
    out,
    /-m recent --name (KUBE-SEP-\S+) --set -m tcp -p tcp -j DNAT --to-destination 10\.180\.0\.1:80/,
  );
});

test('masqueradeAll', () => {
  const out = render([node, makeService('ns1', 'm'), makeSlice('ns1', 'm', 's', [{ ip: '10.180.0.1' }])], {
    masqueradeAll: true,
  });
  assertGolden('iptables/masquerade-all', out);
  assert.match(
    out,
    /-A KUBE-SVC-\S+ -m comment --comment "ns1\/m:p80 cluster IP" -m tcp -p tcp -d 172\.30\.0\.41 --dport 80 -j KUBE-MARK-MASQ/,
  );
});

test('local traffic detectors', () => {
  const objs = [node, etpLocal, makeSlice('ns1', 'loc', 's', [{ ip: '10.180.0.1', nodeName: NODE }])];
  const variants: [string, FamilyOptions['localDetector']][] = [
    ['none', { kind: 'none' }],
    ['cidr', { kind: 'cidr', cidrs: ['10.244.0.0/16'] }],
    ['bridge', { kind: 'bridge', iface: 'cbr0' }],
    ['prefix', { kind: 'prefix', prefix: 'veth' }],
  ];
  for (const [name, localDetector] of variants) {
    const out = render(objs, { localDetector });
    assertGolden(`iptables/detector-${name}`, out);
    const expect = {
      none: undefined,
      cidr: ['! -s 10.244.0.0/16', '-s 10.244.0.0/16'],
      bridge: ['! -i cbr0', '-i cbr0'],
      prefix: ['! -i veth+', '-i veth+'],
    }[name];
    if (expect === undefined) {
      assert.doesNotMatch(
        out,
        /pod traffic|! -s 10\.|! -i|-j KUBE-MARK-MASQ.*cluster IP|cluster IP.*-j KUBE-MARK-MASQ/,
      );
    } else {
      assert.ok(out.includes(`--dport 80 ${expect[0]} -j KUBE-MARK-MASQ`), name);
      assert.ok(out.includes(`external destinations" ${expect[1]} -j KUBE-SVC-`), name);
    }
  }
});

test('SCTP and UDP', () => {
  const ports = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'sig', port: 9, protocol: 'SCTP' },
  ];
  const out = render([
    node,
    makeService('ns1', 'multi', { ports }),
    makeSlice(
      'ns1',
      'multi',
      's',
      [{ ip: '10.180.0.1' }],
      [
        { name: 'dns', port: 5353, protocol: 'UDP' },
        { name: 'sig', port: 9, protocol: 'SCTP' },
      ],
    ),
  ]);
  assertGolden('iptables/sctp-udp', out);
  assert.match(out, /-m udp -p udp -j DNAT --to-destination 10\.180\.0\.1:5353/);
  assert.match(out, /-m sctp -p sctp -d 172\.30\.0\.41 --dport 9 -j KUBE-SVC-/);
});

const dualSvc = makeService('ns1', 'ds', {
  type: 'NodePort',
  clusterIP: '172.30.0.41',
  clusterIPs: ['172.30.0.41', 'fd00:30::41'],
  ipFamilies: ['IPv4', 'IPv6'],
  ipFamilyPolicy: 'RequireDualStack',
  ports: p80(30080),
});
const dualObjs = [
  node,
  dualSvc,
  makeSlice('ns1', 'ds', 's4', [{ ip: '10.180.0.1' }]),
  makeSlice('ns1', 'ds', 's6', [{ ip: 'fd00:10::1' }, { ip: 'fd00:10::2', nodeName: NODE }]),
];

test('IPv6', () => {
  const plan = renderIPTables(stateOf(dualObjs, 'IPv6'), familyOptions('IPv6'), { full: true });
  assertGolden('iptables/ipv6', plan.restore);
  assert.match(plan.restore, /-j DNAT --to-destination \[fd00:10::1\]:80/);
  assert.match(plan.restore, /-m addrtype --dst-type LOCAL ! -d ::1\/128 -j KUBE-NODEPORTS/);
  assert.doesNotMatch(plan.restore, /KUBE-FIREWALL|127\.0\.0\.0/);
});

test('dual-stack render', () => {
  const states = desiredStatesFromObjects(dualObjs, { families: ['IPv4', 'IPv6'], nodeName: NODE });
  const out = renderForDisplay(states, [familyOptions('IPv4'), familyOptions('IPv6')]);
  assertGolden('iptables/dual-stack-render', out);
  assert.equal(
    out
      .split('\n')
      .filter((l) => l.startsWith('# family: '))
      .join(','),
    '# family: ipv4,# family: ipv6',
  );
  assert.equal(renderForDisplay(states, [familyOptions('IPv4'), familyOptions('IPv6')]), out);
  const single = renderForDisplay([states[0]!], [familyOptions('IPv4')]);
  assert.doesNotMatch(single, /# family:/);
});

test('terminating fallback', () => {
  const out = render([
    node,
    makeService('ns1', 'term'),
    makeSlice('ns1', 'term', 's', [
      { ip: '10.180.0.1', ready: false, serving: true, terminating: true },
      { ip: '10.180.0.2', ready: false, serving: false, terminating: true },
    ]),
  ]);
  assertGolden('iptables/terminating-fallback', out);
  assert.match(out, /DNAT --to-destination 10\.180\.0\.1:80/);
  assert.doesNotMatch(out, /10\.180\.0\.2/);
});

test('nodePortAddresses, localhost NodePorts off, large-cluster mode, no --random-fully', () => {
  const objs = [
    node,
    makeService('ns1', 'np', { type: 'NodePort', ports: p80(30080) }),
    makeSlice('ns1', 'np', 's', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }]),
  ];
  const addrs = render(objs, {
    nodePortAddresses: {
      matchAll: false,
      ips: ['127.0.0.1', '192.168.0.2'],
      cidrs: ['127.0.0.0/8', '192.168.0.0/24'],
    },
  });
  const noLocalhost = render(objs, { localhostNodePorts: false, randomFully: false });
  const large = render(objs, {}, { largeClusterThreshold: 1 });
  assertGolden(
    'iptables/nodeport-options',
    `${addrs}# --- localhostNodePorts=false, no --random-fully\n${noLocalhost}# --- large cluster mode\n${large}`,
  );
  assert.match(addrs, /NOTE: this must be the last rule in this chain" -d 127\.0\.0\.1 -j KUBE-NODEPORTS/);
  assert.match(addrs, /NOTE: this must be the last rule in this chain" -d 192\.168\.0\.2 -j KUBE-NODEPORTS/);
  assert.match(noLocalhost, /-m addrtype --dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS/);
  assert.doesNotMatch(noLocalhost, /KUBE-FIREWALL|random-fully/);
  assert.match(large, /^-A KUBE-SEP-\S+ -s 10\.180\.0\.1 -j KUBE-MARK-MASQ$/m);
  assert.match(
    large,
    /^-A KUBE-SVC-\S+ -m statistic --mode random --probability 0\.5000000000 -j KUBE-SEP-\S+$/m,
  );
});

test('partial sync writes only changed services plus every top-level chain', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const object of [
    node,
    makeService('ns1', 'a', { clusterIP: '172.30.0.41' }),
    makeService('ns1', 'b', { clusterIP: '172.30.0.42', type: 'NodePort', ports: p80(30080) }),
    makeSlice('ns1', 'a', 'a1', [{ ip: '10.180.0.1' }]),
    makeSlice('ns1', 'b', 'b1', [{ ip: '10.180.0.2' }]),
  ])
    t.onEvent({ type: 'add', object });
  for (const kind of ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'] as const)
    t.onEvent({ type: 'synced', kind });
  const first = t.build('IPv4');
  const opts = familyOptions('IPv4');
  const full = renderIPTables(first, opts, { full: true });
  t.commit(first);
  t.onEvent({
    type: 'update',
    old: makeSlice('ns1', 'b', 'b1', [{ ip: '10.180.0.2' }]),
    object: makeSlice('ns1', 'b', 'b1', [{ ip: '10.180.0.2' }, { ip: '10.180.0.3' }]),
  });
  const second = t.build('IPv4');
  assert.deepEqual([...second.changedServices], ['ns1/b']);
  const partial = renderIPTables(second, opts, {
    full: false,
    existingNatChains: natChainsFromSave(full.nat),
  });
  assertGolden('iptables/partial-sync', partial.restore);
  const aChain = servicePortChainName('KUBE-SVC-', 'ns1/a:p80', 'tcp');
  // the top-level chain is rewritten in full, still jumping to the untouched chain of service a
  has(
    partial.nat,
    `-A KUBE-SERVICES -m comment --comment "ns1/a:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j ${aChain}`,
  );
  assert.ok(!partial.nat.includes(`:${aChain} `), 'unchanged service chain is not declared (so not flushed)');
  assert.ok(partial.activeNatChains.has(aChain));
  for (const c of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'])
    has(partial.nat, `:${c} - [0:0]`);
  for (const c of [
    'KUBE-SERVICES',
    'KUBE-EXTERNAL-SERVICES',
    'KUBE-FORWARD',
    'KUBE-NODEPORTS',
    'KUBE-PROXY-FIREWALL',
  ])
    has(partial.filter, `:${c} - [0:0]`);
  assert.equal(partial.deletedChains.length, 0, 'unchanged chains are still active, so nothing is deleted');
  assert.ok(partial.ruleCounts.nat.total > partial.ruleCounts.nat.written);
  const fullAgain = renderIPTables(second, opts, { full: true });
  assert.equal(partial.ruleCounts.nat.total, fullAgain.ruleCounts.nat.total);
});

test('stale chains are flushed then deleted', () => {
  const before = stateOf([
    node,
    makeService('ns1', 'keep'),
    makeService('ns1', 'gone', { clusterIP: '172.30.0.42' }),
    makeSlice('ns1', 'keep', 'k', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }]),
    makeSlice('ns1', 'gone', 'g', [{ ip: '10.180.0.3' }]),
  ]);
  const prev = renderIPTables(before, familyOptions('IPv4'), { full: true });
  const existing = natChainsFromSave(`${prev.nat}:MY-OWN-CHAIN - [0:0]\n`);
  const after = stateOf([
    node,
    makeService('ns1', 'keep'),
    makeSlice('ns1', 'keep', 'k', [{ ip: '10.180.0.1' }]),
  ]);
  const plan = renderIPTables(after, familyOptions('IPv4'), { full: true, existingNatChains: existing });
  assertGolden('iptables/stale-chains', plan.restore);
  assert.equal(plan.deletedChains.length, 3, 'gone: SVC + SEP; keep: one SEP');
  for (const c of plan.deletedChains) {
    has(plan.nat, `:${c} - [0:0]`);
    has(plan.nat, `-X ${c}`);
  }
  assert.doesNotMatch(plan.nat, /MY-OWN-CHAIN/);
  const lines = plan.nat.split('\n');
  assert.ok(
    lines.findIndex((l) => l.startsWith('-X ')) < lines.findIndex((l) => l.includes('must be the last rule')),
  );
});
