import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentRules, digestLines, parseSave } from './chain-diff.js';
import { savedDigest, savedForm } from './save-normalize.js';

// Pairs captured from iptables-save 1.8.9 (legacy and nft print them alike) after loading our goldens;
// e2e/iptables-save-normalize.test.ts re-checks every golden rule against the real tools as root.
const PAIRS: [string, string][] = [
  [
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG -m comment --comment "ns1/aff:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/aff:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
  ],
  [
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG -m comment --comment "ns1/aff:p80 -> 10.180.0.1:80" -m recent --name KUBE-SEP-EDEFL5DLEJIVS3XW --rcheck --seconds 300 --reap -j KUBE-SEP-EDEFL5DLEJIVS3XW',
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG -m comment --comment "ns1/aff:p80 -> 10.180.0.1:80" -m recent --rcheck --seconds 300 --reap --name KUBE-SEP-EDEFL5DLEJIVS3XW --mask 255.255.255.255 --rsource -j KUBE-SEP-EDEFL5DLEJIVS3XW',
  ],
  [
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG -m comment --comment "ns1/aff:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-EDEFL5DLEJIVS3XW',
    '-A KUBE-SVC-7OAMXYFOHIJTWZAG -m comment --comment "ns1/aff:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-EDEFL5DLEJIVS3XW',
  ],
  [
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    '-A KUBE-SEP-EDEFL5DLEJIVS3XW -m comment --comment ns1/aff:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-EDEFL5DLEJIVS3XW -s 10.180.0.1/32 -m comment --comment "ns1/aff:p80" -j KUBE-MARK-MASQ',
  ],
  [
    '-A KUBE-SEP-EDEFL5DLEJIVS3XW -m comment --comment ns1/aff:p80 -m recent --name KUBE-SEP-EDEFL5DLEJIVS3XW --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    '-A KUBE-SEP-EDEFL5DLEJIVS3XW -p tcp -m comment --comment "ns1/aff:p80" -m recent --set --name KUBE-SEP-EDEFL5DLEJIVS3XW --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.1:80',
  ],
  [
    '-A KUBE-EXT-HREHGQB4RWWE2G4C -m comment --comment "masquerade LOCAL traffic for ns1/loc:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
    '-A KUBE-EXT-HREHGQB4RWWE2G4C -m comment --comment "masquerade LOCAL traffic for ns1/loc:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
  ],
  ['-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000', '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000'],
  ['-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000', '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0'],
  [
    '-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
  ],
  [
    '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  ],
];

test('savedForm reproduces what iptables-save prints for the renderer forms', () => {
  for (const [ours, saved] of PAIRS) assert.equal(savedForm(ours, 'IPv4'), saved, ours);
});

test('IPv6: /128 for bare addresses, the IPv6 recent mask, bracketed DNAT targets, icmp6 REJECT', () => {
  assert.equal(
    savedForm(
      '-A KUBE-SEP-X -m comment --comment ns1/a:p80 -m recent --name KUBE-SEP-X --set -m tcp -p tcp -j DNAT --to-destination [fd00::1]:80',
      'IPv6',
    ),
    '-A KUBE-SEP-X -p tcp -m comment --comment "ns1/a:p80" -m recent --set --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -m tcp -j DNAT --to-destination [fd00::1]:80',
  );
  assert.equal(
    savedForm('-A KUBE-SEP-X -s fd00::1 -j KUBE-MARK-MASQ', 'IPv6'),
    '-A KUBE-SEP-X -s fd00::1/128 -j KUBE-MARK-MASQ',
  );
  assert.equal(
    savedForm('-A KUBE-SERVICES -d fd00::10/128 -j REJECT', 'IPv6'),
    '-A KUBE-SERVICES -d fd00::10/128 -j REJECT --reject-with icmp6-port-unreachable',
  );
});

test('comments are bare only when they are plain words, as libxtables prints them', () => {
  assert.equal(
    savedForm('-A C -m comment --comment abc_1-2 -j RETURN', 'IPv4'),
    '-A C -m comment --comment abc_1-2 -j RETURN',
  );
  assert.equal(
    savedForm('-A C -m comment --comment "a b" -j RETURN', 'IPv4'),
    '-A C -m comment --comment "a b" -j RETURN',
  );
});

test('anything it does not reproduce is undefined (a rewrite), never a guess', () => {
  for (const r of [
    '-A C -m multiport --dports 80,443 -j RETURN', // unknown match
    '-A C -j DNAT --to-destination 10.0.0.1:80 --random', // unknown target option
    '-A C -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', // states not in print order
    '-A C -m statistic --mode nth --every 2 -j RETURN',
    '-A C -p gre -j RETURN',
    '-A C -s not-an-ip -j RETURN',
    '-A C --dport 80 -j RETURN', // option without a match
    '-A C -m comment --comment "unterminated -j RETURN',
    '-A C -m comment --comment "x\\"y" -j RETURN',
    '-I C 1 -j RETURN',
  ])
    assert.equal(savedForm(r, 'IPv4'), undefined, r);
});

test('savedDigest equals the digest of the saved chain exactly when it holds our rules, in order; parseSave groups save output', () => {
  const save = [
    '# Generated by iptables-nft-save v1.8.9',
    '*nat',
    ':KUBE-SEP-A - [0:0]',
    ':KUBE-EMPTY - [0:0]',
    '-A KUBE-SEP-A -s 10.180.0.1/32 -m comment --comment "ns1/a:p80" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-A -p tcp -m comment --comment "ns1/a:p80" -m tcp -j DNAT --to-destination 10.180.0.1:80',
    'COMMIT',
  ].join('\n');
  const parsed = parseSave(save);
  const byChain = new Map([...parsed].map(([c, content]) => [c, contentRules(content)]));
  assert.equal(parsed.get('KUBE-EMPTY'), '');
  assert.equal(parsed.get('KUBE-SEP-A')!.split('\n').length, 2);
  // What adoption asks: does the kernel's chain (its saved lines) hold exactly `rules`?
  const sameChain = (rules: readonly string[], saved: readonly string[]): boolean => {
    const predicted = savedDigest(rules.join('\n'), 'IPv4');
    return 'digest' in predicted && predicted.digest === digestLines(saved);
  };
  const ours = [
    '-A KUBE-SEP-A -m comment --comment ns1/a:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-A -m comment --comment ns1/a:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
  ];
  assert.equal(sameChain(ours, byChain.get('KUBE-SEP-A')!), true);
  assert.equal(sameChain([...ours].reverse(), byChain.get('KUBE-SEP-A')!), false, 'order matters');
  assert.equal(
    sameChain([ours[0]!.replace('10.180.0.1', '10.180.0.9'), ours[1]!], byChain.get('KUBE-SEP-A')!),
    false,
  );
  assert.equal(sameChain(ours.slice(0, 1), byChain.get('KUBE-SEP-A')!), false);
  assert.equal(sameChain([], byChain.get('KUBE-EMPTY')!), true);
  assert.deepEqual(savedDigest('-A KUBE-SEP-A -m unknownmatch -j ACCEPT', 'IPv4'), {
    unpredictable: '-A KUBE-SEP-A -m unknownmatch -j ACCEPT',
  });
});

test('nfacct matches print with the two spaces iptables 1.8.9 puts after --nfacct-name', () => {
  assert.equal(
    savedForm(
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP',
      'IPv4',
    ),
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP',
  );
});
