/**
 * Go-compatible time values and their text forms. kube-proxy's health bodies print Go `time.Time`
 * values, so clients that parse them (load balancers, scripts written against upstream) expect Go's
 * exact shapes: `Time.String()` for the legacy body and RFC 3339 with nanoseconds for the JSON body.
 */

/**
 * An instant as Go's time.Time holds it: wall-clock nanoseconds since the Unix epoch, plus an
 * optional monotonic reading (nanoseconds since process start) that only `time.Now()` values carry.
 */
export interface GoInstant {
  readonly epochNs: bigint;
  /** Present only for readings of the real clock, as in Go. */
  readonly monoNs?: bigint;
}

/** Something that tells the time; tests inject a fake one. */
export interface Clock {
  now(): GoInstant;
}

/** Go's zero time.Time (0001-01-01 00:00:00 UTC), which upstream prints when nothing was recorded. */
export const ZERO_GO_TIME: GoInstant = { epochNs: -62135596800n * 1_000_000_000n };

const NS_PER_S = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

// Captured once so later readings need only the (monotonic, nanosecond) hrtime delta.
const hrtimeAtLoad = process.hrtime.bigint();
const uptimeNsAtLoad = BigInt(Math.round(process.uptime() * 1e9));

/**
 * The real clock. Wall time comes from Date.now() so it follows clock adjustments as Go's does; it
 * has only millisecond resolution, so the sub-millisecond digits are taken from hrtime to keep the
 * printed shape (nine fraction digits, as Go prints on Linux) rather than a run of zeros.
 */
export const realClock: Clock = {
  now(): GoInstant {
    const hr = process.hrtime.bigint();
    return {
      epochNs: BigInt(Date.now()) * NS_PER_MS + (hr % NS_PER_MS),
      monoNs: uptimeNsAtLoad + (hr - hrtimeAtLoad),
    };
  },
};

/** A manually driven clock for tests; its instants carry no monotonic reading (like Go's fake clock). */
export interface FakeClock extends Clock {
  /** Moves time forward by `ms` milliseconds (may be fractional). */
  advance(ms: number): void;
  /** Sets the wall time to `epochMs` milliseconds since the epoch. */
  set(epochMs: number): void;
}

/** Creates a FakeClock starting at `epochMs` (milliseconds since the epoch). */
export function createFakeClock(epochMs: number): FakeClock {
  let ns = msToNs(epochMs);
  return {
    now: () => ({ epochNs: ns }),
    advance: (ms) => {
      ns += msToNs(ms);
    },
    set: (ms) => {
      ns = msToNs(ms);
    },
  };
}

function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/** Milliseconds from `earlier` to `later`; uses the monotonic readings when both have one, as Go's Sub does. */
export function goTimeSubMs(later: GoInstant, earlier: GoInstant): number {
  const diff =
    later.monoNs !== undefined && earlier.monoNs !== undefined
      ? later.monoNs - earlier.monoNs
      : later.epochNs - earlier.epochNs;
  return Number(diff) / 1e6;
}

/** True when `a` is strictly after `b` (Go's Time.After). */
export function goTimeAfter(a: GoInstant, b: GoInstant): boolean {
  return goTimeSubMs(a, b) > 0;
}

interface Civil {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
}

// Splits epoch nanoseconds into UTC calendar fields; works for any year (Go's zero time is year 1,
// which JavaScript's Date constructor would misread as 1901).
function toCivil(epochNs: bigint): Civil {
  let secs = epochNs / NS_PER_S;
  let nanos = epochNs % NS_PER_S;
  if (nanos < 0n) {
    nanos += NS_PER_S;
    secs -= 1n;
  }
  let days = secs / 86400n;
  let secOfDay = secs % 86400n;
  if (secOfDay < 0n) {
    secOfDay += 86400n;
    days -= 1n;
  }
  // Days-to-civil (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
  const z = Number(days) + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const sod = Number(secOfDay);
  return {
    year,
    month,
    day,
    hour: Math.floor(sod / 3600),
    minute: Math.floor((sod % 3600) / 60),
    second: sod % 60,
    nanos: Number(nanos),
  };
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

// Go's ".999999999" layout element: up to nine digits, trailing zeros dropped, no dot when zero.
function trimmedFraction(nanos: number): string {
  if (nanos === 0) return '';
  return '.' + pad(nanos, 9).replace(/0+$/, '');
}

function dateTime(c: Civil, sep: string): string {
  return (
    `${pad(c.year, 4)}-${pad(c.month, 2)}-${pad(c.day, 2)}${sep}` +
    `${pad(c.hour, 2)}:${pad(c.minute, 2)}:${pad(c.second, 2)}${trimmedFraction(c.nanos)}`
  );
}

/**
 * Formats `t` exactly as Go's `time.Time.String()` does for a UTC time:
 * `2006-01-02 15:04:05.999999999 +0000 UTC`, followed by ` m=±<s>.<9 digits>` when `t` carries a
 * monotonic reading. We always print UTC (kube-proxy runs with TZ unset in its container).
 */
export function formatGoTime(t: GoInstant): string {
  let s = `${dateTime(toCivil(t.epochNs), ' ')} +0000 UTC`;
  if (t.monoNs !== undefined) {
    const neg = t.monoNs < 0n;
    const abs = neg ? -t.monoNs : t.monoNs;
    s += ` m=${neg ? '-' : '+'}${(abs / NS_PER_S).toString()}.${pad(Number(abs % NS_PER_S), 9)}`;
  }
  return s;
}

/** Formats `t` as Go's time.Time JSON encoding does (RFC 3339 with up to nine fraction digits, UTC "Z"). */
export function formatRFC3339Nano(t: GoInstant): string {
  return `${dateTime(toCivil(t.epochNs), 'T')}Z`;
}
