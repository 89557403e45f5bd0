import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ZERO_GO_TIME,
  createFakeClock,
  formatGoTime,
  formatRFC3339Nano,
  goTimeAfter,
  goTimeSubMs,
  realClock,
} from './go-time.js';

const ns = (isoMs: string, extraNs = 0n): bigint => BigInt(Date.parse(isoMs)) * 1_000_000n + extraNs;

describe('formatGoTime', () => {
  it('prints nanoseconds and the UTC zone like time.Time.String()', () => {
    const t = { epochNs: ns('2025-01-02T03:04:05.123Z', 456789n) };
    assert.equal(formatGoTime(t), '2025-01-02 03:04:05.123456789 +0000 UTC');
  });

  it('drops trailing zeros of the fraction and the dot when it is zero', () => {
    assert.equal(
      formatGoTime({ epochNs: ns('2025-01-02T03:04:05.500Z') }),
      '2025-01-02 03:04:05.5 +0000 UTC',
    );
    assert.equal(formatGoTime({ epochNs: ns('2025-01-02T03:04:05.000Z') }), '2025-01-02 03:04:05 +0000 UTC');
  });

  it('appends the monotonic reading with nine fraction digits', () => {
    const t = { epochNs: ns('2025-01-02T03:04:05.000Z'), monoNs: 1_500_000_001n };
    assert.equal(formatGoTime(t), '2025-01-02 03:04:05 +0000 UTC m=+1.500000001');
    assert.equal(
      formatGoTime({ epochNs: 0n, monoNs: 202_631_797_660n }),
      '1970-01-01 00:00:00 +0000 UTC m=+202.631797660',
    );
    assert.equal(
      formatGoTime({ epochNs: 0n, monoNs: -2_000_000_000n }),
      '1970-01-01 00:00:00 +0000 UTC m=-2.000000000',
    );
  });

  it("prints Go's zero time as year 1", () => {
    assert.equal(formatGoTime(ZERO_GO_TIME), '0001-01-01 00:00:00 +0000 UTC');
    assert.equal(formatRFC3339Nano(ZERO_GO_TIME), '0001-01-01T00:00:00Z');
  });

  it('handles instants before the epoch', () => {
    assert.equal(formatGoTime({ epochNs: -1n }), '1969-12-31 23:59:59.999999999 +0000 UTC');
  });

  it('agrees with Date for the date and time fields (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62135596800000, max: 253402300799999 }),
        fc.integer({ min: 0, max: 999999 }),
        (ms, sub) => {
          const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ for years 0..9999
          const formatted = formatRFC3339Nano({ epochNs: BigInt(ms) * 1_000_000n + BigInt(sub) });
          assert.equal(formatted.slice(0, 19), iso.slice(0, 19));
          const frac = (iso.slice(20, 23) + String(sub).padStart(6, '0')).replace(/0+$/, '');
          assert.equal(formatted.slice(19), (frac === '' ? '' : '.' + frac) + 'Z');
        },
      ),
    );
  });
});

describe('formatRFC3339Nano', () => {
  it("matches Go's JSON encoding of a UTC time", () => {
    assert.equal(
      formatRFC3339Nano({ epochNs: ns('2025-01-02T03:04:05.123Z', 456789n) }),
      '2025-01-02T03:04:05.123456789Z',
    );
    assert.equal(
      formatRFC3339Nano({ epochNs: ns('2025-01-02T03:04:05.120Z'), monoNs: 5n }),
      '2025-01-02T03:04:05.12Z',
    );
  });
});

describe('clocks', () => {
  it('the real clock carries a monotonic reading and prints the m= suffix', () => {
    const a = realClock.now();
    const b = realClock.now();
    assert.ok(a.monoNs !== undefined && b.monoNs !== undefined);
    assert.ok(goTimeSubMs(b, a) >= 0);
    assert.match(formatGoTime(a), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC m=\+\d+\.\d{9}$/);
  });

  it('the fake clock advances and compares by wall time', () => {
    const c = createFakeClock(Date.parse('2025-01-02T00:00:00Z'));
    const a = c.now();
    c.advance(1500);
    const b = c.now();
    assert.equal(goTimeSubMs(b, a), 1500);
    assert.ok(goTimeAfter(b, a));
    assert.ok(!goTimeAfter(a, b));
    assert.equal(formatGoTime(b), '2025-01-02 00:00:01.5 +0000 UTC');
  });
});
