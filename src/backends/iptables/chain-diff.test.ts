import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  contentRules,
  countRules,
  hasJump,
  parseSave,
  reconcileKnown,
  splitLines,
  splitTable,
} from './chain-diff.js';

const DOC = [
  '*nat',
  ':KUBE-SERVICES - [0:0]',
  ':KUBE-SVC-A - [0:0]',
  ':KUBE-SEP-OLD - [0:0]',
  '-A KUBE-SERVICES -m comment --comment "ns/a:p cluster IP" -j KUBE-SVC-A',
  '-A KUBE-SVC-A -j KUBE-SEP-NEW',
  '-X KUBE-SEP-OLD',
  'COMMIT',
  '',
].join('\n');

test('splitTable groups rules by chain and keeps -X lines', () => {
  const t = splitTable(DOC);
  assert.deepEqual(t.chains, ['KUBE-SERVICES', 'KUBE-SVC-A', 'KUBE-SEP-OLD']);
  assert.equal(t.rules.get('KUBE-SVC-A'), '-A KUBE-SVC-A -j KUBE-SEP-NEW');
  assert.equal(t.rules.get('KUBE-SEP-OLD'), '');
  assert.deepEqual(t.deletes, ['KUBE-SEP-OLD']);
  assert.throws(() => splitTable('*nat\n-F KUBE-X\nCOMMIT\n'), /unexpected line "-F KUBE-X"/);
});

test('reconcileKnown forgets chains the kernel lost or whose rule count differs', () => {
  const known = new Map([
    ['KUBE-SVC-A', 'r1\nr2'],
    ['KUBE-SVC-B', 'r1'],
    ['KUBE-SVC-C', ''],
  ]);
  const saved = parseSave(
    '*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SVC-C - [0:0]\n-A KUBE-SVC-A x\n-A KUBE-SVC-A y\nCOMMIT\n',
  );
  assert.equal(reconcileKnown(known, saved), 1);
  assert.deepEqual([...known.keys()], ['KUBE-SVC-A', 'KUBE-SVC-C']);
  known.set('KUBE-SVC-A', 'only one');
  assert.equal(reconcileKnown(known, saved), 1);
  assert.deepEqual([...known.keys()], ['KUBE-SVC-C']);
});

test('hasJump recognises iptables-save output of a jump, with its comment', () => {
  const save = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A INPUT -j KUBE-FIREWALL',
    '-A OUTPUT -m comment --comment "something else" -j KUBE-SERVICES',
  ].join('\n');
  const chains = parseSave(save);
  assert.equal(hasJump(chains.get('PREROUTING'), 'KUBE-SERVICES', 'kubernetes service portals'), true);
  assert.equal(hasJump(chains.get('OUTPUT'), 'KUBE-SERVICES', 'kubernetes service portals'), false);
  assert.equal(hasJump(chains.get('INPUT'), 'KUBE-FIREWALL', ''), true);
  assert.equal(hasJump(chains.get('FORWARD'), 'KUBE-FIREWALL', ''), false);
});

test('parseSave keeps one content per chain (rules joined), also when the rules of a chain come in two runs', () => {
  const saved = parseSave(
    [
      '*nat',
      ':KUBE-A - [0:0]',
      ':KUBE-B - [0:0]',
      ':KUBE-EMPTY - [0:0]',
      '-A KUBE-A -j X',
      '-A KUBE-A -j Y',
      '-A KUBE-B -j Z',
      '-A KUBE-A -j W',
      'COMMIT',
      '',
    ].join('\n'),
  );
  assert.deepEqual([...saved.keys()], ['KUBE-A', 'KUBE-B', 'KUBE-EMPTY']);
  assert.equal(saved.get('KUBE-A'), '-A KUBE-A -j X\n-A KUBE-A -j Y\n-A KUBE-A -j W');
  assert.equal(saved.get('KUBE-B'), '-A KUBE-B -j Z');
  assert.equal(saved.get('KUBE-EMPTY'), '');
  assert.equal(countRules(saved.get('KUBE-A')!), 3);
  assert.equal(countRules(''), 0);
  assert.deepEqual(contentRules(saved.get('KUBE-B')!), ['-A KUBE-B -j Z']);
  assert.deepEqual(contentRules(''), []);
});

test('splitLines reads the line arrays of the renderer as splitTable reads the joined text', () => {
  const lines = DOC.split('\n');
  assert.deepEqual(splitLines([lines.slice(0, 3), lines.slice(3)]), splitTable(DOC));
});
