import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nfacctEnsure, nfacctPackets, parseNfacctPackets } from './nfacct.js';
import { fakeExec } from './fake-exec.js';

// `nfacct list` as nfacct 1.0.2 printed it in a network namespace.
const LIST = `{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = ct_state_invalid_dropped_pkts;
{ pkts = 00000000000000000012, bytes = 00000000000000000720 } = localhost_nps_accepted_pkts;
`;

test('the packet count of the named object, not of another', () => {
  assert.equal(parseNfacctPackets(LIST, 'localhost_nps_accepted_pkts'), 12);
  assert.equal(parseNfacctPackets(LIST, 'ct_state_invalid_dropped_pkts'), 0);
  assert.equal(parseNfacctPackets(LIST, 'localhost_nps'), undefined);
  assert.equal(parseNfacctPackets('', 'x'), undefined);
});

test('ensure adds a missing object only; packets reads it; a missing tool is an error', async () => {
  const have = new Set(['ct_state_invalid_dropped_pkts']);
  const f = fakeExec(({ args }) => {
    if (args[0] === 'get')
      return have.has(args[1]!)
        ? { stdout: `{ pkts = 00000000000000000003, bytes = 00000000000000000180 } = ${args[1]};\n` }
        : { code: 1, stderr: 'nfacct v1.0.2: error: No such file or directory' };
    have.add(args[1]!);
    return {};
  });
  await nfacctEnsure(f.exec, 'ct_state_invalid_dropped_pkts');
  await nfacctEnsure(f.exec, 'localhost_nps_accepted_pkts');
  assert.deepEqual(f.lines, [
    'nfacct get ct_state_invalid_dropped_pkts',
    'nfacct get localhost_nps_accepted_pkts',
    'nfacct add localhost_nps_accepted_pkts',
  ]);
  assert.equal(await nfacctPackets(f.exec, 'localhost_nps_accepted_pkts'), 3);
  const missing = fakeExec(() => {
    throw new Error('spawn nfacct ENOENT');
  });
  await assert.rejects(nfacctEnsure(missing.exec, 'x'), /ENOENT/);
});
