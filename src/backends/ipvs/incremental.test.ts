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
import { createMemoryLogger } from '../../observability/logger.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import type { IPFamily, KubeObject, Protocol } from '../../model/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { canonicalIP, joinHostPort, splitHostPort } from '../../net/ip.js';
import { toolsFor, type Exec } from '../../exec/iptables.js';
import { IPVSProxier } from './proxier.js';
import {
  buildIPVSLayout,
  ipsetRestoreText,
  ipvsRestoreText,
  linkBatchText,
  vsKey,
  type IPVSLayout,
} from './render.js';
import { DUMMY_DEVICE } from './names.js';

// ------------------------------------------------------------------------------------------------
// The fake kernel.

interface FakeVS {
  protocol: Protocol;
  address: string;
  port: number;
  scheduler: string;
  persistence: number;
  reals: Map<string, number>;
}

const FLAGS: Record<string, Protocol> = { '-t': 'TCP', '-u': 'UDP', '--sctp-service': 'SCTP' };
const FLAG_OF: Record<Protocol, string> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };

/** IPVS, ipsets, kube-ipvs0 and iptables chains of one network namespace, driven through {@link FakeKernel.exec}. */
class FakeKernel {
  readonly vss = new Map<string, FakeVS>();
  readonly sets = new Map<string, { type: string; entries: Set<string> }>();
  device = false;
  readonly addresses = new Set<string>();
  /** table -> chain -> rules. */
  readonly chains = new Map<string, Map<string, string[]>>();
  /** Active+inactive connections per `vsKey/ip:port` (default 0), for `ipvsadm -Ln`. */
  readonly conns = new Map<string, number>();
  /** The next `ipvsadm -R` fails (after nothing of it was applied). */
  failNextIPVS = false;
  readonly calls: string[] = [];

  readonly exec: Exec = (cmd, args, opts) => {
    try {
      const { code, stdout } = this.run(cmd, args, opts?.input ?? '');
      return Promise.resolve({ code, stdout, stderr: '', durationMs: 0 });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  };

  /** Runs one tool synchronously; throws as the tool would fail. */
  run(cmd: string, args: readonly string[], input = ''): { code: number; stdout: string } {
    this.calls.push(`${cmd} ${args.join(' ')}`);
    const ok = (stdout = '', code = 0): { code: number; stdout: string } => ({ code, stdout });
    if (cmd === 'ipvsadm' && args[0] === '-Sn') return ok(this.ipvsSave());
    if (cmd === 'ipvsadm' && args[0] === '-Ln') return ok(this.ipvsList());
    if (cmd === 'ipvsadm' && args[0] === '-R') {
      if (this.failNextIPVS) {
        this.failNextIPVS = false;
        throw new Error('ipvsadm: injected failure');
      }
      this.ipvsRestore(input);
      return ok();
    }
    if (cmd === 'ipset' && args[0] === 'save') return ok(this.ipsetSave());
    if (cmd === 'ipset' && args.includes('restore')) {
      this.ipsetRestore(input, args.includes('-exist'));
      return ok();
    }
    if (cmd === 'ip' && args[0] === '-o') return this.device ? ok(this.addrShow()) : ok('', 1);
    if (cmd === 'ip' && args[0] === '-batch') {
      this.ipBatch(input);
      return ok();
    }
    if (cmd.includes('tables') && cmd.endsWith('-restore')) {
      this.iptablesRestore(input);
      return ok();
    }
    if (cmd.includes('tables')) return ok(); // jump checks (-C) and inserts
    throw new Error(`fake kernel: unexpected command ${cmd} ${args.join(' ')}`);
  }

  private static vsOf(
    flag: string | undefined,
    addr: string | undefined,
  ): { key: string; protocol: Protocol; address: string; port: number } {
    const protocol = FLAGS[flag ?? ''];
    if (!protocol || !addr) throw new Error(`bad service ${flag} ${addr}`);
    const { host, port } = splitHostPort(addr);
    const address = canonicalIP(host) ?? host;
    return { key: vsKey(protocol, address, port), protocol, address, port };
  }

  private ipvsRestore(text: string): void {
    // ipvsadm-restore stops at the first failing line; what came before stays.
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const t = line.trim().split(/\s+/);
      const opt = (name: string): string | undefined => {
        const i = t.indexOf(name, 3);
        return i >= 0 ? t[i + 1] : undefined;
      };
      const { key, protocol, address, port } = FakeKernel.vsOf(t[1], t[2]);
      const vs = this.vss.get(key);
      const rs = opt('-r');
      const rsKey = rs
        ? (() => {
            const hp = splitHostPort(rs);
            return joinHostPort(canonicalIP(hp.host) ?? hp.host, hp.port);
          })()
        : undefined;
      switch (t[0]) {
        case '-A':
          if (vs) throw new Error(`ipvsadm: ${key} exists (${line})`);
          this.vss.set(key, {
            protocol,
            address,
            port,
            scheduler: opt('-s') ?? 'wlc',
            persistence: Number(opt('-p') ?? 0),
            reals: new Map(),
          });
          break;
        case '-E':
          if (!vs) throw new Error(`ipvsadm: no ${key} (${line})`);
          vs.scheduler = opt('-s') ?? 'wlc';
          vs.persistence = Number(opt('-p') ?? 0);
          break;
        case '-D':
          if (!vs) throw new Error(`ipvsadm: no ${key} (${line})`);
          this.vss.delete(key);
          break;
        case '-a':
        case '-e':
          if (!vs || !rsKey) throw new Error(`ipvsadm: no ${key} (${line})`);
          if (t[0] === '-a' && vs.reals.has(rsKey))
            throw new Error(`ipvsadm: ${rsKey} exists in ${key} (${line})`);
          if (t[0] === '-e' && !vs.reals.has(rsKey))
            throw new Error(`ipvsadm: no ${rsKey} in ${key} (${line})`);
          if (!t.includes('-m')) throw new Error(`ipvsadm: real server not masqueraded (${line})`);
          vs.reals.set(rsKey, Number(opt('-w') ?? 1));
          break;
        case '-d':
          if (!vs || !rsKey || !vs.reals.has(rsKey))
            throw new Error(`ipvsadm: no ${rsKey} in ${key} (${line})`);
          vs.reals.delete(rsKey);
          break;
        default:
          throw new Error(`ipvsadm: unknown line ${line}`);
      }
    }
  }

