import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareEndpointStrings, mergeSlices } from './endpoints.js';
import { makeService, makeSlice } from '../../test/fixtures/objects.js';
import { NODE, eps, only, state } from '../../test/fixtures/desired-state.js';

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

test('compareEndpointStrings is plain string order (10.0.0.10 before 10.0.0.2)', () => {
  const list = ['10.0.0.2:80', '[fd00::1]:80', '10.0.0.10:80', '10.0.0.2:80'];
  assert.deepEqual([...list].sort(compareEndpointStrings), [
    '10.0.0.10:80',
    '10.0.0.2:80',
    '10.0.0.2:80',
    '[fd00::1]:80',
  ]);
  assert.equal(compareEndpointStrings('a', 'a'), 0);
});

test('mergeSlices: keyed by service port key; the result does not depend on slice order', () => {
  const a = makeSlice('ns1', 'svc1', 'a', [{ ip: '10.0.0.2' }, { ip: '10.0.0.1', nodeName: NODE }]);
  const b = makeSlice('ns1', 'svc1', 'b', [{ ip: '10.0.0.3', zone: 'z1' }, { ip: '10.0.0.1' }]);
  const ab = mergeSlices('ns1', 'svc1', [a, b], 'IPv4', NODE);
  const ba = mergeSlices('ns1', 'svc1', [b, a], 'IPv4', NODE);
  assert.deepEqual([...ab.keys()], ['ns1/svc1:p80/TCP']);
  assert.deepEqual(ab, ba);
  const list = ab.get('ns1/svc1:p80/TCP')!;
  assert.deepEqual(eps(list), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
  assert.equal(list[0]!.isLocal, true);
  assert.equal(list[0]!.nodeName, NODE);
  assert.equal(list[2]!.zone, 'z1');
});

test('mergeSlices: skips ports without a number or with port 0, and slices of the other family', () => {
  const sl = makeSlice(
    'ns1',
    'svc1',
    'a',
    [{ ip: '10.0.0.1' }],
    [
      { name: 'none', protocol: 'TCP' },
      { name: 'zero', port: 0, protocol: 'TCP' },
      { name: 'ok', port: 81, protocol: 'TCP' },
    ],
  );
  assert.deepEqual([...mergeSlices('ns1', 'svc1', [sl], 'IPv4', NODE).keys()], ['ns1/svc1:ok/TCP']);
  assert.equal(mergeSlices('ns1', 'svc1', [sl], 'IPv6', NODE).size, 0);
});

test('mergeSlices: IPv6 endpoints are "[ip]:port" and hints become sets', () => {
  const sl = makeSlice('ns1', 'svc1', 'a', [{ ip: 'fd00::1', forZones: ['z1'], forNodes: [NODE] }]);
  const [e] = mergeSlices('ns1', 'svc1', [sl], 'IPv6', NODE).get('ns1/svc1:p80/TCP')!;
  assert.equal(e!.endpoint, '[fd00::1]:80');
  assert.deepEqual([...e!.zoneHints!], ['z1']);
  assert.deepEqual([...e!.nodeHints!], [NODE]);
  assert.equal(e!.ready && e!.serving && !e!.terminating, true);
});

test('mergeSlices: one slice (its own fast path) gives what the general merge gives, in string order', () => {
  // Addresses that share prefixes ("10.0.0.1" / "10.0.0.10", "fd00::1" / "fd00::1a"), repeats and
  // local copies, in any order: the fast path's address comparison must order them as the
  // "ip:port" strings sort, and keep the same duplicate.
  const v4 = fc.constantFrom(
    '10.0.0.1',
    '10.0.0.10',
    '10.0.0.100',
    '10.0.0.2',
    '10.0.1.1',
    '10.0.0.19',
    '9.0.0.1',
  );
  const v6 = fc.constantFrom(
    'fd00::1',
    'fd00::10',
    'fd00::1a',
    'fd00::a',
    'fd00::1:0',
    'fd00::',
    '::1',
    'fd00::9',
  );
  const ep = (ip: fc.Arbitrary<string>): fc.Arbitrary<{ ip: string; nodeName?: string; ready?: boolean }> =>
    fc.record({ ip, nodeName: fc.constantFrom(NODE, 'other'), ready: fc.boolean() });
  const ports = fc.array(
    fc.record({
      name: fc.constantFrom('a', 'b'),
      port: fc.constantFrom(80, 8080),
      protocol: fc.constant('TCP'),
    }),
    { minLength: 1, maxLength: 3 },
  );
  for (const [family, ip] of [
    ['IPv4', v4],
    ['IPv6', v6],
  ] as const) {
    fc.assert(
      fc.property(fc.array(ep(ip), { maxLength: 12 }), ports, (endpoints, slicePorts) => {
        const sl = makeSlice('ns1', 'svc1', 'a', endpoints, slicePorts, { addressType: family });
        // A second, empty slice sends the same endpoints through the general merge.
        const empty = makeSlice('ns1', 'svc1', 'b', [], slicePorts, { addressType: family });
        const fast = mergeSlices('ns1', 'svc1', sl, family, NODE);
        assert.deepEqual(mergeSlices('ns1', 'svc1', [sl], family, NODE), fast);
        assert.deepEqual(mergeSlices('ns1', 'svc1', [sl, empty], family, NODE), fast);
        for (const list of fast.values()) {
          const strings = eps(list);
          assert.deepEqual(strings, [...new Set(strings)].sort(compareEndpointStrings));
        }
      }),
      { numRuns: 300 },
    );
  }
});
