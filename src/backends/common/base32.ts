/** Base32 for chain and object names (iptables KUBE-SVC-... hashes, nftables names). Pure. */

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Appends the base32 characters of `bytes` to `out`, at most `limit` of them. */
function encode(bytes: Uint8Array, out: string[], limit: number): void {
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const b of bytes) {
    buffer = ((buffer << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      if (n++ === limit) return;
      out.push(BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31]!);
      bits -= 5;
    }
  }
  if (bits > 0 && n < limit) out.push(BASE32_ALPHABET[(buffer << (5 - bits)) & 31]!);
}

/** RFC 4648 standard base32 with `=` padding (Go's base32.StdEncoding). */
export function base32Std(bytes: Uint8Array): string {
  const out: string[] = [];
  encode(bytes, out, Number.POSITIVE_INFINITY);
  while (out.length % 8 !== 0) out.push('=');
  return out.join('');
}

/**
 * `prefix` + the first `chars` characters of base32Std(bytes), as one flat string. A name built as
 * `prefix + base32Std(...).slice(...)` is a V8 rope over a slice that keeps the whole encoding
 * alive: ~136 bytes against 48 for the flat 25 characters of a KUBE-SEP- name, and the proxier
 * keeps one per chain for as long as the chain exists (300,000 chains at 50,000 Services).
 */
export function prefixedBase32(prefix: string, bytes: Uint8Array, chars: number): string {
  const out = [prefix];
  encode(bytes, out, chars);
  return out.join('');
}
