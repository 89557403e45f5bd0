// Seeded fuzzing of the manifests pipeline (issue #13): a good file with two Services beside a file whose
// Service and EndpointSlice are mutated (fields set to injection-shaped, wrong-typed or out-of-range
// values, text truncated or garbled, documents duplicated). Through parse → validate → compose → state →
// the nftables and iptables renderers, for every mutation:
//   - nothing throws;
//   - every problem names the file, and a validation problem also the object's field;
//   - the good Services are still programmed (everything else keeps working);
//   - no rendered rule contains an injected payload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  composeManifestObjects,
  readManifestFile,
  type ManifestProblem,
} from '../src/sources/manifest-objects.js';
import { StateTracker } from '../src/proxy/state-tracker.js';
import { getBackend } from '../src/backends/backend.js';
import '../src/backends/index.js';
import { familyOptions } from './fixtures/options.js';

const GOOD = 'good.yaml';
const BAD = 'z-bad.yaml';
const NODE = 'node-1';

const good = `apiVersion: v1
kind: Node
metadata: {name: ${NODE}}
status: {addresses: [{type: InternalIP, address: 192.168.0.10}]}
---
apiVersion: v1
kind: Service
metadata: {name: good-a, namespace: default}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: good-a-1, namespace: default, labels: {kubernetes.io/service-name: good-a}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.10], conditions: {ready: true}, nodeName: ${NODE}}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: good-b, namespace: default}
spec: {type: NodePort, clusterIP: 10.96.0.11, ports: [{name: dns, port: 53, nodePort: 30053, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: good-b-1, namespace: default, labels: {kubernetes.io/service-name: good-b}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.11], conditions: {ready: true}, nodeName: ${NODE}}]
ports: [{name: dns, port: 53, protocol: UDP}]
`;

type Obj = Record<string, unknown>;
const victimService = (): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'victim', namespace: 'default', labels: { app: 'v' } },
  spec: {
    type: 'LoadBalancer',
    clusterIP: '10.96.0.20',
    externalIPs: ['192.0.2.1'],
    loadBalancerSourceRanges: ['198.51.100.0/24'],
    sessionAffinity: 'ClientIP',
    ports: [{ name: 'web', port: 8080, targetPort: 'http', protocol: 'TCP', nodePort: 30080 }],
  },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.5' }] } },
});
const victimSlice = (): Obj => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'victim-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'victim' } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.0.20'], conditions: { ready: true }, nodeName: NODE, zone: 'z1' }],
  ports: [{ name: 'web', port: 8080, protocol: 'TCP' }],
});

/** Payloads that would change a rule if they reached one: quotes, separators, newlines, shell. */
const PAYLOADS = [
  '"; flush ruleset; "',
  '$(reboot)',
  'x\n-A INPUT -j ACCEPT',
  'a} ; add rule ip filter input accept ; {',
  "' -j ACCEPT #",
  '`id`',
  'comment "x" accept',
  '10.96.0.10 -j DROP',
  '../../etc/passwd',
  'ä\u0000\u202e',
];
const WEIRD: unknown[] = [
  ...PAYLOADS,
  '',
  'a'.repeat(300),
  -1,
  0,
  65536,
  1e100,
  3.5,
  null,
  true,
  [],
  {},
  ['x'],
  { a: 1 },
  '10.96.0.10', // good-a's cluster IP: a conflict
  '10.96.0.11',
  '300.1.1.1',
  '010.96.0.1',
  '::1',
  '10.96.0.0/12',
  'SCTP',
  'ICMP',
  'good-a', // the name of a good Service: a duplicate
];

const PATHS = [
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['metadata', 'labels', 'app'],
  ['metadata', 'labels'],
  ['spec', 'type'],
  ['spec', 'clusterIP'],
  ['spec', 'externalIPs', 0],
  ['spec', 'loadBalancerSourceRanges', 0],
  ['spec', 'sessionAffinity'],
  ['spec', 'ports', 0, 'name'],
  ['spec', 'ports', 0, 'port'],
  ['spec', 'ports', 0, 'targetPort'],
  ['spec', 'ports', 0, 'protocol'],
  ['spec', 'ports', 0, 'nodePort'],
  ['spec', 'ports'],
  ['status', 'loadBalancer', 'ingress', 0, 'ip'],
  ['kind'],
  ['apiVersion'],
] as const;
const SLICE_PATHS = [
  ['metadata', 'name'],
  ['metadata', 'labels', 'kubernetes.io/service-name'],
  ['addressType'],
  ['endpoints', 0, 'addresses', 0],
  ['endpoints', 0, 'nodeName'],
  ['endpoints', 0, 'zone'],
  ['endpoints', 0, 'conditions', 'ready'],
  ['ports', 0, 'name'],
  ['ports', 0, 'port'],
  ['ports', 0, 'protocol'],
] as const;

function setPath(o: Obj, path: readonly (string | number)[], v: unknown): void {
  let cur: Record<string | number, unknown> = o;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null) return;
    cur = next as Record<string | number, unknown>;
  }
  cur[path[path.length - 1]!] = v;
}

type Mutation =
  | { t: 'set'; target: 'svc' | 'slice'; path: number; value: number }
  | { t: 'truncate'; at: number }
  | { t: 'garble'; at: number; bytes: number[] }
  | { t: 'dup' };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('set' as const),
      target: fc.constantFrom('svc' as const, 'slice' as const),
      path: fc.nat(100),
      value: fc.nat(WEIRD.length - 1),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('truncate' as const), at: fc.nat(2000) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('garble' as const),
      at: fc.nat(2000),
      bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'dup' as const }) },
);

