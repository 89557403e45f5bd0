import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedFrequencyRunner, type TimerApi } from './runner.js';

/** A fake clock: timers fire only when advance() passes their due time. */
class FakeTimers implements TimerApi {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { due: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Moves time forward, firing due timers in order and letting async work settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = [...this.timers.entries()].sort((a, b) => a[1].due - b[1].due)[0];
      if (!next || next[1].due > end) break;
      this.t = Math.max(this.t, next[1].due);
      this.timers.delete(next[0]);
      next[1].fn();
    }
    this.t = Math.max(this.t, end);
    await new Promise((r) => setImmediate(r));
  }
}

function setup(
  opts: {
    min?: number;
    retry?: number;
    backoff?: number;
    max?: number;
    fail?: () => boolean;
    durationMs?: number;
  } = {},
) {
  const timers = new FakeTimers();
  const runs: number[] = [];
  const r = new BoundedFrequencyRunner(
    () => {
      runs.push(timers.now());
      if (opts.durationMs) timers.t += opts.durationMs;
      return opts.fail?.() ? Promise.reject(new Error('sync failed')) : Promise.resolve();
    },
    {
      minIntervalMs: opts.min ?? 1000,
      retryIntervalMs: opts.retry ?? 30000,
      ...(opts.backoff !== undefined ? { retryBackoffInitialMs: opts.backoff } : {}),
      maxIntervalMs: opts.max ?? 3600000,
      timers,
      onError: () => {},
    },
  );
  r.start();
  return { timers, runs, r };
}

test('the first request runs at once; requests within minInterval coalesce into one run', async () => {
  const { timers, runs, r } = setup();
  r.run();
  await timers.advance(0);
  assert.deepEqual(runs, [0]);
  for (let i = 0; i < 10; i++) {
    r.run();
    await timers.advance(50);
  }
  assert.deepEqual(runs, [0], 'no run before minInterval');
  await timers.advance(1000);
  assert.deepEqual(runs, [0, 1000], 'one coalesced run at minInterval after the previous run');
});

test('minInterval counts from the end of the previous run', async () => {
  const { timers, runs, r } = setup({ durationMs: 300 });
  r.run();
  await timers.advance(0);
  r.run();
  await timers.advance(1200);
  assert.deepEqual(runs, [0, 1300]);
});

test('a failed run is retried after retryInterval even without new requests', async () => {
  let failures = 1;
  const { timers, runs, r } = setup({ retry: 5000, fail: () => failures-- > 0 });
  r.run();
  await timers.advance(0);
  await timers.advance(4999);
  assert.equal(runs.length, 1);
  await timers.advance(1);
  assert.deepEqual(runs, [0, 5000]);
  await timers.advance(100000);
  assert.equal(runs.length, 2, 'no more retries after success');
});

test('with a backoff, retries come after 1, 2, 4 ... s up to retryInterval, and a success starts over', async () => {
  let failing = true;
  const { timers, runs, r } = setup({ min: 0, retry: 5000, backoff: 1000, fail: () => failing });
  r.run();
  await timers.advance(0);
  await timers.advance(20000);
  // Failures at 0, 1000 (+1 s), 3000 (+2 s), 7000 (+4 s), then every 5 s (the cap).
  assert.deepEqual(runs, [0, 1000, 3000, 7000, 12000, 17000]);
  failing = false;
  await timers.advance(5000);
  assert.deepEqual(runs.slice(-1), [22000], 'the next retry succeeds');
  failing = true;
  r.run();
  await timers.advance(0);
  await timers.advance(1000);
  assert.deepEqual(runs.slice(-2), [25000, 26000], 'after a success the first retry is 1 s again');
  assert.equal(
    r.nextRetryDelayMs(),
    4000,
    'two failures since: the next retry comes 4 s after the next failure',
  );
});

test('runs at least every maxInterval', async () => {
  const { timers, runs } = setup({ max: 10000 });
  await timers.advance(25000);
  assert.deepEqual(runs, [10000, 20000]);
});

test('maxInterval < minInterval is rejected, naming both', () => {
  assert.throws(
    () =>
      new BoundedFrequencyRunner(async () => {}, { minIntervalMs: 10, retryIntervalMs: 1, maxIntervalMs: 5 }),
    /maxIntervalMs \(5\) must be >= minIntervalMs \(10\)/,
  );
});

test('stop() waits for an in-flight run and prevents further runs', async () => {
  const { timers, runs, r } = setup({ min: 0 });
  r.run();
  await timers.advance(0);
  await r.stop();
  r.run();
  await timers.advance(100000);
  assert.deepEqual(runs, [0]);
});
