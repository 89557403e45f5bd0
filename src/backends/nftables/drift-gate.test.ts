import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NftDriftGate } from './drift-gate.js';

// Lines as nft 1.0.6's `nft monitor` printed them in a network namespace (flush map, another
// table's rule, `nft flush ruleset`).
const FLUSH_MAP = [
  'delete element ip kube-proxy m { 1.1.1.2 : drop }',
  'delete element ip kube-proxy m { 1.1.1.1 : drop }',
  '# new generation 3 by process 7128 (nft)',
];
const OTHER_TABLE = ['add rule ip other x accept', '# new generation 4 by process 7129 (nft)'];
const FLUSH_RULESET = [
  'delete rule ip kube-proxy c handle 6',
  'delete table ip kube-proxy',
  'delete table ip other',
  '# new generation 5 by process 7135 (nft)',
];

function cleanGate(): NftDriftGate {
  const g = new NftDriftGate('ip', 'kube-proxy');
  assert.equal(g.needsRead(), true, 'a new gate has seen nothing yet: the first check reads');
  g.readClean(g.token());
  assert.equal(g.needsRead(), false);
  return g;
}

test("another process's change to our table makes the gate suspect; other tables do not", () => {
  const g = cleanGate();
  for (const l of OTHER_TABLE) g.line(l);
  assert.equal(g.needsRead(), false);
  for (const l of FLUSH_MAP) g.line(l);
  assert.equal(g.needsRead(), true);
  g.readClean(g.token());
  for (const l of FLUSH_RULESET) g.line(l);
  assert.equal(g.needsRead(), true);
});

test('our own transactions (by pid) are not suspect', () => {
  const g = cleanGate();
  g.ownPid(7128);
  for (const l of FLUSH_MAP) g.line(l);
  assert.equal(g.needsRead(), false);
  // The same change by another pid is.
  for (const l of FLUSH_MAP.map((x) => x.replace('7128', '9999'))) g.line(l);
  assert.equal(g.needsRead(), true);
});

test('the other family and a similarly named table are not ours', () => {
  const g = cleanGate();
  for (const l of [
    'delete element ip6 kube-proxy m { ::1 : drop }',
    'add rule ip kube-proxy-old c accept',
    '# new generation 8 by process 1 (nft)',
  ])
    g.line(l);
  assert.equal(g.needsRead(), false);
});

test('a suspicion during a read is not cleared by that read', () => {
  const g = cleanGate();
  g.suspect();
  const t = g.token();
  for (const l of FLUSH_MAP) g.line(l); // arrives while the table is being read
  g.readClean(t);
  assert.equal(g.needsRead(), true);
  g.readClean(g.token());
  assert.equal(g.needsRead(), false);
});
