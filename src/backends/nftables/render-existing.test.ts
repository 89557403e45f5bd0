import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, familyOptions, statesOf } from '../../../test/golden/nftables/scenarios.js';
import { buildLayout, type NftSet } from './render-layout.js';
import {
  isKernelFilled,
  keptSets,
  listScript,
  parseNftDuration,
  parseTableListing,
  sameDefinition,
  type ExistingSet,
} from './render-existing.js';

// Printed by nftables v1.0.6 (`nft -t list table ip kube-proxy`) for a load of the affinity golden,
// cut down to one object of each shape.
const REAL = `table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tset cluster-ips {
\t\ttype ipv4_addr
\t\tcomment "Active ClusterIPs"
\t}

\tmap cluster-targets-tcp {
\t\ttypeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport
\t\tcomment "cluster IP . port . slot -> tcp DNAT destination"
\t}

\tset affinity-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 {
\t\ttype ipv4_addr
\t\tsize 65535
\t\tflags dynamic,timeout
\t\ttimeout 5m
\t}

\tchain filter-prerouting-pre-dnat {
\t\ttype filter hook prerouting priority dstnat - 10; policy accept;
\t\tct state new jump firewall-check
\t}

\tchain service-LVQULI2A-ns6/sticky/tcp/p80 {
\t\tip daddr 172.30.0.46 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
\t\tip saddr @affinity-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 goto endpoint-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80
\t\tnumgen random mod 2 vmap @endpoint-chains
\t}

\tchain endpoint-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 {
\t\tupdate @affinity-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 { ip saddr }
\t\tmeta l4proto tcp dnat to 10.180.0.10:80
\t}
}
`;

// Printed by nftables v1.0.6 for listScript('ip') (`nft -t -f -`) over the same load, with another
// table `ip other` in the namespace; cut down the same way.
const REAL_LISTS = `table ip other {
\tset s {
\t\ttype ipv4_addr
\t}
}
table ip kube-proxy {
\tset cluster-ips {
\t\ttype ipv4_addr
\t\tcomment "Active ClusterIPs"
\t}
\tset affinity-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 {
\t\ttype ipv4_addr
\t\tsize 65535
\t\tflags dynamic,timeout
\t\ttimeout 5m
\t}
}
table ip other {
\tmap m {
\t\ttype ipv4_addr : verdict
\t}
}
table ip kube-proxy {
\tmap cluster-targets-tcp {
\t\ttypeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport
\t\tcomment "cluster IP . port . slot -> tcp DNAT destination"
\t}
}
table ip other {
\tchain c {
\t}
}
table ip kube-proxy {
\tchain filter-prerouting-pre-dnat {
\t\ttype filter hook prerouting priority dstnat - 10; policy accept;
\t}
\tchain service-LVQULI2A-ns6/sticky/tcp/p80 {
\t}
\tchain endpoint-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80 {
\t}
}
`;

const AFF = 'affinity-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80';
const affinitySpec = (seconds: number): NftSet => ({
  name: AFF,
  kind: 'set',
  spec: `type ipv4_addr ; flags dynamic,timeout ; timeout ${seconds}s ;`,
});

test('the read-back script lists sets (naming our table), maps and chains of one family', () => {
  assert.equal(listScript('ip6'), 'list sets table ip6 kube-proxy\nlist maps ip6\nlist chains ip6\n');
});

test('parses real nft -t listings (the read-back lists, or list table) alike; other tables are ignored', () => {
  const lists = parseTableListing(REAL_LISTS, 'ip');
  const whole = parseTableListing(REAL, 'ip');
  assert.ok(lists.ok && whole.ok);
  assert.deepEqual(lists.table.chains, whole.table.chains);
  const byName = (t: typeof lists.table) =>
    t.sets.map((s) => [s.kind, s.name, Object.fromEntries(s.props)]).sort();
  assert.deepEqual(byName(lists.table), byName(whole.table));
});

test('parses a real nft -t listing: chain names, set and map definitions', () => {
  const r = parseTableListing(REAL, 'ip');
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.deepEqual(r.table.chains, [
    'filter-prerouting-pre-dnat',
    'service-LVQULI2A-ns6/sticky/tcp/p80',
    'endpoint-XAVMWZ22-ns6/sticky/tcp/p80__10.180.0.10/80',
  ]);
  assert.deepEqual(
    r.table.sets.map((s) => [s.kind, s.name, Object.fromEntries(s.props)]),
    [
      ['set', 'cluster-ips', { type: 'ipv4_addr', comment: '"Active ClusterIPs"' }],
      [
        'map',
        'cluster-targets-tcp',
        {
          typeof: 'ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport',
          comment: '"cluster IP . port . slot -> tcp DNAT destination"',
        },
      ],
      ['set', AFF, { type: 'ipv4_addr', size: '65535', flags: 'dynamic,timeout', timeout: '5m' }],
    ],
  );
});

test('an empty table (comment only) parses to no objects', () => {
  const r = parseTableListing('table ip6 kube-proxy {\n\tcomment "rules for kube-proxy"\n}\n', 'ip6');
  assert.deepEqual(r, { ok: true, table: { family: 'ip6', chains: [], sets: [] } });
  // What listScript prints for an empty table: three empty blocks.
  const lists = parseTableListing(
    'table ip kube-proxy {\n}\ntable ip kube-proxy {\n}\ntable ip kube-proxy {\n}\n',
    'ip',
  );
  assert.deepEqual(lists, { ok: true, table: { family: 'ip', chains: [], sets: [] } });
});