  private ipvsSave(): string {
    let out = '';
    for (const vs of this.vss.values()) {
      const svc = `${FLAG_OF[vs.protocol]} ${joinHostPort(vs.address, vs.port)}`;
      out += `-A ${svc} -s ${vs.scheduler}${vs.persistence ? ` -p ${vs.persistence}` : ''}\n`;
      for (const [rs, w] of vs.reals) out += `-a ${svc} -r ${rs} -m -w ${w}\n`;
    }
    return out;
  }

  private ipvsList(): string {
    let out =
      'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
    for (const [key, vs] of this.vss) {
      out += `${vs.protocol}  ${joinHostPort(vs.address, vs.port)} ${vs.scheduler}\n`;
      for (const [rs, w] of vs.reals)
        out += `  -> ${rs}    Masq    ${w}      ${this.conns.get(`${key}/${rs}`) ?? 0}          0\n`;
    }
    return out;
  }

  private ipsetRestore(text: string, exist: boolean): void {
    for (const line of text.split('\n')) {
      const t = line.trim().split(/\s+/);
      if (t[0] === '' || t[0] === undefined) continue;
      const name = t[1]!;
      const set = this.sets.get(name);
      if (t[0] === 'create') {
        if (set && (!exist || set.type !== t[2])) throw new Error(`ipset: ${name} exists (${line})`);
        if (!set) this.sets.set(name, { type: t[2]!, entries: new Set() });
      } else if (t[0] === 'destroy') {
        if (!set) throw new Error(`ipset: no ${name}`);
        this.sets.delete(name);
      } else if (t[0] === 'add' || t[0] === 'del') {
        if (!set) throw new Error(`ipset: no ${name} (${line})`);
        const e = t[2]!;
        if (t[0] === 'add') {
          if (set.entries.has(e) && !exist) throw new Error(`ipset: ${e} in ${name}`);
          set.entries.add(e);
        } else {
          if (!set.entries.has(e) && !exist) throw new Error(`ipset: ${e} not in ${name}`);
          set.entries.delete(e);
        }
      } else throw new Error(`ipset: unknown line ${line}`);
    }
  }

  private ipsetSave(): string {
    let out = '';
    for (const [name, s] of this.sets) {
      out += `create ${name} ${s.type} family inet hashsize 1024 maxelem 65536\n`;
      for (const e of s.entries) out += `add ${name} ${e}\n`;
    }
    return out;
  }

