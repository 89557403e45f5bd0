import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SCENARIOS, familyOptions, NODE } from '../../../test/golden/nftables/scenarios.js';
import { makeSlice } from '../../../test/fixtures/objects.js';
import type { Kind, KubeObject } from '../../model/types.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { NFTablesProxier } from './proxier.js';
import { renderNFTables } from './render.js';
import { applyScript, type TableModel } from './nft-model.test-helper.js';

const KINDS: Kind[] = ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'];
const names = Object.keys(SCENARIOS).filter((n) => n !== 'etp-local-no-local-endpoints');
const id = (o: KubeObject) => `${o.kind}/${o.meta.namespace}/${o.meta.name}`;

function objectsFor(pick: readonly string[], extra: number): KubeObject[] {
  const objs = pick.flatMap((n) => SCENARIOS[n]!);
  if (pick.includes('basic-clusterip') && extra > 0)
    objs.push(makeSlice('ns1', 'svc1', 'svc1-extra', Array.from({ length: extra }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' }))));
  return objs;
}

/** Drives a real tracker (so unchanged service ports keep their identity) and a proxier whose runner is the kernel model. */
class Harness {
  readonly tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  readonly current = new Map<string, KubeObject>();
  model: TableModel | undefined;
  readonly scripts: string[] = [];
  readonly proxier = new NFTablesProxier({ logger: createMemoryLogger(), options: familyOptions('IPv4') }, (script) => {
    this.model = applyScript(this.model, script);
    this.scripts.push(script);
    return Promise.resolve();
  });
  constructor() {
    for (const kind of KINDS) this.tracker.onEvent({ type: 'synced', kind });
  }
  setObjects(objs: readonly KubeObject[]): void {
    const next = new Map(objs.map((o) => [id(o), o]));
    for (const [k, o] of this.current) if (!next.has(k)) this.tracker.onEvent({ type: 'delete', object: o });
    for (const [k, o] of next) {
      const old = this.current.get(k);
      if (!old) this.tracker.onEvent({ type: 'add', object: o });
      else if (JSON.stringify(old) !== JSON.stringify(o)) this.tracker.onEvent({ type: 'update', old, object: o });
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

function normal(m: TableModel): unknown {
  return {
    chains: [...m.chains].sort(([a], [b]) => (a < b ? -1 : 1)),
    sets: [...m.sets].map(([k, v]) => [k, v.spec, [...v.elements].sort()]).sort(),
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
  h.setObjects(objectsFor(names, 3).map((o) => (o.kind === 'EndpointSlice' && o.meta.name === 'svc1-extra' ? makeSlice('ns1', 'svc1', 'svc1-extra', [{ ip: '10.181.0.1' }, { ip: '10.181.0.2' }, { ip: '10.181.0.77' }]) : o)));
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

test('property: incremental syncs leave exactly what a full sync of the same state gives', async () => {
  const step = fc.record({ pick: fc.subarray(names), extra: fc.integer({ min: 0, max: 9 }), full: fc.boolean() });
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
      const h = new Harness();
      for (const s of steps) {
        h.setObjects(objectsFor(s.pick, s.extra));
        await h.sync(s.full && Math.random() < 0.2);
        assert.deepEqual(normal(h.model!), normal(await h.fullModel()));
      }
    }),
    { numRuns: 120 },
  );
});

test('a fresh proxier\'s first full sync sends exactly what render prints', async () => {
  const h = new Harness();
  h.setObjects(objectsFor(names, 4));
  await h.sync(true);
  const state = h.tracker.build('IPv4');
  const text = renderNFTables([state], [familyOptions('IPv4')]);
  assert.equal(text, `# family: ipv4\n${h.scripts[0]!}`);
});
