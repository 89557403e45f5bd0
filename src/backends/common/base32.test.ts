import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base32Std, prefixedBase32 } from './base32.js';

// base32Std itself: the RFC 4648 vectors in backends/iptables/hash.test.ts.

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('prefixedBase32: the prefix and the first characters of base32Std, for every length', () => {
  const input = bytes('kube-proxy-ts chain name');
  const full = base32Std(input).replace(/=+$/, '');
  for (let n = 0; n <= full.length + 3; n++)
    assert.equal(prefixedBase32('KUBE-SEP-', input, n), `KUBE-SEP-${full.slice(0, n)}`, `n=${n}`);
});