  private addrShow(): string {
    return [...this.addresses]
      .map(
        (a, i) =>
          `${i + 3}: ${DUMMY_DEVICE}    ${a.includes(':') ? 'inet6' : 'inet'} ${a}/${a.includes(':') ? 128 : 32} scope global ${DUMMY_DEVICE}\\       valid_lft forever preferred_lft forever\n`,
      )
      .join('');
  }

  private ipBatch(text: string): void {
    for (const line of text.split('\n')) {
      const t = line.trim().split(/\s+/);
      if (t[0] === '' || t[0] === undefined) continue;
      if (t[0] === 'link' && t[1] === 'add' && t[2] === DUMMY_DEVICE) {
        if (this.device) throw new Error('ip: RTNETLINK answers: File exists');
        this.device = true;
      } else if (t[0] === 'address' && (t[1] === 'add' || t[1] === 'del') && t[4] === DUMMY_DEVICE) {
        if (!this.device) throw new Error(`ip: no device ${DUMMY_DEVICE}`);
        const a = canonicalIP(t[2]!.split('/')[0]!)!;
        if (t[1] === 'add') {
          if (this.addresses.has(a)) throw new Error(`ip: ${a}: File exists`);
          this.addresses.add(a);
        } else {
          if (!this.addresses.has(a)) throw new Error(`ip: ${a}: Cannot assign requested address`);
          this.addresses.delete(a);
        }
      } else throw new Error(`ip: unknown line ${line}`);
    }
  }

  /** `--noflush` semantics: a declared chain is created or flushed, `-A` appends. */
  private iptablesRestore(text: string): void {
    let table: Map<string, string[]> | undefined;
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) {
        const name = line.slice(1);
        table = this.chains.get(name) ?? new Map<string, string[]>();
        this.chains.set(name, table);
      } else if (line.startsWith(':')) table!.set(line.slice(1).split(' ')[0]!, []);
      else if (line.startsWith('-A ')) {
        const chain = line.split(' ')[1]!;
        const rules = table!.get(chain);
        if (!rules) throw new Error(`iptables-restore: no chain ${chain}`);
        rules.push(line);
      } else if (line !== 'COMMIT' && line !== '') throw new Error(`iptables-restore: unknown line ${line}`);
    }
  }

  /** A comparable picture of everything programmed. */
  snapshot(dropWeightZero = false): {
    vss: string[];
    sets: string[];
    device: boolean;
    addresses: string[];
    chains: string[];
  } {
    const vss: string[] = [];
    for (const [key, vs] of this.vss) {
      vss.push(`${key} ${vs.scheduler} ${vs.persistence}`);
      for (const [rs, w] of vs.reals) if (!dropWeightZero || w !== 0) vss.push(`${key}/${rs} w${w}`);
    }
    const sets = [...this.sets].flatMap(([name, s]) => [
      `${name} ${s.type}`,
      ...[...s.entries].map((e) => `${name} + ${e}`),
    ]);
    const chains = [...this.chains].flatMap(([table, cs]) =>
      [...cs].flatMap(([c, rules]) => [`${table} ${c}`, ...rules.map((r) => `${table} ${r}`)]),
    );
    return {
      vss: vss.sort(),
      sets: sets.sort(),
      device: this.device,
      addresses: [...this.addresses].sort(),
      chains: chains.sort(),
    };
  }
}

/** What a fresh kernel holds after being fed the full render of `layout` (the `render` output). */
function rendered(layout: IPVSLayout): ReturnType<FakeKernel['snapshot']> {
  const k = new FakeKernel();
  k.run('ip', ['-batch', '-'], linkBatchText(layout));
  k.run('ipset', ['-exist', 'restore'], ipsetRestoreText(layout));
  k.run('ipvsadm', ['-R'], ipvsRestoreText(layout));
  k.run('iptables-restore', ['--noflush'], layout.nat + layout.filter);
  return k.snapshot();
}

function makeProxier(kernel: FakeKernel, options: FamilyOptions): IPVSProxier {
  return new IPVSProxier({
    logger: createMemoryLogger(),
    options,
    exec: kernel.exec,
    iptables: toolsFor('legacy', options.family),
    writeSysctl: () => undefined,
    graceful: { checkIntervalMs: 3_600_000, timeoutMs: 3_600_000 },
    conntrackCleanup: false,
  });
}

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
