/**
 * The sync loop (upstream syncProxyRules' frame, minus the rendering): feeds source events to the
 * StateTracker, and through the BoundedFrequencyRunner asks each family's proxier to program the
 * state built for it. Decides full vs partial syncs; records outcomes through SyncHooks.
 */
import type { IPFamily } from '../model/types.js';
import type { Proxier, SyncOutcome } from '../backends/backend.js';
import type { DriftFinding } from '../backends/drift.js';
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
  /** A drift check of `family` found differences (a full sync follows). */
  drift?: (family: IPFamily, findings: readonly DriftFinding[]) => void;
  /** The priority Services were programmed alone, before the first full sync of `family`. */
  prioritySynced?: (family: IPFamily, services: readonly string[], durationMs: number) => void;
  failed?: (family: IPFamily, full: boolean, err: unknown) => void;
  /** Pending change counts after an event or a sync. */
  pending?: (counts: { services: number; endpoints: number }) => void;
  /** A change was recorded (for *_changes_total). */
  changeRecorded?: (kind: 'service' | 'endpoints') => void;
}

export interface SyncLoopOptions {
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  /**
   * A failed sync is retried after this long, doubling with each consecutive failure up to
   * syncPeriodMs. Absent: after syncPeriodMs, as upstream.
   */
  readonly retryBackoffInitialMs?: number;
  readonly fullSyncPeriodMs?: number;
  /** How often the runner syncs with nothing queued (default: fullSyncPeriodMs). Not necessarily a full sync. */
  readonly periodicSyncMs?: number;
  readonly timers?: TimerApi;
  /**
   * "ns/name" of the Services to program alone, in one small sync, before the first full sync of
   * each family (see proxy/priority.ts); empty or absent: no such sync.
   */
  readonly priorityServices?: ReadonlySet<string>;
  /**
   * How often each proxier's checkDrift() runs (the mode's syncPeriod); 0 or absent: never. A check
   * never overlaps a sync, and a round that would is skipped.
   */
  readonly driftCheckPeriodMs?: number;
}

export class SyncLoop {
  private readonly runner: BoundedFrequencyRunner;
  private readonly needFull = new Map<IPFamily, boolean>();
  private readonly lastFull = new Map<IPFamily, number>();
  private readonly timers: TimerApi;
  private initialized = false;
  private readonly families: IPFamily[];
  private driftTimer: unknown;
  /** The drift check in progress: syncs wait for it. */
  private drifting: Promise<void> | undefined;
  private syncing = false;
  private stopped = false;
  /** Families whose priority sync has not been tried yet (it is tried once, on the first sync). */
  private readonly priorityDue = new Set<IPFamily>();

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
    if ((opts.priorityServices?.size ?? 0) > 0) for (const f of this.families) this.priorityDue.add(f);
    this.runner = new BoundedFrequencyRunner(() => this.syncAll(), {
      minIntervalMs: opts.minSyncPeriodMs,
      retryIntervalMs: opts.syncPeriodMs,
      ...(opts.retryBackoffInitialMs !== undefined
        ? { retryBackoffInitialMs: opts.retryBackoffInitialMs }
        : {}),
      maxIntervalMs: Math.max(
        opts.periodicSyncMs ?? opts.fullSyncPeriodMs ?? FULL_SYNC_PERIOD_MS,
        opts.minSyncPeriodMs,
      ),
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
    this.armDriftCheck();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.driftTimer !== undefined) this.timers.clearTimeout(this.driftTimer);
    this.driftTimer = undefined;
    await this.drifting;
    await this.runner.stop();
  }

  /**
   * Runs every proxier's drift check once, unless a sync is running (tests call it directly; the
   * timer calls it every driftCheckPeriodMs). Findings are logged one warning each and reported
   * through hooks.drift; any finding forces a full sync of every family.
   */
  async checkDrift(): Promise<void> {
    if (!this.initialized || this.syncing || this.drifting) return;
    const run = async (): Promise<void> => {
      let found = false;
      for (const family of this.families) {
        const p = this.proxiers.get(family)!;
        if (!p.checkDrift) continue;
        let findings: readonly DriftFinding[];
        try {
          findings = await p.checkDrift();
        } catch (err) {
          this.logger.warn(
            { family, err: err instanceof Error ? err.message : String(err) },
            'drift check failed; trying again next period',
          );
          continue;
        }
        if (findings.length === 0) continue;
        found = true;
        for (const f of findings)
          this.logger.warn(
            { family, object: f.object, drift: f.message },
            `drift: ${f.message}; repairing with a full sync`,
          );
        this.hooks.drift?.(family, findings);
      }
      if (found) this.forceFullSync();
    };
    this.drifting = run().finally(() => {
      this.drifting = undefined;
    });
    await this.drifting;
  }

  private armDriftCheck(): void {
    const period = this.opts.driftCheckPeriodMs ?? 0;
    if (period <= 0 || this.stopped) return;
    this.driftTimer = this.timers.setTimeout(() => {
      this.driftTimer = undefined;
      void this.checkDrift().finally(() => {
        this.armDriftCheck();
      });
    }, period);
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
    await this.drifting;
    this.syncing = true;
    try {
      await this.syncFamilies();
    } finally {
      this.syncing = false;
    }
  }

  private async syncFamilies(): Promise<void> {
    let firstErr: unknown;
    for (const family of this.families) {
      const proxier = this.proxiers.get(family)!;
      const start = this.timers.now();
      const full =
        this.needFull.get(family) === true ||
        this.tracker.topologyChanged(family) ||
        start - (this.lastFull.get(family) ?? -Infinity) >
          (this.opts.fullSyncPeriodMs ?? FULL_SYNC_PERIOD_MS);
      // The priority Services go first, before the whole state is even built (10k Services: ~0.2 s).
      if (this.priorityDue.delete(family)) await this.syncPriority(family, proxier);
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
          { family, full, err, retryInMs: this.runner.nextRetryDelayMs() },
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

  /**
   * Programs the priority Services alone, before the bulk of the first sync. Skipped when the
   * proxier finds rules of an earlier run in the kernel: they already serve every Service, and a
   * sync of a small state would remove the others until the bulk lands. Never fails the sync: on
   * any error the bulk sync simply follows.
   */
  private async syncPriority(family: IPFamily, proxier: Proxier): Promise<void> {
    const names = this.opts.priorityServices;
    if (!names) return;
    try {
      if (proxier.hasProgrammedRules && (await proxier.hasProgrammedRules())) {
        this.logger.info({ family }, 'rules of an earlier run are in place; no separate priority sync');
        return;
      }
      const small = this.tracker.buildSubset(family, names);
      if (!small) return;
      const start = this.timers.now();
      await proxier.sync(small, true);
      const ms = this.timers.now() - start;
      const services = [...small.changedServices].sort();
      this.logger.info({ family, services, ms }, 'priority services programmed; programming the rest');
      this.hooks.prioritySynced?.(family, services, ms);
    } catch (err) {
      this.logger.warn(
        { family, err: err instanceof Error ? err.message : String(err) },
        'priority sync failed; the full sync follows',
      );
    }
  }
}
