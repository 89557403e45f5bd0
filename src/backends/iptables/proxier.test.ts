/**
 * IPTablesProxier against a fake kernel (an interpreter of the restore/iptables subset the proxier
 * uses): whatever mix of full, partial, incremental and chunked syncs it does, the tables must end up
 * holding exactly what one full render of the final state describes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { familyOptions } from '../../../test/golden/iptables/scenarios.js';
import { ExecError, type RunOptions, type RunResult } from '../../exec/run.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { StateTracker } from '../../proxy/state-tracker.js';
import type { KubeObject } from '../../model/types.js';
import type { DesiredState } from '../../proxy/types.js';
import { contentRules, splitTable } from './chain-diff.js';
import { IPTablesProxier } from './proxier.js';
import { ruleService } from './planner.js';
import { renderIPTables } from './render.js';
import { toolsFor } from '../../exec/iptables.js';
import { IPTablesTables, type Tables } from '../../explain/iptables-tables.js';

const NODE = 'node-1';

/** The tables model (src/explain/iptables-tables.ts) behind the proxier's Exec: restore, save, -N/-C/-I/-S/-X. */
class FakeKernel extends IPTablesTables {
  restores: string[] = [];
  failNextRestore = false;

  exec = (cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> => {
    const ok = (stdout = '', code = 0): Promise<RunResult> => {
      if (!(opts.okCodes ?? [0]).includes(code))
        return Promise.reject(new ExecError('KP_ERR_EXEC_FAILED', cmd, args, code, 'fake failure'));
      // As run() does with onStdout: the output goes to it, not into the result.
      if (opts.onStdout) {
        if (stdout !== '') opts.onStdout(stdout);
        return Promise.resolve({ code, stdout: '', stderr: '', durationMs: 0 });
      }
      return Promise.resolve({ code, stdout, stderr: '', durationMs: 0 });
    };
    if (cmd.endsWith('-save')) return ok(this.save(args[args.indexOf('-t') + 1]!));
    if (cmd.endsWith('-restore')) {
      const input = opts.inputChunks ? [...opts.inputChunks].join('') : (opts.input ?? '');
      this.restores.push(input);
      if (this.failNextRestore) {
        this.failNextRestore = false;
        return ok('', 1);
      }
      try {
        this.applyRestore(input);
      } catch (err) {
        return Promise.reject(new ExecError('KP_ERR_EXEC_FAILED', cmd, args, 1, String(err)));
      }
      return ok();
    }
    if (cmd === 'conntrack') return ok('');
    // iptables -w -t T OP CHAIN ...
    const t = this.table(args[args.indexOf('-t') + 1]!);
    const opIdx = args.findIndex((a) => ['-N', '-C', '-I', '-S', '-X', '-D'].includes(a));
    const op = args[opIdx]!;
    const chain = args[opIdx + 1]!;
    const spec = args
      .slice(opIdx + (op === '-I' ? 3 : 2))
      .map((a) => (a.includes(' ') ? `"${a}"` : a))
      .join(' ');
    switch (op) {
      case '-N':
        if (t.has(chain)) return ok('', 1);
        t.set(chain, []);
        return ok();
      case '-X':
        if (!t.has(chain)) return ok('', 1);
        t.delete(chain);
        return ok();
      case '-S':
        return t.has(chain) ? ok(`-N ${chain}\n`) : ok('', 1);
      case '-C':
        return ok('', t.get(chain)?.includes(spec) ? 0 : 1);
      case '-I':
        t.get(chain)!.unshift(spec);
        return ok();
      default:
        return ok('', 2);
    }
  };
}

/** What the kernel should hold for `state`: a full render applied to empty tables (jumps and canaries aside). */
function expected(state: DesiredState): Tables {
  const plan = renderIPTables(state, familyOptions('IPv4'), { full: true });
  const out: Tables = new Map();
  for (const [name, text] of [
    ['filter', plan.filter],
    ['nat', plan.nat],
  ] as const) {
    const doc = splitTable(text);
    out.set(
      name,
      new Map(
        doc.chains.map((c) => [c, contentRules(doc.rules.get(c) ?? '').map((r) => r.slice(4 + c.length))]),
      ),
    );
  }
  return out;
}

function assertKernelMatches(k: FakeKernel, state: DesiredState, label: string): void {
  for (const [table, chains] of expected(state)) {
    const got = new Map(
      [...k.table(table)].filter(([c]) => c.startsWith('KUBE-') && c !== 'KUBE-PROXY-CANARY'),
    );
    // KUBE-FIREWALL is created empty by the executor when the render has no rules for it.
    if (!chains.has('KUBE-FIREWALL') && got.get('KUBE-FIREWALL')?.length === 0) got.delete('KUBE-FIREWALL');
    assert.deepEqual([...got.keys()].sort(), [...chains.keys()].sort(), `${label}: ${table} chain set`);
    for (const [c, rules] of chains) {
      const g = got.get(c)!;
      // Order included, also for the dispatch chains partial syncs edit in place: a restarted
      // proxy adopts a chain only when the kernel holds exactly the full render's text.
      assert.deepEqual(g, rules, `${label}: ${table} ${c} rules`);
    }
  }
}

const svcObj = (i: number, kind: number): KubeObject => {
  const base = {
    clusterIP: `172.30.1.${i + 1}`,
    ports: [{ name: 'p80', port: 80, protocol: i % 3 === 2 ? 'UDP' : 'TCP' }],
  };
  if (kind === 1)
    return makeService('ns', `s${i}`, {
      ...base,
      type: 'NodePort',
      ports: [{ ...base.ports[0], nodePort: 30000 + i }],
    });
  if (kind === 2)
    return makeService(
      'ns',
      `s${i}`,
      {
        ...base,
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 31000 + i,
        loadBalancerSourceRanges: ['203.0.113.0/24'],
        ports: [{ ...base.ports[0], nodePort: 30000 + i }],
      },
      { status: { loadBalancer: { ingress: [{ ip: `192.0.2.${i + 1}` }] } } },
    );
  if (kind === 3)
    return makeService('ns', `s${i}`, {
      ...base,
      sessionAffinity: 'ClientIP',
      externalIPs: [`198.51.100.${i + 1}`],
    });
  return makeService('ns', `s${i}`, base);
};
const sliceObj = (i: number, eps: readonly number[]): KubeObject =>
  makeSlice(
    'ns',
    `s${i}`,
    `s${i}-1`,
    eps.map((e) => ({ ip: `10.244.${i}.${e + 1}`, nodeName: e % 2 === 0 ? NODE : 'node-2' })),
    [{ name: 'p80', port: 8080, protocol: i % 3 === 2 ? 'UDP' : 'TCP' }],
  );

interface Step {
  readonly svc: number;
  readonly present: boolean;
  readonly kind: number;
  readonly eps: readonly number[];
  readonly full: boolean;
  readonly fail: boolean;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  svc: fc.integer({ min: 0, max: 7 }),
  present: fc.boolean(),
  kind: fc.integer({ min: 0, max: 3 }),
  eps: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
  full: fc.boolean(),
  fail: fc.constantFrom(false, false, false, true),
});

