/**
 * iptables match text that more than one mode writes: the masquerade mark and the local-traffic detector
 * (iptables mode's rules and IPVS mode's iptables glue use the same detector, as upstream), and the
 * backstop that keeps unsafe text out of a rule. Pure.
 */
import { parseCIDR } from '../../net/ip.js';
import type { FamilyOptions } from '../../proxy/options.js';

/** The masquerade mark text: value 1<<bit as Go's `%#08x` (digits zero-padded to 8) or bare hex. */
export function masqueradeMark(bit: number, format: 'production' | 'upstream-test' = 'production'): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31)
    throw new RangeError(`masqueradeBit must be an integer in [0, 31], got ${bit}`);
  const hex = (2 ** bit).toString(16);
  return format === 'production' ? `0x${hex.padStart(8, '0')}` : `0x${hex}`;
}

export interface LocalMatch {
  readonly ifLocal: string;
  readonly ifNotLocal: string;
}

/**
 * The detector's iptables match text (upstream pkg/proxy/util/localdetector.go); undefined is upstream's no-op detector.
 * Throws a RangeError
 * naming the field for an interface name that is not safe in a rule.
 */
export function localMatch(opts: FamilyOptions): LocalMatch | undefined {
  const d = opts.localDetector;
  switch (d.kind) {
    case 'none':
      return undefined;
    case 'cidr': {
      // iptables cannot negate a list of sources in one rule; upstream's detector holds one CIDR per family.
      const c = d.cidrs.map((x) => parseCIDR(x)).find((x) => x?.family === opts.family);
      if (!c) return undefined;
      return { ifLocal: `-s ${c.text}`, ifNotLocal: `! -s ${c.text}` };
    }
    case 'bridge':
      if (d.iface === '') return undefined;
      assertSafe('localDetector.iface', d.iface);
      return { ifLocal: `-i ${d.iface}`, ifNotLocal: `! -i ${d.iface}` };
    case 'prefix':
      if (d.prefix === '') return undefined;
      assertSafe('localDetector.prefix', d.prefix);
      return { ifLocal: `-i ${d.prefix}+`, ifNotLocal: `! -i ${d.prefix}+` };
  }
}

/** Characters allowed in any field that reaches a rule: no spaces, quotes, newlines or shell/iptables syntax. */
export const SAFE_FIELD = /^[A-Za-z0-9._:/[\]-]+$/;

/** Throws a RangeError naming the field when `value` is not safe in a rule. */
export function assertSafe(field: string, value: string): void {
  if (!SAFE_FIELD.test(value))
    throw new RangeError(`iptables renderer: unsafe ${field} ${JSON.stringify(value)}`);
}
