import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecError } from './run.js';
import { nftSessionRunner, type NftRunner } from './nft.js';

/**
 * A stand-in for `nft -i` with nft's stderr protocol: each input line is one transaction; a line that
 * is not a command (the runner's `kpt-sync-N` marker) gets "Error: syntax error…", the line and a
 * caret line; a line containing "bad" gets an error block of its own; other lines are "committed"
 * (appended to the log, with the process's pid). After a line "hang" it never answers; "die" exits.
 */
const FAKE = `
const fs = require('node:fs');
const log = process.argv[1];
let buf = '';
let hung = false;
process.stdin.setEncoding('utf8').on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line === 'hang') hung = true;
    if (hung) continue;
    if (line === 'die') process.exit(3);
    if (/^kpt-sync-\\d+$/.test(line)) {
      process.stderr.write('Error: syntax error, unexpected newline, expecting string\\n' + line + '\\n' + ' '.repeat(line.length) + '^\\n');
    } else if (line.includes('bad')) {
      process.stderr.write('Error: Could not process rule: No such file or directory\\n' + line + '\\n^^^\\n');
    } else fs.appendFileSync(log, process.pid + ' ' + line + '\\n');
  }
});
`;

function setup(
  extra: { maxBytes?: number; maxTransactions?: number; maxInputBytes?: number; timeoutMs?: number } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-nft-session-'));
  const log = join(dir, 'log');
  const fellBack: string[] = [];
  const pids: number[] = [];
  const fallback: NftRunner = (script) => {
    fellBack.push(script);
    return Promise.resolve();
  };
  const runner = nftSessionRunner('nft', {
    command: process.execPath,
    args: ['-e', FAKE, log],
    fallback,
    onOwnPid: (pid) => pids.push(pid),
    ...extra,
  });
  const lines = (): string[] => {
    try {
      return readFileSync(log, 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  return {
    runner,
    fellBack,
    pids,
    lines,
    cleanup: () => {
      runner.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('each script is one line to the kept process; errors before the marker reject that script only', async () => {
  const s = setup();
  try {
    await s.runner('add element ip t s { 1.2.3.4 }\n\nadd element ip t s { 1.2.3.5 }\n');
    await assert.rejects(s.runner('delete element ip t s { bad }\n'), (e: unknown) => {
      assert.ok(e instanceof ExecError);
      assert.equal(e.code, 'KP_ERR_EXEC_FAILED');
      assert.match(e.stderr, /No such file or directory/);
      assert.doesNotMatch(e.stderr, /kpt-sync/);
      return true;
    });
    await s.runner('add element ip t s { 1.2.3.6 }\n');
    const lines = s.lines();
    assert.equal(lines.length, 2);
    const [pid1, ...rest1] = lines[0]!.split(' ');
    assert.equal(rest1.join(' '), 'add element ip t s { 1.2.3.4 } ; add element ip t s { 1.2.3.5 }');
    assert.equal(lines[1], `${pid1} add element ip t s { 1.2.3.6 }`);
    // The drift gate hears the session's pid before every transaction.
    assert.deepEqual(s.pids, [Number(pid1), Number(pid1), Number(pid1)]);
    assert.deepEqual(s.fellBack, []);
  } finally {
    s.cleanup();
  }
});

test('large scripts and scripts with # go to the fallback', async () => {
  const s = setup({ maxBytes: 100 });
  try {
    const big = `add element ip t s { ${'1.1.1.1, '.repeat(20)}1.1.1.2 }\n`;
    await s.runner(big);
    await s.runner('add rule ip t c drop # a comment\n');
    await s.runner('add element ip t s { 9.9.9.9 }\n');
    assert.deepEqual(s.fellBack, [big, 'add rule ip t c drop # a comment\n']);
    assert.equal(s.lines().length, 1);
  } finally {
    s.cleanup();
  }
});

test('the process is replaced after maxTransactions', async () => {
  const s = setup({ maxTransactions: 2 });
  try {
    for (let i = 0; i < 5; i++) await s.runner(`add element ip t s { 10.0.0.${i} }\n`);
    const pids = s.lines().map((l) => l.split(' ')[0]);
    assert.equal(pids.length, 5);
    assert.equal(new Set(pids).size, 3);
    assert.equal(pids[0], pids[1]);
    assert.notEqual(pids[1], pids[2]);
  } finally {
    s.cleanup();
  }
});

test('the process is replaced once it has read maxInputBytes', async () => {
  const s = setup({ maxInputBytes: 60 });
  try {
    // 31 characters each: the third script starts a new process.
    for (let i = 0; i < 4; i++) await s.runner(`add element ip t s { 10.0.0.${i} }\n`);
    const pids = s.lines().map((l) => l.split(' ')[0]);
    assert.equal(pids.length, 4);
    assert.equal(pids[0], pids[1]);
    assert.notEqual(pids[1], pids[2]);
    assert.equal(pids[2], pids[3]);
  } finally {
    s.cleanup();
  }
});

test('a transaction that never answers times out; one whose process dies fails; after 3 deaths all go to the fallback', async () => {
  const s = setup({ timeoutMs: 3000 });
  try {
    await assert.rejects(
      s.runner('hang\n'),
      (e: unknown) => e instanceof ExecError && e.code === 'KP_ERR_EXEC_TIMEOUT',
    );
    // A timed-out session is killed by the runner: the next script gets a new one.
    await s.runner('add element ip t s { 1.1.1.1 }\n');
    for (let i = 0; i < 3; i++)
      await assert.rejects(
        s.runner('die\n'),
        (e: unknown) => e instanceof ExecError && e.code === 'KP_ERR_EXEC_FAILED' && e.exitCode === 3,
      );
    await s.runner('add element ip t s { 2.2.2.2 }\n');
    assert.deepEqual(s.fellBack, ['add element ip t s { 2.2.2.2 }\n']);
    assert.equal(s.lines().length, 1);
  } finally {
    s.cleanup();
  }
});
