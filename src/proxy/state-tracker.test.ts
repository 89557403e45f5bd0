import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateTracker } from './state-tracker.js';
import { desiredStatesFromObjects } from './state-from-objects.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import type { KubeObject } from '../model/types.js';
import type { DesiredState, ServicePortState } from './types.js';

const NODE = 'node1';
function state(objs: KubeObject[], families: ('IPv4' | 'IPv6')[] = ['IPv4']): DesiredState[] {
  return desiredStatesFromObjects(objs, { families, nodeName: NODE });
}
function only(s: DesiredState): ServicePortState {
  assert.equal(s.services.size, 1, `expected one service port, got ${[...s.services.keys()].join(',')}`);
  return [...s.services.values()][0]!;
}
const eps = (list: readonly { endpoint: string }[]) => list.map((e) => e.endpoint);

test('slice merge: dedupe by ip:port across slices, addresses[0] only, string sort', () => {
  const svc = makeService('ns1', 'svc1');
  const s1 = makeSlice('ns1', 'svc1', 'a', [{ ip: '10.0.0.2' }, { ip: '10.0.0.10' }]);
  const s2 = makeSlice('ns1', 'svc1', 'b', [{ ip: '10.0.0.2', nodeName: NODE }, { ip: '10.0.0.3' }]);
  const [st] = state([svc, s1, s2]);
  const sp = only(st!);
  assert.deepEqual(eps(sp.endpoints), ['10.0.0.10:80', '10.0.0.2:80', '10.0.0.3:80']);
  // the local duplicate wins
  assert.equal(sp.endpoints.find((e) => e.ip === '10.0.0.2')?.isLocal, true);
});

test('nil ready counts as ready; nil serving follows ready; nil terminating is false', () => {
  const svc = makeService('ns1', 'svc1');
  const sl = makeSlice('ns1', 'svc1', 'a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: false }]);
  const sp = only(state([svc, sl])[0]!);
  assert.deepEqual(eps(sp.clusterEndpoints), ['10.0.0.1:80']);
  const e2 = sp.endpoints.find((e) => e.ip === '10.0.0.2')!;
  assert.equal(e2.serving, false);
  assert.equal(e2.terminating, false);
});

test('wrong address family and FQDN slices are skipped; dual-stack splits per family', () => {
  const svc = makeService('ns1', 'svc1', {
    clusterIP: '172.30.0.41',
    clusterIPs: ['172.30.0.41', 'fd00::41'],
  });
  const v4 = makeSlice('ns1', 'svc1', 'v4', [{ ip: '10.0.0.1' }]);
  const v6 = makeSlice('ns1', 'svc1', 'v6', [{ ip: 'fd00::1' }]);
  const [s4, s6] = state([svc, v4, v6], ['IPv4', 'IPv6']);
  assert.equal(only(s4!).info.clusterIP, '172.30.0.41');
  assert.deepEqual(eps(only(s4!).endpoints), ['10.0.0.1:80']);
  assert.equal(only(s6!).info.clusterIP, 'fd00::41');
  assert.deepEqual(eps(only(s6!).endpoints), ['[fd00::1]:80']);
});

test('ports match by name, not number; unnamed and nameless slice ports', () => {
  const svc = makeService('ns1', 'svc1', {
    ports: [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  });
  const sl = makeSlice(
    'ns1',
    'svc1',
    'a',
    [{ ip: '10.0.0.1' }],
    [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'TCP' }, // wrong protocol: a different service port
      { port: 9999, protocol: 'UDP' }, // no name: skipped
    ],
  );
  const [st] = state([svc, sl]);
  const http = st!.services.get('ns1/svc1:http/TCP')!;
  const dns = st!.services.get('ns1/svc1:dns/UDP')!;
  assert.deepEqual(eps(http.endpoints), ['10.0.0.1:8080']);
  assert.deepEqual(eps(dns.endpoints), []);
  assert.equal(dns.hasEndpoints, false);
});

test('TCP, UDP and SCTP on the same port are distinct service ports', () => {
  const svc = makeService('ns1', 'svc1', {
    ports: [
      { name: 't', port: 53, protocol: 'TCP' },
      { name: 'u', port: 53, protocol: 'UDP' },
      { name: 's', port: 53, protocol: 'SCTP' },
    ],
  });
  const [st] = state([svc]);
  assert.deepEqual(st!.sortedKeys, ['ns1/svc1:s/SCTP', 'ns1/svc1:t/TCP', 'ns1/svc1:u/UDP']);
});

test('headless, ExternalName, proxy-name and headless-labelled services produce nothing', () => {
  const objs = [
    makeService('ns1', 'headless', { clusterIP: 'None' }),
    makeService('ns1', 'ext', { type: 'ExternalName', clusterIP: '', externalName: 'example.com' }),
    makeService(
      'ns1',
      'other',
      {},
      { metadata: { labels: { 'service.kubernetes.io/service-proxy-name': 'x' } } },
    ),
    makeService('ns1', 'hl', {}, { metadata: { labels: { 'service.kubernetes.io/headless': '' } } }),
  ];
  assert.equal(state(objs)[0]!.services.size, 0);
});

test('LB ingress ipMode Proxy gives no VIP; LBSR trimmed; a zero CIDR allows all', () => {
  const a = makeService(
    'ns1',
    'lb',
    {
      type: 'LoadBalancer',
      ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
      loadBalancerSourceRanges: [' 192.168.0.0/24 ', 'fd00::/64'],
    },
    { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }, { ip: '5.6.7.8', ipMode: 'Proxy' }] } } },
  );
  const info = only(state([a])[0]!).info;
  assert.deepEqual(info.loadBalancerVIPs, ['1.2.3.4']);
  assert.deepEqual(info.loadBalancerSourceRanges, ['192.168.0.0/24']);
  const b = makeService('ns1', 'lb', {
    type: 'LoadBalancer',
    ports: [{ name: 'p80', port: 80 }],
    loadBalancerSourceRanges: ['10.0.0.0/8', '0.0.0.0/0'],
  });
  assert.deepEqual(only(state([b])[0]!).info.loadBalancerSourceRanges, []);
});

