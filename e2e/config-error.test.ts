/**
 * A configuration error changes nothing on the node (root only, issue #13): the daemon, started in a
 * lab node namespace with `--kubeconfig=/nonexistent`, exits 1 with one line and no stack, and leaves
 * that namespace's conntrack sysctls, listeners and rules as they were (it used to set the sysctls and
 * open its listeners before failing).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab } from './lab/topology.js';

const DAEMON = fileURLToPath(new URL('./run-daemon.ts', import.meta.url));
const SYSCTLS = [
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
];

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('nft', ['--version']).error) return 'nft is not installed';
  return labSkipReason();
}

describe('--kubeconfig=/nonexistent', { skip: skipReason() }, () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab({ pods: [] });
  });
  after(async () => {
    await lab?.destroy();
  });

  test('exits 1 with one line, before touching sysctls, listeners or rules', async () => {
    const read = async (): Promise<string[]> =>
      Promise.all(SYSCTLS.map(async (k) => (await lab.exec('node', 'sysctl', ['-n', k])).stdout.trim()));
    // Values upstream's startup would change, so a write cannot go unnoticed.
    await lab.exec('node', 'sysctl', ['-w', `${SYSCTLS[0]!}=432000`, `${SYSCTLS[1]!}=60`]);
    const sysctlsBefore = await read();
    const tablesBefore = (await lab.exec('node', 'nft', ['list', 'ruleset'])).stdout;
    const r = await lab.exec(
      'node',
      process.execPath,
      [
        '--import',
        'tsx',
        DAEMON,
        '--proxy-mode=nftables',
        '--kubeconfig=/nonexistent',
        '--hostname-override=node-1',
        '--healthz-bind-address=127.0.0.1:10256',
        '--metrics-bind-address=127.0.0.1:10249',
      ],
      { allowFail: true, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 1, `exit ${r.code}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.filter((l) => /nonexistent/.test(l)).length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.deepEqual(await read(), sysctlsBefore, 'sysctls untouched');
    assert.equal((await lab.exec('node', 'nft', ['list', 'ruleset'])).stdout, tablesBefore, 'no rules');
    assert.doesNotMatch(r.stderr, /set sysctl|listening/, r.stderr);
  });
});
