import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_HEALTH_CHECK,
  HealthTable,
  INITIAL_HEALTH,
  healthCheckOptionErrors,
  observe,
} from './health-check.js';

const O = { intervalMs: 1000, timeoutMs: 500, fall: 3, rise: 2 };

test('fall consecutive failures make a target unhealthy; rise successes bring it back; a mixed run resets', () => {
  let h = INITIAL_HEALTH;
  h = observe(h, false, O);
  h = observe(h, false, O);
  assert.equal(h.healthy, true);
  h = observe(h, true, O); // the run is broken
  h = observe(h, false, O);
  h = observe(h, false, O);
  assert.equal(h.healthy, true);
  h = observe(h, false, O);
  assert.equal(h.healthy, false);
  h = observe(h, true, O);
  assert.equal(h.healthy, false);
  h = observe(h, true, O);
  assert.deepEqual(h, { healthy: true, streak: 0 });
});

test('property: health only flips after exactly fall (rise) disagreeing results in a row', () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { maxLength: 60 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      (results, fall, rise) => {
        let h = INITIAL_HEALTH;
        let run = 0;
        for (const ok of results) {
          const before = h.healthy;
          run = ok === before ? 0 : run + 1;
          h = observe(h, ok, { fall, rise });
          const need = before ? fall : rise;
          if (run >= need) {
            assert.equal(h.healthy, !before);
            run = 0;
          } else assert.equal(h.healthy, before);
        }
      },
    ),
  );
});

test('a target is probed at most once per interval, and never twice at once', () => {
  const t = new HealthTable(O);
  t.setTargets(['10.0.0.1:80', '10.0.0.2:80']);
  assert.deepEqual(t.due(0), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.deepEqual(t.due(5000), [], 'in flight');
  t.record('10.0.0.1:80', true);
  t.record('10.0.0.2:80', true);
  assert.deepEqual(t.due(999), []);
  assert.deepEqual(t.due(1000), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.equal(t.nextDue(), undefined, 'both in flight');
});

test('the same endpoint shared by many services is one target (a set), and forgotten targets start over', () => {
  const t = new HealthTable(O);
  t.setTargets(['10.0.0.1:80', '10.0.0.1:80', '10.0.0.1:80']);
  assert.deepEqual(t.due(0), ['10.0.0.1:80']);
  for (let i = 0; i < 3; i++) {
    t.record('10.0.0.1:80', false);
    t.due(1000 * (i + 1));
  }
  assert.equal(t.isHealthy('10.0.0.1:80'), false);
  assert.deepEqual([...t.unhealthy()], ['10.0.0.1:80']);
  assert.deepEqual(t.counts(), { healthy: 0, unhealthy: 1 });
  t.setTargets([]);
  assert.equal(t.isHealthy('10.0.0.1:80'), true, 'unknown targets are healthy');
  assert.equal(t.record('10.0.0.1:80', false), undefined, 'a late result of a forgotten target is dropped');
});

test('record reports a flip once', () => {
  const t = new HealthTable({ ...O, fall: 1, rise: 1 });
  t.setTargets(['[fd00::1]:80']);
  t.due(0);
  assert.deepEqual(t.record('[fd00::1]:80', false), { target: '[fd00::1]:80', healthy: false });
  t.due(1000);
  assert.equal(t.record('[fd00::1]:80', false), undefined);
});

test('options are checked', () => {
  assert.deepEqual(healthCheckOptionErrors(DEFAULT_HEALTH_CHECK), []);
  assert.deepEqual(healthCheckOptionErrors({ intervalMs: 1000, timeoutMs: 2000, fall: 0, rise: 1.5 }), [
    'timeout must not exceed the interval',
    'fall must be an integer >= 1',
    'rise must be an integer >= 1',
  ]);
});
