/**
 * The daemon's garbage-collector settings and one full collection after each full sync.
 *
 * A full sync at 10,000 Services allocates ~550 MB, of which ~110 MB outlives the young generation
 * (split rules, chain contents, restore input); most of it is garbage when the sync ends. V8 runs a
 * full collection only when the old generation reaches a limit set from the last one, by default up
 * to 4x the live size with a 4 GB heap maximum, so the daemon's RSS climbed 60-80 MB above its live
 * heap during and after the sync (docs/benchmarks.md, "Daemon memory").
 * - tuneHeapForDaemon(): each limit only HEAP_GROWING_PERCENT above the live size. More full
 *   collections in a big sync (each tens of ms at 10k), a lower peak.
 * - collectGarbage() after each full sync (seldom: at start, after a flush, once an hour): the sync's
 *   garbage goes at once. Through the inspector protocol's HeapProfiler.collectGarbage, so no
 *   `--expose-gc` flag is needed.
 * - Under churn (partial syncs back to back, no idle time for V8's memory reducer) the committed
 *   heap crept up between the rare full collections (10,000 Services, 20 changes/s: RSS 210 -> 320 MB
 *   in 12 minutes). GarbageSchedule also collects after a partial sync once the last collection is
 *   CHURN_COLLECT_MS old, and 30x as old as it took: at most one full collection a minute (at 10k
 *   two memory-reducing mark-compacts, 0.5-2 s in all on a loaded 2-core machine), none when idle.
 * Both are set from the program, so they hold however the daemon is started (bin/kube-proxy.js,
 * the image, the DaemonSet). NODE_OPTIONS=--heap-growing-percent=N on the command line wins.
 */
import { Session } from 'node:inspector';
import { setFlagsFromString } from 'node:v8';

/** The old generation's limit after a full collection: live size + this percentage. */
export const HEAP_GROWING_PERCENT = 25;

/** Sets the heap's growing factor for the daemon (not for the one-shot commands); a flag given to node wins. */
export function tuneHeapForDaemon(execArgv: readonly string[] = process.execArgv): void {
  const given = [...execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
    /^--heap[-_]growing[-_]percent/.test(a),
  );
  if (!given) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** Under churn, the least time between two full collections after partial syncs. */
export const CHURN_COLLECT_MS = 60_000;
/** Under churn, the scheduled collections take at most ~1/this of the time (a big heap: a longer gap). */
export const CHURN_COLLECT_SHARE = 30;

/**
 * When the daemon runs a full collection after a sync: after every full sync, and after a partial
 * one when the last collection is at least `minGapMs` old, and at least CHURN_COLLECT_SHARE times as
 * old as that collection took (at 10,000 Services one takes 0.5-2 s on a loaded 2-core machine: two
 * memory-reducing mark-compacts; at 50,000 several times that). Pure (the clock is passed in).
 */
export class GarbageSchedule {
  private last = -Infinity;
  private lastTookMs = 0;
  /** `minGapMs` Infinity: only after full syncs. */
  constructor(private readonly minGapMs = CHURN_COLLECT_MS) {}

  /** Whether to collect after a sync that ended at `now` (ms); records the collection when it says yes. */
  afterSync(full: boolean, now: number): boolean {
    const gap = Math.max(this.minGapMs, this.lastTookMs * CHURN_COLLECT_SHARE);
    if (!full && (gap === Infinity || now - this.last < gap)) return false;
    this.last = now;
    return true;
  }

  /** How long the collection afterSync asked for took. */
  took(ms: number): void {
    this.lastTookMs = ms;
  }
}

let session: Session | undefined;

/** One full garbage collection of this process; never throws (false when the inspector is unavailable). */
export function collectGarbage(): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      if (!session) {
        session = new Session();
        session.connect();
      }
      session.post('HeapProfiler.collectGarbage', (err) => {
        resolve(err === null || err === undefined);
      });
    } catch {
      resolve(false);
    }
  });
}
