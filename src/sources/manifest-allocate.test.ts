import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateServices, type AllocationRequest } from './manifest-allocate.js';
import { validateService } from '../model/validate.js';
import { cidrContains, parseCIDR } from '../net/ip.js';

function svc(name: string, spec: Record<string, unknown> = {}, namespace = 'default'): AllocationRequest {
  return {
    service: validateService({
      kind: 'Service',
      metadata: { name, namespace },
      spec: { ports: [{ port: 80 }], ...spec },
    }),
    ipFamilies: [],
  };
}
const opts = {
  serviceClusterIPRanges: ['10.96.0.0/12', 'fd00:10:96::/112'],
  nodePortRange: { min: 30000, max: 32767 },
};

test('allocates a cluster IP in the first range, skipping network and .1', () => {
  const r = allocateServices([svc('web')], opts);
  const s = r.services[0]!;
  assert.ok(cidrContains(parseCIDR('10.96.0.0/12')!, s.clusterIP), s.clusterIP);
  assert.deepEqual(s.clusterIPs, [s.clusterIP]);
  assert.notEqual(s.clusterIP, '10.96.0.0');
  assert.notEqual(s.clusterIP, '10.96.0.1');
  assert.deepEqual(
    r.allocations.map((a) => [a.service, a.what]),
    [['default/web', 'clusterIP']],
  );
  assert.deepEqual(r.problems, []);
});

test('explicit, headless and ExternalName services are left alone', () => {
  const r = allocateServices(
    [
      svc('a', { clusterIP: '10.96.0.10' }),
      svc('b', { clusterIP: 'None' }),
      svc('c', { type: 'ExternalName', externalName: 'example.com' }),
    ],
    opts,
  );
  assert.deepEqual(
    r.services.map((s) => s.clusterIP),
    ['10.96.0.10', 'None', ''],
  );
  assert.deepEqual(r.allocations, []);
});

test('a tiny range: skips network, .1 and broadcast; full range is a problem', () => {
  const tiny = { ...opts, serviceClusterIPRanges: ['10.0.0.0/30'] };
  const r = allocateServices([svc('a'), svc('b')], tiny);
  const ips = r.services.map((s) => s.clusterIP);
  assert.ok(ips.includes('10.0.0.2'));
  assert.ok(ips.includes(''));
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0]!.message, /no free IPv4 address in 10\.0\.0\.0\/30/);
});

test('dual-stack: PreferDualStack gets one IP per family, ipFamilies order respected', () => {
  const req: AllocationRequest = { ...svc('dual'), ipFamilies: ['IPv6'], ipFamilyPolicy: 'PreferDualStack' };
  const s = allocateServices([req], opts).services[0]!;
  assert.equal(s.clusterIPs.length, 2);
  assert.ok(s.clusterIP.includes(':'));
  assert.ok(cidrContains(parseCIDR('10.96.0.0/12')!, s.clusterIPs[1]!));
  const single = allocateServices([{ ...svc('v6'), ipFamilies: ['IPv6'] }], opts).services[0]!;
  assert.equal(single.clusterIPs.length, 1);
  assert.ok(single.clusterIP.startsWith('fd00:10:96::'));
});

test('RequireDualStack with one range: problem reported, single-stack allocated', () => {
  const r = allocateServices([{ ...svc('d'), ipFamilies: [], ipFamilyPolicy: 'RequireDualStack' }], {
    ...opts,
    serviceClusterIPRanges: ['10.96.0.0/12'],
  });
  assert.equal(r.services[0]!.clusterIPs.length, 1);
  assert.equal(r.problems.length, 1);
});

test('node ports for NodePort and LoadBalancer; health check node port for LB eTP=Local', () => {
  const r = allocateServices(
    [
      svc('np', {
        type: 'NodePort',
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81, nodePort: 30001 },
        ],
      }),
      svc('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }),
      svc('cl', {}),
    ],
    opts,
  );
  const [np, lb, cl] = r.services;
  assert.equal(np!.ports[1]!.nodePort, 30001);
  assert.ok(np!.ports[0]!.nodePort >= 30000 && np!.ports[0]!.nodePort <= 32767);
  assert.notEqual(np!.ports[0]!.nodePort, 30001);
  assert.ok(lb!.ports[0]!.nodePort >= 30000);
  assert.ok(lb!.healthCheckNodePort >= 30000);
  assert.notEqual(lb!.healthCheckNodePort, lb!.ports[0]!.nodePort);
  assert.equal(cl!.ports[0]!.nodePort, 0);
  assert.equal(cl!.healthCheckNodePort, 0);
});

test('previous allocations are kept: adding a service that hashes onto a taken slot moves only the newcomer', () => {
  const small = { ...opts, nodePortRange: { min: 30000, max: 30003 } };
  // With 4 ports and many services, some newcomer collides with an existing slot.
  const names = ['a', 'b', 'c'];
  const first = allocateServices(
    names.map((n) => svc(n, { type: 'NodePort' })),
    small,
  );
  for (const extra of ['d', 'e', 'f', 'g', 'h']) {
    const second = allocateServices(
      [...names, extra].map((n) => svc(n, { type: 'NodePort' })),
      { ...small, previous: first.next },
    );
    assert.deepEqual(
      second.services.slice(0, 3).map((s) => s.ports[0]!.nodePort),
      first.services.map((s) => s.ports[0]!.nodePort),
    );
  }
});

