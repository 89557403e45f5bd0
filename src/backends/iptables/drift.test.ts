import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainLines, chainLinesReader, jumpChains, missingJumps } from './drift.js';
import { JUMP_RULES } from './render.js';

const nat = JUMP_RULES.filter((r) => r.table === 'nat' && r.chain === 'PREROUTING');

test('the built-in chains to read, once each', () => {
  const chains = jumpChains(JUMP_RULES);
  assert.equal(new Set(chains.map((c) => `${c.table} ${c.chain}`)).size, chains.length);
  assert.ok(chains.some((c) => c.table === 'nat' && c.chain === 'PREROUTING'));
});

test("a present jump is found among other owners' rules; a removed one is named", () => {
  const j = nat[0]!;
  const ours = `-A PREROUTING ${j.args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`;
  const other = '-A PREROUTING -p tcp --dport 2222 -j DNAT --to-destination 10.0.0.9:22';
  const listed = `-P PREROUTING ACCEPT\n${other}\n${ours}\n`;
  assert.deepEqual(missingJumps(nat, new Map([['nat PREROUTING', listed]])), []);
  assert.deepEqual(missingJumps(nat, new Map([['nat PREROUTING', `-P PREROUTING ACCEPT\n${other}\n`]])), [
    { object: 'jump', message: `jump from nat PREROUTING to ${j.target} missing` },
  ]);
  assert.deepEqual(missingJumps(nat, new Map()), [], 'an unread chain is not reported');
});

test("legacy's one save per table: only the chain's own -A lines count", () => {
  const j = nat[0]!;
  const ours = (chain: string) =>
    `-A ${chain} ${j.args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`;
  const save = (body: string) =>
    `*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n${body}COMMIT\n`;
  const whole = save(`${ours('PREROUTING')}\n-A KUBE-SERVICES -j KUBE-NODEPORTS\n`);
  assert.deepEqual(missingJumps(nat, new Map([['nat PREROUTING', whole]])), []);
  // The same jump in another chain (here OUTPUT) does not stand in for PREROUTING's.
  assert.deepEqual(missingJumps(nat, new Map([['nat PREROUTING', save(`${ours('OUTPUT')}\n`)]])), [
    { object: 'jump', message: `jump from nat PREROUTING to ${j.target} missing` },
  ]);
});

test('chainLines keeps the -A lines of the asked chains only', () => {
  const save =
    '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j A\n-A KUBE-SVC-X -j B\n-A OUTPUT -j C\n-A PREROUTINGX -j D\nCOMMIT\n-A OUTPUT -j E';
  assert.equal(
    chainLines(save, ['PREROUTING', 'OUTPUT']),
    '-A PREROUTING -j A\n-A OUTPUT -j C\n-A OUTPUT -j E\n',
  );
  assert.equal(chainLines(save, ['POSTROUTING']), '');
  // The same from chunks of any size (a save read as it arrives).
  for (let size = 1; size <= save.length; size++) {
    const r = chainLinesReader(['PREROUTING', 'OUTPUT']);
    for (let i = 0; i < save.length; i += size) r.push(save.slice(i, i + size));
    assert.equal(r.end(), '-A PREROUTING -j A\n-A OUTPUT -j C\n-A OUTPUT -j E\n', `chunks of ${size}`);
  }
});