test('refuses what it does not fully understand (the full sync then replaces the table whole)', () => {
  const cases: [string, string, RegExp][] = [
    ['another family', REAL, /no table ip6 kube-proxy/],
    [
      'only other tables',
      REAL_LISTS.replaceAll('table ip kube-proxy', 'table ip kube-proxy2'),
      /no table ip kube-proxy/,
    ],
    ['another comment', REAL.replace('rules for kube-proxy', 'mine'), /unexpected table line/],
    ['text outside a table', `Error: something\n${REAL}`, /outside a table/],
    ['a chain listed twice', REAL_LISTS + REAL_LISTS, /listed twice/],
    ['table flags', REAL.replace('\tcomment', '\tflags dormant\n\tcomment'), /unexpected table line/],
    [
      'a flowtable',
      REAL.replace(
        '\tset cluster-ips {',
        '\tflowtable f {\n\t\thook ingress priority filter\n\t}\n\n\tset cluster-ips {',
      ),
      /flowtable/,
    ],
    [
      'a named counter',
      REAL.replace('\tset cluster-ips {', '\tcounter c {\n\t\tpackets 0 bytes 0\n\t}\n\n\tset cluster-ips {'),
      /counter/,
    ],
    [
      'a ct helper',
      REAL.replace(
        '\tset cluster-ips {',
        '\tct helper h {\n\t\ttype "ftp" protocol tcp\n\t}\n\n\tset cluster-ips {',
      ),
      /ct helper/,
    ],
    [
      'a quoted name',
      REAL.replace('chain filter-prerouting-pre-dnat {', 'chain "a b" {'),
      /unexpected chain name/,
    ],
    ['a truncated listing', REAL.split('\n').slice(0, 20).join('\n'), /does not end/],
    ['an unterminated block', REAL.replace(/\t}\n}\n$/, '}\n'), /unterminated/],
    ['a repeated property', REAL.replace('\t\tsize 65535\n', '\t\tsize 65535\n\t\tsize 1\n'), /twice/],
  ];
  for (const [what, text, why] of cases) {
    const r = parseTableListing(text, what === 'another family' ? 'ip6' : 'ip');
    assert.equal(r.ok, false, what);
    if (!r.ok) assert.match(r.reason, why, what);
  }
});

test('nft durations', () => {
  const cases: [string, number | undefined][] = [
    ['5m', 300_000],
    ['3h', 10_800_000],
    ['6m40s', 400_000],
    ['1d', 86_400_000],
    ['1d2h3m4s', 93_784_000],
    ['300s', 300_000],
    ['250ms', 250],
    ['1s500ms', 1500],
    ['', undefined],
    ['5x', undefined],
    ['m', undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseNftDuration(text), ms, text);
});

test('same definition: what nft lists for our spec, and nothing that differs', () => {
  const listed = (props: Record<string, string>, kind: 'set' | 'map' = 'set'): ExistingSet => ({
    name: AFF,
    kind,
    props: new Map(Object.entries(props)),
  });
  const base = { type: 'ipv4_addr', size: '65535', flags: 'dynamic,timeout', timeout: '5m' };
  assert.ok(sameDefinition(listed(base), affinitySpec(300)));
  assert.ok(
    sameDefinition(
      listed({ type: 'ipv4_addr', flags: 'timeout,dynamic', timeout: '300s' }),
      affinitySpec(300),
    ),
    'no size, other flag order, seconds',
  );
  assert.ok(!sameDefinition(listed(base), affinitySpec(400)), 'timeout changed');
  assert.ok(!sameDefinition(listed({ ...base, type: 'ipv6_addr' }), affinitySpec(300)), 'type');
  assert.ok(!sameDefinition(listed({ ...base, flags: 'timeout' }), affinitySpec(300)), 'not dynamic');
  assert.ok(!sameDefinition(listed({ ...base, size: '1024' }), affinitySpec(300)), 'another size');
  assert.ok(!sameDefinition(listed({ ...base, comment: '"x"' }), affinitySpec(300)), 'a comment');
  assert.ok(!sameDefinition(listed({ ...base, 'gc-interval': '1s' }), affinitySpec(300)), 'a gc interval');
  assert.ok(!sameDefinition(listed({ ...base, timeout: 'soon' }), affinitySpec(300)), 'unreadable timeout');
  assert.ok(!sameDefinition(listed(base, 'map'), affinitySpec(300)), 'a map');
});

test('kept sets: only kernel-filled sets the layout still wants with the same definition', () => {
  const layout = buildLayout(statesOf(SCENARIOS.affinity!)[0]!, familyOptions('IPv4'));
  const affinity = [...layout.sets.values()].filter(isKernelFilled).map((s) => s.name);
  assert.equal(affinity.length, 2);
  assert.ok(affinity.every((n) => n.startsWith('affinity-')));
  const r = parseTableListing(REAL, 'ip');
  assert.ok(r.ok);
  // The listing's affinity set is in the layout with timeout 300s; cluster-ips is wanted but ours to fill.
  assert.deepEqual([...keptSets(r.table, layout)], [AFF]);
  const changed = parseTableListing(REAL.replace('timeout 5m', 'timeout 3h'), 'ip');
  assert.ok(changed.ok);
  assert.deepEqual([...keptSets(changed.table, layout)], []);
  const other = buildLayout(statesOf(SCENARIOS['basic-clusterip']!)[0]!, familyOptions('IPv4'));
  assert.deepEqual([...keptSets(r.table, other)], [], 'no longer wanted');
});
