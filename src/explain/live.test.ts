/**
 * explain --live's comparison (pure part): the kernel's text equal to the render agrees; a deleted
 * rule, a flushed chain, a deleted map element or a foreign rule on the path is named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, familyOptions, statesOf } from '../../test/golden/nftables/scenarios.js';
import { renderForDisplay } from '../backends/iptables/render-display.js';
import { renderNFTables } from '../backends/nftables/render.js';
import '../backends/index.js';
import { getBackend } from '../backends/backend.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { familyOptions as baseOptions } from '../../test/fixtures/options.js';
import { desiredStatesFromObjects } from '../proxy/state-from-objects.js';
import { scopeForPacket } from './scope.js';
import type { KubeObject } from '../model/types.js';
import type { ExplainContext } from './explain.js';
import { tablesFromSave, tablesFromText } from './iptables-tables.js';
import { exactDestination } from './iptables-trace.js';
import { compareLive } from './live.js';
import { applyScript, type TableModel } from './nft-table-model.js';
import { parseTableListing } from './nft-listing.js';

const P = { protocol: 'TCP' as const, src: '10.1.2.3', srcPort: 0, dst: '172.30.0.41', dstPort: 80 };

function ctxFor(mode: 'iptables' | 'nftables'): ExplainContext {
  const [state] = statesOf(SCENARIOS['basic-clusterip']!);
  const options = familyOptions('IPv4');
  const rules =
    mode === 'iptables' ? renderForDisplay([state!], [options]) : renderNFTables([state!], [options]);
  return { mode, state: state!, options, rules, interfaceAddresses: [] };
}

/** The model in `nft list table`'s nested layout, with nft's spellings (`|`, no `meta l4proto` before dnat). */
function listing(m: TableModel): string {
  const out = ['table ip kube-proxy {', '\tcomment "rules for kube-proxy"'];
  for (const [name, s] of m.sets) {
    out.push(`\t${s.kind} ${name} {`);
    for (const p of s.spec
      .replace(/^\{ | \}$/g, '')
      .split(';')
      .map((x) => x.trim())
      .filter(Boolean))
      out.push(`\t\t${p}`);
    if (s.elements.size > 0) {
      const els = [...s.elements].map(([k, v]) => (v === '' ? k : `${k} : ${v}`));
      out.push(`\t\telements = { ${els.join(',\n\t\t\t     ')} }`);
    }
    out.push('\t}');
  }
  for (const [name, rules] of m.chains) {
    out.push(`\tchain ${name} {`);
    const hook = m.hooks?.get(name);
    if (hook) out.push(`\t\t${hook.replace(/ ;$/, ';')} policy accept;`);
    for (const r of rules)
      out.push(
        `\t\t${r.replace(' meta mark or ', ' meta mark | ').replace(/meta l4proto tcp (dnat .* tcp dport )/, '$1')}`,
      );
    out.push('\t}');
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

test('iptables: the kernel holding the render agrees', () => {
  const ctx = ctxFor('iptables');
  const cmp = compareLive(ctx, tablesFromText(ctx.rules).saveAll(), P);
  assert.deepEqual(cmp.differences, []);
  assert.deepEqual(cmp.live.json, cmp.desired.json);
});

test('iptables: a deleted rule and a flushed chain are named', () => {
  const ctx = ctxFor('iptables');
  const t = tablesFromText(ctx.rules);
  const svc = [...t.table('nat').keys()].find((c) => c.startsWith('KUBE-SVC-'))!;
  const rules = t.table('nat').get(svc)!;
  const gone = rules.splice(
    rules.findIndex((r) => r.includes('-j KUBE-SEP-')),
    1,
  )[0]!;
  const cmp = compareLive(ctx, t.saveAll(), P);
  assert.ok(
    cmp.differences.includes(`rule missing from the kernel: nat: -A ${svc} ${gone}`),
    cmp.differences.join('\n'),
  );
  assert.ok(cmp.differences.some((d) => /^endpoint \S+: in the desired state, not reached/.test(d)));

  const t2 = tablesFromText(ctx.rules);
  t2.table('nat').set(svc, []);
  const cmp2 = compareLive(ctx, t2.saveAll(), P);
  assert.ok(cmp2.differences.includes(`chain nat ${svc} was flushed`), cmp2.differences.join('\n'));
  assert.ok(cmp2.differences.includes('verdict: the kernel says NONE, the desired state says DNAT'));
});

test('iptables: a foreign rule on the path is named', () => {
  const ctx = ctxFor('iptables');
  const t = tablesFromText(ctx.rules);
  t.table('nat').get('PREROUTING')!.unshift('-s 10.1.2.3/32 -j RETURN');
  const cmp = compareLive(ctx, t.saveAll(), P);
  assert.ok(
    cmp.differences.includes(
      'a rule that is not ours is on the path: nat: -A PREROUTING -s 10.1.2.3/32 -j RETURN',
    ),
  );
  assert.equal(cmp.live.json.verdict, 'NONE');
});

test("nftables: the listing parser reads nft's layout back into the model the script builds", () => {
  const ctx = ctxFor('nftables');
  const m = applyScript(undefined, ctx.rules);
  const back = parseTableListing(listing(m));
  assert.deepEqual([...back.chains.keys()], [...m.chains.keys()]);
  assert.deepEqual(back.hooks, m.hooks);
  for (const [name, s] of m.sets) assert.deepEqual(back.sets.get(name)?.elements, s.elements, name);
  const cmp = compareLive(ctx, listing(m), P);
  assert.deepEqual(cmp.differences, []);
  assert.deepEqual(cmp.live.json, cmp.desired.json);
});

test('nftables: a deleted map element is named', () => {
  const ctx = ctxFor('nftables');
  const m = applyScript(undefined, ctx.rules);
  m.sets.get('cluster-targets-tcp')!.elements.delete('172.30.0.41 . 80 . 1');
  const cmp = compareLive(ctx, listing(m), P);
  assert.ok(
    cmp.differences.includes(
      'map element missing from the kernel: add element ip kube-proxy cluster-targets-tcp { 172.30.0.41 . 80 . 1 : 10.180.0.2 . 80 }',
    ),
    cmp.differences.join('\n'),
  );
  assert.ok(
    cmp.differences.includes(
      "endpoint 10.180.0.2:80: in the desired state, not reached by the kernel's rules",
    ),
  );
});

test('tablesFromSave reads a whole iptables-save as tablesFromText reads its filter and nat', () => {
  const ctx = ctxFor('iptables');
  const t = tablesFromText(ctx.rules);
  t.table('mangle').set('OTHER', ['-j RETURN']);
  const save = `# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n${t.saveAll()}`;
  const back = tablesFromSave(save, new Set(['filter', 'nat']));
  assert.deepEqual([...back.tables.keys()].sort(), ['filter', 'nat']);
  for (const name of ['filter', 'nat']) assert.deepEqual(back.tables.get(name), t.tables.get(name), name);
  assert.deepEqual(tablesFromSave(save).tables.get('mangle')?.get('OTHER'), ['-j RETURN']);
  assert.throws(() => tablesFromSave('*nat\n-A KUBE-NOPE -j RETURN\nCOMMIT\n'), /undeclared chain KUBE-NOPE/);
  assert.throws(() => tablesFromSave('-A PREROUTING -j RETURN\n'), /before any \*table/);
});

test("nftables: the listing parser reads elements with nested braces and dynamic sets' expiries", () => {
  const m = parseTableListing(
    [
      'table ip kube-proxy {',
      '\tset affinity {',
      '\t\ttype ipv4_addr',
      '\t\tflags dynamic,timeout',
      '\t\telements = { 10.0.0.1 timeout 3h expires 2h59m, 10.0.0.2 timeout 3h expires 1h }',
      '\t}',
      '\tmap m {',
      '\t\ttype ipv4_addr : verdict',
      '\t\telements = { 10.0.0.3 : goto a,',
      '\t\t\t     10.0.0.4 : jump b }',
      '\t}',
      '\tset s {',
      '\t\ttype ipv4_addr',
      '\t\tflags interval',
      '\t\telements = { { 10.1.0.0/16 }, 10.2.0.0/16 }',
      '\t}',
      '}',
    ].join('\n'),
  );
  assert.deepEqual([...m.sets.get('affinity')!.elements.keys()], ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(
    [...m.sets.get('m')!.elements],
    [
      ['10.0.0.3', 'goto a'],
      ['10.0.0.4', 'jump b'],
    ],
  );
  assert.deepEqual([...m.sets.get('s')!.elements.keys()], ['{ 10.1.0.0/16 }', '10.2.0.0/16']);
});

/** Three ClusterIP services; the CLI renders only the part a packet to the first can touch. */
function scoped(mode: 'iptables' | 'nftables'): { ctx: ExplainContext; whole: string; p: typeof P } {
  const objs: KubeObject[] = [makeNode('node-1', ['10.100.0.2'])];
  for (const i of [1, 2, 3]) {
    objs.push(makeService('ns', `s${i}`, { clusterIP: `172.30.1.${i}` }));
    objs.push(makeSlice('ns', `s${i}`, `s${i}-a`, [{ ip: `10.180.${i}.1`, nodeName: 'node-2' }]));
  }
  const [state] = desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: 'node-1' });
  const options = baseOptions({ localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/16'] } });
  const p = { ...P, dst: '172.30.1.1' };
  const backend = getBackend(mode)!;
  const rules = backend.render([scopeForPacket(state!, p)], [options], [state!]);
  const whole = backend.render([state!], [options]);
  return { ctx: { mode, state: state!, options, rules, interfaceAddresses: [] }, whole, p };
}

test('the rendered part against the whole kernel: equal, and the whole render is never made', () => {
  for (const mode of ['iptables', 'nftables'] as const) {
    const { ctx, whole, p } = scoped(mode);
    assert.ok(ctx.rules.length < whole.length, mode);
    const kernel =
      mode === 'iptables' ? tablesFromText(whole).saveAll() : listing(applyScript(undefined, whole));
    const cmp = compareLive(ctx, kernel, p, {
      whole: () => assert.fail(`${mode}: the whole render was asked for`),
    });
    assert.deepEqual(cmp.differences, [], mode);
    assert.deepEqual(cmp.live.json.endpoints, ['10.180.1.1:80'], mode);
    // From outside the cluster CIDR: masqueraded (nft lists the mark's `or` as `|`).
    assert.equal(cmp.live.json.masquerade, true, mode);
  }
});

test('iptables: a path into rules outside the rendered part asks for the whole render to tell ours', () => {
  const { ctx, whole, p } = scoped('iptables');
  const t = tablesFromText(whole);
  const nat = t.table('nat');
  const sep = (ip: string): string =>
    [...nat.keys()].find(
      (c) => c.startsWith('KUBE-SEP-') && nat.get(c)!.some((r) => r.includes(`--to-destination ${ip}:80`)),
    )!;
  const svc1 = [...nat.keys()].find((c) => nat.get(c)!.some((r) => r.includes(`-j ${sep('10.180.1.1')}`)))!;
  // KUBE-SVC of s1 jumps to s3's endpoint chain: that jump is not ours, s3's chain is.
  const rules = nat.get(svc1)!;
  const i = rules.findIndex((r) => r.includes(`-j ${sep('10.180.1.1')}`));
  rules[i] = rules[i]!.replace(sep('10.180.1.1'), sep('10.180.3.1'));
  let asked = 0;
  const cmp = compareLive(ctx, t.saveAll(), p, { whole: () => (asked++, whole) });
  assert.equal(asked, 1);
  assert.deepEqual(cmp.live.json.endpoints, ['10.180.3.1:80']);
  const foreign = cmp.differences.filter((d) => d.startsWith('a rule that is not ours'));
  assert.deepEqual(foreign, [`a rule that is not ours is on the path: nat: -A ${svc1} ${rules[i]}`]);
  assert.ok(
    cmp.differences.includes(
      "endpoint 10.180.3.1:80: reached by the kernel's rules, not in the desired state",
    ),
  );
  // Without the whole render, s3's rules would be called foreign too.
  const blind = compareLive(ctx, t.saveAll(), p);
  assert.ok(blind.differences.filter((d) => d.startsWith('a rule that is not ours')).length > 1);
});

test('exactDestination: the un-negated single-address -d outside comments, else nothing', () => {
  const cases: [string, string | undefined][] = [
    ['-d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X', '10.0.0.1'],
    ['-m comment --comment "ns/s:p cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j X', '172.30.0.41'],
    ['-m comment --comment "a -d 1.2.3.4" -j X', undefined],
    ['! -d 10.0.0.1/32 -j X', undefined],
    ['-s 10.1.0.0/16 ! -d 10.0.0.1/32 -j X', undefined],
    ['-d 10.0.0.0/8 -j X', undefined],
    ['-d fd00::1/128 -j X', undefined],
    ['-j KUBE-MARK-MASQ', undefined],
  ];
  for (const [rule, want] of cases) assert.equal(exactDestination(rule), want, rule);
});
