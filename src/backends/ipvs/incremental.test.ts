/**
 * Partial syncs of IPVS mode: a fake kernel that interprets the tools' input strictly (adding what
 * exists or deleting what does not fails, as the kernel does), a real StateTracker driven by random
 * Service / EndpointSlice events, and the property that a random sequence of partial and full syncs
 * leaves the kernel exactly as a full render of the final state programs it (drained real servers
 * aside), and exactly as a proxier that only ever did full syncs left its own kernel.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { familyOptions } from '../../../test/golden/iptables/scenarios.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import type { IPFamily, KubeObject } from '../../model/types.js';
import type { DesiredState } from '../../proxy/types.js';
import { IPVSProxier } from './proxier.js';
import {
  buildIPVSLayout,
  ipsetRestoreText,
  ipvsRestoreText,
  linkBatchText,
  type IPVSLayout,
} from './render.js';
import { FakeKernel, makeIPVSProxier } from '../../../test/fixtures/ipvs-kernel.js';

/** What a fresh kernel holds after being fed the full render of `layout` (the `render` output). */
function rendered(layout: IPVSLayout): ReturnType<FakeKernel['snapshot']> {
  const k = new FakeKernel();
  k.run('ip', ['-batch', '-'], linkBatchText(layout));
  k.run('ipset', ['-exist', 'restore'], ipsetRestoreText(layout));
  k.run('ipvsadm', ['-R'], ipvsRestoreText(layout));
  k.run('iptables-restore', ['--noflush'], layout.nat + layout.filter);
  return k.snapshot();
}

const makeProxier = makeIPVSProxier;

// ------------------------------------------------------------------------------------------------
// A small random cluster: few addresses and ports, so service ports share VIPs, hairpin entries,
// node ports and health check node ports, and now and then claim the same virtual server.

const NODE = 'node-1';
const NODE_IP: Record<IPFamily, string> = { IPv4: '10.100.0.2', IPv6: 'fd00:10:100::2' };
const SERVICES = 6;

interface ServiceSpec {
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  readonly ip: number;
  readonly ports: readonly {
    readonly port: number;
    readonly protocol: 'TCP' | 'UDP' | 'SCTP';
    readonly nodePort: number;
  }[];
  readonly externalIPs: readonly number[];
  readonly lb: number;
  readonly sourceRanges: number;
  readonly local: boolean;
  readonly internalLocal: boolean;
  readonly affinity: boolean;
  readonly hcnp: number;
}

interface Step {
  readonly service: number;
  /** undefined deletes the Service. */
  readonly spec: ServiceSpec | undefined;
  /** Endpoints: [pod index, on this node]; undefined deletes the slice. */
  readonly endpoints: readonly (readonly [number, boolean])[] | undefined;
}

interface Round {
  readonly steps: readonly Step[];
  readonly full: boolean;
  readonly fail: boolean;
}

const arbSpec: fc.Arbitrary<ServiceSpec> = fc.record({
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
  ip: fc.integer({ min: 1, max: 4 }),
  ports: fc.uniqueArray(
    fc.record({
      port: fc.constantFrom(80, 53),
      protocol: fc.constantFrom('TCP', 'TCP', 'UDP', 'SCTP'),
      nodePort: fc.constantFrom(30001, 30002, 30003),
    }),
    { minLength: 1, maxLength: 2, selector: (p) => `${p.port}/${p.protocol}` },
  ),
  externalIPs: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { maxLength: 2 }),
  lb: fc.integer({ min: 0, max: 3 }),
  sourceRanges: fc.integer({ min: 0, max: 3 }),
  local: fc.boolean(),
  internalLocal: fc.boolean(),
  affinity: fc.boolean(),
  hcnp: fc.constantFrom(30300, 30301),
});

const arbStep: fc.Arbitrary<Step> = fc.record({
  service: fc.integer({ min: 0, max: SERVICES - 1 }),
  spec: fc.option(arbSpec, { freq: 5, nil: undefined }),
  endpoints: fc.option(fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.boolean()), { maxLength: 3 }), {
    freq: 5,
    nil: undefined,
  }),
});

