import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHURN_COLLECT_MS, CHURN_COLLECT_SHARE, GarbageSchedule } from './memory.js';

test('every full sync collects; partial syncs collect only once the last collection is old enough', () => {
  const g = new GarbageSchedule(60_000);
  assert.equal(g.afterSync(false, 1_000), true, 'the first partial sync: nothing collected yet');
  assert.equal(g.afterSync(false, 2_000), false);
  assert.equal(g.afterSync(false, 60_999), false);
  assert.equal(g.afterSync(true, 61_000), true, 'a full sync always collects');
  assert.equal(g.afterSync(false, 61_500), false, 'and restarts the gap');
  assert.equal(g.afterSync(false, 120_999), false);
  assert.equal(g.afterSync(false, 121_000), true);
  assert.equal(g.afterSync(true, 121_001), true);
});

test('under a steady churn of partial syncs it collects once per gap', () => {
  const g = new GarbageSchedule();
  let collections = 0;
  // One partial sync every 1.3 s for ten minutes.
  for (let t = 0; t < 600_000; t += 1_300) if (g.afterSync(false, t)) collections++;
  assert.equal(collections, Math.ceil(600_000 / CHURN_COLLECT_MS));
});

test('a slow collection stretches the gap so that collections take at most their share of the time', () => {
  const g = new GarbageSchedule(60_000);
  assert.equal(g.afterSync(false, 0), true);
  g.took(3_000); // 3 s: the next one no sooner than 90 s later
  assert.equal(g.afterSync(false, 60_000), false);
  assert.equal(g.afterSync(false, 3_000 * CHURN_COLLECT_SHARE - 1), false);
  assert.equal(g.afterSync(false, 3_000 * CHURN_COLLECT_SHARE), true);
  g.took(50); // fast again: back to the minimum gap
  assert.equal(g.afterSync(false, 3_000 * CHURN_COLLECT_SHARE + 60_000), true);
  g.took(5_000);
  assert.equal(g.afterSync(true, 3_000 * CHURN_COLLECT_SHARE + 60_001), true, 'full syncs always collect');
});

test('with an infinite gap (userspace mode) only full syncs collect', () => {
  const g = new GarbageSchedule(Infinity);
  assert.equal(g.afterSync(false, 1_000), false);
  assert.equal(g.afterSync(true, 2_000), true);
  assert.equal(g.afterSync(false, 10_000_000), false);
});
