import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PortAllocator } from './port-allocator.js';

describe('PortAllocator', () => {
  it('hands out the range in order, per protocol', () => {
    const a = new PortAllocator({ min: 40000, max: 40002 });
    assert.deepEqual([a.reserve('TCP'), a.reserve('TCP'), a.reserve('UDP')], [40000, 40001, 40000]);
    assert.equal(a.isReserved('TCP', 40001), true);
    assert.equal(a.isReserved('UDP', 40001), false);
  });

  it('returns undefined when the range is exhausted, and reuses a released port', () => {
    const a = new PortAllocator({ min: 50, max: 51 });
    assert.equal(a.reserve('TCP'), 50);
    assert.equal(a.reserve('TCP'), 51);
    assert.equal(a.reserve('TCP'), undefined);
    a.release('TCP', 50);
    assert.equal(a.reserve('TCP'), 50);
  });

  it('does not reuse a released port at once while others are free (round robin)', () => {
    const a = new PortAllocator({ min: 10, max: 12 });
    assert.equal(a.reserve('TCP'), 10);
    a.release('TCP', 10);
    assert.equal(a.reserve('TCP'), 11);
    assert.equal(a.reserve('TCP'), 12);
    assert.equal(a.reserve('TCP'), 10);
  });

  it('skips ports the caller found busy', () => {
    const a = new PortAllocator({ min: 1, max: 3 });
    assert.equal(a.reserve('UDP', new Set([1, 2])), 3);
    assert.equal(a.reserve('UDP', new Set([1, 2])), undefined);
  });

  it('releasing a port it never reserved is a no-op', () => {
    const a = new PortAllocator({ min: 1, max: 1 });
    a.release('TCP', 9999);
    assert.equal(a.reserve('TCP'), 1);
    assert.match(a.describe(), /^proxy port range 1-1$/);
  });

  it('never hands out a port twice or outside the range (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65000 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.tuple(fc.constantFrom('TCP', 'UDP'), fc.boolean(), fc.nat()), { maxLength: 60 }),
        (min, extra, ops) => {
          const max = min + extra;
          const a = new PortAllocator({ min, max });
          const held = new Map<string, Set<number>>([
            ['TCP', new Set()],
            ['UDP', new Set()],
          ]);
          for (const [proto, doReserve, pick] of ops) {
            const mine = held.get(proto)!;
            if (doReserve || mine.size === 0) {
              const p = a.reserve(proto);
              if (p === undefined) {
                assert.equal(mine.size, max - min + 1);
                continue;
              }
              assert.ok(p >= min && p <= max);
              assert.equal(mine.has(p), false);
              mine.add(p);
            } else {
              const p = [...mine][pick % mine.size]!;
              a.release(proto, p);
              mine.delete(p);
            }
          }
        },
      ),
    );
  });
});