const arbRounds: fc.Arbitrary<Round[]> = fc.array(
  fc.record({
    steps: fc.array(arbStep, { minLength: 1, maxLength: 4 }),
    full: fc.boolean(),
    fail: fc.constantFrom(false, false, false, false, false, true),
  }),
  { minLength: 1, maxLength: 12 },
);

function addr(family: IPFamily, kind: 'svc' | 'ext' | 'lb' | 'pod', i: number): string {
  const v4: Record<typeof kind, string> = {
    svc: '172.30.0.',
    ext: '192.0.2.',
    lb: '198.51.100.',
    pod: '10.0.0.',
  };
  const v6: Record<typeof kind, string> = {
    svc: 'fd00:30::',
    ext: 'fd00:192::',
    lb: 'fd00:198::',
    pod: 'fd00:10::',
  };
  return (family === 'IPv4' ? v4 : v6)[kind] + String(i);
}

function serviceObject(family: IPFamily, i: number, s: ServiceSpec): KubeObject {
  const external = s.type !== 'ClusterIP';
  const ranges = [
    [],
    [family === 'IPv4' ? '203.0.113.0/24' : 'fd00:203::/64'],
    [family === 'IPv4' ? '10.100.0.0/16' : 'fd00:10:100::/64'],
    [
      family === 'IPv4' ? '10.100.0.0/16' : 'fd00:10:100::/64',
      family === 'IPv4' ? 'fd00:203::/64' : '203.0.113.0/24',
    ],
  ][s.sourceRanges]!;
  return makeService(
    'ns',
    `s${i}`,
    {
      type: s.type,
      clusterIP: addr(family, 'svc', s.ip),
      ...(family === 'IPv6' ? { ipFamilies: ['IPv6'] } : {}),
      ports: s.ports.map((p) => ({
        name: `${p.protocol.toLowerCase()}${p.port}`,
        port: p.port,
        protocol: p.protocol,
        ...(external ? { nodePort: p.nodePort } : {}),
      })),
      // 5 is the other family's address: skipped (logged), never programmed.
      externalIPs: s.externalIPs.map((e) =>
        e === 5
          ? family === 'IPv4'
            ? 'fd00::5'
            : '192.0.2.5'
          : e === 4
            ? addr(family, 'svc', 1)
            : addr(family, 'ext', e),
      ),
      ...(s.affinity ? { sessionAffinity: 'ClientIP' } : {}),
      ...(external && s.local ? { externalTrafficPolicy: 'Local' } : {}),
      ...(s.internalLocal ? { internalTrafficPolicy: 'Local' } : {}),
      ...(s.type === 'LoadBalancer' && s.local ? { healthCheckNodePort: s.hcnp } : {}),
      ...(s.type === 'LoadBalancer' ? { loadBalancerSourceRanges: ranges } : {}),
    },
    s.type === 'LoadBalancer' && s.lb > 0
      ? { status: { loadBalancer: { ingress: [{ ip: addr(family, 'lb', s.lb) }] } } }
      : {},
  );
}

function sliceObject(
  family: IPFamily,
  i: number,
  spec: ServiceSpec | undefined,
  eps: readonly (readonly [number, boolean])[],
): KubeObject {
  const ports = (spec?.ports ?? [{ port: 80, protocol: 'TCP' as const }]).map((p) => ({
    name: `${p.protocol.toLowerCase()}${p.port}`,
    port: p.port + 8000,
    protocol: p.protocol,
  }));
  return makeSlice(
    'ns',
    `s${i}`,
    `s${i}-1`,
    eps.map(([pod, here]) => ({ ip: addr(family, 'pod', pod), nodeName: here ? NODE : 'node-2' })),
    ports,
    { addressType: family },
  );
}

/** Objects fed to a real StateTracker by name, as a source would (add / update / delete). */
class Cluster {
  readonly tracker: StateTracker;
  private readonly objects = new Map<string, KubeObject>();

