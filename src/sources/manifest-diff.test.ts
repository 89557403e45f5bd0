import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffObjectSets, objectKey, stableStringify } from './manifest-diff.js';
import { validateEndpointSlice, validateService } from '../model/validate.js';
import type { KubeObject } from '../model/types.js';

const svc = (name: string, port = 80, labels: Record<string, string> = {}): KubeObject =>
  validateService({
    kind: 'Service',
    metadata: { name, labels },
    spec: { clusterIP: '10.96.0.10', ports: [{ port }] },
  });
const slice = (name: string): KubeObject =>
  validateEndpointSlice({
    kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': 'a' } },
    addressType: 'IPv4',
    endpoints: [],
  });
const m = (...objs: KubeObject[]): Map<string, KubeObject> => new Map(objs.map((o) => [objectKey(o), o]));
/** The diff's events as "type Kind/namespace/name". */
const events = (prev: Map<string, KubeObject>, next: Map<string, KubeObject>): string[] =>
  diffObjectSets(prev, next).map((e) => (e.type === 'synced' ? e.type : `${e.type} ${objectKey(e.object)}`));

test('add, update (content changed only), delete; deletes first, services before slices on add', () => {
  const prev = m(svc('a'), svc('b'), slice('a-1'));
  const next = m(svc('a'), svc('b', 81), svc('c'), slice('c-1'));
  assert.deepEqual(events(prev, next), [
    'delete EndpointSlice/default/a-1',
    'update Service/default/b',
    'add Service/default/c',
    'add EndpointSlice/default/c-1',
  ]);
});

test('key order does not count as a change', () => {
  const a = svc('a', 80, { x: '1', y: '2' });
  const b = svc('a', 80, { y: '2', x: '1' });
  assert.deepEqual(diffObjectSets(m(a), m(b)), []);
  assert.equal(stableStringify({ b: 1, a: [1, { d: 2, c: undefined }] }), '{"a":[1,{"d":2}],"b":1}');
});

test('deletes run slices before Services and every kind is in key order; unknown kinds give no event', () => {
  const prev = m(svc('b'), svc('a'), slice('b-1'), slice('a-1'));
  const next = m(svc('d'), svc('c'), slice('d-1'), slice('c-1'));
  assert.deepEqual(events(prev, next), [
    'delete EndpointSlice/default/a-1',
    'delete EndpointSlice/default/b-1',
    'delete Service/default/a',
    'delete Service/default/b',
    'add Service/default/c',
    'add Service/default/d',
    'add EndpointSlice/default/c-1',
    'add EndpointSlice/default/d-1',
  ]);
  const odd = { ...svc('x'), kind: 'ConfigMap' } as unknown as KubeObject;
  assert.deepEqual(diffObjectSets(new Map(), new Map([['ConfigMap/default/x', odd]])), []);
});

test('the same object on both sides is not compared; an equal copy is, and gives no event', () => {
  let reads = 0;
  const a = svc('a');
  Object.defineProperty(a, 'probe', {
    enumerable: true,
    get: () => {
      reads++;
      return 1;
    },
  });
  assert.deepEqual(diffObjectSets(m(a), m(a)), []);
  assert.equal(reads, 0);
  const copy = { ...a }; // reads the getter once; the copy holds a plain value
  reads = 0;
  assert.deepEqual(diffObjectSets(m(a), m(copy)), []);
  assert.ok(reads > 0);
});
