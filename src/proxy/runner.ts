/**
 * Sync runner (upstream BoundedFrequencyRunner semantics): run requests coalesce into one pending
 * run; a run starts no sooner than minInterval after the previous run ended; a failed run is retried
 * after retryInterval (or, with retryBackoffInitialMs, after a delay that starts there and doubles
 * with each consecutive failure up to retryInterval); a run happens at least every maxInterval. Runs
 * never overlap.
 *
 * The clock and timers are injected so tests drive time by hand.
 */

export interface TimerApi {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: TimerApi = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => {
    clearTimeout(h as NodeJS.Timeout);
  },
};

export interface RunnerOptions {
  readonly minIntervalMs: number;
  readonly retryIntervalMs: number;
  /**
   * When set, the first retry after a success comes this soon, each further consecutive failure
   * doubles the delay, and retryIntervalMs caps it; a successful run starts over.
   */
  readonly retryBackoffInitialMs?: number;
  readonly maxIntervalMs: number;
  readonly timers?: TimerApi;
  /** Called with the error of a failed run (after which a retry is armed). */
  readonly onError?: (err: unknown) => void;
}

export class BoundedFrequencyRunner {
  private readonly timers: TimerApi;
  private pending = false;
  private running = false;
  private stopped = true;
  private lastEnd = -Infinity;
  private timer: unknown;
  private timerDue = Infinity;
  private retryDue = Infinity;
  /** Failed runs since the last successful one. */
  private failures = 0;
  private periodicDue = Infinity;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly opts: RunnerOptions,
  ) {
    if (opts.maxIntervalMs < opts.minIntervalMs) {
      throw new RangeError(
        `maxIntervalMs (${opts.maxIntervalMs}) must be >= minIntervalMs (${opts.minIntervalMs})`,
      );
    }
    this.timers = opts.timers ?? realTimers;
  }

  /** Starts the loop: the periodic timer is armed; nothing runs until requested or due. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.periodicDue = this.timers.now() + this.opts.maxIntervalMs;
    this.schedule();
  }

  /** Requests a run; many requests before it starts collapse into one. */
  run(): void {
    this.pending = true;
    this.schedule();
  }

  /** Stops timers; a run in progress finishes; resolves when idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await this.idle();
  }

  /** Resolves when no run is in progress or pending (for tests and shutdown). */
  idle(): Promise<void> {
    if (!this.running && (!this.pending || this.stopped)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** How long after the run in progress a retry would come, should it fail. */
  nextRetryDelayMs(): number {
    const cap = this.opts.retryIntervalMs;
    const first = this.opts.retryBackoffInitialMs;
    if (first === undefined) return cap;
    return Math.min(first * 2 ** Math.min(this.failures, 30), cap);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Arms one timer for the earliest thing that should happen next. */
  private schedule(): void {
    if (this.stopped || this.running) return;
    const earliestStart = this.lastEnd + this.opts.minIntervalMs;
    let due = Math.min(this.retryDue, this.periodicDue);
    if (this.pending) due = Math.min(due, this.timers.now());
    due = Math.max(due, earliestStart);
    if (due === this.timerDue && this.timer !== undefined) return;
    this.clearTimer();
    if (due === Infinity) return;
    this.timerDue = due;
    this.timer = this.timers.setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Infinity;
        void this.tick();
      },
      Math.max(0, due - this.timers.now()),
    );
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    this.pending = false;
    this.retryDue = Infinity;
    try {
      await this.fn();
      this.failures = 0;
    } catch (err) {
      this.retryDue = this.timers.now() + this.nextRetryDelayMs();
      this.failures++;
      this.opts.onError?.(err);
    } finally {
      this.running = false;
      this.lastEnd = this.timers.now();
      this.periodicDue = this.lastEnd + this.opts.maxIntervalMs;
      if (!this.pending || this.stopped) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const r of w) r();
      }
      this.schedule();
    }
  }
}