test('healthCheckNodePort only for LoadBalancer with eTP=Local', () => {
  const np = makeService('ns1', 'np', {
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 30000,
    ports: [{ name: 'p', port: 80, nodePort: 30001 }],
  });
  const lb = makeService('ns1', 'lb', {
    type: 'LoadBalancer',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 30002,
    ports: [{ name: 'p', port: 80, nodePort: 30003 }],
  });
  const [st] = state([np, lb]);
  assert.deepEqual([...st!.healthCheckNodePorts], [['ns1/lb', 30002]]);
});

test('§11.2: Local policy with only remote endpoints is "no local endpoints" (DROP), none at all is REJECT', () => {
  const svc = makeService('ns1', 'svc1', {
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
  });
  const remote = makeSlice('ns1', 'svc1', 'a', [{ ip: '10.0.0.1', nodeName: 'other' }]);
  const sp = only(state([svc, remote])[0]!);
  assert.equal(sp.hasEndpoints, true);
  assert.equal(sp.hasExternalEndpoints, false);
  assert.equal(sp.hasInternalEndpoints, true);
  const none = only(state([svc])[0]!);
  assert.equal(none.hasEndpoints, false);
  // a remote terminating (serving) endpoint still counts as "has endpoints"
  const term = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', nodeName: 'other', ready: false, serving: true, terminating: true },
  ]);
  assert.equal(only(state([svc, term])[0]!).hasEndpoints, true);
});

test('§11.3: terminating fallback is computed per set; non-serving terminating never used', () => {
  const svc = makeService('ns1', 'svc1', {
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
  });
  const sl = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', nodeName: 'other' }, // remote ready
    { ip: '10.0.0.2', nodeName: NODE, ready: false, serving: true, terminating: true }, // local serving+terminating
    { ip: '10.0.0.3', nodeName: NODE, ready: false, serving: false, terminating: true }, // never
  ]);
  const sp = only(state([svc, sl])[0]!);
  assert.deepEqual(eps(sp.clusterEndpoints), ['10.0.0.1:80']); // ready wins in the cluster set
  assert.deepEqual(eps(sp.localEndpoints), ['10.0.0.2:80']); // fallback in the local set
  assert.deepEqual(eps(sp.allReachableEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  const onlyTerm = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.4', ready: false, serving: true, terminating: true },
  ]);
  assert.deepEqual(eps(only(state([svc, onlyTerm])[0]!).clusterEndpoints), ['10.0.0.4:80']);
});

