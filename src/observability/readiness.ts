/**
 * Readiness that means "programmed" (our /readyz; upstream has none, and its /healthz turns healthy
 * before the first sync: kubernetes/kubernetes#75890, #57109).
 *
 * Rule, per IP family the proxy runs:
 * - not ready until the family's first full sync since start has succeeded;
 * - then not ready while the data plane has been behind the desired state for longer than the
 *   timeout: a change queued (or a sync failed) and no successful sync of that family since.
 * The proxy is ready when every family it runs is ready; before the families are known (the
 * sources have not synced yet) it is not ready.
 *
 * "Behind for longer than the timeout" rather than "no sync within the timeout": the runner syncs
 * only when something changed (and hourly), so a quiet, correctly programmed node must stay ready.
 *
 * Pure state with an injected clock; proxy-health.ts serves it.
 */
import type { IPFamily } from '../model/types.js';
import { type Clock, type GoInstant, formatRFC3339Nano, goTimeSubMs } from './go-time.js';

/** One family's readiness, with the reason when not ready. */
export interface FamilyReadiness {
  readonly ready: boolean;
  /** Absent when ready. */
  readonly reason?: string;
  /** When the family last synced successfully (full or partial); absent before that. */
  readonly lastSynced?: GoInstant;
}

export interface Readiness {
  readonly ready: boolean;
  /** Set when no family is known yet. */
  readonly reason?: string;
  /** Per family, IPv4 then IPv6. */
  readonly status: ReadonlyMap<IPFamily, FamilyReadiness>;
}

interface FamilyState {
  firstFullDone: boolean;
  lastSynced?: GoInstant;
  /** Oldest instant since which the data plane is known to be behind (queued change or failure). */
  behindSince?: GoInstant;
  failures: number;
  lastError?: string;
}

const ORDER: readonly IPFamily[] = ['IPv4', 'IPv6'];
/** Error texts can be whole iptables-restore dumps; the body keeps the first line, shortened. */
const MAX_ERROR_CHARS = 200;

function shortError(err: unknown): string {
  const s = err instanceof Error ? err.message : String(err);
  const line = s.split('\n', 1)[0] ?? '';
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS)}…` : line;
}

/** Tracks sync outcomes per family and answers "is the data plane programmed?". */
export class ReadinessTracker {
  private readonly families = new Map<IPFamily, FamilyState>();

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: Clock,
  ) {}

  /** Declares the families the proxy runs (once the sources synced); each starts "waiting for the first sync". */
  expect(families: readonly IPFamily[]): void {
    for (const f of families)
      if (!this.families.has(f)) this.families.set(f, { firstFullDone: false, failures: 0 });
  }

  /** A change was queued for `family`: it is behind from now until its next successful sync. */
  queued(family: IPFamily): void {
    const s = this.families.get(family);
    if (s && s.behindSince === undefined) s.behindSince = this.clock.now();
  }

  /**
   * A sync of `family` succeeded. `full` marks a complete sync of the whole state (the first one
   * makes the family ready); a partial one (or the small priority sync) only refreshes it.
   */
  synced(family: IPFamily, full: boolean): void {
    const s = this.families.get(family);
    if (!s) return;
    if (full) s.firstFullDone = true;
    s.lastSynced = this.clock.now();
    s.behindSince = undefined;
    s.failures = 0;
    s.lastError = undefined;
  }

  /** A sync of `family` failed: it is behind (since now, unless it already was) and the error is kept. */
  failed(family: IPFamily, err: unknown): void {
    const s = this.families.get(family);
    if (!s) return;
    s.behindSince ??= this.clock.now();
    s.failures++;
    s.lastError = shortError(err);
  }

  /** The current readiness of every expected family, and overall. */
  readiness(): Readiness {
    const now = this.clock.now();
    const status = new Map<IPFamily, FamilyReadiness>();
    let ready = this.families.size > 0;
    for (const f of ORDER) {
      const s = this.families.get(f);
      if (!s) continue;
      const r = this.familyReadiness(s, now);
      if (!r.ready) ready = false;
      status.set(f, r);
    }
    if (this.families.size === 0)
      return { ready: false, reason: 'waiting for services, endpoint slices and the node to sync', status };
    return { ready, status };
  }

  private familyReadiness(s: FamilyState, now: GoInstant): FamilyReadiness {
    const base = s.lastSynced ? { lastSynced: s.lastSynced } : {};
    const failing = s.failures > 0 ? `last sync failed ${s.failures} times: ${s.lastError ?? ''}` : undefined;
    if (!s.firstFullDone) return { ready: false, reason: failing ?? 'waiting for the first sync', ...base };
    if (s.behindSince !== undefined && goTimeSubMs(now, s.behindSince) > this.timeoutMs) {
      return {
        ready: false,
        reason: failing ?? `stale since ${formatRFC3339Nano(s.behindSince)}`,
        ...base,
      };
    }
    return { ready: true, ...base };
  }
}

/** The JSON body of /readyz: `{"ready":false,"status":{"IPv4":{"ready":false,"reason":"…"}}}`. */
export function readinessBody(r: Readiness): string {
  const status: Record<string, unknown> = {};
  for (const [f, s] of r.status) {
    status[f] = {
      ready: s.ready,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(s.lastSynced ? { lastSynced: formatRFC3339Nano(s.lastSynced) } : {}),
    };
  }
  return JSON.stringify({ ready: r.ready, ...(r.reason !== undefined ? { reason: r.reason } : {}), status });
}
