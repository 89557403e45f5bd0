/**
 * The sync loop (upstream syncProxyRules' frame, minus the rendering): feeds source events to the
 * StateTracker, and through the BoundedFrequencyRunner asks each family's proxier to program the
 * state built for it. Decides full vs partial syncs; records outcomes through SyncHooks.
 */
import type { IPFamily } from '../model/types.js';
import type { Proxier, SyncOutcome } from '../backends/backend.js';
import type { Logger } from '../observability/logger.js';
import type { SourceEvent } from '../sources/source.js';
import { BoundedFrequencyRunner, realTimers, type TimerApi } from '../proxy/runner.js';
import type { StateTracker } from '../proxy/state-tracker.js';
import type { DesiredState } from '../proxy/types.js';

/** Upstream's FullSyncPeriod: a full resync at least this often. */
export const FULL_SYNC_PERIOD_MS = 3600_000;

export interface SyncReport {
  readonly family: IPFamily;
  readonly full: boolean;
  readonly durationMs: number;
  readonly state: DesiredState;
  readonly outcome: SyncOutcome;
  /** When the sync finished (ms since epoch). */
  readonly at: number;
}

/** Observers of the loop (metrics, health servers). They must not throw. */
export interface SyncHooks {
  /** A sync was requested for these families (upstream Sync(): QueuedUpdate + last_queued metric). */
  queued?: (families: readonly IPFamily[]) => void;
  /** The loop started: healthz counts as fresh until the first queued update times out. */
  started?: (families: readonly IPFamily[]) => void;
  synced?: (report: SyncReport) => void;
  failed?: (family: IPFamily, full: boolean, err: unknown) => void;
  /** Pending change counts after an event or a sync. */
  pending?: (counts: { services: number; endpoints: number }) => void;
  /** A change was recorded (for *_changes_total). */
  changeRecorded?: (kind: 'service' | 'endpoints') => void;
}

export interface SyncLoopOptions {
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly fullSyncPeriodMs?: number;
  readonly timers?: TimerApi;
}

export class SyncLoop {
  private readonly runner: BoundedFrequencyRunner;
  private readonly needFull = new Map<IPFamily, boolean>();
  private readonly lastFull = new Map<IPFamily, number>();
  private readonly timers: TimerApi;
  private initialized = false;
  private readonly families: IPFamily[];

  constructor(
    private readonly tracker: StateTracker,
    private readonly proxiers: ReadonlyMap<IPFamily, Proxier>,
    private readonly opts: SyncLoopOptions,
    private readonly hooks: SyncHooks,
    private readonly logger: Logger,
  ) {
    this.timers = opts.timers ?? realTimers;
    this.families = [...proxiers.keys()];
    for (const f of this.families) this.needFull.set(f, true);
    this.runner = new BoundedFrequencyRunner(() => this.syncAll(), {
      minIntervalMs: opts.minSyncPeriodMs,
      retryIntervalMs: opts.syncPeriodMs,
      maxIntervalMs: Math.max(opts.fullSyncPeriodMs ?? FULL_SYNC_PERIOD_MS, opts.minSyncPeriodMs),
      timers: this.timers,
      // Each family's failure was logged once in syncAll; the runner only schedules the retry.
      onError: () => {},
    });
  }

  /** Starts the runner. Nothing is programmed until the tracker is initialised. */
  start(): void {
    this.hooks.started?.(this.families);
    this.runner.start();
    this.maybeInitialized();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  /** Resolves when no sync is running or pending. */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  /** Source events enter here. */
  handleEvent(ev: SourceEvent): void {
    const changed = this.tracker.onEvent(ev);
    if (ev.type !== 'synced' && changed) {
      this.hooks.changeRecorded?.(ev.object.kind === 'EndpointSlice' ? 'endpoints' : 'service');
      this.hooks.pending?.(this.tracker.pendingCounts());
    }
    if (ev.type === 'synced') {
      this.maybeInitialized();
      return;
    }
    if (changed && this.initialized) this.requestSync();
  }

  /** Forces the next sync of every family to be full (topology change, canary gone). */
  forceFullSync(): void {
    for (const f of this.families) this.needFull.set(f, true);
    this.requestSync();
  }

  requestSync(): void {
    this.hooks.queued?.(this.families);
    this.runner.run();
  }

  private maybeInitialized(): void {
    if (this.initialized || !this.tracker.isInitialized()) return;
    this.initialized = true;
    this.logger.info(
      { families: this.families },
      'services and endpoint slices synced; programming the data plane',
    );
    this.requestSync();
  }

  private async syncAll(): Promise<void> {
    if (!this.initialized) return;
    let firstErr: unknown;
    for (const family of this.families) {
      const proxier = this.proxiers.get(family)!;
      const start = this.timers.now();
      const full =
        this.needFull.get(family) === true ||
        this.tracker.topologyChanged(family) ||
        start - (this.lastFull.get(family) ?? -Infinity) >
          (this.opts.fullSyncPeriodMs ?? FULL_SYNC_PERIOD_MS);
      const state = this.tracker.build(family);
      try {
        const outcome = await proxier.sync(state, full);
        this.tracker.commit(state);
        const at = this.timers.now();
        this.needFull.set(family, false);
        if (full) this.lastFull.set(family, at);
        this.logger.debug({ family, full, ms: at - start, changed: state.changedServices.size }, 'sync done');
        this.hooks.synced?.({ family, full, durationMs: at - start, state, outcome, at });
      } catch (err) {
        this.needFull.set(family, true);
        this.logger.error(
          { family, full, err, retryInMs: this.opts.syncPeriodMs },
          'sync failed; retrying with a full sync',
        );
        this.hooks.failed?.(family, full, err);
        firstErr ??= err;
      }
    }
    this.hooks.pending?.(this.tracker.pendingCounts());
    if (firstErr !== undefined)
      throw firstErr instanceof Error ? firstErr : new Error('sync failed', { cause: firstErr });
  }
}
