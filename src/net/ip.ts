/**
 * IP address and CIDR helpers. Pure; property-tested.
 *
 * Parsing is strict (node:net isIP's rules, without a zone id: no leading zeros) except where a caller asks for
 * Kubernetes' "sloppy" legacy parsing of endpoint addresses (leading zeros accepted as decimal).
 */
// Our own parser rather than node:net's isIP, so that the pure core imports nothing from Node; ip.test.ts
// checks it against isIP on random input.

export type IPFamily = 'IPv4' | 'IPv6';

/** One IPv6 group: 1 to 4 hex digits. */
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;
/** What node:net accepts after "%" in a scoped IPv6 literal. */
const ZONE = /^[0-9a-zA-Z.:-]+$/;

/** A strict dotted quad as a 32-bit unsigned number, or undefined. */
/** A dotted quad as a number: octets without leading zeros (Go's netip.ParseAddr rejects "010"). */
function parseIPv4(ip: string): number | undefined {
  // One pass over the characters, no allocation: this runs for every address the daemon reads
  // (50,000 endpoints, and every real server and set member of an IPVS read-back at 10k services).
  const len = ip.length;
  if (len < 7 || len > 15) return undefined;
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // No leading zero ("01"), at most three digits, at most 255.
      if (digits === 1 && octet === 0) return undefined;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + octet;
}

