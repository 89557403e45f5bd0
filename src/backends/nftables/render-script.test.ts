import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SCENARIOS, familyOptions, statesOf, NODE } from '../../../test/golden/nftables/scenarios.js';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import type { KubeObject } from '../../model/types.js';
import { buildLayout, type NftLayout } from './render-layout.js';
import { diffScript, fullScript, replaceScript } from './render-script.js';
import { SlotAllocator } from './slots.js';
import { applyScript, listTable, type TableModel } from '../../explain/nft-table-model.js';
import { parseTableListing, type ExistingTable } from './render-existing.js';

const v4 = familyOptions('IPv4');
const names = Object.keys(SCENARIOS).filter((n) => n !== 'etp-local-no-local-endpoints');

function objectsFor(pick: readonly string[], extraEndpoints: number): KubeObject[] {
  const objs = pick.flatMap((n) => SCENARIOS[n]!);
  // A growing slice for ns1/svc1 when basic-clusterip is picked: endpoint count changes move slot blocks.
  if (pick.includes('basic-clusterip') && extraEndpoints > 0)
    objs.push(
      makeSlice(
        'ns1',
        'svc1',
        'svc1-extra',
        Array.from({ length: extraEndpoints }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' })),
      ),
    );
  return objs;
}

function layoutFor(pick: readonly string[], extra: number, slots: SlotAllocator): NftLayout {
  return buildLayout(statesOf(objectsFor(pick, extra))[0]!, v4, slots);
}

const kernelFilled = (spec: string) => /flags dynamic/.test(spec);

/** The model in comparable form; the kernel-filled sets' elements (clients) left out when asked. */
function normal(m: TableModel, withoutClients = false): unknown {
  return {
    chains: [...m.chains].sort(([a], [b]) => (a < b ? -1 : 1)),
    sets: [...m.sets]
      .map(([k, v]) => [
        k,
        v.kind,
        v.spec,
        withoutClients && kernelFilled(v.spec) ? [] : [...v.elements].sort(),
      ])
      .sort(),
  };
}

/** What the proxier reads back before a full sync: the model listed as nft does, then parsed. */
function readBack(m: TableModel | undefined): ExistingTable | undefined {
  if (!m) return undefined;
  const r = parseTableListing(listTable(m, 'ip'), 'ip');
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.table;
}

/** What packets do: `update @affinity-… { ip saddr }` adds the client to every kernel-filled set it passes. */
function remember(m: TableModel, client: string): void {
  for (const s of m.sets.values())
    if (kernelFilled(s.spec) && !s.elements.has(client)) s.elements.set(client, '');
}

function clientsOf(m: TableModel): Map<string, [string, string[]]> {
  return new Map(
    [...m.sets]
      .filter(([, s]) => kernelFilled(s.spec))
      .map(([k, s]) => [k, [s.spec, [...s.elements.keys()].sort()]]),
  );
}

/** The node and a service with session affinity for `timeout` seconds on `eps`, plus the picked scenarios. */
function stickyObjects(
  timeout: number,
  eps: readonly string[],
  nodePort = false,
  pick: readonly string[] = [],
  extra = 0,
): KubeObject[] {
  return [
    makeNode(NODE, ['192.168.0.2']),
    ...objectsFor(pick, extra).filter((o) => o.kind !== 'Node'),
    makeService('ns-sticky', 'sticky', {
      clusterIP: '172.30.0.60',
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: timeout } },
      ...(nodePort
        ? { type: 'NodePort', ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30046 }] }
        : {}),
    }),
    makeSlice(
      'ns-sticky',
      'sticky',
      'sticky-a',
      eps.map((ip) => ({ ip, nodeName: NODE })),
    ),
  ];
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
      ? makeSlice('ns1', 'svc1', 'svc1-extra', [
          { ip: '10.181.0.1', nodeName: 'node-2' },
          { ip: '10.181.0.9', nodeName: 'node-2' },
        ])
      : o,
  );
  const b = buildLayout(statesOf(objs)[0]!, v4, slots);
  const { script, stats } = diffScript(a, b);
  assert.deepEqual(
    { ...stats, elementsAdded: 0, elementsDeleted: 0 },
    {
      chainsAdded: 0,
      chainsRewritten: 0,
      chainsDeleted: 0,
      setsAdded: 0,
      setsDeleted: 0,
      elementsAdded: 0,
      elementsDeleted: 0,
    },
  );
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
        const opts = s.npa
          ? v4
          : familyOptions('IPv4', { nodePortAddresses: { matchAll: true, ips: [], cidrs: ['0.0.0.0/0'] } });
        const next = buildLayout(statesOf(objectsFor(s.pick, s.extra))[0]!, opts, slots);
        model =
          prev === undefined
            ? applyScript(undefined, fullScript(next))
            : applyScript(model, diffScript(prev, next).script || '');
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
  assert.deepEqual(
    [a, b],
    [
      { base: 0, size: 4 },
      { base: 4, size: 4 },
    ],
  );
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