  constructor(readonly family: IPFamily) {
    this.tracker = new StateTracker({ families: [family], nodeName: NODE });
    this.tracker.onEvent({ type: 'add', object: makeNode(NODE, [NODE_IP[family]]) });
    for (const kind of ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'] as const)
      this.tracker.onEvent({ type: 'synced', kind });
  }

  /** Adds, replaces (`object`) or deletes (undefined) the object called `id`. */
  put(id: string, object: KubeObject | undefined): void {
    const old = this.objects.get(id);
    if (object) this.tracker.onEvent(old ? { type: 'update', old, object } : { type: 'add', object });
    else if (old) this.tracker.onEvent({ type: 'delete', object: old });
    if (object) this.objects.set(id, object);
    else this.objects.delete(id);
  }

  /** Builds the state, syncs it (partial unless `full`), commits it, and returns it. */
  async sync(p: IPVSProxier, full = false): Promise<DesiredState> {
    const state = this.tracker.build(this.family);
    await p.sync(state, full);
    this.tracker.commit(state);
    return state;
  }
}

/** Replays `rounds` through a tracker into an incremental proxier and a full-sync-only one; checks each round. */
async function replay(family: IPFamily, rounds: readonly Round[]): Promise<void> {
  const options = familyOptions(family);
  const cluster = new Cluster(family);
  const tracker = cluster.tracker;
  const specs = new Map<number, ServiceSpec>();
  const kernel = new FakeKernel();
  const reference = new FakeKernel();
  const p = makeProxier(kernel, options);
  const ref = makeProxier(reference, options);
  let failed = false;
  let diverged = false;
  try {
    for (const [n, round] of rounds.entries()) {
      for (const st of round.steps) {
        if (st.spec) specs.set(st.service, st.spec);
        else specs.delete(st.service);
        cluster.put(`svc${st.service}`, st.spec ? serviceObject(family, st.service, st.spec) : undefined);
        cluster.put(
          `slice${st.service}`,
          st.endpoints ? sliceObject(family, st.service, specs.get(st.service), st.endpoints) : undefined,
        );
      }
      const state: DesiredState = tracker.build(family);
      const changedPorts = [...state.changedServices].reduce(
        (a, svc) => a + [...state.services.values()].filter((sp) => sp.info.serviceName === svc).length,
        0,
      );
      const where = `round ${n} (full ${round.full}, fail ${round.fail})`;
      kernel.failNextIPVS = round.fail;
      const before = new Map([...kernel.vss].map(([k, vs]) => [k, new Set(vs.reals.keys())]));
      let ok = true;
      let total = -1;
      try {
        total = (await p.sync(state, round.full)).ruleCounts?.[`${family} ipvs`]?.total ?? -2;
      } catch (err) {
        assert.ok(
          round.fail && String(err).includes('injected failure'),
          `${where}: unexpected failure ${String(err)}`,
        );
        ok = false;
      }
      // The sync may have had nothing for ipvsadm: then it did not fail.
      kernel.failNextIPVS = false;
      if (ok) {
        // A partial sync asked for after a successful one stays partial and rebuilds only the changed ports.
        if (!round.full && !failed && n > 0) {
          assert.equal(p.last!.full, false, where);
          assert.ok(
            p.last!.rebuilt <= changedPorts,
            `${where}: rebuilt ${p.last!.rebuilt} > ${changedPorts} changed ports`,
          );
        }
        if (failed || n === 0)
          assert.equal(p.last!.full, true, `${where}: the first sync and the one after a failure are full`);
      }
      await ref.sync(state, true);
      if (ok) tracker.commit(state);
      if (!ok) {
        failed = true;
        diverged = true;
        continue;
      }
      failed = false;

      // Graceful termination: a sync never deletes a real server of a TCP virtual server that stays (it drains it).
      for (const [key, vs] of kernel.vss) {
        if (vs.protocol !== 'TCP') continue;
        for (const rs of before.get(key) ?? [])
          assert.ok(vs.reals.has(rs), `${where}: ${key}/${rs} deleted instead of drained`);
      }
      // incremental == full render (drained real servers aside, which a fresh kernel never has).
      const layout = buildIPVSLayout(state, options);
      const want = rendered(layout);
      // The rule count (virtual + real servers) kept by partial syncs is the full render's.
      assert.equal(
        total,
        [...layout.virtualServers.values()].reduce((a, vs) => a + 1 + vs.realServers.length, 0),
        where,
      );
      assert.deepEqual(kernel.snapshot(true), want, `${where}: kernel differs from the full render`);
      // Every weight-0 real server is one being drained.
      const draining = new Set(p.drainingIds());
      for (const [key, vs] of kernel.vss)
        for (const [rs, w] of vs.reals)
          if (w === 0)
            assert.ok(draining.has(`${key}/${rs}`), `${where}: ${key}/${rs} at weight 0 but not draining`);
      // And, as long as no sync failed, the same kernel (draining included) as full syncs only.
      if (!diverged) {
        assert.deepEqual(
          kernel.snapshot(),
          reference.snapshot(),
          `${where}: incremental and full-only kernels differ`,
        );
        assert.deepEqual(p.drainingIds(), ref.drainingIds(), `${where}: draining differs`);
      }
    }
  } finally {
    await p.close();
    await ref.close();
  }
}

describe('ipvs partial syncs', () => {
  test('random partial and full syncs leave the kernel as a full render of the final state (IPv4)', async () => {
    await fc.assert(
      fc.asyncProperty(arbRounds, (rounds) => replay('IPv4', rounds)),
      { numRuns: 150 },
    );
  });

  test('random partial and full syncs leave the kernel as a full render of the final state (IPv6)', async () => {
    await fc.assert(
      fc.asyncProperty(arbRounds, (rounds) => replay('IPv6', rounds)),
      { numRuns: 60 },
    );
  });
});

describe('ipvs partial syncs: examples', () => {
  const v4 = familyOptions('IPv4');
  const svc = (name: string, clusterIP: string, spec: Record<string, unknown> = {}): KubeObject =>
    makeService('ns', name, { clusterIP, ...spec });
  const eps = (
    name: string,
    ips: string[],
    ports?: { name?: string; port?: number; protocol?: string }[],
  ): KubeObject =>
    makeSlice(
      'ns',
      name,
      `${name}-1`,
      ips.map((ip) => ({ ip, nodeName: NODE })),
      ports,
    );
  const check = (kernel: FakeKernel, state: DesiredState): void => {
    assert.deepEqual(kernel.snapshot(true), rendered(buildIPVSLayout(state, v4)));
  };

  test('one changed service among 300: one fragment rebuilt, nothing read back, only its objects in the batches', async () => {
    const c = new Cluster('IPv4');
    for (let i = 0; i < 300; i++) {
      const host = `${Math.floor(i / 250)}.${(i % 250) + 1}`;
      c.put(`s${i}`, svc(`s${i}`, `172.30.${host}`));
      c.put(`e${i}`, eps(`s${i}`, [`10.1.${host}`, `10.2.${host}`]));
    }
    const kernel = new FakeKernel();
    const p = makeProxier(kernel, v4);
    await c.sync(p, true);
    assert.equal(p.last!.rebuilt, 300);
    kernel.calls.length = 0;
    c.put('e7', eps('s7', ['10.1.0.8', '10.9.9.9']));
    const state = await c.sync(p);
    await p.close();
    assert.deepEqual({ full: p.last!.full, rebuilt: p.last!.rebuilt }, { full: false, rebuilt: 1 });
    // No kernel read, no iptables rewrite (the constant rules did not change).
    assert.deepEqual(kernel.calls, ['ipset -exist restore', 'ipvsadm -R']);
    assert.deepEqual(p.last!.stats, {
      vsAdded: 0,
      vsDeleted: 0,
      vsEdited: 0,
      rsAdded: 1,
      rsDeleted: 0,
      rsEdited: 1,
      setEntriesChanged: 2,
      addressesChanged: 0,
    });
    assert.deepEqual(p.drainingIds(), ['tcp 172.30.0.8:80/10.2.0.8:80']);
    check(kernel, state);
  });

  test('drift check: parses only when the tools say something new or we wrote since the last clean check', async () => {
    const c = new Cluster('IPv4');
    for (let i = 0; i < 3; i++) {
      c.put(`s${i}`, svc(`s${i}`, `172.30.0.${i + 1}`));
      c.put(`e${i}`, eps(`s${i}`, [`10.1.0.${i + 1}`]));
    }
    const kernel = new FakeKernel();
    const p = makeProxier(kernel, v4);
    await c.sync(p, true);
    let reads = 0;
    const exec = kernel.exec;
    const counting: typeof exec = (cmd, args, opts) => {
      if (cmd === 'ipvsadm' && args[0] === '-Sn') reads++;
      return exec(cmd, args, opts);
    };
    (p as unknown as { exec: typeof exec }).exec = counting;
    assert.deepEqual(await p.checkDrift(), []);
    // Proof that the second check does not compare: what the proxier believes it wrote gains a
    // virtual server the kernel lacks (a compare would report it), with no write in between.
    const wrote = (p as unknown as { kernel: { vss: Map<string, unknown> } }).kernel.vss;
    const [someKey, someVS] = [...wrote][0]!;
    wrote.set(`${someKey}-phantom`, someVS);
    assert.deepEqual(await p.checkDrift(), [], 'same answers, nothing written: clean without a compare');
    wrote.delete(`${someKey}-phantom`);
    assert.equal(reads, 2, 'the kernel is still read every time');
    // Behind our back: a virtual server deleted. The answers differ, so the check parses and finds it.
    const key = [...kernel.vss.keys()].find((k) => k.includes('172.30.0.2'))!;
    const vs = kernel.vss.get(key)!;
    kernel.vss.delete(key);
    const found = await p.checkDrift();
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /172\.30\.0\.2:80/);
    // Put back as it was: the answers equal the clean ones again, and nothing was written since.
    kernel.vss.set(key, vs);
    assert.deepEqual(await p.checkDrift(), []);
    // A sync that writes (a new endpoint) makes the next check compare afresh; the kernel agrees.
    c.put('e1', eps('s1', ['10.1.0.2', '10.1.0.9']));
    await c.sync(p);
    assert.deepEqual(await p.checkDrift(), []);
    kernel.vss.get(key)!.reals.clear();
    assert.equal((await p.checkDrift()).length > 0, true, 'real servers lost after a sync are found');
    await p.close();
  });

  test('a VIP two services share stays bound until the last of them goes; a VS two ports claim passes to the survivor', async () => {
    const c = new Cluster('IPv4');
    // a and b share 172.30.0.1 (b on another port); x claims a's VS through an external IP.
    c.put('a', svc('a', '172.30.0.1'));
    c.put('b', svc('b', '172.30.0.1', { ports: [{ name: 'p81', port: 81, protocol: 'TCP' }] }));
    c.put('x', svc('x', '172.30.0.9', { externalIPs: ['172.30.0.1'] }));
    c.put('ea', eps('a', ['10.0.0.1']));
    c.put('eb', eps('b', ['10.0.0.2'], [{ name: 'p81', port: 81, protocol: 'TCP' }]));
    c.put('ex', eps('x', ['10.0.0.3']));
    const kernel = new FakeKernel();
    const p = makeProxier(kernel, v4);
    let state = await c.sync(p, true);
    check(kernel, state);
    // a wins tcp 172.30.0.1:80 (ns/a sorts before ns/x): its real server is there, x's is not.
    assert.deepEqual([...kernel.vss.get('tcp 172.30.0.1:80')!.reals.keys()], ['10.0.0.1:80']);

    c.put('a', undefined);
    state = await c.sync(p);
    assert.equal(p.last!.full, false);
    check(kernel, state);
    // x now owns the VS (a's real server drains, x's is added); the VIP stays bound for b and x.
    assert.deepEqual(Object.fromEntries(kernel.vss.get('tcp 172.30.0.1:80')!.reals), {
      '10.0.0.1:80': 0,
      '10.0.0.3:80': 1,
    });
    assert.ok(
      kernel.addresses.has('172.30.0.1') && kernel.sets.get('KUBE-IPVS-IPS')!.entries.has('172.30.0.1'),
    );

    c.put('x', undefined);
    state = await c.sync(p);
    check(kernel, state);
    assert.ok(kernel.addresses.has('172.30.0.1'), 'b still uses the VIP');
    assert.equal(kernel.vss.has('tcp 172.30.0.1:80'), false);

    c.put('b', undefined);
    state = await c.sync(p);
    await p.close();
    check(kernel, state);
    assert.equal(p.last!.full, false);
    assert.deepEqual(
      [kernel.addresses.size, kernel.vss.size, kernel.sets.get('KUBE-IPVS-IPS')!.entries.size],
      [0, 0, 0],
    );
  });

  test('graceful termination through partial syncs: drained, kept while connections last, deleted, or revived', async () => {
    const c = new Cluster('IPv4');
    c.put('web', svc('web', '172.30.0.10'));
    c.put('dns', svc('dns', '172.30.0.53', { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
    c.put('eweb', eps('web', ['10.0.0.1', '10.0.0.2']));
    c.put('edns', eps('dns', ['10.0.0.1', '10.0.0.2'], [{ name: 'dns', port: 53, protocol: 'UDP' }]));
    const kernel = new FakeKernel();
    const p = makeProxier(kernel, v4);
    await c.sync(p, true);
    c.put('eweb', eps('web', ['10.0.0.1']));
    c.put('edns', eps('dns', ['10.0.0.1'], [{ name: 'dns', port: 53, protocol: 'UDP' }]));
    await c.sync(p);
    assert.equal(p.last!.full, false);
    // TCP: weight 0 and draining; UDP: deleted at once.
    assert.deepEqual(Object.fromEntries(kernel.vss.get('tcp 172.30.0.10:80')!.reals), {
      '10.0.0.1:80': 1,
      '10.0.0.2:80': 0,
    });
    assert.deepEqual([...kernel.vss.get('udp 172.30.0.53:53')!.reals.keys()], ['10.0.0.1:53']);
    assert.deepEqual(p.drainingIds(), ['tcp 172.30.0.10:80/10.0.0.2:80']);

    // Still connected: kept. Then idle: deleted, in the kernel and in the proxier's picture of it.
    kernel.conns.set('tcp 172.30.0.10:80/10.0.0.2:80', 3);
    assert.deepEqual(await p.checkDraining(), []);
    kernel.conns.set('tcp 172.30.0.10:80/10.0.0.2:80', 0);
    assert.deepEqual(await p.checkDraining(), ['tcp 172.30.0.10:80/10.0.0.2:80']);
    assert.deepEqual([...kernel.vss.get('tcp 172.30.0.10:80')!.reals.keys()], ['10.0.0.1:80']);
    // The endpoint comes back: added again by a partial sync (the kernel picture knew it was gone).
    c.put('eweb', eps('web', ['10.0.0.1', '10.0.0.2']));
    await c.sync(p);
    assert.deepEqual(Object.fromEntries(kernel.vss.get('tcp 172.30.0.10:80')!.reals), {
      '10.0.0.1:80': 1,
      '10.0.0.2:80': 1,
    });

    // Drained again, then wanted back before it finished: revived (weight 1), no longer draining.
    c.put('eweb', eps('web', ['10.0.0.1']));
    await c.sync(p);
    assert.deepEqual(p.drainingIds(), ['tcp 172.30.0.10:80/10.0.0.2:80']);
    c.put('eweb', eps('web', ['10.0.0.2', '10.0.0.1']));
    const state = await c.sync(p);
    await p.close();
    assert.equal(p.last!.full, false);
    assert.deepEqual(p.drainingIds(), []);
    assert.deepEqual(kernel.snapshot(), rendered(buildIPVSLayout(state, v4)));
  });
});
