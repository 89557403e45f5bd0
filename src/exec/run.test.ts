import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecError, run, which } from './run.js';

test('feeds stdin and captures stdout', async () => {
  const r = await run('cat', [], { input: 'hello\n' });
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.code, 0);
});

test('a failing command rejects with its exit code and stderr in the message', async () => {
  await assert.rejects(run('sh', ['-c', 'echo nope >&2; exit 3']), (e: unknown) => {
    assert.ok(e instanceof ExecError);
    assert.equal(e.code, 'KP_ERR_EXEC_FAILED');
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /exit code 3: nope/);
    return true;
  });
});

test('okCodes accepts other exit codes', async () => {
  assert.equal((await run('sh', ['-c', 'exit 1'], { okCodes: [0, 1] })).code, 1);
});

test('a missing command is KP_ERR_EXEC_NOT_FOUND; a slow one times out', async () => {
  await assert.rejects(
    run('no-such-command-kpt', []),
    (e: unknown) => e instanceof ExecError && e.code === 'KP_ERR_EXEC_NOT_FOUND',
  );
  await assert.rejects(
    run('sleep', ['5'], { timeoutMs: 100 }),
    (e: unknown) => e instanceof ExecError && e.code === 'KP_ERR_EXEC_TIMEOUT',
  );
});

test('which finds sh and not a missing command', () => {
  assert.ok(which('sh'));
  assert.equal(which('no-such-command-kpt'), undefined);
});

test('stdoutToFile: stdout through a temporary file, which is removed, also on failure', async () => {
  const { readdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const ours = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('kube-proxy-out-'));
  const before = ours();
  // Many small flushed writes, as nft makes them.
  const r = await run('sh', ['-c', 'i=0; while [ $i -lt 500 ]; do printf "%s " $i; i=$((i+1)); done; cat'], {
    input: 'end\n',
    stdoutToFile: true,
  });
  assert.equal(r.stdout, `${Array.from({ length: 500 }, (_, i) => `${i} `).join('')}end\n`);
  await assert.rejects(run('sh', ['-c', 'echo partial; exit 2'], { stdoutToFile: true }), (e: unknown) => {
    assert.ok(e instanceof ExecError);
    assert.equal(e.stdout, 'partial\n');
    return true;
  });
  await assert.rejects(run('kube-proxy-no-such-tool', [], { stdoutToFile: true }), /command not found/);
  assert.deepEqual(ours(), before);
});

test('run() writes inputChunks in order as the child reads them, several pipe buffers long', async () => {
  let taken = 0;
  function* chunks(): Generator<string> {
    for (let i = 0; i < 64; i++) {
      taken++;
      yield `${String(i).padStart(4, '0')}${'x'.repeat(16 * 1024 - 5)}\n`;
    }
  }
  const r = await run('cat', [], { inputChunks: chunks() });
  assert.equal(taken, 64);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 64);
  assert.deepEqual(
    lines.map((l) => Number(l.slice(0, 4))),
    [...Array(64).keys()],
  );
});

test('onStdout: stdout handed over in chunks as it arrives, not collected; a throwing sink fails the run', async () => {
  const chunks: string[] = [];
  // ~1 MB: several pipe reads.
  const r = await run(
    'sh',
    ['-c', 'i=0; while [ $i -lt 2000 ]; do printf "%0500d\\n" $i; i=$((i+1)); done'],
    {
      onStdout: (c) => chunks.push(c),
    },
  );
  assert.equal(r.stdout, '');
  assert.ok(chunks.length > 1, `chunks: ${chunks.length}`);
  const lines = chunks.join('').split('\n');
  assert.equal(lines.length, 2001);
  assert.equal(lines[1999], '1999'.padStart(500, '0'));
  await assert.rejects(
    run('sh', ['-c', 'echo one; exec sleep 5'], {
      onStdout: () => {
        throw new Error('sink refused');
      },
    }),
    /sink refused/,
  );
});
