/**
 * Drift: a difference between what a proxier last wrote and what the kernel holds now (someone ran
 * `nft flush ruleset`, deleted a virtual server, flushed an ipset, removed a jump). Each kernel mode
 * reads back cheaply every syncPeriod and compares with pure functions (backends/<mode>/drift.ts);
 * any finding is logged, counted in kubeproxy_sync_proxy_rules_drift_total{object} and repaired by a
 * full sync. Objects of other owners are never compared, so they are never reported.
 */

/** The kinds of object a finding is about: the `object` label (bounded). */
export type DriftObject =
  | 'table'
  | 'chain'
  | 'rule'
  | 'map'
  | 'set'
  | 'jump'
  | 'virtual_server'
  | 'real_server'
  | 'ipset'
  | 'address';

/** One difference, with a line an operator can act on ("map service-ips lost 3 elements"). */
export interface DriftFinding {
  readonly object: DriftObject;
  readonly message: string;
}

/** At most this many findings of one kind are listed one by one; the rest are summed up in one. */
export const MAX_LISTED = 5;

/**
 * `items` as findings of kind `object`: the first MAX_LISTED with `each(item)`, then one
 * "and N more <what>" finding when there are more. Pure.
 */
export function listFindings<T>(
  object: DriftObject,
  items: readonly T[],
  each: (item: T) => string,
  what: string,
): DriftFinding[] {
  const out = items.slice(0, MAX_LISTED).map((i) => ({ object, message: each(i) }));
  if (items.length > MAX_LISTED)
    out.push({ object, message: `and ${items.length - MAX_LISTED} more ${what}` });
  return out;
}
