import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  canonicalIP,
  cidrContains,
  ipAdd,
  ipFamily,
  joinHostPort,
  parseCIDR,
  parseIPSloppy,
  splitHostPort,
  ipv6ToGroups,
  groupsToIPv6,
} from './ip.js';

test('ipFamily is strict', () => {
  assert.equal(ipFamily('10.0.0.1'), 'IPv4');
  assert.equal(ipFamily('fd00::1'), 'IPv6');
  assert.equal(ipFamily('010.0.0.1'), undefined);
  assert.equal(ipFamily('10.0.0.1 '), undefined);
  assert.equal(ipFamily('fe80::1%eth0'), undefined);
  assert.equal(ipFamily('10.0.0.1"; -j ACCEPT'), undefined);
});

test('sloppy parsing reads leading zeros as decimal, like ParseIPSloppy', () => {
  assert.equal(parseIPSloppy('010.000.000.001'), '10.0.0.1');
  assert.equal(parseIPSloppy('256.0.0.1'), undefined);
  assert.equal(parseIPSloppy('FD00:0::0001'), 'fd00::1');
});

test('canonical IPv6 follows RFC 5952', () => {
  assert.equal(canonicalIP('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(canonicalIP('::ffff:10.0.0.1'), '::ffff:a00:1');
  assert.equal(canonicalIP('1:0:0:1:0:0:0:1'), '1:0:0:1::1');
  assert.equal(canonicalIP('::'), '::');
});

test('CIDR parsing clears host bits and checks containment', () => {
  const c = parseCIDR('10.1.2.3/8');
  assert.ok(c);
  assert.equal(c.text, '10.0.0.0/8');
  assert.ok(cidrContains(c, '10.255.0.1'));
  assert.ok(!cidrContains(c, '11.0.0.1'));
  assert.ok(!cidrContains(c, 'fd00::1'));
  const v6 = parseCIDR('fd00:1::5/64');
  assert.equal(v6?.text, 'fd00:1::/64');
  assert.ok(v6 && cidrContains(v6, 'fd00:1::ffff'));
  assert.equal(parseCIDR('10.0.0.0/33'), undefined);
  assert.equal(parseCIDR('10.0.0.0'), undefined);
  assert.equal(parseCIDR(' 10.0.0.0/8'), undefined);
});

test('host:port round trip', () => {
  assert.equal(joinHostPort('fd00::1', 80), '[fd00::1]:80');
  assert.deepEqual(splitHostPort('[fd00::1]:80'), { host: 'fd00::1', port: 80 });
  assert.deepEqual(splitHostPort('0.0.0.0:10256'), { host: '0.0.0.0', port: 10256 });
  assert.throws(() => splitHostPort('nope'), /invalid host:port/);
});

test('ipAdd walks a range', () => {
  assert.equal(ipAdd('10.96.0.0', 258n), '10.96.1.2');
  assert.equal(ipAdd('255.255.255.255', 1n), undefined);
  assert.equal(ipAdd('fd00::', 65536n), 'fd00::1:0');
});

test('property: IPv6 groups round-trip through canonical text', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (g) => {
      const text = groupsToIPv6(g);
      assert.equal(ipFamily(text), 'IPv6');
      assert.deepEqual(ipv6ToGroups(text), g);
      assert.equal(canonicalIP(text), text);
    }),
  );
});

test('property: an IPv4 CIDR contains exactly the addresses sharing its prefix', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (a, b, p) => {
      const c = parseCIDR(`${a}/${p}`)!;
      assert.ok(cidrContains(c, a));
      const toN = (s: string) => s.split('.').reduce((x, o) => x * 256 + Number(o), 0);
      const same = p === 0 || toN(a) >>> (32 - p) === toN(b) >>> (32 - p);
      assert.equal(cidrContains(c, b), same);
    }),
  );
});
