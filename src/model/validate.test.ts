import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ValidationError,
  isIANASvcName,
  validateEndpointSlice,
  validateObject,
  validateService,
} from './validate.js';

const svc = (
  spec: Record<string, unknown>,
  metadata: Record<string, unknown> = { namespace: 'ns', name: 'svc' },
) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata,
  spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }], ...spec },
});

function expectInvalid(fn: () => unknown, field: RegExp): ValidationError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
    assert.match(e.field, field);
    assert.match(e.message, /invalid (Service|EndpointSlice|Node|ServiceCIDR) /);
    return e;
  }
  assert.fail('expected a ValidationError');
}

test('defaults: ClusterIP, TCP, Cluster policies, 10800s affinity timeout', () => {
  const s = validateService(svc({}));
  assert.equal(s.type, 'ClusterIP');
  assert.equal(s.ports[0]!.protocol, 'TCP');
  assert.equal(s.externalTrafficPolicy, 'Cluster');
  assert.equal(s.internalTrafficPolicy, 'Cluster');
  assert.equal(s.sessionAffinityTimeoutSeconds, 10800);
  assert.equal(s.meta.namespace, 'ns');
});

test('errors name the object, the field and the value', () => {
  const e = expectInvalid(
    () => validateService(svc({ ports: [{ port: 70000 }] })),
    /^spec\.ports\[0\]\.port$/,
  );
  assert.equal(e.namespace, 'ns');
  assert.equal(e.objectName, 'svc');
  assert.equal(e.value, 70000);
  assert.match(e.message, /ns\/svc: spec\.ports\[0\]\.port: must be between 1 and 65535 \(value: 70000\)/);
});

test('injection attempts are refused wherever a string reaches a rule script', () => {
  const bad = '"; -j ACCEPT\n-A KUBE-SERVICES';
  expectInvalid(() => validateService(svc({}, { namespace: 'ns', name: bad })), /metadata\.name/);
  expectInvalid(() => validateService(svc({}, { namespace: bad, name: 'x' })), /metadata\.namespace/);
  expectInvalid(() => validateService(svc({ ports: [{ name: bad, port: 80 }] })), /spec\.ports\[0\]\.name/);
  expectInvalid(() => validateService(svc({ clusterIP: bad })), /spec\.clusterIP/);
  expectInvalid(() => validateService(svc({ externalIPs: ['1.2.3.4 -j DROP'] })), /spec\.externalIPs\[0\]/);
  expectInvalid(
    () => validateService(svc({ loadBalancerSourceRanges: ['10.0.0.0/8 -j ACCEPT'] })),
    /loadBalancerSourceRanges/,
  );
  expectInvalid(
    () =>
      validateEndpointSlice({
        kind: 'EndpointSlice',
        metadata: { namespace: 'ns', name: 's' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.0.0.1;x'] }],
      }),
    /endpoints\[0\]\.addresses\[0\]/,
  );
  expectInvalid(
    () =>
      validateEndpointSlice({
        kind: 'EndpointSlice',
        metadata: { namespace: 'ns', name: 's' },
        addressType: 'IPv4',
        ports: [{ name: 'a b', port: 1 }],
      }),
    /ports\[0\]\.name/,
  );
});

test('multi-port services need unique names; one unnamed port is fine', () => {
  expectInvalid(
    () => validateService(svc({ ports: [{ port: 80 }, { port: 81 }] })),
    /spec\.ports\[0\]\.name/,
  );
  expectInvalid(
    () =>
      validateService(
        svc({
          ports: [
            { name: 'a', port: 80 },
            { name: 'a', port: 81 },
          ],
        }),
      ),
    /spec\.ports\[1\]\.name/,
  );
  assert.equal(validateService(svc({ ports: [{ port: 80 }] })).ports[0]!.name, '');
});

test('LB source ranges keep their padding (trimmed at use) but must trim to a CIDR', () => {
  assert.deepEqual(
    validateService(svc({ loadBalancerSourceRanges: [' 10.0.0.0/8 '] })).loadBalancerSourceRanges,
    [' 10.0.0.0/8 '],
  );
});

test('endpoint addresses are parsed sloppily (leading zeros) and normalised', () => {
  const s = validateEndpointSlice({
    kind: 'EndpointSlice',
    metadata: { namespace: 'ns', name: 's', labels: { 'kubernetes.io/service-name': 'svc' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['010.000.000.001'] }, { addresses: ['FD00::0001'] }],
  });
  assert.deepEqual(
    s.endpoints.map((e) => e.addresses[0]),
    ['10.0.0.1', 'fd00::1'],
  );
  assert.equal(s.endpoints[0]!.conditions.ready, undefined, 'nil ready stays nil (read as true later)');
});

test('validateObject ignores kinds kube-proxy does not read', () => {
  assert.equal(validateObject({ kind: 'ConfigMap', metadata: { name: 'x' } }), undefined);
  assert.equal(validateObject(svc({}))?.kind, 'Service');
});

test('property: any name accepted as an IANA_SVC_NAME has only [-a-z0-9]', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), (s) => {
      if (isIANASvcName(s)) assert.match(s, /^[-a-z0-9]{1,15}$/);
    }),
  );
});

