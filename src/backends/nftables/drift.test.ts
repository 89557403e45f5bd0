import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareNft, countedSets, driftReadScript, parseDriftRead, type NftExpected } from './drift.js';

// nft 1.0.6's output for driftReadScript('ip') then `list chain ip kube-proxy nat-prerouting`
// (captured in a network namespace; another owner's table comes first).
const READ = `table ip other {
\tchain c {
\t\ttype filter hook input priority filter; policy accept;
\t}
}
table ip kube-proxy {
\tchain services {
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t}
}
table ip other {
}
table ip kube-proxy {
\tset cluster-ips {
\t\ttype ipv4_addr
\t\telements = { 172.30.0.1, 172.30.0.2 }
\t}
\tset affinity-x {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 3h
\t}
}
table ip other {
}
table ip kube-proxy {
\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 172.30.0.1 . tcp . 80 : goto services,
\t\t\t     172.30.0.2 . tcp . 80 : goto services,
\t\t\t     172.30.0.3 . tcp . 80 : goto services }
\t}
}
table ip kube-proxy {
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
}
`;

const expected = (over: Partial<NftExpected> = {}): NftExpected => ({
  family: 'ip',
  chains: new Map([
    ['services', { name: 'services', rules: [] }],
    [
      'nat-prerouting',
      {
        name: 'nat-prerouting',
        hook: 'type nat hook prerouting priority dstnat ;',
        rules: ['jump services'],
      },
    ],
  ]),
  sets: new Map([
    ['cluster-ips', { name: 'cluster-ips', kind: 'set' as const, spec: 'type ipv4_addr ;' }],
    [
      'affinity-x',
      {
        name: 'affinity-x',
        kind: 'set' as const,
        spec: 'type ipv4_addr ; flags dynamic,timeout ; timeout 3h ;',
      },
    ],
    [
      'service-ips',
      {
        name: 'service-ips',
        kind: 'map' as const,
        spec: 'type ipv4_addr . inet_proto . inet_service : verdict ;',
      },
    ],
  ]),
  elems: new Map([
    [
      'cluster-ips',
      new Map([
        ['172.30.0.1', ''],
        ['172.30.0.2', ''],
      ]),
    ],
    ['affinity-x', new Map()],
    [
      'service-ips',
      new Map([
        ['172.30.0.1 . tcp . 80', 'goto services'],
        ['172.30.0.2 . tcp . 80', 'goto services'],
        ['172.30.0.3 . tcp . 80', 'goto services'],
      ]),
    ],
  ]),
  ...over,
});

test('the read-back of an intact table matches: no drift', () => {
  const r = parseDriftRead(READ, 'ip');
  assert.deepEqual(
    r.chains,
    new Map([
      ['services', ''],
      ['nat-prerouting', 'prerouting'],
    ]),
  );
  assert.equal(r.baseRules.get('nat-prerouting'), 1);
  assert.equal(r.elements.get('service-ips'), 3);
  assert.equal(r.elements.get('cluster-ips'), 2);
  assert.deepEqual(compareNft(expected(), r), []);
});

test('script: our table alone, in one listing; dynamic sets are not counted', () => {
  assert.equal(driftReadScript('ip6'), 'list table ip6 kube-proxy\n');
  assert.deepEqual(countedSets(expected()), ['cluster-ips', 'service-ips']);
});

test('a missing table, lost elements, a flushed base chain, a lost hook and a missing chain are each named', () => {
  assert.deepEqual(compareNft(expected(), undefined), [
    { object: 'table', message: 'table ip kube-proxy missing' },
  ]);
  const lost = READ.replace('172.30.0.2 . tcp . 80 : goto services,\n\t\t\t     ', '')
    .replace('\t\tjump services\n', '')
    .replace('\tchain services {\n\t}\n', '');
  assert.deepEqual(compareNft(expected(), parseDriftRead(lost, 'ip')), [
    { object: 'chain', message: 'chain services missing' },
    { object: 'rule', message: 'chain nat-prerouting lost 1 of its 1 rules' },
    { object: 'map', message: 'map service-ips lost 1 elements' },
  ]);
  const flushedMap = READ.replace(/\t\telements = \{ 172\.30\.0\.1 \. tcp[^}]*\}\n/, '');
  assert.deepEqual(compareNft(expected(), parseDriftRead(flushedMap, 'ip')), [
    { object: 'map', message: 'map service-ips lost 3 elements' },
  ]);
  const noHook = READ.replaceAll('\t\ttype nat hook prerouting priority dstnat; policy accept;\n', '');
  assert.deepEqual(compareNft(expected(), parseDriftRead(noHook, 'ip')), [
    { object: 'chain', message: 'chain nat-prerouting lost its prerouting hook' },
  ]);
});

test("another owner's table never counts, even with our chain names", () => {
  const other = READ.replaceAll('table ip other {\n}', 'table ip other {\n\tchain services {\n\t}\n}');
  assert.deepEqual(compareNft(expected(), parseDriftRead(other, 'ip')), []);
  const onlyOthers = 'table ip other {\n\tchain nat-prerouting {\n\t}\n}\n';
  assert.deepEqual(compareNft(expected(), parseDriftRead(onlyOthers, 'ip'))[0]?.object, 'table');
});
