import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mirrorEndpoints, LABEL_MANAGED_BY, MIRRORING_CONTROLLER_NAME } from './manifest-endpoints.js';
import { ValidationError, validateEndpointSlice } from '../model/validate.js';

const endpoints = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: {
    name: 'legacy',
    namespace: 'shop',
    labels: { app: 'legacy' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'x' },
  },
  subsets: [
    {
      addresses: [{ ip: '10.0.0.1', nodeName: 'node-a' }, { ip: 'fd00::1' }],
      notReadyAddresses: [{ ip: '010.0.0.2' }],
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
    { addresses: [{ ip: '10.0.1.1' }], ports: [{ port: 8080 }] },
  ],
};

test('one slice per subset and address family, conditions and labels as the mirroring controller sets them', () => {
  const slices = mirrorEndpoints(endpoints).map((s) => validateEndpointSlice(s));
  assert.deepEqual(
    slices.map((s) => [s.meta.name, s.addressType, s.endpoints.length]),
    [
      ['legacy-1', 'IPv4', 2],
      ['legacy-2', 'IPv6', 1],
      ['legacy-3', 'IPv4', 1],
    ],
  );
  const [v4, , second] = slices;
  assert.deepEqual(v4!.endpoints, [
    { addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'node-a' },
    { addresses: ['10.0.0.2'], conditions: { ready: false } },
  ]);
  assert.deepEqual(v4!.ports, [
    { name: 'http', port: 80, protocol: 'TCP' },
    { name: 'dns', port: 53, protocol: 'UDP' },
  ]);
  assert.deepEqual(second!.ports, [{ name: '', port: 8080, protocol: 'TCP' }]);
  assert.equal(v4!.meta.namespace, 'shop');
  assert.deepEqual(v4!.meta.labels, {
    app: 'legacy',
    'kubernetes.io/service-name': 'legacy',
    [LABEL_MANAGED_BY]: MIRRORING_CONTROLLER_NAME,
  });
  assert.deepEqual(v4!.meta.annotations, { note: 'x' });
});

test('default namespace, no subsets: no slices', () => {
  assert.deepEqual(mirrorEndpoints({ kind: 'Endpoints', metadata: { name: 'empty' } }), []);
});

test('skip-mirror label: not mirrored', () => {
  assert.deepEqual(
    mirrorEndpoints({
      ...endpoints,
      metadata: { name: 'legacy', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    }),
    [],
  );
});

test('bad address names the field and value', () => {
  const bad = {
    kind: 'Endpoints',
    metadata: { name: 'x', namespace: 'ns' },
    subsets: [{ addresses: [{ ip: '10.0.0.1' }, { ip: 'not-an-ip' }] }],
  };
  assert.throws(
    () => mirrorEndpoints(bad),
    (e: unknown) =>
      e instanceof ValidationError &&
      e.field === 'subsets[0].addresses[1].ip' &&
      e.value === 'not-an-ip' &&
      e.kind === 'Endpoints' &&
      e.objectName === 'x',
  );
});

test('bad port and bad name are refused', () => {
  assert.throws(
    () =>
      mirrorEndpoints({ kind: 'Endpoints', metadata: { name: 'x' }, subsets: [{ ports: [{ port: 0 }] }] }),
    /subsets\[0\]\.ports\[0\]\.port/,
  );
  assert.throws(
    () => mirrorEndpoints({ kind: 'Endpoints', metadata: { name: 'Bad_Name' } }),
    /metadata\.name/,
  );
  assert.throws(
    () =>
      mirrorEndpoints({
        kind: 'Endpoints',
        metadata: { name: 'x' },
        subsets: [{ ports: [{ port: 1, protocol: 'ICMP' }] }],
      }),
    /protocol/,
  );
});