test('iTP=Local without local endpoints: no internal endpoints; only the local set is reachable', () => {
  const svc = makeService('ns1', 'svc1', { internalTrafficPolicy: 'Local' });
  const sl = makeSlice('ns1', 'svc1', 'a', [{ ip: '10.0.0.1', nodeName: 'other' }]);
  const sp = only(state([svc, sl])[0]!);
  assert.equal(sp.info.usesClusterEndpoints, false);
  assert.equal(sp.hasInternalEndpoints, false);
  assert.equal(sp.hasEndpoints, true);
  assert.deepEqual(sp.allReachableEndpoints, []);
});

test('topology: zone hints honoured only when every ready endpoint has them; node hints win', () => {
  const svc = makeService('ns1', 'svc1', { trafficDistribution: 'PreferClose' });
  const node = makeNode(NODE, ['192.168.0.2'], 'zone-a');
  const hinted = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', forZones: ['zone-a'] },
    { ip: '10.0.0.2', forZones: ['zone-b'] },
  ]);
  assert.deepEqual(eps(only(state([svc, node, hinted])[0]!).clusterEndpoints), ['10.0.0.1:80']);
  const partly = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', forZones: ['zone-a'] },
    { ip: '10.0.0.2' },
  ]);
  assert.deepEqual(eps(only(state([svc, node, partly])[0]!).clusterEndpoints), [
    '10.0.0.1:80',
    '10.0.0.2:80',
  ]);
  const nodeHints = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', forZones: ['zone-a'], forNodes: ['other'] },
    { ip: '10.0.0.2', forZones: ['zone-a'], forNodes: [NODE] },
  ]);
  assert.deepEqual(eps(only(state([svc, node, nodeHints])[0]!).clusterEndpoints), ['10.0.0.2:80']);
  const noneForUs = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.1', forZones: ['zone-b'] },
    { ip: '10.0.0.2', forZones: ['zone-c'] },
  ]);
  assert.deepEqual(eps(only(state([svc, node, noneForUs])[0]!).clusterEndpoints), [
    '10.0.0.1:80',
    '10.0.0.2:80',
  ]);
});

test('local ready endpoint count: unique IPs, terminating not counted', () => {
  const svc = makeService('ns1', 'svc1', {
    type: 'LoadBalancer',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 30000,
    ports: [
      { name: 'a', port: 80, nodePort: 30001 },
      { name: 'b', port: 81, nodePort: 30002 },
    ],
  });
  const sl = makeSlice(
    'ns1',
    'svc1',
    's',
    [
      { ip: '10.0.0.1', nodeName: NODE },
      { ip: '10.0.0.2', nodeName: NODE, ready: false, serving: true, terminating: true },
    ],
    [
      { name: 'a', port: 80, protocol: 'TCP' },
      { name: 'b', port: 81, protocol: 'TCP' },
    ],
  );
  assert.equal(state([svc, sl])[0]!.localReadyEndpoints.get('ns1/svc1'), 1);
});

test('tracker: only changed services are recomputed and reported; no-op updates drop out', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  const a = makeService('ns1', 'a', { clusterIP: '172.30.0.1' });
  const b = makeService('ns1', 'b', { clusterIP: '172.30.0.2' });
  t.onEvent({ type: 'add', object: a });
  t.onEvent({ type: 'add', object: b });
  assert.equal(t.isInitialized(), false);
  t.onEvent({ type: 'synced', kind: 'Service' });
  t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
  assert.equal(t.isInitialized(), true);
  const s1 = t.build('IPv4');
  assert.deepEqual([...s1.changedServices].sort(), ['ns1/a', 'ns1/b']);
  t.commit(s1);
  assert.deepEqual(t.pendingCounts(), { services: 0, endpoints: 0 });

  // identical re-delivery (informer resync): nothing changes
  t.onEvent({ type: 'update', old: a, object: a });
  const s2 = t.build('IPv4');
  assert.equal(s2.changedServices.size, 0);
  assert.equal(s2.services, s1.services, 'unchanged state reuses the same map');
  t.commit(s2);

  // endpoints for b
  t.onEvent({ type: 'add', object: makeSlice('ns1', 'b', 'b1', [{ ip: '10.0.0.5' }]) });
  assert.deepEqual(t.pendingCounts(), { services: 0, endpoints: 1 });
  const s3 = t.build('IPv4');
  assert.deepEqual([...s3.changedServices], ['ns1/b']);
  assert.equal(
    s3.services.get('ns1/a:p80/TCP'),
    s1.services.get('ns1/a:p80/TCP'),
    'a is reused, not rebuilt',
  );
  // a change arriving during the sync stays pending after commit
  t.onEvent({ type: 'delete', object: a });
  t.commit(s3);
  const s4 = t.build('IPv4');
  assert.deepEqual([...s4.changedServices], ['ns1/a']);
  assert.deepEqual(s4.sortedKeys, ['ns1/b:p80/TCP']);
});

