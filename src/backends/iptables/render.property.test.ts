/**
 * Property tests: for random valid objects (built through the validating fixtures) the renderer emits
 * a well-formed, closed, deterministic iptables-restore document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makeNode, makeService, makeSlice, type EndpointSpec } from '../../../test/fixtures/objects.js';
import { familyOptions, NODE } from '../../../test/golden/iptables/scenarios.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import { servicePortChainName } from './hash.js';
import type { KubeObject } from '../../model/types.js';
import type { FamilyOptions, LocalDetector } from '../../proxy/options.js';
import { JUMP_RULES, probability, renderIPTables, type IPTablesPlan } from './render.js';
import { renderForDisplay } from './render-display.js';

const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MARK', 'MASQUERADE', 'DNAT']);
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

const octet = fc.integer({ min: 1, max: 254 });
const ip4 = (a: number, b: number) => fc.tuple(octet, octet).map(([c, d]) => `${a}.${b}.${c}.${d}`);

const endpointArb: fc.Arbitrary<EndpointSpec> = fc.record({
  ip: ip4(10, 180),
  ready: fc.option(fc.boolean(), { nil: undefined }),
  serving: fc.option(fc.boolean(), { nil: undefined }),
  terminating: fc.option(fc.boolean(), { nil: undefined }),
  nodeName: fc.constantFrom(NODE, 'other', ''),
});

const serviceArb = fc.record({
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
  ports: fc.uniqueArray(
    fc.record({ proto: fc.constantFrom(...PROTOCOLS), port: fc.integer({ min: 1, max: 65535 }) }),
    {
      minLength: 1,
      maxLength: 3,
      selector: (p) => `${p.proto}/${p.port}`,
    },
  ),
  externalIPs: fc.uniqueArray(ip4(192, 168), { maxLength: 2 }),
  lbIPs: fc.uniqueArray(ip4(5, 6), { maxLength: 2 }),
  lbsr: fc.uniqueArray(fc.constantFrom('203.0.113.0/25', '192.168.0.0/16', '0.0.0.0/0', ' 10.0.0.0/8'), {
    maxLength: 2,
  }),
  etpLocal: fc.boolean(),
  itpLocal: fc.boolean(),
  affinity: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
  endpoints: fc.uniqueArray(endpointArb, { maxLength: 5, selector: (e) => e.ip }),
  hcnp: fc.integer({ min: 30000, max: 32767 }),
});

type SvcSpec = fc.Arbitrary<typeof serviceArb extends fc.Arbitrary<infer T> ? T : never>;

function objectsFor(specs: readonly (SvcSpec extends fc.Arbitrary<infer T> ? T : never)[]): KubeObject[] {
  const objs: KubeObject[] = [makeNode(NODE, ['192.168.0.2'])];
  specs.forEach((s, i) => {
    const name = `svc${i}`;
    const ports = s.ports.map((p, j) => ({
      name: `p${j}`,
      port: p.port,
      protocol: p.proto,
      ...(s.type !== 'ClusterIP' ? { nodePort: 30000 + i * 4 + j } : {}),
    }));
    objs.push(
      makeService(
        'ns',
        name,
        {
          type: s.type,
          clusterIP: `172.30.${Math.floor(i / 250)}.${(i % 250) + 1}`,
          ports,
          externalIPs: s.externalIPs,
          loadBalancerSourceRanges: s.type === 'LoadBalancer' ? s.lbsr : [],
          ...(s.type !== 'ClusterIP' ? { externalTrafficPolicy: s.etpLocal ? 'Local' : 'Cluster' } : {}),
          internalTrafficPolicy: s.itpLocal ? 'Local' : 'Cluster',
          ...(s.affinity
            ? {
                sessionAffinity: 'ClientIP',
                sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinity } },
              }
            : {}),
          ...(s.type === 'LoadBalancer' && s.etpLocal ? { healthCheckNodePort: s.hcnp } : {}),
        },
        s.type === 'LoadBalancer'
          ? { status: { loadBalancer: { ingress: s.lbIPs.map((ip) => ({ ip })) } } }
          : {},
      ),
    );
    if (s.endpoints.length > 0) {
      objs.push(
        makeSlice(
          'ns',
          name,
          `${name}-a`,
          s.endpoints.map((e) => ({ ...e, ...(e.nodeName === '' ? { nodeName: undefined } : {}) })),
          ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
        ),
      );
    }
  });
  return objs;
}

const detectorArb: fc.Arbitrary<LocalDetector> = fc.constantFrom<LocalDetector>(
  { kind: 'none' },
  { kind: 'cidr', cidrs: ['10.0.0.0/8'] },
  { kind: 'bridge', iface: 'cbr0' },
  { kind: 'prefix', prefix: 'veth' },
);

const optionsArb: fc.Arbitrary<FamilyOptions> = fc
  .record({
    masqueradeAll: fc.boolean(),
    localhostNodePorts: fc.boolean(),
    randomFully: fc.boolean(),
    detector: detectorArb,
    matchAll: fc.boolean(),
  })
  .map((o) =>
    familyOptions('IPv4', {
      masqueradeAll: o.masqueradeAll,
      localhostNodePorts: o.localhostNodePorts,
      randomFully: o.randomFully,
      localDetector: o.detector,
      nodePortAddresses: o.matchAll
        ? { matchAll: true, ips: [], cidrs: [] }
        : { matchAll: false, ips: ['127.0.0.1', '192.168.0.2'], cidrs: ['127.0.0.0/8', '192.168.0.0/24'] },
    }),
  );

/** Splits a rule into tokens, keeping a quoted comment as one token; fails on stray quotes. */
function tokens(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[2]?.includes('"')) assert.fail(`stray quote in ${JSON.stringify(line)}`);
    out.push(m[1] ?? m[2]!);
  }
  return out;
}

