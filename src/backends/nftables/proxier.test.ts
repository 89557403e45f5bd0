import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SCENARIOS, familyOptions, NODE } from '../../../test/golden/nftables/scenarios.js';
import { makeService, makeSlice } from '../../../test/fixtures/objects.js';
import type { Kind, KubeObject } from '../../model/types.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { NFTablesProxier, type NftLister } from './proxier.js';
import { renderNFTables } from './render.js';
import { applyScript, listTable, type TableModel } from '../../explain/nft-table-model.js';

const KINDS: Kind[] = ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'];
const names = Object.keys(SCENARIOS).filter((n) => n !== 'etp-local-no-local-endpoints');
const id = (o: KubeObject) => `${o.kind}/${o.meta.namespace}/${o.meta.name}`;

function objectsFor(pick: readonly string[], extra: number, sticky: readonly string[] = []): KubeObject[] {
  const objs = pick.flatMap((n) => SCENARIOS[n]!);
  if (pick.includes('basic-clusterip') && extra > 0)
    objs.push(
      makeSlice(
        'ns1',
        'svc1',
        'svc1-extra',
        Array.from({ length: extra }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' })),
      ),
    );
  if (sticky.length > 0)
    objs.push(
      makeService('ns-sticky', 'sticky', {
        clusterIP: '172.30.0.60',
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      }),
      makeSlice(
        'ns-sticky',
        'sticky',
        'sticky-a',
        sticky.map((ip) => ({ ip, nodeName: NODE })),
      ),
    );
  return objs;
}

const kernelFilled = (spec: string) => /flags dynamic/.test(spec);

/** What packets do: `update @affinity-… { ip saddr }` adds the client to every kernel-filled set it passes. */
function remember(m: TableModel, client: string): void {
  for (const s of m.sets.values())
    if (kernelFilled(s.spec) && !s.elements.has(client)) s.elements.set(client, '');
}

function clientsOf(m: TableModel | undefined): Map<string, [string, string[]]> {
  return new Map(
    [...(m?.sets ?? [])]
      .filter(([, s]) => kernelFilled(s.spec))
      .map(([k, s]) => [k, [s.spec, [...s.elements.keys()].sort()]]),
  );
}

/** Drives a real tracker (so unchanged service ports keep their identity) and a proxier whose runner is the kernel model. */
class Harness {
  readonly tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  readonly current = new Map<string, KubeObject>();
  model: TableModel | undefined;
  readonly scripts: string[] = [];
  readonly logger = createMemoryLogger();
  /** `nft -t list table` of the model, as the real lister (rejects when there is no table). */
  lister: NftLister = (family) =>
    new Promise((resolve) => {
      resolve(listTable(this.model, family));
    });
  proxier = this.newProxier();
  /** A proxier with no memory of what it programmed (a daemon restart), on the same kernel model. */
  newProxier(): NFTablesProxier {
    return new NFTablesProxier(
      { logger: this.logger, options: familyOptions('IPv4') },
      (script) => {
        this.model = applyScript(this.model, script);
        this.scripts.push(script);
        return Promise.resolve();
      },
      false,
      (family) => this.lister(family),
    );
  }
  constructor() {
    for (const kind of KINDS) this.tracker.onEvent({ type: 'synced', kind });
  }
  setObjects(objs: readonly KubeObject[]): void {
    const next = new Map(objs.map((o) => [id(o), o]));
    for (const [k, o] of this.current) if (!next.has(k)) this.tracker.onEvent({ type: 'delete', object: o });
    for (const [k, o] of next) {
      const old = this.current.get(k);
      if (!old) this.tracker.onEvent({ type: 'add', object: o });
      else if (JSON.stringify(old) !== JSON.stringify(o))
        this.tracker.onEvent({ type: 'update', old, object: o });
    }
    this.current.clear();
    for (const [k, o] of next) this.current.set(k, o);
  }
  async sync(full: boolean): Promise<void> {
    const s = this.tracker.build('IPv4');
    await this.proxier.sync(s, full);
    this.tracker.commit(s);
  }
  /** The model a full sync of the current state gives, in a fresh table. */
  async fullModel(): Promise<TableModel> {
    const before = this.model;
    this.model = undefined;
    await this.sync(true);
    const m = this.model!;
    this.model = before;
    return m;
  }
}

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

test('first sync is full; an unchanged state sends nothing; one endpoint change sends only elements', async () => {
  const h = new Harness();
  h.setObjects(objectsFor(names, 3));
  await h.sync(false);
  assert.equal(h.proxier.last?.full, true);
  assert.match(h.scripts[0]!, /^add table ip kube-proxy/);
  await h.sync(false);
  assert.equal(h.proxier.last?.bytes, 0);
  assert.equal(h.proxier.last?.rebuilt, 0);
  h.setObjects(
    objectsFor(names, 3).map((o) =>
      o.kind === 'EndpointSlice' && o.meta.name === 'svc1-extra'
        ? makeSlice('ns1', 'svc1', 'svc1-extra', [
            { ip: '10.181.0.1' },
            { ip: '10.181.0.2' },
            { ip: '10.181.0.77' },
          ])
        : o,
    ),
  );
  await h.sync(false);
  assert.equal(h.proxier.last?.full, false);
  assert.equal(h.proxier.last?.rebuilt, 1);
  const script = h.scripts.at(-1)!;
  assert.doesNotMatch(script, /chain/, script);
  assert.match(script, /10\.181\.0\.77/);
  assert.deepEqual(normal(h.model!), normal(await h.fullModel()));
});

test('a failed transaction makes the next sync full', async () => {
  let fail = true;
  const scripts: string[] = [];
  const p = new NFTablesProxier({ logger: createMemoryLogger(), options: familyOptions('IPv4') }, (s) => {
    scripts.push(s);
    return fail ? Promise.reject(new Error('boom')) : Promise.resolve();
  });
  const h = new Harness();
  h.setObjects(objectsFor(['basic-clusterip'], 0));
  const st = h.tracker.build('IPv4');
  await assert.rejects(p.sync(st, true), /boom/);
  fail = false;
  await p.sync(st, false);
  assert.equal(p.last?.full, true);
  await p.sync(st, false);
  assert.equal(p.last?.full, false);
});

test('property: any sync leaves what a full sync in an empty table gives, and wanted affinity sets keep their clients', async () => {
  const eps = ['10.182.0.1', '10.182.0.2', '10.182.0.3'];
  const step = fc.record({
    pick: fc.subarray(names),
    extra: fc.integer({ min: 0, max: 9 }),
    sticky: fc.subarray(eps),
    full: fc.boolean(),
    restart: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
      const h = new Harness();
      for (const [i, s] of steps.entries()) {
        h.setObjects(objectsFor(s.pick, s.extra, s.sticky));
        if (s.restart) h.proxier = h.newProxier();
        const before = clientsOf(h.model);
        await h.sync(s.full);
        if (s.restart || s.full || i === 0)
          assert.equal(h.proxier.last?.replaced, i === 0 ? 'whole' : 'read');
        const after = h.model!;
        assert.deepEqual(normal(after, true), normal(await h.fullModel(), true));
        for (const [name, [spec, clients]] of clientsOf(after)) {
          const was = before.get(name);
          assert.deepEqual(clients, was && was[0] === spec ? was[1] : [], name);
        }
        remember(after, `10.99.0.${i + 1}`);
      }
    }),
    { numRuns: 120 },
  );
});

