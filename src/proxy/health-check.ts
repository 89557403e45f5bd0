/**
 * Real-server health checking (the seed's "server health check, connection retry"; keepalived's
 * TCP_CHECK for IPVS): the pure part. A table of probe targets ("ip:port" of TCP endpoints), each
 * with a fall/rise state machine, and the schedule that probes each target at most once per
 * interval however many Services share it.
 *
 * Health never overrides readiness: only endpoints the desired state already uses are targets, and
 * an unhealthy one is drained (IPVS weight 0), never added.
 *
 * Pure: time comes in as numbers (ms), probes go out as lists of targets.
 */
import {
  DEFAULT_HEALTH_CHECK,
  healthCheckOptionErrors,
  type HealthCheckOptions,
} from '../model/extensions.js';

/** What a proxier sees of the health checker (app/health-checker.ts). */
export interface EndpointHealth {
  /** The endpoints ("ip:port" / "[ip]:port") to probe from now on: the TCP endpoints of the last sync. */
  setTargets(targets: Iterable<string>): void;
  /** False for a target that failed its fall count (unknown targets are healthy). */
  isHealthy(target: string): boolean;
  /** The targets currently unhealthy. */
  unhealthy(): ReadonlySet<string>;
}

export { DEFAULT_HEALTH_CHECK, healthCheckOptionErrors, type HealthCheckOptions };

/** One target's state: healthy or not, and the current run of equal results. */
export interface TargetHealth {
  readonly healthy: boolean;
  /** Consecutive results that disagree with `healthy` (failures while healthy, successes while not). */
  readonly streak: number;
}

/** A new target is healthy: it is ready, and a check must prove otherwise before it loses traffic. */
export const INITIAL_HEALTH: TargetHealth = { healthy: true, streak: 0 };

/** The fall/rise state machine: the state after one probe result. */
export function observe(
  h: TargetHealth,
  ok: boolean,
  o: Pick<HealthCheckOptions, 'fall' | 'rise'>,
): TargetHealth {
  if (ok === h.healthy) return h.streak === 0 ? h : { healthy: h.healthy, streak: 0 };
  const streak = h.streak + 1;
  if (streak >= (h.healthy ? o.fall : o.rise)) return { healthy: !h.healthy, streak: 0 };
  return { healthy: h.healthy, streak };
}

/** A change of one target's health, for the log line and the sync it triggers. */
export interface HealthChange {
  readonly target: string;
  readonly healthy: boolean;
}

interface Entry {
  health: TargetHealth;
  /** When its last probe started (ms); -Infinity before the first. */
  lastProbe: number;
  inFlight: boolean;
}

/** Every target's health and probe schedule. */
export class HealthTable {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: HealthCheckOptions) {}

  /**
   * Replaces the set of targets (a sync's endpoints). New ones start healthy and are due at once;
   * ones no longer wanted are forgotten (with their state: an endpoint that comes back starts over).
   */
  setTargets(targets: Iterable<string>): void {
    const want = new Set(targets);
    for (const t of this.entries.keys()) if (!want.has(t)) this.entries.delete(t);
    for (const t of want)
      if (!this.entries.has(t))
        this.entries.set(t, { health: INITIAL_HEALTH, lastProbe: -Infinity, inFlight: false });
  }

  /**
   * The targets to probe now (at most once per interval each, never two probes of one target at
   * once), marked as in flight. Call record() for each.
   */
  due(now: number): string[] {
    const out: string[] = [];
    for (const [t, e] of this.entries) {
      if (e.inFlight || now - e.lastProbe < this.o.intervalMs) continue;
      e.inFlight = true;
      e.lastProbe = now;
      out.push(t);
    }
    return out;
  }

  /** Records one probe's result; returns the change when the target's health flipped. */
  record(target: string, ok: boolean): HealthChange | undefined {
    const e = this.entries.get(target);
    if (!e) return undefined; // forgotten while the probe ran
    e.inFlight = false;
    const next = observe(e.health, ok, this.o);
    const flipped = next.healthy !== e.health.healthy;
    e.health = next;
    return flipped ? { target, healthy: next.healthy } : undefined;
  }

  /** False only for a known target that failed its fall count; unknown targets are healthy. */
  isHealthy(target: string): boolean {
    return this.entries.get(target)?.health.healthy ?? true;
  }

  /** The unhealthy targets (a fresh set). */
  unhealthy(): Set<string> {
    const out = new Set<string>();
    for (const [t, e] of this.entries) if (!e.health.healthy) out.add(t);
    return out;
  }

  /** Counts for the health gauge. */
  counts(): { healthy: number; unhealthy: number } {
    let unhealthy = 0;
    for (const e of this.entries.values()) if (!e.health.healthy) unhealthy++;
    return { healthy: this.entries.size - unhealthy, unhealthy };
  }

  /** When the next probe is due (ms), or undefined when there are no targets. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      if (e.inFlight) continue;
      const at = e.lastProbe + this.o.intervalMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }
}