test('full script over a read-back table: stale objects go, wanted affinity sets keep their clients', () => {
  const slots = new SlotAllocator();
  const a = buildLayout(
    statesOf(stickyObjects(300, ['10.180.1.1', '10.180.1.2', '10.180.1.3'], true, names, 2))[0]!,
    v4,
    slots,
  );
  const m1 = applyScript(undefined, fullScript(a));
  remember(m1, '10.99.0.1');
  // The same table again (a restart): nothing stale, every affinity set kept.
  const same = replaceScript(a, readBack(m1));
  assert.doesNotMatch(same.script, /delete table/);
  assert.equal(same.kept.length, [...a.sets.values()].filter((x) => kernelFilled(x.spec)).length);
  const m2 = applyScript(m1, same.script);
  assert.deepEqual(normal(m2, true), normal(applyScript(undefined, fullScript(a)), true));
  assert.deepEqual(clientsOf(m2), clientsOf(m1));
  for (const [, [, clients]] of clientsOf(m2)) assert.deepEqual(clients, ['10.99.0.1']);

  // Another layout: one endpoint gone, the rest of the cluster gone. Its set and chain go; the others stay with their clients.
  const b = buildLayout(statesOf(stickyObjects(300, ['10.180.1.1', '10.180.1.3']))[0]!, v4, slots);
  const r = replaceScript(b, readBack(m2));
  assert.equal(r.kept.length, 2);
  const m3 = applyScript(m2, r.script);
  assert.deepEqual(normal(m3, true), normal(applyScript(undefined, fullScript(b)), true));
  const c3 = clientsOf(m3);
  assert.equal(c3.size, 2);
  for (const [name, [, clients]] of c3) {
    assert.ok(name.includes('10.180.1.1') || name.includes('10.180.1.3'), name);
    assert.deepEqual(clients, ['10.99.0.1']);
  }

  // A changed timeout changes the definition: the sets are re-created, empty.
  const c = buildLayout(statesOf(stickyObjects(600, ['10.180.1.1', '10.180.1.3']))[0]!, v4, slots);
  const rc = replaceScript(c, readBack(m3));
  assert.equal(rc.kept.length, 0);
  const m4 = applyScript(m3, rc.script);
  assert.deepEqual(normal(m4), normal(applyScript(undefined, fullScript(c))));
});

test('full script over a read-back table: order is flush chains, delete sets and maps, delete chains, then the fresh body', () => {
  const a = layoutFor(['affinity', 'nodeport'], 0, new SlotAllocator());
  const m = applyScript(undefined, fullScript(a));
  const lines = replaceScript(a, readBack(m)).script.trim().split('\n');
  const kinds = lines.map(
    (l) =>
      /^(add table|flush chain|delete set|delete map|delete chain|add chain|add set|add map|add rule|add element)\b/.exec(
        l,
      )?.[1] ?? l,
  );
  const firstOf = (k: string) => kinds.indexOf(k);
  const lastOf = (k: string) => kinds.lastIndexOf(k);
  assert.equal(kinds[0], 'add table');
  assert.ok(lastOf('flush chain') < firstOf('delete map') && lastOf('flush chain') < firstOf('delete set'));
  assert.ok(Math.max(lastOf('delete map'), lastOf('delete set')) < firstOf('delete chain'));
  assert.ok(lastOf('delete chain') < firstOf('add chain'));
  assert.equal(lines.filter((l) => l.startsWith('flush chain')).length, m.chains.size);
  assert.equal(lines.filter((l) => l.startsWith('delete chain')).length, m.chains.size);
  // Every set and map but the two affinity sets is deleted and re-created.
  assert.equal(lines.filter((l) => /^delete (set|map) /.test(l)).length, m.sets.size - 2);
  assert.ok(!lines.some((l) => /^delete set ip kube-proxy affinity-/.test(l)));
});

test("property: full syncs over the read-back table and diffs between them keep every unchanged affinity set's clients", () => {
  const step = fc.record({
    pick: fc.subarray(names),
    extra: fc.integer({ min: 0, max: 9 }),
    timeout: fc.constantFrom(300, 600),
    eps: fc.subarray(['10.180.1.1', '10.180.1.2', '10.180.1.3', '10.180.1.4'], { minLength: 1 }),
    nodePort: fc.boolean(),
    full: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(step, { minLength: 2, maxLength: 6 }), (steps) => {
      const slots = new SlotAllocator();
      let prev: NftLayout | undefined;
      let model: TableModel | undefined;
      steps.forEach((s, i) => {
        const next = buildLayout(
          statesOf(stickyObjects(s.timeout, s.eps, s.nodePort, s.pick, s.extra))[0]!,
          v4,
          slots,
        );
        const before = model ? clientsOf(model) : new Map<string, [string, string[]]>();
        const script =
          prev === undefined || s.full ? fullScript(next, readBack(model)) : diffScript(prev, next).script;
        model = applyScript(model, script);
        assert.deepEqual(normal(model, true), normal(applyScript(undefined, fullScript(next)), true));
        for (const [name, [spec, clients]] of clientsOf(model)) {
          const was = before.get(name);
          assert.deepEqual(clients, was && was[0] === spec ? was[1] : [], name);
        }
        remember(model, `10.99.0.${i + 1}`);
        prev = next;
      });
    }),
    { numRuns: 150 },
  );
});
