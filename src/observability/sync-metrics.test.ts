import { test } from 'node:test';
import assert from 'node:assert/strict';
import { programmingLatencies } from './sync-metrics.js';

test('network programming latency ignores changes triggered before the daemon started', () => {
  const started = 1_000_000;
  // A restart: objects last changed an hour and a second before the start are not this process's latency.
  const before = [started - 3_600_000, started - 1_000];
  const after = [started + 500, started + 2_000];
  assert.deepEqual(programmingLatencies([...before, ...after], started + 3_000, started), [2.5, 1]);
  // A trigger time after the sync (clock skew between the API server and the node) is not observed either.
  assert.deepEqual(programmingLatencies([started + 9_000], started + 3_000, started), []);
});
