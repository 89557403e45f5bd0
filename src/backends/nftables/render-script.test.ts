import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SCENARIOS, familyOptions, statesOf } from '../../../test/golden/nftables/scenarios.js';
import { makeSlice } from '../../../test/fixtures/objects.js';
import type { KubeObject } from '../../model/types.js';
import { buildLayout, type NftLayout } from './render-layout.js';
import { diffScript, fullScript } from './render-script.js';
import { SlotAllocator } from './slots.js';
import { applyScript, type TableModel } from './nft-model.test-helper.js';

const v4 = familyOptions('IPv4');
const names = Object.keys(SCENARIOS).filter((n) => n !== 'etp-local-no-local-endpoints');

function objectsFor(pick: readonly string[], extraEndpoints: number): KubeObject[] {
  const objs = pick.flatMap((n) => SCENARIOS[n]!);
  // A growing slice for ns1/svc1 when basic-clusterip is picked: endpoint count changes move slot blocks.
  if (pick.includes('basic-clusterip') && extraEndpoints > 0)
    objs.push(makeSlice('ns1', 'svc1', 'svc1-extra', Array.from({ length: extraEndpoints }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' }))));
  return objs;
}

function layoutFor(pick: readonly string[], extra: number, slots: SlotAllocator): NftLayout {
  return buildLayout(statesOf(objectsFor(pick, extra))[0]!, v4, slots);
}

function normal(m: TableModel): unknown {
  return {
    chains: [...m.chains].sort(([a], [b]) => (a < b ? -1 : 1)),
    sets: [...m.sets].map(([k, v]) => [k, v.spec, [...v.elements].sort()]).sort(),
  };
}

test('full script replaces whatever table was there', () => {
  const slots = new SlotAllocator();
  const a = layoutFor(names, 0, slots);
  const m1 = applyScript(undefined, fullScript(a));
  const m2 = applyScript(m1, fullScript(a));
  assert.deepEqual(normal(m2), normal(m1));
});

test('no change gives an empty transaction', () => {
  const slots = new SlotAllocator();
  const a = layoutFor(names, 0, slots);
  const b = layoutFor(names, 0, slots);
  assert.equal(diffScript(a, b).script, '');
});

test('an endpoint replaced at the same count changes elements only', () => {
  const slots = new SlotAllocator();
  const a = layoutFor(['basic-clusterip'], 2, slots);
  const objs = objectsFor(['basic-clusterip'], 2).map((o) =>
    o.kind === 'EndpointSlice' && o.meta.name === 'svc1-extra'
      ? makeSlice('ns1', 'svc1', 'svc1-extra', [{ ip: '10.181.0.1', nodeName: 'node-2' }, { ip: '10.181.0.9', nodeName: 'node-2' }])
      : o,
  );
  const b = buildLayout(statesOf(objs)[0]!, v4, slots);
  const { script, stats } = diffScript(a, b);
  assert.deepEqual({ ...stats, elementsAdded: 0, elementsDeleted: 0 }, { chainsAdded: 0, chainsRewritten: 0, chainsDeleted: 0, setsAdded: 0, setsDeleted: 0, elementsAdded: 0, elementsDeleted: 0 });
  assert.ok(!/chain/.test(script), script);
  assert.match(script, /delete element ip kube-proxy cluster-targets-tcp \{ 172\.30\.0\.41 \. 80 \. \d+ \}/);
  assert.match(script, /10\.181\.0\.9 \. 80/);
});

test('a removed service deletes its chains after the elements that jump to them', () => {
  const slots = new SlotAllocator();
  const a = layoutFor(['basic-clusterip', 'affinity'], 0, slots);
  const b = layoutFor(['basic-clusterip'], 0, slots);
  const { script, stats } = diffScript(a, b);
  assert.equal(stats.chainsDeleted, 3);
  assert.equal(stats.setsDeleted, 2);
  const lines = script.trim().split('\n');
  const firstDeleteChain = lines.findIndex((l) => l.startsWith('delete chain'));
  const lastDeleteElement = lines.findLastIndex((l) => l.startsWith('delete element'));
  assert.ok(lastDeleteElement < firstDeleteChain);
  applyScript(applyScript(undefined, fullScript(a)), script);
});

test('property: full(prev) + diff(prev, next) == full(next), and every step passes the kernel-reference model', () => {
  const scenarioSets = fc.subarray(names, { minLength: 0 });
  const step = fc.record({ pick: scenarioSets, extra: fc.integer({ min: 0, max: 9 }), npa: fc.boolean() });
  fc.assert(
    fc.property(fc.array(step, { minLength: 2, maxLength: 6 }), (steps) => {
      const slots = new SlotAllocator();
      let prev: NftLayout | undefined;
      let model: TableModel | undefined;
      for (const s of steps) {
        const opts = s.npa ? v4 : familyOptions('IPv4', { nodePortAddresses: { matchAll: true, ips: [], cidrs: ['0.0.0.0/0'] } });
        const next = buildLayout(statesOf(objectsFor(s.pick, s.extra))[0]!, opts, slots);
        model = prev === undefined ? applyScript(undefined, fullScript(next)) : applyScript(model, diffScript(prev, next).script || '');
        assert.deepEqual(normal(model), normal(applyScript(undefined, fullScript(next))));
        prev = next;
      }
    }),
    { numRuns: 150 },
  );
});

test('slot allocator: stable blocks, growth moves a block, freed blocks are reused only after end()', () => {
  const s = new SlotAllocator();
  s.begin();
  const a = s.get('a', 3);
  const b = s.get('b', 1);
  s.end();
  assert.deepEqual([a, b], [{ base: 0, size: 4 }, { base: 4, size: 4 }]);
  s.begin();
  assert.deepEqual(s.get('a', 4), a);
  const a2 = s.get('a', 5);
  assert.deepEqual(a2, { base: 8, size: 8 });
  s.end(); // b freed, a's old block freed
  s.begin();
  const c = s.get('c', 2);
  assert.ok(c.base === 0 || c.base === 4);
  s.end();
  assert.equal(s.owners, 1); // only c was seen in the last build
});
