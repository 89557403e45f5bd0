/** Lookups in DesiredState.sortedKeys (service port keys in string order). Pure. */

/** First index in sorted `keys` whose key is >= `k` (the insertion point of `k`). */
export function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The keys of service "ns/name" in sorted `keys`: "ns/name:port/PROTO" or "ns/name/PROTO" (unnamed port). */
export function keysOfService(keys: readonly string[], svc: string): string[] {
  const out: string[] = [];
  for (const prefix of [`${svc}:`, `${svc}/`])
    for (let i = lowerBound(keys, prefix); i < keys.length && keys[i]!.startsWith(prefix); i++)
      out.push(keys[i]!);
  return out;
}
