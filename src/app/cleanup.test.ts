import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCleanup } from './app.js';
import type { Backend } from '../backends/backend.js';
import type { ProxyMode } from '../model/proxy-mode.js';
import { createMemoryLogger } from '../observability/logger.js';

/** A backend whose cleanup fails while any mode in `blockedBy` has not cleaned up yet (a chain still referenced). */
function fake(
  mode: ProxyMode,
  done: string[],
  blockedBy: readonly string[] = [],
  cleanupBefore: readonly ProxyMode[] = [],
): Backend {
  const b: Pick<Backend, 'mode' | 'render' | 'create' | 'cleanup' | 'cleanupBefore'> = {
    mode,
    cleanupBefore,
    render: () => '',
    create: () => Promise.reject(new Error('not in this test')),
    cleanup: () => {
      const busy = blockedBy.filter((m) => !done.includes(m));
      if (busy.length > 0)
        return Promise.reject(
          new Error(`CHAIN_DEL failed (Device or resource busy): still used by ${busy.join(',')}`),
        );
      done.push(mode);
      return Promise.resolve();
    },
  };
  return b as Backend;
}

test('--cleanup on a node that ran IPVS: IPVS is cleaned before iptables, whose chains its rules use; exit ok', async () => {
  const done: string[] = [];
  const log = createMemoryLogger();
  // Registry order (iptables before ipvs) is the one that failed.
  const ok = await runCleanup(log, [
    fake('userspace', done),
    fake('nftables', done),
    fake('iptables', done, ['ipvs']),
    fake('ipvs', done, [], ['iptables']),
  ]);
  assert.equal(ok, true);
  assert.ok(done.indexOf('ipvs') < done.indexOf('iptables'), done.join(','));
  assert.deepEqual(
    log.entries.filter((e) => e.level === 'error'),
    [],
  );
});

test('--cleanup on a mixed node: a mode that fails because another still holds references is retried after it', async () => {
  const done: string[] = [];
  const log = createMemoryLogger();
  // An iptables-mode leftover that jumps to a chain IPVS cleanup wants to delete.
  const ok = await runCleanup(log, [fake('iptables', done), fake('ipvs', done, ['iptables'], ['iptables'])]);
  assert.equal(ok, true);
  assert.deepEqual(done.sort(), ['iptables', 'ipvs']);
  assert.deepEqual(
    log.entries.filter((e) => e.level === 'error'),
    [],
    'a failure that the retry fixes is no error',
  );
});

test('--cleanup: a mode that keeps failing makes the cleanup fail, with one error naming it', async () => {
  const log = createMemoryLogger();
  const ok = await runCleanup(log, [fake('nftables', [], ['never'])]);
  assert.equal(ok, false);
  const errs = log.entries.filter((e) => e.level === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.obj.mode, 'nftables');
});
