import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeManifestObjects, readManifestDocs, reuseUnchanged } from './manifest-objects.js';
import { parseManifestText } from './manifest-parse.js';

function read(file: string, text: string) {
  const p = parseManifestText(file, text);
  assert.ok(p.ok);
  return { file, ...readManifestDocs(file, p.docs) };
}
const opts = {
  scope: { nodeName: 'n1', serviceCIDRs: false },
  serviceClusterIPRanges: ['10.96.0.0/12'],
  nodePortRange: { min: 30000, max: 32767 },
};

test('invalid object: error naming file, kind, name, field and value; the others still count', () => {
  const r = read(
    'a.yaml',
    `apiVersion: v1
kind: Service
metadata: {name: good}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: bad, namespace: shop}
spec: {ports: [{port: 70000}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dep}
---
apiVersion: apps/v1
kind: Service
metadata: {name: wrongapi}
`,
  );
  assert.deepEqual(
    r.entries.map((e) => e.key),
    ['Service/default/good'],
  );
  const errors = r.problems.filter((p) => p.level === 'error');
  assert.equal(errors.length, 2);
  assert.deepEqual(
    { ...errors[0]!.fields, reason: undefined },
    {
      file: 'a.yaml',
      line: 6,
      kind: 'Service',
      namespace: 'shop',
      name: 'bad',
      field: 'spec.ports[0].port',
      value: 70000,
      reason: undefined,
    },
  );
  assert.match(errors[0]!.msg, /a\.yaml:6: .*shop\/bad.*spec\.ports\[0\]\.port/);
  assert.equal(errors[1]!.fields.field, 'apiVersion');
  assert.ok(r.problems.some((p) => p.level === 'warn' && /Deployment/.test(p.msg)));
});

test('non-object documents and missing kind are errors, never throws', () => {
  const r = read('b.yaml', '- 1\n- 2\n---\nmetadata: {name: x}\n---\nplain string\n');
  assert.equal(r.entries.length, 0);
  assert.equal(r.problems.filter((p) => p.level === 'error').length, 3);
});

test('ipFamilyPolicy is validated', () => {
  const r = read(
    'c.yaml',
    'kind: Service\nmetadata: {name: s}\nspec: {ipFamilyPolicy: Sometimes, ports: [{port: 1}]}\n',
  );
  assert.equal(r.entries.length, 0);
  assert.equal(r.problems[0]!.fields.field, 'spec.ipFamilyPolicy');
});

test('compose: first file wins a duplicate, with a warning naming both files', () => {
  const a = read(
    'a.yaml',
    'kind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 1}]}\n',
  );
  const b = read(
    'b.yaml',
    'kind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.11, ports: [{port: 1}]}\n',
  );
  const r = composeManifestObjects([b, a], opts);
  const s = r.objects.get('Service/default/s');
  assert.equal(s?.kind === 'Service' && s.clusterIP, '10.96.0.10');
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0]!.msg, /a\.yaml.*b\.yaml/);
});

test('compose: label filter, node scope, ServiceCIDR scope; filtered services still reserve their IPs', () => {
  const f = read(
    'x.yaml',
    `kind: Service
metadata: {name: other, labels: {service.kubernetes.io/service-proxy-name: foo}}
spec: {clusterIP: 10.96.0.10, ports: [{port: 1}]}
---
kind: Service
metadata: {name: mine}
spec: {ports: [{port: 1}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hl, labels: {kubernetes.io/service-name: hl, service.kubernetes.io/headless: ""}}
addressType: IPv4
---
kind: Node
metadata: {name: n1}
---
kind: Node
metadata: {name: n2}
---
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: c}
spec: {cidrs: [10.96.0.0/12]}
`,
  );
  const r = composeManifestObjects([f], opts);
  assert.deepEqual([...r.objects.keys()].sort(), ['Node//n1', 'Service/default/mine']);
  const withCIDRs = composeManifestObjects([f], { ...opts, scope: { nodeName: 'n1', serviceCIDRs: true } });
  assert.ok(withCIDRs.objects.has('ServiceCIDR//c'));
  const mine = r.objects.get('Service/default/mine');
  assert.ok(mine?.kind === 'Service' && mine.clusterIP !== '10.96.0.10' && mine.clusterIP !== '');
});

test('compose: Endpoints mirrored; an explicit slice with the same name wins', () => {
  const e = read(
    'a.yaml',
    'kind: Endpoints\napiVersion: v1\nmetadata: {name: legacy}\nsubsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 80}]}, {addresses: [{ip: 10.0.0.2}], ports: [{port: 81}]}]\n',
  );
  const s = read(
    'b.yaml',
    'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: legacy-2, labels: {kubernetes.io/service-name: legacy}}\naddressType: IPv4\nendpoints: []\n',
  );
  const r = composeManifestObjects([e, s], opts);
  const one = r.objects.get('EndpointSlice/default/legacy-1');
  assert.ok(one?.kind === 'EndpointSlice' && one.endpoints[0]!.addresses[0] === '10.0.0.1');
  const two = r.objects.get('EndpointSlice/default/legacy-2');
  assert.ok(two?.kind === 'EndpointSlice' && two.endpoints.length === 0);
  assert.equal(r.problems.length, 1);
});