/** Hex groups separated by single colons ("" is no group); undefined when one is malformed. */
function parseGroups(s: string): number[] | undefined {
  if (s === '') return [];
  const out: number[] = [];
  for (const g of s.split(':')) {
    if (!V6_GROUP.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

/**
 * A strict IPv6 literal (no zone) as 8 16-bit groups, or undefined. "::" stands for one or more zero
 * groups and appears at most once; a trailing dotted quad stands for the last two groups.
 */
function parseIPv6(ip: string): number[] | undefined {
  if (!ip.includes(':')) return undefined;
  let s = ip;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v = parseIPv4(last);
    if (v === undefined) return undefined;
    tail.push((v >>> 16) & 0xffff, v & 0xffff);
    // Keep a "::" that ends right before the quad; drop the single colon that separates it otherwise.
    s = s.endsWith('::' + last) ? s.slice(0, lastColon + 1) : s.slice(0, lastColon);
    if (s === '') return undefined;
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return undefined;
    const left = parseGroups(s.slice(0, dbl));
    const right = parseGroups(s.slice(dbl + 2));
    if (!left || !right) return undefined;
    const zeros = 8 - tail.length - left.length - right.length;
    if (zeros < 1) return undefined;
    return [...left, ...new Array<number>(zeros).fill(0), ...right, ...tail];
  }
  const groups = parseGroups(s);
  if (!groups || groups.length + tail.length !== 8) return undefined;
  return [...groups, ...tail];
}

/** The family of a strictly valid IP literal (no leading zeros in a dotted quad, no zone id), or undefined. */
export function ipFamily(ip: string): IPFamily | undefined {
  if (parseIPv4(ip) !== undefined) return 'IPv4';
  if (parseIPv6(ip) !== undefined) return 'IPv6';
  return undefined;
}

/**
 * node:net's isIP() contract without node:net: 4 or 6 for a valid literal, else 0. Unlike ipFamily(),
 * an IPv6 literal may carry a zone id ("fe80::1%eth0").
 */
export function ipVersion(ip: string): 0 | 4 | 6 {
  const pct = ip.indexOf('%');
  if (pct >= 0) {
    return ZONE.test(ip.slice(pct + 1)) && parseIPv6(ip.slice(0, pct)) !== undefined ? 6 : 0;
  }
  const f = ipFamily(ip);
  return f === 'IPv4' ? 4 : f === 'IPv6' ? 6 : 0;
}

/**
 * Parses an IPv4 literal into a 32-bit unsigned number; throws on invalid input. Leading zeros are
 * read as decimal here; callers pass addresses that ipFamily() has already accepted.
 */
export function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new RangeError(`invalid IPv4 address: ${JSON.stringify(ip)}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) throw new RangeError(`invalid IPv4 address: ${JSON.stringify(ip)}`);
    const v = Number(p);
    if (v > 255) throw new RangeError(`invalid IPv4 address: ${JSON.stringify(ip)}`);
    n = n * 256 + v;
  }
  return n;
}

export function numberToIPv4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses a strictly valid IPv6 literal (embedded IPv4 allowed) into 8 16-bit groups; throws on invalid input. */
export function ipv6ToGroups(ip: string): number[] {
  const g = parseIPv6(ip);
  if (!g) throw new RangeError(`invalid IPv6 address: ${JSON.stringify(ip)}`);
  return g;
}

/** RFC 5952 canonical text for 8 groups (longest run of >= 2 zero groups compressed, lowercase). */
export function groupsToIPv6(g: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] === 0) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    } else i++;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/** Canonical text of a strictly valid IP, or undefined when it is not one. */
export function canonicalIP(ip: string): string | undefined {
  const f = ipFamily(ip);
  if (f === 'IPv4') return ip;
  if (f === 'IPv6') return groupsToIPv6(ipv6ToGroups(ip));
  return undefined;
}

/**
 * Kubernetes' legacy "sloppy" IPv4 parsing: leading zeros are accepted and read as decimal
 * ("010.0.0.1" is 10.0.0.1). Used only where upstream uses ParseIPSloppy (endpoint addresses).
 */
export function parseIPSloppy(ip: string): string | undefined {
  const c = canonicalIP(ip);
  if (c !== undefined) return c;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const parts = ip.split('.').map(Number);
    if (parts.every((p) => p <= 255)) return parts.join('.');
  }
  return undefined;
}

export interface CIDR {
  readonly family: IPFamily;
  /** Network address, canonical text (host bits cleared). */
  readonly ip: string;
  readonly prefix: number;
  /** Canonical "ip/prefix". */
  readonly text: string;
}

/**
 * Parses "ip/prefix". Host bits are cleared in the result (Kubernetes accepts "10.0.0.1/8" in
 * loadBalancerSourceRanges and treats it as 10.0.0.0/8). Returns undefined on invalid input.
 */
export function parseCIDR(text: string): CIDR | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ipPart = text.slice(0, slash);
  const pfx = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(pfx)) return undefined;
  const prefix = Number(pfx);
  const family = ipFamily(ipPart);
  if (family === 'IPv4') {
    if (prefix > 32) return undefined;
    const n = ipv4ToNumber(ipPart);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const ip = numberToIPv4((n & mask) >>> 0);
    return { family, ip, prefix, text: `${ip}/${prefix}` };
  }
  if (family === 'IPv6') {
    if (prefix > 128) return undefined;
    const g = ipv6ToGroups(ipPart);
    const masked = g.map((v, i) => {
      const bits = Math.max(0, Math.min(16, prefix - i * 16));
      const m = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
      return v & m;
    });
    const ip = groupsToIPv6(masked);
    return { family, ip, prefix, text: `${ip}/${prefix}` };
  }
  return undefined;
}

/** Whether ip (any valid literal) lies inside cidr. Different families never match. */
export function cidrContains(cidr: CIDR, ip: string): boolean {
  const f = ipFamily(ip);
  if (f !== cidr.family) return false;
  if (f === 'IPv4') {
    const mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
    return (ipv4ToNumber(ip) & mask) >>> 0 === ipv4ToNumber(cidr.ip);
  }
  const a = ipv6ToGroups(ip);
  const n = ipv6ToGroups(cidr.ip);
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, cidr.prefix - i * 16));
    const m = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
    if (((a[i] ?? 0) & m) !== (n[i] ?? 0)) return false;
  }
  return true;
}

/** True for 0.0.0.0/0 and ::/0. */
export function isZeroCIDR(c: CIDR): boolean {
  return c.prefix === 0;
}

export function isLoopback(ip: string): boolean {
  const f = ipFamily(ip);
  if (f === 'IPv4') return ip.startsWith('127.');
  if (f === 'IPv6') return canonicalIP(ip) === '::1';
  return false;
}

/** "ip:port", or "[ip]:port" for IPv6 (upstream's endpoint string). */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Splits "host:port" / "[v6]:port"; throws RangeError naming the input when malformed. */
export function splitHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new RangeError(`invalid host:port ${JSON.stringify(s)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new RangeError(`invalid port in ${JSON.stringify(s)}`);
  return { host: m[1] ?? '', port };
}

/** Adds a non-negative offset to an IP (for allocation); undefined on overflow. */
export function ipAdd(ip: string, offset: bigint): string | undefined {
  const f = ipFamily(ip);
  if (f === 'IPv4') {
    const v = BigInt(ipv4ToNumber(ip)) + offset;
    return v > 0xffffffffn ? undefined : numberToIPv4(Number(v));
  }
  if (f === 'IPv6') {
    let v = ipv6ToGroups(ip).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n) + offset;
    if (v >= 1n << 128n) return undefined;
    const g: number[] = [];
    for (let i = 0; i < 8; i++) {
      g.unshift(Number(v & 0xffffn));
      v >>= 16n;
    }
    return groupsToIPv6(g);
  }
  return undefined;
}

/** Number of addresses in a CIDR, as bigint. */
export function cidrSize(c: CIDR): bigint {
  return 1n << BigInt((c.family === 'IPv4' ? 32 : 128) - c.prefix);
}

/**
 * Family of an IP that has already been validated (model objects hold only canonical IPs):
 * a colon means IPv6. Much cheaper than ipFamily() on hot paths.
 */
export function familyOfValid(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}