test('property: validated services never carry a quote, space or newline in a rule-bound field', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 30 }),
      fc.string({ maxLength: 30 }),
      fc.string({ maxLength: 30 }),
      (name, ns, port) => {
        let s;
        try {
          s = validateService(svc({ ports: [{ name: port, port: 80 }] }, { namespace: ns, name }));
        } catch (e) {
          assert.ok(e instanceof ValidationError);
          return;
        }
        for (const v of [s.meta.name, s.meta.namespace, s.ports[0]!.name]) assert.doesNotMatch(v, /["'\s\\]/);
      },
    ),
  );
});

test('list items: each check names its exact field path (built only when the check fails)', () => {
  const slice = (over: { endpoints?: unknown[]; ports?: unknown[]; labels?: Record<string, unknown> }) => ({
    kind: 'EndpointSlice',
    metadata: { namespace: 'ns', name: 's', labels: { 'kubernetes.io/service-name': 'svc', ...over.labels } },
    addressType: 'IPv4',
    endpoints: over.endpoints ?? [],
    ports: over.ports ?? [],
  });
  const good = { addresses: ['10.0.0.1'] };
  const cases: [unknown, string][] = [
    [slice({ endpoints: [good, 'x'] }), 'endpoints[1]'],
    [slice({ endpoints: [good, { addresses: 'x' }] }), 'endpoints[1].addresses'],
    [slice({ endpoints: [good, { addresses: [] }] }), 'endpoints[1].addresses'],
    [slice({ endpoints: [good, { addresses: ['10.0.0.2', 7] }] }), 'endpoints[1].addresses[1]'],
    [slice({ endpoints: [good, { addresses: ['10.0.0.2', 'x'] }] }), 'endpoints[1].addresses[1]'],
    [slice({ endpoints: [{ ...good, conditions: 1 }] }), 'endpoints[0].conditions'],
    [slice({ endpoints: [{ ...good, conditions: { ready: 'yes' } }] }), 'endpoints[0].conditions.ready'],
    [slice({ endpoints: [{ ...good, conditions: { serving: 1 } }] }), 'endpoints[0].conditions.serving'],
    [
      slice({ endpoints: [{ ...good, conditions: { terminating: 0 } }] }),
      'endpoints[0].conditions.terminating',
    ],
    [slice({ endpoints: [good, good, { ...good, nodeName: 5 }] }), 'endpoints[2].nodeName'],
    [slice({ endpoints: [{ ...good, nodeName: 'Bad Name' }] }), 'endpoints[0].nodeName'],
    [slice({ endpoints: [{ ...good, zone: 'a b' }] }), 'endpoints[0].zone'],
    [
      slice({ endpoints: [{ ...good, hints: { forZones: [{ name: 'a b' }] } }] }),
      'endpoints[0].hints.forZones[0].name',
    ],
    [slice({ ports: [{ port: 80 }, 3] }), 'ports[1]'],
    [slice({ ports: [{ name: 'Bad_Name' }] }), 'ports[0].name'],
    [slice({ ports: [{ name: 'a' }, { protocol: 'ICMP' }] }), 'ports[1].protocol'],
    [slice({ ports: [{ port: 70000 }] }), 'ports[0].port'],
    [slice({ labels: { app: 3 } }), 'metadata.labels[app]'],
    [svc({ ports: [{ port: 80, name: 'a' }, 'x'] }), 'spec.ports[1]'],
    [
      svc({
        ports: [
          { port: 80, name: 'a' },
          { port: 81, name: 'B' },
        ],
      }),
      'spec.ports[1].name',
    ],
    [svc({ ports: [{ port: 80, name: 'a' }, { port: 81 }] }), 'spec.ports[1].name'],
    [
      svc({
        ports: [
          { port: 80, name: 'a' },
          { port: 81, name: 'a' },
        ],
      }),
      'spec.ports[1].name',
    ],
    [svc({ ports: [{ port: 80, protocol: 'ICMP' }] }), 'spec.ports[0].protocol'],
    [svc({ ports: [{ port: 0 }] }), 'spec.ports[0].port'],
    [svc({ ports: [{ port: 80, nodePort: 'x' }] }), 'spec.ports[0].nodePort'],
  ];
  for (const [raw, field] of cases) {
    const e = expectInvalid(() => validateObject(raw), /./);
    assert.equal(e.field, field);
    assert.ok(e.message.includes(`: ${field}: `), e.message);
  }
});