test("a restarted proxier's first sync is full over the read-back table: affinity clients stay, stale objects go", async () => {
  const h = new Harness();
  h.setObjects(objectsFor(names, 3, ['10.182.0.1', '10.182.0.2', '10.182.0.3']));
  await h.sync(false);
  assert.equal(h.proxier.last?.replaced, 'whole', 'no table yet');
  remember(h.model!, '10.99.0.7');
  const sets = [...clientsOf(h.model)].length;
  assert.equal(sets, 5, 'two affinity sets of the scenario, three of ns-sticky');
  // The daemon restarts; meanwhile one endpoint of ns-sticky went away and basic-clusterip was deleted.
  h.setObjects(
    objectsFor(
      names.filter((n) => n !== 'basic-clusterip'),
      0,
      ['10.182.0.1', '10.182.0.3'],
    ),
  );
  h.proxier = h.newProxier();
  await h.sync(false);
  assert.deepEqual(
    { full: h.proxier.last?.full, replaced: h.proxier.last?.replaced, kept: h.proxier.last?.kept },
    { full: true, replaced: 'read', kept: 4 },
  );
  const script = h.scripts.at(-1)!;
  assert.doesNotMatch(script, /^delete table/m);
  assert.match(script, /^delete set ip kube-proxy affinity-\S+__10\.182\.0\.2\/80$/m);
  const clients = clientsOf(h.model);
  assert.equal(clients.size, 4);
  for (const [name, [, c]] of clients) assert.deepEqual(c, ['10.99.0.7'], name);
  assert.deepEqual(normal(h.model!, true), normal(await h.fullModel(), true));
  assert.ok(
    !h.model!.sets.has('cluster-targets-tcp') ||
      ![...h.model!.sets.get('cluster-targets-tcp')!.elements.keys()].some((k) =>
        k.startsWith('172.30.0.41 '),
      ),
  );
});

test('a table that cannot be listed or is not understood is replaced whole (add + delete + create)', async () => {
  const h = new Harness();
  h.setObjects(objectsFor(['affinity'], 0));
  await h.sync(true);
  remember(h.model!, '10.99.0.8');
  h.lister = () =>
    Promise.reject(new Error('nft -t list table ip kube-proxy: exit code 1: Error: Operation not permitted'));
  h.proxier = h.newProxier();
  await h.sync(true);
  assert.equal(h.proxier.last?.replaced, 'whole');
  assert.match(
    h.scripts.at(-1)!,
    /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\ndelete table ip kube-proxy\n/,
  );
  for (const [, [, c]] of clientsOf(h.model)) assert.deepEqual(c, []);
  assert.ok(h.logger.entries.some((e) => e.level === 'warn' && /could not list/.test(e.msg)));

  remember(h.model!, '10.99.0.8');
  h.lister = (family) =>
    Promise.resolve(
      listTable(h.model, family).replace(
        'table ip kube-proxy {\n',
        'table ip kube-proxy {\n\tflowtable ft {\n\t\thook ingress priority filter\n\t}\n',
      ),
    );
  await h.sync(true);
  assert.equal(h.proxier.last?.replaced, 'whole');
  assert.ok(
    h.logger.entries.some(
      (e) => e.level === 'warn' && /not understood/.test(e.msg) && /flowtable/.test(String(e.obj.reason)),
    ),
  );

  // A missing table is the normal first start: debug only.
  const fresh = new Harness();
  fresh.setObjects(objectsFor(['affinity'], 0));
  await fresh.sync(true);
  assert.equal(fresh.proxier.last?.replaced, 'whole');
  assert.ok(!fresh.logger.entries.some((e) => e.level === 'warn'));
});

test("a fresh proxier's first full sync sends exactly what render prints", async () => {
  const h = new Harness();
  h.setObjects(objectsFor(names, 4));
  await h.sync(true);
  const state = h.tracker.build('IPv4');
  const text = renderNFTables([state], [familyOptions('IPv4')]);
  assert.equal(text, `# family: ipv4\n${h.scripts[0]!}`);
});