test('tracker: a failed sync (no commit) keeps the change pending for the next build', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  t.onEvent({ type: 'synced', kind: 'Service' });
  t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
  t.onEvent({ type: 'add', object: makeService('ns1', 'a') });
  assert.deepEqual([...t.build('IPv4').changedServices], ['ns1/a']);
  assert.deepEqual([...t.build('IPv4').changedServices], ['ns1/a']);
});

test('tracker: slice relabelled to another service moves its endpoints', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
  t.onEvent({ type: 'add', object: makeService('ns1', 'a', { clusterIP: '172.30.0.1' }) });
  t.onEvent({ type: 'add', object: makeService('ns1', 'b', { clusterIP: '172.30.0.2' }) });
  const sl = makeSlice('ns1', 'a', 'x', [{ ip: '10.0.0.1' }]);
  t.onEvent({ type: 'add', object: sl });
  t.commit(t.build('IPv4'));
  t.onEvent({ type: 'update', old: sl, object: makeSlice('ns1', 'b', 'x', [{ ip: '10.0.0.1' }]) });
  const s = t.build('IPv4');
  assert.deepEqual([...s.changedServices].sort(), ['ns1/a', 'ns1/b']);
  assert.equal(s.services.get('ns1/a:p80/TCP')!.hasEndpoints, false);
  assert.equal(s.services.get('ns1/b:p80/TCP')!.hasEndpoints, true);
});

test('tracker: conntrack work lists UDP ports of changed services and deleted UDP cluster IPs', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
  const dns = makeService('kube-system', 'dns', {
    clusterIP: '172.30.0.10',
    ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
  });
  t.onEvent({ type: 'add', object: dns });
  t.commit(t.build('IPv4'));
  t.onEvent({ type: 'delete', object: dns });
  const s = t.build('IPv4');
  assert.deepEqual([...s.conntrack.udpServicePorts], ['kube-system/dns:dns/UDP']);
  assert.deepEqual([...s.conntrack.deletedUDPClusterIPs], ['172.30.0.10']);
  assert.deepEqual([...(s.conntrack.goneUDPFrontends?.ipPorts ?? [])], ['172.30.0.10|53']);
});

test('tracker: conntrack work names the UDP frontends a changed port lost (external IP, nodePort), not the ones it kept', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
  const spec = (externalIPs: string[], nodePort: number) => ({
    type: 'NodePort' as const,
    clusterIP: '172.30.0.10',
    externalIPs,
    ports: [{ name: 'dns', port: 53, protocol: 'UDP' as const, nodePort }],
  });
  const v1 = makeService('kube-system', 'dns', spec(['192.0.2.1', '192.0.2.2'], 30053));
  t.onEvent({ type: 'add', object: v1 });
  t.commit(t.build('IPv4'));
  t.onEvent({
    type: 'update',
    old: v1,
    object: makeService('kube-system', 'dns', spec(['192.0.2.2'], 30054)),
  });
  const s = t.build('IPv4');
  assert.deepEqual([...(s.conntrack.goneUDPFrontends?.ipPorts ?? [])], ['192.0.2.1|53']);
  assert.deepEqual([...(s.conntrack.goneUDPFrontends?.nodePorts ?? [])], [30053]);
  assert.deepEqual([...s.conntrack.deletedUDPClusterIPs], [], 'the port still exists');
});