test('an explicit value written later takes precedence over a previous allocation', () => {
  const first = allocateServices([svc('a')], opts);
  const ip = first.services[0]!.clusterIP;
  const second = allocateServices([svc('a'), svc('b', { clusterIP: ip })], { ...opts, previous: first.next });
  assert.equal(second.services[1]!.clusterIP, ip);
  assert.notEqual(second.services[0]!.clusterIP, ip);
});

const nameArb = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const specArb = fc.record({
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
  explicitIP: fc.option(fc.integer({ min: 2, max: 12 }), { nil: undefined }),
  explicitNodePort: fc.option(fc.integer({ min: 30000, max: 30015 }), { nil: undefined }),
  local: fc.boolean(),
});
const setArb = fc.uniqueArray(fc.tuple(nameArb, specArb), { selector: ([n]) => n, maxLength: 10 });
// Small ranges so collisions are frequent.
const small = { serviceClusterIPRanges: ['10.0.0.0/28'], nodePortRange: { min: 30000, max: 30031 } };
function build(
  set: [string, { type: string; explicitIP?: number; explicitNodePort?: number; local: boolean }][],
): AllocationRequest[] {
  return set.map(([n, s]) =>
    svc(n, {
      type: s.type,
      ...(s.explicitIP !== undefined ? { clusterIP: `10.0.0.${s.explicitIP}` } : {}),
      ...(s.type !== 'ClusterIP' ? { externalTrafficPolicy: s.local ? 'Local' : 'Cluster' } : {}),
      ports: [
        {
          name: 'p',
          port: 80,
          ...(s.explicitNodePort !== undefined && s.type !== 'ClusterIP'
            ? { nodePort: s.explicitNodePort }
            : {}),
        },
      ],
    }),
  );
}

test('property: no allocated value collides with another or with an explicit one', () => {
  fc.assert(
    fc.property(setArb, (set) => {
      const reqs = build(set);
      const r = allocateServices(reqs, small);
      const explicitIPs = reqs.map((q) => q.service.clusterIP).filter((ip) => ip !== '');
      const allocatedIPs = r.allocations.filter((a) => a.what === 'clusterIP').map((a) => a.value);
      assert.equal(new Set(allocatedIPs).size, allocatedIPs.length);
      for (const ip of allocatedIPs) assert.ok(!explicitIPs.includes(ip as string));
      for (const ip of allocatedIPs) assert.ok(!['10.0.0.0', '10.0.0.1', '10.0.0.15'].includes(ip as string));
      const ports = r.allocations.filter((a) => a.what !== 'clusterIP').map((a) => a.value);
      const explicitPorts = reqs
        .flatMap((q) => q.service.ports.map((p) => p.nodePort))
        .filter((p) => p !== 0);
      assert.equal(new Set(ports).size, ports.length);
      for (const p of ports) assert.ok(!explicitPorts.includes(p as number));
      // Everything asked for was either allocated or reported.
      const missing = r.services.filter((s) => s.clusterIP === '').length;
      assert.equal(missing, r.problems.filter((p) => p.what === 'clusterIP').length);
    }),
  );
});

test('property: deterministic and independent of input order; re-running with previous changes nothing', () => {
  fc.assert(
    fc.property(setArb, (set) => {
      const reqs = build(set);
      const a = allocateServices(reqs, small);
      const b = allocateServices([...reqs].reverse(), small);
      assert.deepEqual(new Map(a.next), new Map(b.next));
      const c = allocateServices(reqs, { ...small, previous: a.next });
      assert.deepEqual(c.services, a.services);
    }),
  );
});

test('property: with previous, adding services never moves existing allocations', () => {
  fc.assert(
    fc.property(setArb, setArb, (base, extra) => {
      const names = new Set(base.map(([n]) => n));
      const more = extra.filter(([n]) => !names.has(n));
      // Explicit values in the newcomers could legitimately take an existing allocation; keep them implicit.
      const moreImplicit = more.map(
        ([n, s]) => [n, { ...s, explicitIP: undefined, explicitNodePort: undefined }] as [string, typeof s],
      );
      const first = allocateServices(build(base), small);
      const second = allocateServices(build([...base, ...moreImplicit]), { ...small, previous: first.next });
      for (const [k, v] of first.next) assert.equal(second.next.get(k), v, k);
    }),
  );
});

test('the same input Service filled with the same values comes back as the previous run its object', () => {
  const a = svc('a', { type: 'NodePort' });
  const b = svc('b');
  const first = allocateServices([a, b], opts);
  const again = allocateServices([a, b], {
    ...opts,
    previous: first.next,
    previousFilled: first.filled,
  });
  assert.equal(again.services[0], first.services[0]);
  assert.equal(again.services[1], first.services[1]);
  // A new input object (its file re-read) gets a new filled object, with the values kept.
  const a2 = svc('a', { type: 'NodePort' });
  const third = allocateServices([a2, b], { ...opts, previous: again.next, previousFilled: again.filled });
  assert.notEqual(third.services[0], first.services[0]);
  assert.deepEqual(third.services[0], first.services[0]);
  // Different values (the previous ones are not passed): a new object, never a stale one.
  const fresh = allocateServices([a, b], {
    ...opts,
    nodePortRange: { min: 31000, max: 31999 },
    previousFilled: first.filled,
  });
  assert.notEqual(fresh.services[0], first.services[0]);
  assert.ok(fresh.services[0]!.ports[0]!.nodePort >= 31000);
});
