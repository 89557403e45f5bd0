import { test } from 'node:test';
import assert from 'node:assert/strict';
import { categorizeEndpoints, topologyModeFromHints } from './topology.js';
import { serviceToServicePorts } from './service-port.js';
import type { Endpoint, ServicePortInfo } from './types.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { NODE, eps, only, state } from '../../test/fixtures/desired-state.js';

test('Local policy with only remote endpoints is "no local endpoints" (DROP), none at all is REJECT', () => {
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

test('terminating fallback is computed per set; non-serving terminating never used', () => {
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

function ep(ip: string, o: Partial<Endpoint> = {}): Endpoint {
  return {
    ip,
    port: 80,
    endpoint: `${ip}:80`,
    isLocal: false,
    ready: true,
    serving: true,
    terminating: false,
    zoneHints: undefined,
    nodeHints: undefined,
    nodeName: '',
    zone: '',
    ...o,
  };
}
function infoOf(spec: Record<string, unknown>): ServicePortInfo {
  return [...serviceToServicePorts(makeService('ns1', 'svc1', spec), 'IPv4').values()][0]!;
}

test('topologyModeFromHints: node hints for us win; zone hints need a zone; unready endpoints do not count', () => {
  const z = (zones: string[], nodes?: string[]) =>
    ep('10.0.0.1', { zoneHints: new Set(zones), nodeHints: nodes ? new Set(nodes) : undefined });
  assert.equal(topologyModeFromHints([z(['a'], [NODE])], NODE, 'a'), 'PreferSameNode');
  assert.equal(topologyModeFromHints([z(['a'], ['other'])], NODE, 'a'), 'PreferSameZone');
  assert.equal(topologyModeFromHints([z(['a'])], NODE, ''), '');
  assert.equal(topologyModeFromHints([z(['a']), ep('10.0.0.2')], NODE, 'a'), '');
  assert.equal(
    topologyModeFromHints([z(['a']), ep('10.0.0.2', { ready: false })], NODE, 'a'),
    'PreferSameZone',
  );
  assert.equal(topologyModeFromHints([], NODE, 'a'), '');
});

test('categorizeEndpoints: Cluster policy uses the ready endpoints; no local set', () => {
  const list = [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, serving: true, terminating: true })];
  const c = categorizeEndpoints(list, infoOf({}), NODE, '');
  assert.deepEqual(eps(c.clusterEndpoints), ['10.0.0.1:80']);
  assert.deepEqual(c.localEndpoints, []);
  assert.equal(c.allReachableEndpoints, c.clusterEndpoints);
  assert.equal(c.hasAnyEndpoints, true);
  const none = categorizeEndpoints([ep('10.0.0.3', { ready: false, serving: false })], infoOf({}), NODE, '');
  assert.deepEqual([none.clusterEndpoints.length, none.hasAnyEndpoints], [0, false]);
});

test('categorizeEndpoints: internal Local policy uses only local endpoints', () => {
  const list = [ep('10.0.0.1', { isLocal: true }), ep('10.0.0.2')];
  const c = categorizeEndpoints(list, infoOf({ internalTrafficPolicy: 'Local' }), NODE, '');
  assert.deepEqual(c.clusterEndpoints, []);
  assert.deepEqual(eps(c.localEndpoints), ['10.0.0.1:80']);
  assert.deepEqual(eps(c.allReachableEndpoints), ['10.0.0.1:80']);
});
