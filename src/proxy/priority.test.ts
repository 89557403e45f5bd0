import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateTracker } from './state-tracker.js';
import { priorityServiceError, prioritySet } from './priority.js';
import { makeService, makeSlice } from '../../test/fixtures/objects.js';

function tracker(): StateTracker {
  const t = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  t.onEvent({ type: 'add', object: makeService('default', 'kubernetes', { clusterIP: '172.30.0.1' }) });
  t.onEvent({ type: 'add', object: makeSlice('default', 'kubernetes', 's', [{ ip: '10.0.0.1' }]) });
  t.onEvent({ type: 'add', object: makeService('ns', 'a', { clusterIP: '172.30.0.41' }) });
  t.onEvent({ type: 'add', object: makeSlice('ns', 'a', 's', [{ ip: '10.0.0.2' }]) });
  t.onEvent({ type: 'synced', kind: 'Service' });
  t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
  return t;
}

test('buildSubset keeps only the named services, without conntrack work or trigger times', () => {
  const t = tracker();
  const small = t.buildSubset('IPv4', prioritySet([]));
  assert.ok(small);
  assert.deepEqual(
    [...small.services.values()].map((s) => s.info.serviceName),
    ['default/kubernetes'],
  );
  assert.deepEqual(small.sortedKeys, [...small.services.keys()]);
  assert.deepEqual([...small.changedServices], ['default/kubernetes']);
  assert.equal(small.conntrack.udpServicePorts.size, 0);
  assert.deepEqual(small.lastChangeTriggerTimes, []);
  assert.equal(small.nodeName, 'n');
  // What the whole build and commit keep is untouched: the bulk sync still sees every service as new.
  const state = t.build('IPv4');
  assert.equal(state.services.size, 2);
  assert.deepEqual([...state.changedServices].sort(), ['default/kubernetes', 'ns/a']);
  const again = t.buildSubset('IPv4', prioritySet([]));
  assert.deepEqual(again?.services.get(small.sortedKeys[0]!), state.services.get(small.sortedKeys[0]!));
});

test('buildSubset is undefined when none of the services exists', () => {
  assert.equal(tracker().buildSubset('IPv4', new Set(['x/y'])), undefined);
});

test('prioritySet always starts with default/kubernetes and has no repeats', () => {
  assert.deepEqual(
    [...prioritySet(['kube-system/kube-dns', 'default/kubernetes'])],
    ['default/kubernetes', 'kube-system/kube-dns'],
  );
});

test('priorityServiceError names what is wrong with an entry', () => {
  assert.equal(priorityServiceError('kube-system/kube-dns'), undefined);
  assert.equal(priorityServiceError('kube-dns'), 'must be namespace/name');
  assert.match(priorityServiceError('Kube/x') ?? '', /namespace "Kube"/);
  assert.match(priorityServiceError('a/b_c') ?? '', /name "b_c"/);
});
