import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeExec } from './fake-exec.js';
import { ExecError } from './run.js';

test('fakeExec records calls with their input and answers from the handler', async () => {
  const f = fakeExec((c) => (c.cmd === 'ipset' ? { stdout: 'KUBE-CLUSTER-IP\n' } : {}));
  assert.equal((await f.exec('ipset', ['list', '-n'])).stdout, 'KUBE-CLUSTER-IP\n');
  await f.exec('nft', ['-f', '-'], { input: 'add table ip t\n' });
  assert.deepEqual(f.calls, [
    { cmd: 'ipset', args: ['list', '-n'] },
    { cmd: 'nft', args: ['-f', '-'], input: 'add table ip t\n' },
  ]);
  assert.deepEqual(f.lines, ['ipset list -n', 'nft -f -']);
});

test('fakeExec honours okCodes as run() does: another exit code rejects with ExecError', async () => {
  const f = fakeExec(() => ({ code: 1, stderr: 'Bad rule (does a matching rule exist in that chain?)' }));
  assert.equal((await f.exec('iptables', ['-C', 'X'], { okCodes: [0, 1] })).code, 1);
  await assert.rejects(
    f.exec('iptables', ['-D', 'X']),
    (e: unknown) => e instanceof ExecError && e.code === 'KP_ERR_EXEC_FAILED' && e.exitCode === 1,
  );
});

test('a handler that throws makes the call reject with that error (a missing tool)', async () => {
  const f = fakeExec(() => {
    throw new ExecError('KP_ERR_EXEC_NOT_FOUND', 'conntrack', [], null, 'not found');
  });
  await assert.rejects(f.exec('conntrack', ['-L']), (e: unknown) => e instanceof ExecError);
  assert.equal(f.calls.length, 1);
});

test('fakeExec hands stdout to onStdout as run() does, and leaves it out of the result', async () => {
  const f = fakeExec(() => ({ stdout: '*nat\nCOMMIT\n' }));
  const got: string[] = [];
  const r = await f.exec('iptables-save', ['-t', 'nat'], { onStdout: (c) => got.push(c) });
  assert.deepEqual(got, ['*nat\nCOMMIT\n']);
  assert.equal(r.stdout, '');
  assert.equal((await f.exec('iptables-save', [])).stdout, '*nat\nCOMMIT\n');
});
