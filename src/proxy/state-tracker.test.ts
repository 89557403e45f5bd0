import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StateTracker } from './state-tracker.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { NODE, eps, state } from '../../test/fixtures/desired-state.js';
import type { DesiredState } from './types.js';
import type { EndpointSlice } from '../model/types.js';

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

test('tracker: tcpFrontendsAdded is set by a new TCP service or a new external IP, not by endpoint changes or UDP', () => {
  const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
  const step = (): boolean | undefined => {
    const s = t.build('IPv4');
    t.commit(s);
    return s.conntrack.tcpFrontendsAdded;
  };
  const web = (externalIPs: string[]) => makeService('ns', 'web', { clusterIP: '172.30.0.20', externalIPs });
  t.onEvent({ type: 'add', object: web([]) });
  assert.equal(step(), true, 'a new TCP service');
  t.onEvent({
    type: 'add',
    object: makeSlice('ns', 'web', 'web-1', [{ ip: '10.244.0.11', nodeName: NODE }]),
  });
  assert.equal(step(), false, 'endpoints only');
  t.onEvent({ type: 'update', old: web([]), object: web(['192.0.2.7']) });
  assert.equal(step(), true, 'a new external IP');
  t.onEvent({ type: 'update', old: web(['192.0.2.7']), object: web([]) });
  assert.equal(step(), false, 'an external IP removed');
  t.onEvent({
    type: 'add',
    object: makeService('ns', 'dns', {
      clusterIP: '172.30.0.10',
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    }),
  });
  assert.equal(step(), false, 'a new UDP-only service');
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
  assert.deepEqual(t2.nodeIPs('IPv4'), ['10.1.1.1', '192.168.0.2'], 'the bind address is primary');
  // another node's object is ignored
  t2.onEvent({ type: 'add', object: makeNode('other', ['192.168.0.9']) });
  assert.deepEqual(t2.nodeIPs('IPv4'), ['10.1.1.1', '192.168.0.2']);
});

test('node IPs: every address of the family, primary first, no duplicates', () => {
  const t = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName: NODE, bindAddress: '0.0.0.0' });
  t.onEvent({ type: 'add', object: makeNode(NODE, ['192.168.0.2', 'fd00::2', '10.0.0.7', '192.168.0.2']) });
  assert.deepEqual(t.nodeIPs('IPv4'), ['192.168.0.2', '10.0.0.7']);
  assert.deepEqual(t.nodeIPs('IPv6'), ['fd00::2']);
  assert.deepEqual(
    t.build('IPv4').nodeIPs,
    ['192.168.0.2', '10.0.0.7'],
    'the desired state carries them all',
  );
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

test('tracker: any sequence of slice adds, updates, relabels and deletes ends where a fresh build of the result does', () => {
  // Services keep one slice, or several, or none, and move between those: the tracker files a lone
  // slice as itself and several in a map, and must switch both ways.
  const services = ['a', 'b'].map((n, i) => makeService('ns1', n, { clusterIP: `172.30.0.${i + 1}` }));
  const step = fc.record({
    slice: fc.constantFrom('s1', 's2', 's3'),
    svc: fc.constantFrom('a', 'b'),
    ip: fc.integer({ min: 1, max: 4 }),
    del: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 14 }), (steps) => {
      const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
      for (const kind of ['Service', 'EndpointSlice'] as const) t.onEvent({ type: 'synced', kind });
      for (const svc of services) t.onEvent({ type: 'add', object: svc });
      const now = new Map<string, EndpointSlice>();
      for (const [i, st] of steps.entries()) {
        const old = now.get(st.slice);
        if (st.del) {
          if (old) t.onEvent({ type: 'delete', object: old });
          now.delete(st.slice);
        } else {
          const sl = makeSlice('ns1', st.svc, st.slice, [{ ip: `10.0.0.${st.ip}` }, { ip: `10.0.1.${i}` }]);
          t.onEvent(old ? { type: 'update', old, object: sl } : { type: 'add', object: sl });
          now.set(st.slice, sl);
        }
        if (i % 3 === 2) t.commit(t.build('IPv4'));
      }
      const got = t.build('IPv4');
      const [want] = state([...services, ...now.values()]);
      assert.deepEqual([...got.sortedKeys], [...want!.sortedKeys]);
      for (const k of want!.sortedKeys)
        assert.deepEqual(eps(got.services.get(k)!.endpoints), eps(want!.services.get(k)!.endpoints));
    }),
    { numRuns: 300 },
  );
});
