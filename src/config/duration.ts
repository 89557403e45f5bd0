/**
 * Go `time.Duration` text ("30s", "1m30s", "250ms", "1.5h", "0") to and from milliseconds.
 *
 * Parsing is exact: each component is accumulated in integer nanoseconds (bigint) as Go does, so
 * "1.1s" is 1100 ms, not 1100.0000000000002. Values outside Go's int64 nanosecond range are rejected
 * because upstream rejects them, and a config that works here must also work there.
 */

const NS_PER: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_NS = (1n << 63n) - 1n;

/**
 * Parses a Go duration string into milliseconds (fractional for sub-millisecond parts).
 * Accepts an optional sign, one or more `<decimal><unit>` components (units ns, us, µs, ms, s, m, h)
 * and the bare "0". Throws a RangeError naming the input when it is empty, malformed, has an unknown
 * unit, or overflows Go's int64 nanoseconds.
 */
export function parseGoDuration(text: string): number {
  const fail = (why: string): never => {
    throw new RangeError(`invalid duration ${JSON.stringify(text)}: ${why}`);
  };
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') fail('empty');
  let total = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const intPart = m?.[1] ?? '';
    const fracPart = m?.[2] ?? '';
    if (intPart === '' && fracPart === '') fail('expected a number');
    s = s.slice(m![0].length);
    const u = /^[^\d.]+/.exec(s);
    if (!u) fail('missing unit (use ns, us, ms, s, m or h)');
    const unit = NS_PER[u![0]];
    if (unit === undefined) fail(`unknown unit ${JSON.stringify(u![0])}`);
    s = s.slice(u![0].length);
    let v = BigInt(intPart === '' ? '0' : intPart) * unit!;
    if (fracPart !== '') {
      // Go truncates fractional nanoseconds; so do we.
      v += (BigInt(fracPart) * unit!) / 10n ** BigInt(fracPart.length);
    }
    total += v;
    if (total > MAX_NS) fail('out of range');
  }
  const ms = Number(total / 1_000_000n) + Number(total % 1_000_000n) / 1e6;
  return negative ? -ms : ms;
}

/**
 * Formats milliseconds the way Go's Duration.String does ("0s", "250ms", "1m30s", "1h0m0s",
 * "1.5µs"), so the output parses back with parseGoDuration to the same value (to nanosecond precision).
 * Throws a RangeError for non-finite input.
 */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format duration: ${ms} ms`);
  const neg = ms < 0;
  // Whole and fractional milliseconds separately: ms * 1e6 loses precision beyond 2^53 ns (~104 days).
  const abs = Math.abs(ms);
  const whole = Math.trunc(abs);
  const ns = BigInt(whole) * 1_000_000n + BigInt(Math.round((abs - whole) * 1e6));
  const sign = neg && ns !== 0n ? '-' : '';
  if (ns === 0n) return '0s';
  if (ns < 1_000_000_000n) {
    if (ns < 1_000n) return `${sign}${ns}ns`;
    if (ns < 1_000_000n) return `${sign}${fixed(ns, 1_000n)}µs`;
    return `${sign}${fixed(ns, 1_000_000n)}ms`;
  }
  const h = ns / NS_PER.h!;
  const rest = ns % NS_PER.h!;
  const m = rest / NS_PER.m!;
  const sec = fixed(rest % NS_PER.m!, NS_PER.s!);
  if (h > 0n) return `${sign}${h}h${m}m${sec}s`;
  if (m > 0n) return `${sign}${m}m${sec}s`;
  return `${sign}${sec}s`;
}

/** n/unit as a decimal with trailing zeros removed ("1.5", "30"). */
function fixed(n: bigint, unit: bigint): string {
  const whole = n / unit;
  const frac = n % unit;
  if (frac === 0n) return whole.toString();
  const digits = unit.toString().length - 1;
  return `${whole}.${frac.toString().padStart(digits, '0').replace(/0+$/, '')}`;
}
