import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateTracker } from './state-tracker.js';
import { priorityServiceError, prioritySet, restrictState } from './priority.js';
import { makeService, makeSlice } from '../../test/fixtures/objects.js';

function built() {
  const t = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  t.onEvent({ type: 'add', object: makeService('default', 'kubernetes', { clusterIP: '172.30.0.1' }) });
  t.onEvent({ type: 'add', object: makeSlice('default', 'kubernetes', 's', [{ ip: '10.0.0.1' }]) });
  t.onEvent({ type: 'add', object: makeService('ns', 'a', { clusterIP: '172.30.0.41' }) });
  t.onEvent({ type: 'add', object: makeSlice('ns', 'a', 's', [{ ip: '10.0.0.2' }]) });
  t.onEvent({ type: 'synced', kind: 'Service' });
  t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
  return t.build('IPv4');
}

test('restrictState keeps only the named services, without conntrack work or trigger times', () => {
  const state = built();
  const small = restrictState(state, prioritySet([]));
  assert.ok(small);
  assert.deepEqual(
    [...small.services.values()].map((s) => s.info.serviceName),
    ['default/kubernetes'],
  );
  assert.deepEqual(small.sortedKeys, [...small.services.keys()]);
  assert.deepEqual([...small.changedServices], ['default/kubernetes']);
  assert.equal(small.conntrack.udpServicePorts.size, 0);
  assert.deepEqual(small.lastChangeTriggerTimes, []);
  assert.equal(small.nodeName, state.nodeName);
  assert.equal(state.services.size, 2, 'the full state is untouched');
});

test('restrictState is undefined when none of the services exists', () => {
  assert.equal(restrictState(built(), new Set(['x/y'])), undefined);
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
