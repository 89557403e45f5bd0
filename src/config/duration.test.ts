import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatGoDuration, parseGoDuration } from './duration.js';

test('parseGoDuration reads Go duration syntax into milliseconds', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['250ms', 250],
    ['1h', 3_600_000],
    ['24h0m0s', 86_400_000],
    ['1.5h', 5_400_000],
    ['1.1s', 1_100],
    ['.5s', 500],
    ['5.s', 5_000],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['1500μs', 1.5],
    ['2000000ns', 2],
    ['-1m', -60_000],
    ['+2s', 2_000],
    ['1h1m1s1ms', 3_661_001],
  ];
  for (const [text, ms] of cases) assert.equal(parseGoDuration(text), ms, text);
});

test('parseGoDuration rejects malformed input naming it', () => {
  for (const bad of ['', '30', '1x', 's', '1.s.', '1m30', ' 1s', '-', '.s', '9999999999h']) {
    assert.throws(
      () => parseGoDuration(bad),
      (e: Error) => e instanceof RangeError && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

test('formatGoDuration writes what Go writes', () => {
  assert.equal(formatGoDuration(0), '0s');
  assert.equal(formatGoDuration(250), '250ms');
  assert.equal(formatGoDuration(1_000), '1s');
  assert.equal(formatGoDuration(90_000), '1m30s');
  assert.equal(formatGoDuration(900_000), '15m0s');
  assert.equal(formatGoDuration(3_600_000), '1h0m0s');
  assert.equal(formatGoDuration(86_400_000), '24h0m0s');
  assert.equal(formatGoDuration(1_500), '1.5s');
  assert.equal(formatGoDuration(1.5), '1.5ms');
  assert.equal(formatGoDuration(0.0015), '1.5µs');
  assert.equal(formatGoDuration(-60_000), '-1m0s');
});

test('format then parse is the identity on integer milliseconds', () => {
  fc.assert(
    fc.property(fc.integer({ min: -1e12, max: 1e12 }), (ms) => {
      assert.equal(parseGoDuration(formatGoDuration(ms)), ms);
    }),
  );
});

test('format then parse is the identity on whole nanoseconds', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), (ns) => {
      const ms = Number(ns) / 1e6;
      const back = parseGoDuration(formatGoDuration(ms));
      assert.equal(Math.round(back * 1e6), Math.round(ms * 1e6));
    }),
  );
});
