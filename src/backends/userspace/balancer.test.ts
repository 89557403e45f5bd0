import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Balancer, type BalancerEndpoint } from './balancer.js';

function eps(n: number, base = 1): BalancerEndpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: `10.0.0.${base + i}`,
    port: 80,
    endpoint: `10.0.0.${base + i}:80`,
  }));
}

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('Balancer round robin', () => {
  it('returns undefined with no endpoints', () => {
    const b = new Balancer<BalancerEndpoint>([], { algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
    assert.equal(b.next('1.1.1.1'), undefined);
  });

  it('cycles in list order', () => {
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
    const picks = Array.from({ length: 6 }, () => b.next('1.1.1.1')?.endpoint);
    assert.deepEqual(picks, [
      '10.0.0.1:80',
      '10.0.0.2:80',
      '10.0.0.3:80',
      '10.0.0.1:80',
      '10.0.0.2:80',
      '10.0.0.3:80',
    ]);
  });

  it('property: k*n picks over n endpoints choose each exactly k times', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 30 }),
        (n, k, warmup) => {
          const b = new Balancer(eps(n), { algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
          for (let i = 0; i < warmup; i++) b.next(`c${i}`);
          const counts = new Map<string, number>();
          for (let i = 0; i < k * n; i++) {
            const e = b.next(`c${i}`)!.endpoint;
            counts.set(e, (counts.get(e) ?? 0) + 1);
          }
          assert.equal(counts.size, n);
          for (const c of counts.values()) assert.equal(c, k);
        },
      ),
    );
  });

  it('keeps its position across an update: the endpoint due next stays next', () => {
    const b = new Balancer(eps(4), { algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
    b.next('x'); // .1
    b.next('x'); // .2 ; next due .3
    b.update([...eps(4), ...eps(1, 9)].filter((e) => e.endpoint !== '10.0.0.1:80'));
    assert.equal(b.next('x')?.endpoint, '10.0.0.3:80');
  });

  it('skips excluded endpoints (connect retry) and gives up when all are excluded', () => {
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
    assert.equal(b.next('x', new Set(['10.0.0.1:80']))?.endpoint, '10.0.0.2:80');
    assert.equal(b.next('x', new Set(eps(3).map((e) => e.endpoint))), undefined);
  });

  it('property: removed endpoints are never chosen', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 0, maxLength: 10 }),
        fc.boolean(),
        fc.boolean(),
        (a, c, sticky, lc) => {
          const mk = (xs: number[]): BalancerEndpoint[] =>
            [...new Set(xs)].sort((p, q) => p - q).flatMap((x) => eps(1, x));
          const b = new Balancer(mk(a), {
            algorithm: lc ? 'least-connections' : 'round-robin',
            stickyMaxAgeSeconds: sticky ? 60 : 0,
          });
          for (let i = 0; i < 20; i++) {
            const e = b.next(`client${i % 3}`);
            if (e) b.connectionOpened(e.endpoint);
          }
          const now = mk(c);
          b.update(now);
          const allowed = new Set(now.map((e) => e.endpoint));
          for (let i = 0; i < 30; i++) {
            const e = b.next(`client${i % 5}`);
            if (now.length === 0) assert.equal(e, undefined);
            else assert.ok(e && allowed.has(e.endpoint), `chose ${e?.endpoint}`);
          }
        },
      ),
    );
  });
});