/** Checks the document's shape and closure; `kernelChains` are chains the kernel already holds (partial syncs). */
function checkDocument(plan: IPTablesPlan, kernelChains: ReadonlySet<string> = new Set()): void {
  for (const [table, text] of [
    ['filter', plan.filter],
    ['nat', plan.nat],
  ] as const) {
    assert.ok(text.startsWith(`*${table}\n`) && text.endsWith('COMMIT\n'), `${table} framing`);
    const lines = text.slice(0, -1).split('\n');
    const declared = new Set<string>();
    const written = new Set<string>();
    const used = new Set<string>(JUMP_RULES.filter((j) => j.table === table).map((j) => j.target));
    const deleted = new Set<string>();
    for (const line of lines) {
      assert.match(line, /^(\*|:|-A |-X |COMMIT$|#)/, `bad line ${JSON.stringify(line)}`);
      assert.equal((line.match(/"/g) ?? []).length % 2, 0, `unbalanced quotes: ${line}`);
      if (line.startsWith(':')) {
        assert.match(line, /^:[A-Z0-9-]{1,28} - \[0:0\]$/);
        declared.add(line.slice(1, line.indexOf(' ')));
      } else if (line.startsWith('-X ')) {
        deleted.add(line.slice(3));
      } else if (line.startsWith('-A ')) {
        const t = tokens(line);
        written.add(t[1]!);
        t.forEach((tok, i) => {
          if (i > 0 && t[i - 1] === '--comment')
            assert.match(tok, /^[A-Za-z0-9 ./:;>_[\]-]+$/, `comment ${tok}`);
          else assert.match(tok, /^[A-Za-z0-9!._:/,+[\]-]+$/, `token ${JSON.stringify(tok)} in ${line}`);
        });
        const j = t.findIndex((x) => x === '-j' || x === '-g');
        if (j >= 0) {
          const target = t[j + 1]!;
          used.add(target);
          if (!BUILTIN_TARGETS.has(target))
            assert.ok(
              declared.has(target) || kernelChains.has(target),
              `${table}: target ${target} not declared (${line})`,
            );
        }
      }
    }
    for (const c of written)
      assert.ok(declared.has(c) || kernelChains.has(c), `${table}: rules for undeclared ${c}`);
    for (const c of deleted)
      assert.ok(declared.has(c) && !used.has(c), `${table}: deleted chain ${c} still used`);
    for (const c of declared)
      assert.ok(
        used.has(c) || written.has(c) || deleted.has(c),
        `${table}: chain ${c} declared but neither used nor written`,
      );
  }
  const natRules = plan.nat.split('\n').filter((l) => l.startsWith('-A ')).length;
  const filterRules = plan.filter.split('\n').filter((l) => l.startsWith('-A ')).length;
  assert.equal(plan.ruleCounts.nat.written, natRules);
  assert.equal(plan.ruleCounts.filter.written, filterRules);
  if (plan.full) assert.equal(plan.ruleCounts.nat.total, natRules);
}

test('random services render to a closed, well-formed, deterministic document', () => {
  fc.assert(
    fc.property(fc.array(serviceArb, { maxLength: 6 }), optionsArb, fc.boolean(), (specs, opts, large) => {
      const objects = objectsFor(specs);
      const mode = { full: true, largeClusterThreshold: large ? 0 : 1000 };
      const [state] = desiredStatesFromObjects(objects, { families: ['IPv4'], nodeName: NODE });
      const plan = renderIPTables(state!, opts, mode);
      checkDocument(plan);
      assert.deepEqual(plan.skipped, []);
      // determinism, including independence from the order objects arrived in
      const [again] = desiredStatesFromObjects([...objects].reverse(), {
        families: ['IPv4'],
        nodeName: NODE,
      });
      assert.equal(renderIPTables(again!, opts, mode).restore, plan.restore);
      assert.equal(renderForDisplay([state!], [opts]), renderForDisplay([again!], [opts]));
    }),
    { numRuns: 150 },
  );
});

test('partial syncs and stale deletion stay closed over what the kernel holds', () => {
  let unchangedSeen = 0;
  fc.assert(
    fc.property(
      fc.array(serviceArb, { minLength: 1, maxLength: 5 }),
      fc.array(serviceArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      optionsArb,
      (a, b, keep, opts) => {
        const t = new StateTracker({ families: ['IPv4'], nodeName: NODE });
        const before = objectsFor(a);
        for (const object of before) t.onEvent({ type: 'add', object });
        for (const kind of ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'] as const)
          t.onEvent({ type: 'synced', kind });
        const s1 = t.build('IPv4');
        const first = renderIPTables(s1, opts, { full: true });
        checkDocument(first);
        t.commit(s1);
        // move to the object set b: services/slices of a that b lacks are deleted, the rest updated
        const after = objectsFor(b.map((spec, i) => (keep[i] && a[i] !== undefined ? a[i] : spec)));
        const keyOf = (o: KubeObject): string => `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
        const afterKeys = new Set(after.map(keyOf));
        for (const object of before) if (!afterKeys.has(keyOf(object))) t.onEvent({ type: 'delete', object });
        // an add of a known object replaces it, as an update would
        for (const object of after) t.onEvent({ type: 'add', object });
        const s2 = t.build('IPv4');
        const kernel = first.activeNatChains;
        const full = renderIPTables(s2, opts, { full: true, existingNatChains: kernel });
        checkDocument(full);
        for (const c of full.deletedChains) assert.ok(kernel.has(c) && !full.activeNatChains.has(c));
        const partial = renderIPTables(s2, opts, { full: false, existingNatChains: kernel });
        checkDocument(partial, kernel);
        assert.deepEqual(partial.deletedChains, full.deletedChains);
        // every line of a partial sync is a line of the full sync of the same state
        const fullLines = new Set(full.restore.split('\n'));
        for (const l of partial.restore.split('\n')) assert.ok(fullLines.has(l), `partial-only line ${l}`);
        assert.equal(partial.ruleCounts.nat.total, full.ruleCounts.nat.total);
        // chains of unchanged services are not rewritten
        for (const key of s2.sortedKeys) {
          const sp = s2.services.get(key)!;
          if (s2.changedServices.has(sp.info.serviceName)) continue;
          unchangedSeen++;
          const svc = servicePortChainName('KUBE-SVC-', sp.info.nameString, sp.info.protocol);
          assert.ok(!partial.nat.includes(`:${svc} `), `unchanged ${svc} rewritten`);
        }
      },
    ),
    { numRuns: 100 },
  );
  assert.ok(
    unchangedSeen > 0,
    'the generator must produce unchanged services for the partial-sync property to mean anything',
  );
});

test('probability matches Go %0.10f, including the exact tie at 1/2048', () => {
  assert.equal(probability(2), '0.5000000000');
  assert.equal(probability(3), '0.3333333333');
  assert.equal(probability(6), '0.1666666667');
  assert.equal(probability(7), '0.1428571429');
  assert.equal(probability(1024), '0.0009765625');
  assert.equal(probability(2048), '0.0004882812');
  assert.equal(probability(1), '1.0000000000');
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100000 }), (k) => {
      const p = probability(k);
      assert.match(p, /^[01]\.\d{10}$/);
      assert.ok(Math.abs(Number(p) - 1 / k) <= 5e-11 + 1e-17);
    }),
  );
});
