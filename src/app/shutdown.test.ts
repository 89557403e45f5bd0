import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stopWithin } from './shutdown.js';

test('stopWithin: a stop that finishes is waited for; one that hangs is left after the wait; a failure rejects', async () => {
  let stopped = false;
  const quick = (): Promise<void> =>
    new Promise((r) =>
      setTimeout(() => {
        stopped = true;
        r();
      }, 20),
    );
  assert.equal(await stopWithin(quick, 1000), 'stopped');
  assert.equal(stopped, true);
  const t0 = performance.now();
  // A sync that never ends (what a stop waiting on it would do). The daemon's servers hold the
  // event loop (stopWithin's timer does not): here an interval does.
  const keep = setInterval(() => undefined, 1000);
  assert.equal(await stopWithin(() => new Promise(() => undefined), 50), 'timeout');
  clearInterval(keep);
  assert.ok(performance.now() - t0 < 1000);
  await assert.rejects(
    stopWithin(() => Promise.reject(new Error('close failed')), 1000),
    /close failed/,
  );
});