describe('Balancer ClientIP affinity', () => {
  it('sticks a client to its first endpoint while others rotate', () => {
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 10 });
    const first = b.next('1.1.1.1')!.endpoint;
    for (let i = 0; i < 10; i++) {
      b.next(`2.2.2.${i}`);
      assert.equal(b.next('1.1.1.1')?.endpoint, first);
    }
  });

  it('expires after stickyMaxAgeSeconds without use, and use refreshes it', () => {
    const c = clock();
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 10, now: c.now });
    const first = b.next('1.1.1.1')!.endpoint; // .1
    c.advance(9_000);
    assert.equal(b.next('1.1.1.1')?.endpoint, first);
    c.advance(9_000); // 18 s since first, 9 s since last use
    assert.equal(b.next('1.1.1.1')?.endpoint, first);
    c.advance(10_000);
    assert.notEqual(b.next('1.1.1.1')?.endpoint, first);
  });

  it('forgets expired entries on sweep', () => {
    const c = clock();
    const b = new Balancer(eps(2), { algorithm: 'round-robin', stickyMaxAgeSeconds: 1, now: c.now });
    for (let i = 0; i < 5; i++) b.next(`3.3.3.${i}`);
    assert.equal(b.affinityCount(), 5);
    c.advance(1_000);
    assert.equal(b.affinityCount(), 0);
  });

  it('update keeps entries whose endpoint survives and drops the others', () => {
    const b = new Balancer(eps(2), { algorithm: 'round-robin', stickyMaxAgeSeconds: 60 });
    assert.equal(b.next('a')?.endpoint, '10.0.0.1:80');
    assert.equal(b.next('b')?.endpoint, '10.0.0.2:80');
    b.update(eps(1, 2).concat(eps(1, 3))); // .2 and .3
    assert.equal(b.affinityCount(), 1);
    assert.equal(b.next('b')?.endpoint, '10.0.0.2:80');
    assert.notEqual(b.next('a')?.endpoint, '10.0.0.1:80');
  });

  it('re-pins a sticky client when its endpoint is excluded by a failed connect', () => {
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 60 });
    const first = b.next('a')!.endpoint;
    const second = b.next('a', new Set([first]))!.endpoint;
    assert.notEqual(second, first);
    assert.equal(b.next('a')?.endpoint, second);
  });

  it('configure with 0 turns affinity off', () => {
    const b = new Balancer(eps(3), { algorithm: 'round-robin', stickyMaxAgeSeconds: 60 });
    b.next('a');
    b.configure({ algorithm: 'round-robin', stickyMaxAgeSeconds: 0 });
    assert.equal(b.sticky, false);
    assert.equal(b.affinityCount(), 0);
    assert.deepEqual(
      [b.next('a'), b.next('a')].map((e) => e?.endpoint),
      ['10.0.0.2:80', '10.0.0.3:80'],
    );
  });
});

describe('Balancer least connections', () => {
  it('chooses the endpoint with fewest open connections', () => {
    const b = new Balancer(eps(3), { algorithm: 'least-connections', stickyMaxAgeSeconds: 0 });
    b.connectionOpened('10.0.0.1:80');
    b.connectionOpened('10.0.0.1:80');
    b.connectionOpened('10.0.0.2:80');
    assert.equal(b.next('x')?.endpoint, '10.0.0.3:80');
  });

  it('breaks ties round robin', () => {
    const b = new Balancer(eps(3), { algorithm: 'least-connections', stickyMaxAgeSeconds: 0 });
    const picks = Array.from({ length: 6 }, () => b.next('x')!.endpoint);
    assert.deepEqual(picks, [
      '10.0.0.1:80',
      '10.0.0.2:80',
      '10.0.0.3:80',
      '10.0.0.1:80',
      '10.0.0.2:80',
      '10.0.0.3:80',
    ]);
  });

  it('property: after any open/close history a new pick has the fewest open connections', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.nat(), { maxLength: 60 }), (n, closes) => {
        const b = new Balancer(eps(n), { algorithm: 'least-connections', stickyMaxAgeSeconds: 0 });
        const open: string[] = [];
        for (const c of closes) {
          const e = b.next('x')!.endpoint;
          b.connectionOpened(e);
          open.push(e);
          // Close one connection now and then; then one new pick must land on a minimum.
          if (c % 3 === 0 && open.length > 0) b.connectionClosed(open.splice(c % open.length, 1)[0]!);
        }
        const counts = eps(n).map((e) => b.activeConnections().get(e.endpoint) ?? 0);
        const min = Math.min(...counts);
        const pick = b.next('x')!.endpoint;
        assert.equal(b.activeConnections().get(pick) ?? 0, min);
      }),
    );
  });

  it('connectionClosed never goes below zero', () => {
    const b = new Balancer(eps(1), { algorithm: 'least-connections', stickyMaxAgeSeconds: 0 });
    b.connectionClosed('10.0.0.1:80');
    assert.equal(b.activeConnections().get('10.0.0.1:80'), undefined);
  });
});
