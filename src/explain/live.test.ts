/**
 * explain --live's comparison (pure part): the kernel's text equal to the render agrees; a deleted
 * rule, a flushed chain, a deleted map element or a foreign rule on the path is named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, familyOptions, statesOf } from '../../test/golden/nftables/scenarios.js';
import { renderForDisplay } from '../backends/iptables/render-display.js';
import { renderNFTables } from '../backends/nftables/render.js';
import type { ExplainContext } from './explain.js';
import { tablesFromText } from './iptables-tables.js';
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