async function runSteps(steps: readonly Step[], maxChainsPerRestore: number): Promise<void> {
  const kernel = new FakeKernel();
  const procSys = mkdtempSync(join(tmpdir(), 'kpt-procsys-'));
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  tracker.onEvent({ type: 'add', object: makeNode(NODE, ['10.100.0.2']) });
  const current = new Map<number, { svc: KubeObject; slice: KubeObject }>();
  const apply = (i: number, present: boolean, kind: number, eps: readonly number[]): void => {
    const old = current.get(i);
    if (!present) {
      if (old) {
        tracker.onEvent({ type: 'delete', object: old.svc });
        tracker.onEvent({ type: 'delete', object: old.slice });
        current.delete(i);
      }
      return;
    }
    const next = { svc: svcObj(i, kind), slice: sliceObj(i, eps) };
    tracker.onEvent(
      old ? { type: 'update', old: old.svc, object: next.svc } : { type: 'add', object: next.svc },
    );
    tracker.onEvent(
      old ? { type: 'update', old: old.slice, object: next.slice } : { type: 'add', object: next.slice },
    );
    current.set(i, next);
  };
  for (let i = 0; i < 6; i++) apply(i, true, i % 4, [0, 1, 2].slice(0, (i % 3) + 1));
  for (const kind of ['Service', 'EndpointSlice', 'Node'] as const) tracker.onEvent({ type: 'synced', kind });
  const p = new IPTablesProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    tools: toolsFor('nft', 'IPv4'),
    exec: kernel.exec,
    canaryPeriodMs: 0,
    procSys,
    maxChainsPerRestore,
  });
  try {
    await p.start();
    let needFull = true;
    let state = tracker.build('IPv4');
    await p.sync(state, true);
    tracker.commit(state);
    needFull = false;
    assertKernelMatches(kernel, state, 'initial');
    for (const [n, s] of steps.entries()) {
      apply(s.svc, s.present, s.kind, s.eps);
      state = tracker.build('IPv4');
      const full = s.full || needFull;
      kernel.failNextRestore = s.fail;
      try {
        await p.sync(state, full);
      } catch {
        needFull = true; // what the SyncLoop does after a failure
        continue;
      }
      tracker.commit(state);
      needFull = false;
      assertKernelMatches(kernel, state, `step ${n} (${full ? 'full' : 'partial'})`);
    }
  } finally {
    await p.close();
    rmSync(procSys, { recursive: true, force: true });
  }
}

test('ruleService attributes dispatch rules to their service and static rules to none', () => {
  assert.equal(
    ruleService(
      '-A KUBE-SERVICES -m comment --comment "ns/s1:p80 cluster IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-SVC-X',
    ),
    'ns/s1',
  );
  assert.equal(
    ruleService('-A KUBE-NODEPORTS -m comment --comment ns/s1:p80 -m tcp -p tcp --dport 30001 -j KUBE-EXT-X'),
    'ns/s1',
  );
  assert.equal(
    ruleService('-A KUBE-NODEPORTS -m comment --comment "ns/unnamed health check node port" -j ACCEPT'),
    'ns/unnamed',
  );
  assert.equal(
    ruleService(
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -j KUBE-NODEPORTS',
    ),
    undefined,
  );
  assert.equal(ruleService('-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000'), undefined);
});