function badText(muts: readonly Mutation[]): string {
  const s = victimService();
  const e = victimSlice();
  let dup = false;
  for (const m of muts) {
    if (m.t === 'set') {
      const paths = m.target === 'svc' ? PATHS : SLICE_PATHS;
      setPath(m.target === 'svc' ? s : e, paths[m.path % paths.length]!, structuredClone(WEIRD[m.value]));
    } else if (m.t === 'dup') dup = true;
  }
  // JSON documents are valid YAML flow nodes, and keep any string exactly as the mutation set it.
  let text = [s, e, ...(dup ? [s] : [])].map((d) => JSON.stringify(d)).join('\n---\n') + '\n';
  for (const m of muts) {
    if (m.t === 'truncate') text = text.slice(0, m.at % (text.length + 1));
    else if (m.t === 'garble') {
      const at = m.at % (text.length + 1);
      text = text.slice(0, at) + Buffer.from(m.bytes).toString('latin1') + text.slice(at);
    }
  }
  return text;
}

function render(mode: 'nftables' | 'iptables', objects: Iterable<[string, unknown]>): string {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE, bindAddress: '0.0.0.0' });
  for (const [, o] of objects) tracker.onEvent({ type: 'add', object: o as never });
  for (const kind of ['Service', 'EndpointSlice', 'Node'] as const) tracker.onEvent({ type: 'synced', kind });
  return getBackend(mode)!.render([tracker.build('IPv4')], [familyOptions()]);
}

function checkProblems(file: string, problems: readonly ManifestProblem[]): void {
  for (const p of problems) {
    if (p.level === 'debug' || p.level === 'info') continue;
    const named = p.fields.file === file || p.fields.keptFile === file;
    assert.ok(named, `problem does not name the file: ${p.msg}`);
    if (p.fields.kind !== undefined && p.level === 'error')
      assert.equal(typeof p.fields.field, 'string', `validation problem without a field: ${p.msg}`);
  }
}

const goodRead = readManifestFile(GOOD, good);
const tally = { rejected: 0, accepted: 0 };

/** One fuzz case: the property's body. */
function checkMutations(muts: readonly Mutation[]): void {
  assert.ok(goodRead.ok);
  const text = badText(muts);
  const bad = readManifestFile(BAD, text);
  const files = [{ file: GOOD, entries: goodRead.entries }];
  if (bad.ok) {
    checkProblems(BAD, bad.problems);
    // A document of a kind kube-proxy does not read is named in one line, not dropped silently.
    if (bad.entries.every((e) => e.key !== 'Service/default/victim') && /"kind":"SCTP"/.test(text))
      assert.ok(bad.problems.some((p) => p.level === 'warn' && p.fields.kind === 'SCTP'));
    files.push({ file: BAD, entries: bad.entries });
    if (bad.problems.some((p) => p.level === 'error')) tally.rejected++;
    else tally.accepted++;
  } else {
    // A syntax error: the source logs `file:line:col: cannot parse: ...` and reads nothing from it.
    assert.ok(bad.error.line >= 1 && bad.error.message !== '');
    tally.rejected++;
  }
  const composed = composeManifestObjects(files, {
    scope: { nodeName: NODE, serviceCIDRs: false },
    serviceClusterIPRanges: ['10.96.0.0/12'],
    nodePortRange: { min: 30000, max: 32767 },
    enforceServiceClusterIPRange: true,
  });
  checkProblems(
    BAD,
    composed.problems.filter((p) => p.fields.file !== GOOD),
  );
  // The API server never lets two Services hold one cluster IP; neither may the manifests source.
  const owners = new Map<string, string>();
  for (const o of composed.objects.values()) {
    if (o.kind !== 'Service') continue;
    for (const ip of o.clusterIPs) {
      if (ip === 'None') continue;
      assert.equal(owners.get(ip), undefined, `${ip} held by ${owners.get(ip)} and ${o.meta.name}`);
      owners.set(ip, o.meta.name);
    }
  }
  assert.equal(owners.get('10.96.0.10'), 'good-a');
  for (const mode of ['nftables', 'iptables'] as const) {
    const out = render(mode, composed.objects);
    assert.ok(out.includes('10.96.0.10') && out.includes('10.96.0.11'), `${mode}: a good Service is gone`);
    assert.ok(out.includes('10.244.0.10') && out.includes('10.244.0.11'), `${mode}: a good endpoint is gone`);
    for (const p of PAYLOADS)
      assert.ok(!out.includes(p), `${mode}: payload ${JSON.stringify(p)} in the rules`);
  }
}

test('manifest mutations: a clear line naming file and field, the good Services kept, no payload in any rule', () => {
  fc.assert(fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), checkMutations), {
    seed: 1313,
    numRuns: 250,
    // Always tried: the victim claims good-a's cluster IP; its kind becomes one kube-proxy does not read.
    examples: [
      [
        [
          {
            t: 'set',
            target: 'svc',
            path: PATHS.findIndex((p) => p.join('.') === 'spec.clusterIP'),
            value: WEIRD.indexOf('10.96.0.10'),
          },
        ],
      ],
      [
        [
          {
            t: 'set',
            target: 'svc',
            path: PATHS.findIndex((p) => p.join('.') === 'kind'),
            value: WEIRD.indexOf('SCTP'),
          },
        ],
      ],
    ],
  });
  // For the record: both outcomes were exercised.
  console.log(
    `manifest fuzz: ${tally.rejected} mutated files refused (in part or whole), ${tally.accepted} accepted`,
  );
  assert.ok(tally.rejected > 0 && tally.accepted > 0);
});

export { checkMutations };
