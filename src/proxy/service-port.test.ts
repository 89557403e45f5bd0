import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterIPForFamily, serviceToServicePorts } from './service-port.js';
import { makeService } from '../../test/fixtures/objects.js';
import { only, state } from '../../test/fixtures/desired-state.js';

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

test('clusterIPForFamily: the first clusterIPs entry of the family, else spec.clusterIP', () => {
  const dual = makeService('ns1', 'svc1', {
    clusterIP: '172.30.0.41',
    clusterIPs: ['172.30.0.41', 'fd00::41'],
  });
  assert.equal(clusterIPForFamily(dual, 'IPv4'), '172.30.0.41');
  assert.equal(clusterIPForFamily(dual, 'IPv6'), 'fd00::41');
  const v4 = makeService('ns1', 'svc1', { clusterIP: '172.30.0.42' });
  assert.equal(clusterIPForFamily(v4, 'IPv4'), '172.30.0.42');
  assert.equal(clusterIPForFamily(v4, 'IPv6'), undefined);
  assert.equal(clusterIPForFamily(makeService('ns1', 'h', { clusterIP: 'None' }), 'IPv4'), undefined);
});

test('serviceToServicePorts: one entry per port; nodePort only for NodePort and LoadBalancer', () => {
  const np = makeService('ns1', 'svc1', {
    type: 'NodePort',
    ports: [
      { name: 'a', port: 80, protocol: 'TCP', nodePort: 30080 },
      { name: 'b', port: 53, protocol: 'UDP', nodePort: 30053 },
    ],
    sessionAffinity: 'ClientIP',
  });
  const m = serviceToServicePorts(np, 'IPv4');
  assert.deepEqual([...m.keys()], ['ns1/svc1:a/TCP', 'ns1/svc1:b/UDP']);
  const a = m.get('ns1/svc1:a/TCP')!;
  assert.equal(a.nodePort, 30080);
  assert.equal(a.serviceName, 'ns1/svc1');
  assert.equal(a.externallyAccessible, true);
  assert.ok(a.stickyMaxAgeSeconds > 0);
  const cip = makeService('ns1', 'svc1', { ports: [{ name: 'a', port: 80, nodePort: 30080 }] });
  const c = serviceToServicePorts(cip, 'IPv4').get('ns1/svc1:a/TCP')!;
  assert.equal(c.nodePort, 0);
  assert.equal(c.externallyAccessible, false);
  assert.equal(c.stickyMaxAgeSeconds, 0);
  assert.equal(serviceToServicePorts(cip, 'IPv6').size, 0);
});

test('serviceToServicePorts: which endpoint sets the traffic policies need', () => {
  const info = (spec: Record<string, unknown>) =>
    [...serviceToServicePorts(makeService('ns1', 'svc1', spec), 'IPv4').values()][0]!;
  const plain = info({});
  assert.deepEqual([plain.usesClusterEndpoints, plain.usesLocalEndpoints], [true, false]);
  const itp = info({ internalTrafficPolicy: 'Local' });
  assert.deepEqual([itp.usesClusterEndpoints, itp.usesLocalEndpoints], [false, true]);
  const etp = info({
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'p', port: 80, nodePort: 30001 }],
  });
  assert.equal(etp.externalPolicyLocal, true);
  assert.deepEqual([etp.usesClusterEndpoints, etp.usesLocalEndpoints], [true, true]);
  // eTP=Local means nothing for a service that is not reachable from outside
  const etpInternal = info({ externalTrafficPolicy: 'Local' });
  assert.equal(etpInternal.externalPolicyLocal, false);
});
