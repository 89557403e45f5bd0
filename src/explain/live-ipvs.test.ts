/**
 * explain --live in IPVS mode (pure part): the kernel state is read as the IPVS proxier reads it
 * (`ipvsadm -Sn`, `ipset save`, `ip -o addr show dev kube-ipvs0`, parsed by backends/ipvs/diff.ts)
 * and iptables-save. Here those texts are written in the tools' own formats from the render, then
 * tampered with: a missing virtual server, real server or ipset member, and a foreign rule, are named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS } from '../../test/golden/nftables/scenarios.js';
import { ipvsExplainContext } from '../../test/fixtures/ipvs-explain.js';
import {
  emptyKernelState,
  parseDeviceAddresses,
  parseIPSetSave,
  parseIPVSSave,
} from '../backends/ipvs/diff.js';
import type { ExplainContext } from './explain.js';
import { ipvsModelFromText } from './ipvs-trace.js';
import { compareLive, ipvsModelFromKernel, type IPVSLive } from './live.js';

const P = { protocol: 'TCP' as const, src: '10.1.2.3', srcPort: 0, dst: '172.30.0.41', dstPort: 80 };

const ctx = (): ExplainContext => ipvsExplainContext(SCENARIOS['basic-clusterip']!);

/** One section of the render text. */
function section(render: string, name: string): string[] {
  const lines = render.split('\n');
  const at = lines.indexOf(`# ${name}`);
  const out: string[] = [];
  for (let i = at + 1; i < lines.length && !/^# (link|sysctl|ipset|ipvs|iptables)$/.test(lines[i]!); i++)
    if (lines[i] !== '') out.push(lines[i]!);
  return out;
}

/** The tools' outputs for a kernel that holds `render`, each edited by `tamper` first. */
function kernel(
  render: string,
  tamper: { ipvs?: (l: string[]) => string[]; ipset?: (l: string[]) => string[] } = {},
): IPVSLive {
  // ipvsadm -Sn prints ipvsadm-restore lines; ipset save adds bucketsize and initval to a hash set.
  const ipvsadm = (tamper.ipvs ?? ((l) => l))(section(render, 'ipvs')).join('\n');
  const ipset = (tamper.ipset ?? ((l) => l))(
    section(render, 'ipset').map((l) =>
      l.startsWith('create ') && l.includes(' hash:') ? `${l} bucketsize 12 initval 0x2f5d3a11` : l,
    ),
  ).join('\n');
  const addr = section(render, 'link')
    .filter((l) => l.startsWith('address add '))
    .map(
      (l) =>
        `7: kube-ipvs0    inet ${l.split(' ')[2]} scope global kube-ipvs0\\       valid_lft forever preferred_lft forever`,
    )
    .join('\n');
  const st = emptyKernelState();
  for (const [k, vs] of parseIPVSSave(ipvsadm)) st.vss.set(k, vs);
  const ours = new Set(
    section(render, 'ipset')
      .filter((l) => l.startsWith('create '))
      .map((l) => l.split(' ')[1]!),
  );
  for (const [k, s] of parseIPSetSave(ipset, ours)) st.sets.set(k, s);
  st.device = true;
  for (const a of parseDeviceAddresses(addr)) st.addresses.add(a);
  // iptables-save: the glue with the jumps from the built-in chains the proxier ensures.
  return { kernel: st, iptables: ipvsModelFromText(render).tables.saveAll() };
}

test('ipvs: the kernel holding the render agrees', () => {
  const c = ctx();
  const cmp = compareLive(c, kernel(c.rules), P);
  assert.deepEqual(cmp.differences, []);
  assert.deepEqual(cmp.live.json, cmp.desired.json);
  assert.equal(cmp.live.json.verdict, 'DNAT');
  assert.equal(cmp.live.json.endpoints.length, 3);
});

test('ipvs: a deleted virtual server is named, and the kernel answers otherwise', () => {
  const c = ctx();
  const cmp = compareLive(
    c,
    kernel(c.rules, { ipvs: (l) => l.filter((x) => !x.includes('172.30.0.41:80')) }),
    P,
  );
  assert.ok(
    cmp.differences.includes(
      'virtual server TCP 172.30.0.41:80 is missing from the kernel: -A -t 172.30.0.41:80 -s rr',
    ),
    cmp.differences.join('\n'),
  );
  assert.notEqual(cmp.live.json.verdict, 'DNAT');
  assert.ok(cmp.differences.some((d) => d.startsWith('verdict: the kernel says')));
});

test('ipvs: a deleted real server is named', () => {
  const c = ctx();
  const cmp = compareLive(
    c,
    kernel(c.rules, { ipvs: (l) => l.filter((x) => !x.includes('-r 10.180.0.2:80')) }),
    P,
  );
  assert.ok(
    cmp.differences.includes(
      'real server 10.180.0.2:80 of virtual server TCP 172.30.0.41:80 is missing from the kernel: -a -t 172.30.0.41:80 -r 10.180.0.2:80 -m -w 1',
    ),
    cmp.differences.join('\n'),
  );
  assert.ok(
    cmp.differences.includes(
      "endpoint 10.180.0.2:80: in the desired state, not reached by the kernel's rules",
    ),
  );
});

test('ipvs: a deleted ipset member is named', () => {
  const c = ctx();
  const cmp = compareLive(
    c,
    kernel(c.rules, { ipset: (l) => l.filter((x) => x !== 'add KUBE-CLUSTER-IP 172.30.0.41,tcp:80') }),
    P,
  );
  assert.ok(
    cmp.differences.includes('ipset member missing from the kernel: add KUBE-CLUSTER-IP 172.30.0.41,tcp:80'),
    cmp.differences.join('\n'),
  );
});

test('ipvs: a foreign iptables rule on the path is named', () => {
  const c = ctx();
  const live = kernel(c.rules);
  const iptables = live.iptables.replace(
    /^\*nat\n((?::.*\n)*)/m,
    '*nat\n$1-A PREROUTING -s 10.1.2.3/32 -j ACCEPT\n',
  );
  assert.notEqual(iptables, live.iptables);
  const cmp = compareLive(c, { ...live, iptables }, P);
  assert.ok(
    cmp.differences.includes(
      'a rule that is not ours is on the path: nat: -A PREROUTING -s 10.1.2.3/32 -j ACCEPT',
    ),
    cmp.differences.join('\n'),
  );
});

test('ipvs: a real server of weight 0 takes no new connection', () => {
  const c = ctx();
  const live = kernel(c.rules, {
    ipvs: (l) => l.map((x) => (x.includes('-r 10.180.0.2:80') ? x.replace(/-w 1$/, '-w 0') : x)),
  });
  const m = ipvsModelFromKernel(live);
  assert.deepEqual(
    m.services.get('tcp 172.30.0.41:80')!.realServers.map((r) => `${r.ip}:${r.port}`),
    ['10.180.0.1:80', '10.180.2.1:80'],
  );
  const cmp = compareLive(c, live, P);
  assert.ok(
    cmp.differences.includes(
      'real server 10.180.0.2:80 of virtual server TCP 172.30.0.41:80 has weight 0 in the kernel: -a -t 172.30.0.41:80 -r 10.180.0.2:80 -m -w 1',
    ),
    cmp.differences.join('\n'),
  );
});

test('ipvs: the live state must be the IPVS state, not rule text', () => {
  assert.throws(() => compareLive(ctx(), '*nat\nCOMMIT\n', P), /IPVS mode reads the IPVS state/);
});
