import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSave } from './chain-diff.js';
import { renderJumpsAndCanaries, restoreChunks } from './planner.js';
import { JUMP_RULES } from './render.js';

const CANARY = ':KUBE-PROXY-CANARY - [0:0]';

test('a fresh node: every jump inserted at the top, canaries in three tables, KUBE-FIREWALL declared', () => {
  const { text, added } = renderJumpsAndCanaries(
    { filter: parseSave('*filter\nCOMMIT\n'), nat: parseSave('*nat\nCOMMIT\n') },
    false,
  );
  assert.equal(added.length, JUMP_RULES.length);
  const lines = text.trim().split('\n');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('*')),
    ['*mangle', '*nat', '*filter'],
  );
  assert.equal(lines.filter((l) => l === CANARY).length, 3);
  assert.ok(lines.includes(':KUBE-FIREWALL - [0:0]'));
  for (const j of JUMP_RULES) assert.ok(lines.includes(j.rule.replace(/^-A (\S+) /, '-I $1 1 ')), j.rule);
  assert.ok(!lines.some((l) => l.startsWith('-A ')), 'only inserts');
});

test('the steady state needs no process: every jump, both canaries and KUBE-FIREWALL in the saves', () => {
  const save = (table: 'filter' | 'nat'): string =>
    [
      `*${table}`,
      CANARY,
      ...(table === 'filter' ? [':KUBE-FIREWALL - [0:0]'] : []),
      ...JUMP_RULES.filter((j) => j.table === table).map((j) => j.rule),
      'COMMIT',
    ].join('\n');
  assert.deepEqual(
    renderJumpsAndCanaries({ filter: parseSave(save('filter')), nat: parseSave(save('nat')) }, true),
    {
      text: '',
      added: [],
    },
  );
});

test("an existing KUBE-FIREWALL (kubelet's) is never declared: that would flush its rules", () => {
  const { text, added } = renderJumpsAndCanaries({ filter: new Map(), nat: new Map() }, true);
  assert.ok(!text.includes(':KUBE-FIREWALL'));
  assert.ok(added.length > 0);
});

test('restoreChunks cuts a restore into ~64 KiB chunks at line ends that add up to its text', () => {
  const lines = [
    '*nat',
    ...Array.from({ length: 5000 }, (_, i) => `-A KUBE-SVC-X -j KUBE-SEP-${i}`),
    'COMMIT',
  ];
  const chunks = [...restoreChunks(lines)];
  assert.ok(chunks.length > 1, `${chunks.length} chunks`);
  assert.equal(chunks.join(''), `${lines.join('\n')}\n`);
  for (const c of chunks) {
    assert.ok(c.endsWith('\n'));
    assert.ok(c.length < (1 << 16) + 100, `chunk of ${c.length}`);
  }
  assert.deepEqual([...restoreChunks([])], []);
});

test('restoreChunks writes out bare chain names as declarations; with release, lets each line go once chunked', () => {
  const lines = [
    '*nat',
    'KUBE-SEP-A',
    ':KUBE-MARK-MASQ - [0:0]',
    '-A KUBE-SEP-A -j X\n-A KUBE-SEP-A -j Y',
    'COMMIT',
  ];
  const text =
    '*nat\n:KUBE-SEP-A - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-SEP-A -j X\n-A KUBE-SEP-A -j Y\nCOMMIT\n';
  assert.equal([...restoreChunks(lines)].join(''), text);
  assert.equal(lines.length, 5);
  assert.equal([...restoreChunks(lines, true)].join(''), text);
  assert.deepEqual(lines, ['', '', '', '', '']);
});