test('tracker: a zone change recomputes every service (topology change)', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE, waitForNode: true });
  for (const kind of ['Service', 'EndpointSlice', 'Node'] as const) t.onEvent({ type: 'synced', kind });
  t.onEvent({ type: 'add', object: makeService('ns1', 'a') });
  t.onEvent({
    type: 'add',
    object: makeSlice('ns1', 'a', 'x', [
      { ip: '10.0.0.1', forZones: ['z1'] },
      { ip: '10.0.0.2', forZones: ['z2'] },
    ]),
  });
  t.onEvent({ type: 'add', object: makeNode(NODE, ['192.168.0.2'], 'z1') });
  const s1 = t.build('IPv4');
  t.commit(s1);
  assert.deepEqual(eps(s1.services.get('ns1/a:p80/TCP')!.clusterEndpoints), ['10.0.0.1:80']);
  t.onEvent({
    type: 'update',
    old: makeNode(NODE, ['192.168.0.2'], 'z1'),
    object: makeNode(NODE, ['192.168.0.2'], 'z2'),
  });
  assert.equal(t.topologyChanged('IPv4'), true);
  const s2 = t.build('IPv4');
  assert.deepEqual(eps(s2.services.get('ns1/a:p80/TCP')!.clusterEndpoints), ['10.0.0.2:80']);
  t.commit(s2);
  assert.equal(t.topologyChanged('IPv4'), false);
});

test('node IPs: bind address, then Node InternalIP/ExternalIP, then loopback', () => {
  const t = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName: NODE, bindAddress: '0.0.0.0' });
  assert.deepEqual(t.nodeIPs('IPv4'), ['127.0.0.1']);
  t.onEvent({ type: 'add', object: makeNode(NODE, ['fd00::2', '192.168.0.2']) });
  assert.deepEqual(t.nodeIPs('IPv4'), ['192.168.0.2']);
  assert.deepEqual(t.nodeIPs('IPv6'), ['fd00::2']);
  const t2 = new StateTracker({ families: ['IPv4'], nodeName: NODE, bindAddress: '10.1.1.1' });
  t2.onEvent({ type: 'add', object: makeNode(NODE, ['192.168.0.2']) });
  assert.deepEqual(t2.nodeIPs('IPv4'), ['10.1.1.1']);
  // another node's object is ignored
  t2.onEvent({ type: 'add', object: makeNode('other', ['192.168.0.9']) });
  assert.deepEqual(t2.nodeIPs('IPv4'), ['10.1.1.1']);
});

test('slice merge: one slice listing the same ip:port twice yields one endpoint (the local copy)', () => {
  const svc = makeService('ns1', 'svc1');
  const sl = makeSlice('ns1', 'svc1', 'a', [
    { ip: '10.0.0.2' },
    { ip: '10.0.0.1' },
    { ip: '10.0.0.2', nodeName: NODE },
  ]);
  const sp = only(state([svc, sl])[0]!);
  assert.deepEqual(eps(sp.endpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.equal(sp.endpoints[1]!.isLocal, true);
});

test('tracker: no-local-endpoints counts follow changes and equal a full recount', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
  const recount = (s: DesiredState) => {
    let internal = 0;
    let external = 0;
    for (const sp of s.services.values()) {
      if (sp.localEndpoints.length === 0 && sp.info.internalPolicyLocal) internal++;
      if (sp.localEndpoints.length === 0 && sp.info.externalPolicyLocal) external++;
    }
    return { internal, external };
  };
  const np = makeService('ns1', 'np', {
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
  });
  const il = makeService('ns1', 'il', { clusterIP: '172.30.0.9', internalTrafficPolicy: 'Local' });
  const steps: (() => void)[] = [
    () => t.onEvent({ type: 'add', object: np }),
    () => t.onEvent({ type: 'add', object: il }),
    () =>
      t.onEvent({
        type: 'add',
        object: makeSlice('ns1', 'np', 'a', [{ ip: '10.0.0.1', nodeName: 'other' }]),
      }),
    () =>
      t.onEvent({ type: 'add', object: makeSlice('ns1', 'il', 'b', [{ ip: '10.0.0.2', nodeName: NODE }]) }),
    () => t.onEvent({ type: 'delete', object: il }),
    () => t.onEvent({ type: 'delete', object: np }),
  ];
  const seen: { internal: number; external: number }[] = [];
  for (const step of steps) {
    step();
    const s = t.build('IPv4');
    assert.deepEqual(s.noLocalEndpoints, recount(s));
    seen.push(s.noLocalEndpoints);
    t.commit(s);
  }
  assert.deepEqual(
    seen.map((c) => `${c.internal}/${c.external}`),
    ['0/1', '1/1', '1/1', '0/1', '0/1', '0/0'],
  );
});
