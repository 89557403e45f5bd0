/**
 * Settings of our own (not upstream's) that config/ validates and proxy/ uses: the priority
 * Services' names and the IPVS health check's options. Pure.
 */

/** Options of --ipvs-health-check=tcp. */
export interface HealthCheckOptions {
  /** Time between two probes of one target. */
  readonly intervalMs: number;
  /** A connect that takes longer than this fails. */
  readonly timeoutMs: number;
  /** Consecutive failed probes that make a healthy target unhealthy. */
  readonly fall: number;
  /** Consecutive successful probes that make an unhealthy target healthy again. */
  readonly rise: number;
}

/**
 * Defaults after keepalived's TCP_CHECK: connect_timeout 5 s; one failed check plus its one retry
 * (retry 1) takes a server down, so fall 2; one good check brings it back, so rise 1. The interval
 * is ours: keepalived's delay_loop (60 s) is far too slow for pods that come and go; 5 s.
 */
export const DEFAULT_HEALTH_CHECK: HealthCheckOptions = {
  intervalMs: 5_000,
  timeoutMs: 5_000,
  fall: 2,
  rise: 1,
};

/** Checks options; returns the reasons they are invalid (empty when valid). */
export function healthCheckOptionErrors(o: HealthCheckOptions): string[] {
  const out: string[] = [];
  if (!(Number.isFinite(o.intervalMs) && o.intervalMs > 0)) out.push('interval must be greater than 0');
  if (!(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) out.push('timeout must be greater than 0');
  if (o.timeoutMs > o.intervalMs) out.push('timeout must not exceed the interval');
  if (!(Number.isInteger(o.fall) && o.fall >= 1)) out.push('fall must be an integer >= 1');
  if (!(Number.isInteger(o.rise) && o.rise >= 1)) out.push('rise must be an integer >= 1');
  return out;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Checks one --priority-services entry ("namespace/name", both DNS-1123 labels, as Services are
 * named). Returns undefined when valid, else the reason (for a one-line error naming the entry).
 */
export function priorityServiceError(entry: string): string | undefined {
  const parts = entry.split('/');
  if (parts.length !== 2) return 'must be namespace/name';
  const [ns, name] = parts as [string, string];
  if (!NAME.test(ns) || ns.length > 63)
    return `namespace ${JSON.stringify(ns)} is not a valid DNS-1123 label`;
  if (!NAME.test(name) || name.length > 63)
    return `name ${JSON.stringify(name)} is not a valid DNS-1123 label`;
  return undefined;
}
