import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isIP } from 'node:net';
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
  ipVersion,
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

// The parser replaced node:net's isIP in the pure core; here it is held to isIP's answers.
const v6Group = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 4 }), fc.boolean())
  .map(([v, width, upper]) => {
    const h = v.toString(16).padStart(width, '0');
    return upper ? h.toUpperCase() : h;
  });
const v4Octet = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.constantFrom('00', '01', '010', '256', '999', '0255', ''),
);
const v4Text = fc.array(v4Octet, { minLength: 3, maxLength: 5 }).map((p) => p.join('.'));
/** IPv6-ish text: groups joined by ':' with an optional '::', a trailing quad and a zone, often malformed. */
const v6Text = fc
  .tuple(
    fc.array(v6Group, { maxLength: 9 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.option(v4Text, { nil: undefined }),
    fc.option(fc.constantFrom('eth0', '1', 'a.b-c:d', '', '%', ' '), { nil: undefined }),
    fc.constantFrom('', ':', ' '),
  )
  .map(([groups, dbl, quad, zone, junk]) => {
    let s = groups.join(':');
    if (dbl !== undefined) {
      const at = dbl % (groups.length + 1);
      s = [groups.slice(0, at).join(':'), groups.slice(at).join(':')].join('::');
    }
    if (quad !== undefined) s += (s === '' || s.endsWith(':') ? '' : ':') + quad;
    if (zone !== undefined) s += '%' + zone;
    return junk === ' ' ? s : junk + s;
  });
const anyText = fc.oneof(
  v6Text,
  v4Text,
  fc.ipV4(),
  fc.ipV6(),
  fc.string({ unit: fc.constantFrom('0', '1', 'f', 'F', ':', '.', '%', 'g', ' ', '9'), maxLength: 45 }),
);

test('property: ipVersion agrees with node:net isIP, and ipFamily with it minus zone ids', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const want = isIP(s);
      assert.equal(ipVersion(s), want, `ipVersion(${JSON.stringify(s)})`);
      const strict = s.includes('%') ? 0 : want;
      assert.equal(ipFamily(s), strict === 4 ? 'IPv4' : strict === 6 ? 'IPv6' : undefined, s);
    }),
    { numRuns: 20000 },
  );
});

test('property: every valid IPv6 text parses to the groups of its canonical form', () => {
  fc.assert(
    fc.property(fc.ipV6(), (s) => {
      const g = ipv6ToGroups(s);
      assert.equal(g.length, 8);
      assert.deepEqual(ipv6ToGroups(groupsToIPv6(g)), g);
    }),
  );
});

test('strict parsing: the edge cases spelled out', () => {
  for (const ok of ['0.0.0.0', '255.255.255.255', '::', '::1', '1::', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8']) {
    assert.notEqual(ipFamily(ok), undefined, ok);
  }
  for (const ok of ['::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1::1.2.3.4', '::1.2.3.4']) {
    assert.equal(ipFamily(ok), 'IPv6', ok);
  }
  assert.deepEqual(ipv6ToGroups('::ffff:10.0.0.1'), [0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]);
  assert.deepEqual(ipv6ToGroups('1::1.2.3.4'), [1, 0, 0, 0, 0, 0, 0x0102, 0x0304]);
  for (const bad of [
    '010.0.0.1',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4::5:6:7:8',
    '1::2::3',
    ':::',
    ':1::2',
    '1::2:',
    '12345::',
    '::1.2.3.04',
    '1:2:3:4:5:6:7:1.2.3.4',
    'fe80::1%eth0',
    '',
  ]) {
    assert.equal(ipFamily(bad), undefined, bad);
  }
  assert.equal(ipVersion('fe80::1%eth0'), 6);
  assert.equal(ipVersion('1.2.3.4%eth0'), 0);
  assert.equal(ipVersion('fe80::1%'), 0);
});

test('IPv4 parsing agrees with a plain split-and-check reference on random dotted text', () => {
  const octet = /^(?:0|[1-9][0-9]{0,2})$/;
  const reference = (ip: string): boolean => {
    const parts = ip.split('.');
    return parts.length === 4 && parts.every((p) => octet.test(p) && Number(p) <= 255);
  };
  const part = fc.oneof(
    fc.integer({ min: 0, max: 300 }).map(String),
    fc.stringMatching(/^[0-9]{0,4}$/),
    fc.constantFrom('', '00', '01', '255', '256', '1a', ' 1', '-1', '+1'),
  );
  fc.assert(
    fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
      const ip = parts.join('.');
      assert.equal(ipFamily(ip) === 'IPv4', reference(ip), JSON.stringify(ip));
      if (reference(ip)) assert.equal(canonicalIP(ip), ip);
    }),
    { numRuns: 3000 },
  );
  assert.equal(ipFamily('::ffff:10.0.0.1'), 'IPv6', 'a trailing quad in IPv6 still parses');
  assert.equal(ipFamily('::ffff:10.0.0.01'), undefined);
});