test('a fixed sequence: partial syncs, deletions, chunked restores and a failed restore converge to the full render', async () => {
  await runSteps(
    [
      { svc: 1, present: true, kind: 1, eps: [3, 4], full: false, fail: false },
      { svc: 2, present: false, kind: 0, eps: [], full: false, fail: false },
      { svc: 6, present: true, kind: 2, eps: [0], full: false, fail: false },
      { svc: 3, present: true, kind: 3, eps: [], full: false, fail: true },
      { svc: 3, present: true, kind: 3, eps: [1], full: false, fail: false },
      { svc: 0, present: true, kind: 0, eps: [0, 1, 2, 3], full: true, fail: false },
      { svc: 6, present: false, kind: 0, eps: [], full: false, fail: false },
    ],
    4,
  );
});

test('property: any sequence of changes, syncs and failures leaves exactly the full render in the kernel', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { maxLength: 12 }), fc.constantFrom(3, 1000), async (steps, chunk) => {
      await runSteps(steps, chunk);
    }),
    { numRuns: 40 },
  );
});

test('the jumps are inserted once and canaries exist after a full sync; a steady full sync writes nothing', async () => {
  const kernel = new FakeKernel();
  const procSys = mkdtempSync(join(tmpdir(), 'kpt-procsys-'));
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: NODE });
  for (const o of [makeNode(NODE, ['10.100.0.2']), svcObj(0, 1), sliceObj(0, [0, 1])])
    tracker.onEvent({ type: 'add', object: o });
  for (const kind of ['Service', 'EndpointSlice', 'Node'] as const) tracker.onEvent({ type: 'synced', kind });
  let collections = 0;
  const p = new IPTablesProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    tools: toolsFor('legacy', 'IPv4'),
    exec: kernel.exec,
    canaryPeriodMs: 0,
    procSys,
    // Every restore's input released sets off a collection.
    collectGarbage: () => Promise.resolve(collections++),
    collectAfterReleasedChars: 1,
  });
  try {
    await p.start();
    const state = tracker.build('IPv4');
    await p.sync(state, true);
    tracker.commit(state);
    // The first full sync: one restore of our chains, one of the jumps and canaries a fresh node lacks.
    assert.equal(kernel.restores.length, 2);
    assert.match(kernel.restores[1]!, /^-I PREROUTING 1 .*-j KUBE-SERVICES$/m);
    const outcome = await p.sync(state, true);
    assert.equal(
      kernel.restores.length,
      2,
      `the second full sync found nothing to change: ${JSON.stringify(kernel.restores.slice(2))}`,
    );
    assert.deepEqual(outcome.ruleCounts?.nat?.written, 0);
    assert.ok((outcome.ruleCounts?.nat?.total ?? 0) > 0);
    // The service chains were settled as they were rendered: counted unchanged, none written.
    const stats = p.stats()!;
    assert.equal(stats.chainsWritten, 0);
    assert.ok(stats.chainsUnchanged >= 4, JSON.stringify(stats));
    // One restore ran (the first sync's chains): one collection after it; none in the second sync.
    assert.equal(collections, 1);
    for (const table of ['mangle', 'nat', 'filter'])
      assert.ok(kernel.table(table).has('KUBE-PROXY-CANARY'), `${table} canary`);
    const nat = kernel.table('nat');
    assert.equal(nat.get('PREROUTING')!.filter((r) => r.endsWith('-j KUBE-SERVICES')).length, 1);
    assert.equal(nat.get('OUTPUT')!.filter((r) => r.endsWith('-j KUBE-SERVICES')).length, 1);
    assert.equal(
      kernel
        .table('filter')
        .get('INPUT')!
        .filter((r) => r.endsWith('-j KUBE-FIREWALL')).length,
      1,
    );
  } finally {
    await p.close();
    rmSync(procSys, { recursive: true, force: true });
  }
});

test('a vanished mangle canary asks for a full sync and recreates the canaries', async () => {
  const kernel = new FakeKernel();
  const procSys = mkdtempSync(join(tmpdir(), 'kpt-procsys-'));
  let asked = 0;
  const p = new IPTablesProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    tools: toolsFor('nft', 'IPv4'),
    exec: kernel.exec,
    canaryPeriodMs: 20,
    procSys,
    onNeedFullSync: () => asked++,
  });
  try {
    await p.start();
    kernel.table('mangle').delete('KUBE-PROXY-CANARY');
    const hold = setTimeout(() => undefined, 5000);
    for (let i = 0; i < 200 && asked === 0; i++) await new Promise((r) => setTimeout(r, 10));
    clearTimeout(hold);
    assert.ok(asked >= 1, 'onNeedFullSync called');
    for (let i = 0; i < 50 && !kernel.table('mangle').has('KUBE-PROXY-CANARY'); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.ok(kernel.table('mangle').has('KUBE-PROXY-CANARY'));
  } finally {
    await p.close();
    rmSync(procSys, { recursive: true, force: true });
  }
});