const svcDoc = (name: string, ip: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {clusterIP: ${ip}, ports: [{port: 80}]}\n`;

test('compose: two Services claiming one clusterIP: a warning naming file, Service and field; the older keeps it', () => {
  const a = read('a.yaml', svcDoc('first', '10.96.0.50'));
  const b = read('b.yaml', svcDoc('second', '10.96.0.50') + '---\n' + svcDoc('other', '10.96.0.51'));
  const r = composeManifestObjects([a, b], opts);
  assert.ok(r.objects.has('Service/default/first'));
  assert.ok(!r.objects.has('Service/default/second'));
  assert.ok(r.objects.has('Service/default/other'), 'everything else keeps working');
  const w = r.problems.filter((p) => p.level === 'warn');
  assert.equal(w.length, 1);
  assert.equal(w[0]!.fields.file, 'b.yaml');
  assert.equal(w[0]!.fields.name, 'second');
  assert.equal(w[0]!.fields.field, 'spec.clusterIP');
  assert.match(
    w[0]!.msg,
    /^b\.yaml:1: Service default\/second: spec\.clusterIP 10\.96\.0\.50 is already used by Service default\/first/,
  );
  // "Older" is the one already in force, even when it comes later in file order.
  const again = composeManifestObjects([a, b], {
    ...opts,
    servicesInForce: new Set(['Service/default/second']),
  });
  assert.ok(again.objects.has('Service/default/second'));
  assert.ok(!again.objects.has('Service/default/first'));
});

test('compose: a clusterIP outside --service-cluster-ip-range is refused (when set), naming file, Service and field', () => {
  const f = read('c.yaml', svcDoc('out', '172.30.0.1') + '---\n' + svcDoc('in', '10.96.0.60'));
  const r = composeManifestObjects([f], { ...opts, enforceServiceClusterIPRange: true });
  assert.ok(!r.objects.has('Service/default/out'));
  assert.ok(r.objects.has('Service/default/in'));
  const e = r.problems.filter((p) => p.level === 'error');
  assert.equal(e.length, 1);
  assert.deepEqual(
    {
      file: e[0]!.fields.file,
      name: e[0]!.fields.name,
      field: e[0]!.fields.field,
      value: e[0]!.fields.value,
    },
    { file: 'c.yaml', name: 'out', field: 'spec.clusterIPs[0]', value: '172.30.0.1' },
  );
  assert.match(
    e[0]!.msg,
    /^c\.yaml:1: Service default\/out: spec\.clusterIPs\[0\] 172\.30\.0\.1 is not within --service-cluster-ip-range \(10\.96\.0\.0\/12\)/,
  );
  // Without the flag the default range is only an allocation pool.
  assert.ok(composeManifestObjects([f], opts).objects.has('Service/default/out'));
});

test('an EndpointSlice over 1,000 endpoints is refused with one error naming file, slice and field', () => {
  const eps = Array.from({ length: 1001 }, (_, i) => `{addresses: [10.244.${i >> 8}.${i & 255}]}`).join(', ');
  const r = read(
    'd.yaml',
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: big, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\nendpoints: [${eps}]\n`,
  );
  assert.equal(r.entries.length, 0);
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.fields.field, 'endpoints');
  assert.equal(r.problems[0]!.fields.value, 1001);
  assert.match(r.problems[0]!.msg, /^d\.yaml:1: .*big.*endpoints.*at most 1000/);
});

test('reuseUnchanged: a file read again keeps its unchanged objects, takes the changed and new ones', () => {
  const doc = (ip: string, extra = '') => `apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [${ip}]}]
ports: [{name: "", port: 80}]
${extra}`;
  const first = read('a.yaml', doc('10.0.0.1')).entries;
  const again = read(
    'a.yaml',
    `\n\n${doc('10.0.0.2', '---\napiVersion: v1\nkind: Service\nmetadata: {name: new}\nspec: {ports: [{port: 81}]}\n')}`,
  ).entries;
  const kept = reuseUnchanged(first, again);
  const obj = (es: typeof kept, key: string) => {
    const e = es.find((x) => x.key === key);
    assert.ok(e?.type === 'object');
    return e;
  };
  // Unchanged Service: the previous object; its entry's line is the new one (the file moved it down).
  assert.equal(obj(kept, 'Service/default/web').object, obj(first, 'Service/default/web').object);
  assert.equal(obj(kept, 'Service/default/web').line, obj(again, 'Service/default/web').line);
  assert.notEqual(obj(kept, 'Service/default/web').line, obj(first, 'Service/default/web').line);
  // Changed slice and new Service: the new objects.
  assert.equal(
    obj(kept, 'EndpointSlice/default/web-1').object,
    obj(again, 'EndpointSlice/default/web-1').object,
  );
  assert.notEqual(
    obj(kept, 'EndpointSlice/default/web-1').object,
    obj(first, 'EndpointSlice/default/web-1').object,
  );
  assert.equal(obj(kept, 'Service/default/new').object, obj(again, 'Service/default/new').object);
  assert.deepEqual(
    kept.map((e) => e.key),
    again.map((e) => e.key),
  );
  // Nothing to keep: the new list itself.
  const third = read('a.yaml', doc('10.0.0.3')).entries;
  assert.equal(reuseUnchanged([], third), third);
});
