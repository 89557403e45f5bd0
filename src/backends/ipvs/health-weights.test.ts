import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthTargets, weighPartial, weighVirtualServer } from './health-weights.js';
import type { VirtualServer } from './render.js';

const vs = (protocol: 'TCP' | 'UDP', ips: string[]): VirtualServer => ({
  key: `${protocol.toLowerCase()} 172.30.0.10:80`,
  protocol,
  address: '172.30.0.10',
  port: 80,
  scheduler: 'rr',
  persistence: 0,
  realServers: ips.map((ip) => ({ ip, port: 8080, weight: 1 })),
  service: 'default/web:http',
});

test('unhealthy TCP real servers get weight 0; the others and UDP ones keep theirs', () => {
  const bad = new Set(['10.0.0.2:8080']);
  const out = weighVirtualServer(vs('TCP', ['10.0.0.1', '10.0.0.2']), bad);
  assert.deepEqual(
    out.realServers.map((r) => [r.ip, r.weight]),
    [
      ['10.0.0.1', 1],
      ['10.0.0.2', 0],
    ],
  );
  const udp = vs('UDP', ['10.0.0.2']);
  assert.equal(weighVirtualServer(udp, bad), udp);
  const healthy = vs('TCP', ['10.0.0.1']);
  assert.equal(weighVirtualServer(healthy, bad), healthy, 'unchanged object when nothing to do');
});

test('health never adds a real server: an unhealthy endpoint not in the state stays absent', () => {
  const out = weighVirtualServer(vs('TCP', ['10.0.0.1']), new Set(['10.0.0.9:8080']));
  assert.deepEqual(
    out.realServers.map((r) => r.ip),
    ['10.0.0.1'],
  );
});

test('targets: TCP real servers once each, IPv6 bracketed', () => {
  const v6: VirtualServer = { ...vs('TCP', []), realServers: [{ ip: 'fd00::1', port: 80, weight: 1 }] };
  const t = healthTargets([
    { vss: [vs('TCP', ['10.0.0.1']), vs('UDP', ['10.0.0.5'])], entries: [], noNodeAccess: [], skipped: [] },
    { vss: [vs('TCP', ['10.0.0.1']), v6], entries: [], noNodeAccess: [], skipped: [] },
  ]);
  assert.deepEqual([...t].sort(), ['10.0.0.1:8080', '[fd00::1]:80']);
});

test('partial syncs weigh the touched virtual servers and keep deletions', () => {
  const d = weighPartial(
    {
      family: 'IPv4',
      vss: new Map([
        ['a', vs('TCP', ['10.0.0.2'])],
        ['b', undefined],
      ]),
      entries: new Map(),
      addresses: new Map(),
    },
    new Set(['10.0.0.2:8080']),
  );
  assert.equal(d.vss.get('a')?.realServers[0]?.weight, 0);
  assert.equal(d.vss.has('b'), true);
  assert.equal(d.vss.get('b'), undefined);
});
