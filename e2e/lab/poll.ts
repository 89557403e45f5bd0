/**
 * Bounded polling for e2e tests: waits until `fn` returns something other than undefined/false, or
 * throws after `timeoutMs` naming what it waited for, the last value, and any diagnostics (daemon log).
 */
export async function pollUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; diagnostics?: () => string } = {},
): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    last = v;
    if (Date.now() > end) {
      const d = opts.diagnostics?.() ?? '';
      throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})${d ? `\n${d}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 150));
  }
}
