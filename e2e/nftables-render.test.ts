/**
 * Root only: every golden render and a series of incremental transactions are loaded into an empty
 * lab namespace with the real `nft`, so the scripts are proven against this machine's nft and kernel
 * (the pure tests only model the kernel's reference rules).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { createLab, labSkipReason, type Lab } from './lab/topology.js';
import { SCENARIOS, familyOptions, statesOf, NODE } from '../test/golden/nftables/scenarios.js';
import { makeNode, makeService, makeSlice } from '../test/fixtures/objects.js';
import type { KubeObject } from '../src/model/types.js';
import { renderNFTables } from '../src/backends/nftables/render.js';
import { buildLayout, type NftLayout } from '../src/backends/nftables/render-layout.js';
import { diffScript, fullScript, replaceScript } from '../src/backends/nftables/render-script.js';
import {
  isKernelFilled,
  keptSets,
  listScript,
  parseTableListing,
  type ExistingTable,
} from '../src/backends/nftables/render-existing.js';
import { SlotAllocator } from '../src/backends/nftables/slots.js';
import { nftSessionRunner } from '../src/exec/nft.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('nft', ['--version']).status !== 0) return 'nft is not installed';
  return labSkipReason();
}

describe('rendered nftables scripts load with nft', { skip: skipReason() }, () => {
  let lab: Lab;
  const nft = (script: string, check = false) =>
    lab.exec('node', 'nft', check ? ['-c', '-f', '-'] : ['-f', '-'], { input: script });
  const reset = () =>
    lab.exec('node', 'nft', ['-f', '-'], {
      input:
        'add table ip kube-proxy\ndelete table ip kube-proxy\nadd table ip6 kube-proxy\ndelete table ip6 kube-proxy\n',
    });
  /** What the proxier reads back: `nft -t list table ip kube-proxy`, parsed. */
  const readBack = async (): Promise<ExistingTable> => {
    const lists = parseTableListing(
      (await lab.exec('node', 'nft', ['-t', '-f', '-'], { input: listScript('ip') })).stdout,
      'ip',
    );
    assert.ok(lists.ok, lists.ok ? '' : lists.reason);
    // The whole-table listing (slow at scale, so not what the proxier runs) parses to the same objects.
    const whole = parseTableListing(
      (await lab.exec('node', 'nft', ['-t', 'list', 'table', 'ip', 'kube-proxy'])).stdout,
      'ip',
    );
    assert.ok(whole.ok, whole.ok ? '' : whole.reason);
    const objects = (t: ExistingTable) => [
      [...t.chains].sort(),
      t.sets.map((x) => [x.kind, x.name, [...x.props]]).sort(),
    ];
    assert.deepEqual(objects(lists.table), objects(whole.table));
    return lists.table;
  };
  /** The table's objects without elements, as sorted blocks (the kernel lists in creation order). */
  const terseBlocks = async (): Promise<string[]> =>
    (await lab.exec('node', 'nft', ['-t', 'list', 'table', 'ip', 'kube-proxy'])).stdout
      .trim()
      .replace(/^table ip kube-proxy \{\n\tcomment "rules for kube-proxy"\n/, '')
      .replace(/\n}$/, '')
      .split('\n\n')
      .map((b) => b.trim())
      .sort();
  /** Elements of a set, from `nft list set` (timeouts and expiries dropped). */
  const elementsOf = async (set: string): Promise<string[]> => {
    const out = (await lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', set])).stdout;
    const m = /elements = \{([^}]*)\}/.exec(out);
    return m
      ? m[1]!
          .split(',')
          .map((e) => e.trim().split(' ')[0]!)
          .sort()
      : [];
  };
  /** What a packet through an endpoint chain does: the client lands in the set (`update @set { ip saddr }`). */
  const remember = async (layout: NftLayout, client: string) => {
    for (const s of layout.sets.values())
      if (isKernelFilled(s))
        await lab.exec('node', 'nft', ['add', 'element', 'ip', 'kube-proxy', s.name, `{ ${client} }`]);
  };

  before(async () => {
    lab = await createLab({ pods: [] });
  });
  after(() => lab?.destroy());

  for (const [name, objects] of Object.entries(SCENARIOS)) {
    test(`render of ${name}: nft -c accepts it, nft -f loads it, and loads again over itself`, async () => {
      await reset();
      const text = renderNFTables(statesOf(objects), [familyOptions('IPv4')]);
      await nft(text, true);
      await nft(text);
      await nft(text);
      const listed = await lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy']);
      assert.match(listed.stdout, /comment "rules for kube-proxy"/);
    });
  }

  test('dual-stack render loads both tables', async () => {
    await reset();
    const objs = SCENARIOS['basic-clusterip']!;
    await nft(
      renderNFTables(statesOf(objs, ['IPv4', 'IPv6']), [familyOptions('IPv4'), familyOptions('IPv6')]),
    );
    const t = await lab.exec('node', 'nft', ['list', 'tables']);
    assert.match(t.stdout, /table ip kube-proxy/);
    assert.match(t.stdout, /table ip6 kube-proxy/);
  });

  /** Random sequences of scenario sets, each step's diff applied with `apply`: all load, and end equal to a fresh full load. */
  const incrementalSequences = async (apply: (script: string) => Promise<unknown>): Promise<void> => {
    const names = Object.keys(SCENARIOS).filter((n) => n !== 'etp-local-no-local-endpoints');
    const step = fc.record({ pick: fc.subarray(names), extra: fc.integer({ min: 0, max: 9 }) });
    const seqs = fc.sample(fc.array(step, { minLength: 2, maxLength: 5 }), { numRuns: 12, seed: 4242 });
    for (const steps of seqs) {
      await reset();
      const slots = new SlotAllocator();
      let prev: NftLayout | undefined;
      for (const s of steps) {
        const objs = s.pick.flatMap((n) => SCENARIOS[n]!);
        if (s.pick.includes('basic-clusterip') && s.extra > 0)
          objs.push(
            makeSlice(
              'ns1',
              'svc1',
              'svc1-extra',
              Array.from({ length: s.extra }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' })),
            ),
          );
        const next = buildLayout(statesOf(objs)[0]!, familyOptions('IPv4'), slots);
        if (prev) {
          const script = diffScript(prev, next).script;
          if (script) await apply(script);
        } else await nft(fullScript(next));
        prev = next;
      }
      const incremental = (await lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy'])).stdout;
      await nft(fullScript(prev!));
      const fresh = (await lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy'])).stdout;
      // The kernel lists objects in creation order, which differs; compare the sorted blocks.
      const blocks = (t: string) =>
        t
          .trim()
          .replace(/\n}$/, '')
          .split('\n\n')
          .map((b) => b.trim())
          .sort();
      assert.deepEqual(blocks(incremental), blocks(fresh));
    }
  };

  test('incremental transactions between random scenario sets all load, and end equal to a fresh full load', async () => {
    await incrementalSequences((script) => nft(script));
  });

  test('the same incremental transactions through one kept nft -i (the daemon partial-sync path) end the same, and a failing one rejects', async () => {
    const fellBack: string[] = [];
    const session = nftSessionRunner('nft', {
      command: 'ip',
      args: ['netns', 'exec', lab.node.ns, 'nft', '-i'],
      fallback: (script) => {
        fellBack.push(script);
        return nft(script).then(() => undefined);
      },
    });
    try {
      await incrementalSequences(session);
      // A transaction nft refuses: rejected with nft's error, nothing of it applied, and the session goes on.
      await assert.rejects(
        session(
          'add element ip kube-proxy cluster-ips { 10.99.0.1 }\ndelete element ip kube-proxy cluster-ips { 10.99.0.2 }\n',
        ),
        /No such file or directory/,
      );
      const listed = (await lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', 'cluster-ips']))
        .stdout;
      assert.doesNotMatch(listed, /10\.99\.0\.1/);
      await session('add element ip kube-proxy cluster-ips { 10.99.0.3 }\n');
      assert.match(
        (await lab.exec('node', 'nft', ['list', 'set', 'ip', 'kube-proxy', 'cluster-ips'])).stdout,
        /10\.99\.0\.3/,
      );
      assert.deepEqual(fellBack, []);
    } finally {
      session.close();
    }
  });

  test('the kept nft -i acts on the sets another process deleted and re-created in between (interval sets, plain and concatenated)', async () => {
    const session = nftSessionRunner('nft', {
      command: 'ip',
      args: ['netns', 'exec', lab.node.ns, 'nft', '-i'],
      fallback: () => Promise.reject(new Error('no fallback expected')),
    });
    const elements = async (set: string): Promise<string> =>
      (await lab.exec('node', 'nft', ['list', 'set', 'ip', 'kpt-cache', set])).stdout.replace(/\s+/g, ' ');
    const fa = 'type ipv4_addr . inet_proto . inet_service . ipv4_addr ; flags interval ;';
    const iv = 'type ipv4_addr ; flags interval ;';
    try {
      await nft(
        `add table ip kpt-cache\nadd set ip kpt-cache fa { ${fa} }\nadd set ip kpt-cache iv { ${iv} }\n` +
          'add element ip kpt-cache fa { 192.0.2.11 . tcp . 80 . 10.100.0.0/24 }\n' +
          'add element ip kpt-cache iv { 10.0.0.0/24 }\n',
      );
      // The session's cache now holds both sets with these elements.
      await session(
        'add element ip kpt-cache fa { 192.0.2.12 . tcp . 80 . 10.200.0.0/16 }\nadd element ip kpt-cache iv { 10.0.1.0/24 }\n',
      );
      // A full sync by another process: both sets deleted and re-created with other elements.
      await nft(
        `delete set ip kpt-cache fa\nadd set ip kpt-cache fa { ${fa} }\ndelete set ip kpt-cache iv\nadd set ip kpt-cache iv { ${iv} }\n` +
          'add element ip kpt-cache fa { 192.0.2.13 . tcp . 80 . 10.1.0.0/16, 192.0.2.14 . tcp . 80 . 10.2.0.0/24 }\n' +
          'add element ip kpt-cache iv { 10.5.0.0/16 }\n',
      );
      await session(
        'delete element ip kpt-cache fa { 192.0.2.13 . tcp . 80 . 10.1.0.0/16 }\n' +
          'add element ip kpt-cache fa { 192.0.2.11 . tcp . 80 . 10.100.0.0/24 }\n' +
          'delete element ip kpt-cache iv { 10.5.0.0/16 }\nadd element ip kpt-cache iv { 10.0.0.0/24 }\n',
      );
      const faNow = await elements('fa');
      assert.match(faNow, /elements = \{ [^}]*192\.0\.2\.14 \. tcp \. 80 \. 10\.2\.0\.0\/24/);
      assert.match(faNow, /192\.0\.2\.11 \. tcp \. 80 \. 10\.100\.0\.0\/24/);
      assert.doesNotMatch(faNow, /192\.0\.2\.1[23] /);
      assert.match(await elements('iv'), /elements = \{ 10\.0\.0\.0\/24 \}/);
      // An element only the old set had is gone for the session too.
      await assert.rejects(
        session('delete element ip kpt-cache fa { 192.0.2.12 . tcp . 80 . 10.200.0.0/16 }\n'),
        /No such file or directory/,
      );
    } finally {
      session.close();
      await lab.exec('node', 'nft', ['delete', 'table', 'ip', 'kpt-cache'], { allowFail: true });
    }
  });

  test('read-back of every golden load: nft -t lists what the layout has, and every affinity set compares as the same definition', async () => {
    for (const [name, objects] of Object.entries(SCENARIOS)) {
      await reset();
      const layout = buildLayout(statesOf(objects)[0]!, familyOptions('IPv4'));
      await nft(fullScript(layout));
      const t = await readBack();
      assert.deepEqual([...t.chains].sort(), [...layout.chains.keys()].sort(), name);
      assert.deepEqual(
        t.sets.map((x) => `${x.kind} ${x.name}`).sort(),
        [...layout.sets.values()].map((x) => `${x.kind} ${x.name}`).sort(),
        name,
      );
      assert.deepEqual(
        [...keptSets(t, layout)].sort(),
        [...layout.sets.values()]
          .filter(isKernelFilled)
          .map((x) => x.name)
          .sort(),
        name,
      );
    }
  });

  test('full syncs over the read-back table between random states load, equal a fresh load, and keep the clients of unchanged affinity sets', async () => {
    const names = Object.keys(SCENARIOS).filter(
      (n) => n !== 'etp-local-no-local-endpoints' && n !== 'affinity',
    );
    const eps = ['10.182.0.1', '10.182.0.2', '10.182.0.3'];
    const step = fc.record({
      pick: fc.subarray(names),
      timeout: fc.constantFrom(300, 10800),
      sticky: fc.subarray(eps),
      nodePort: fc.boolean(),
      full: fc.boolean(),
    });
    const seqs = fc.sample(fc.array(step, { minLength: 2, maxLength: 4 }), { numRuns: 8, seed: 777 });
    const objectsOf = (s: (typeof seqs)[number][number]): KubeObject[] => [
      makeNode(NODE, ['192.168.0.2']),
      ...s.pick.flatMap((n) => SCENARIOS[n]!).filter((o) => o.kind !== 'Node'),
      makeService('ns-sticky', 'sticky', {
        clusterIP: '172.30.0.60',
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: s.timeout } },
        ...(s.nodePort
          ? { type: 'NodePort', ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30060 }] }
          : {}),
      }),
      makeSlice(
        'ns-sticky',
        'sticky',
        'sticky-a',
        s.sticky.map((ip) => ({ ip, nodeName: NODE })),
      ),
    ];
    let kept = 0;
    // Another table of the family with objects named like ours: the read-back must ignore it, and nothing may touch it.
    await nft(
      [
        'add table ip other',
        'add chain ip other services',
        'add set ip other cluster-ips { type ipv4_addr ; }',
        'add map ip other service-ips { type ipv4_addr : verdict ; }',
        'add element ip other cluster-ips { 10.1.1.1 }',
        'add rule ip other services ip daddr @cluster-ips accept',
        '',
      ].join('\n'),
    );
    const otherTable = async () => (await lab.exec('node', 'nft', ['list', 'table', 'ip', 'other'])).stdout;
    const otherBefore = await otherTable();
    for (const [k, steps] of seqs.entries()) {
      await reset();
      const slots = new SlotAllocator();
      let prev: NftLayout | undefined;
      for (const [i, s] of steps.entries()) {
        const next = buildLayout(statesOf(objectsOf(s))[0]!, familyOptions('IPv4'), slots);
        const client = `10.99.${k}.${i + 1}`;
        const before = new Map<string, [string, string[]]>();
        if (prev)
          for (const x of prev.sets.values())
            if (isKernelFilled(x)) before.set(x.name, [x.spec, await elementsOf(x.name)]);
        if (!prev) await nft(fullScript(next));
        else if (s.full) {
          const r = replaceScript(next, await readBack());
          kept += r.kept.length;
          await nft(r.script);
        } else {
          const d = diffScript(prev, next).script;
          if (d) await nft(d);
        }
        for (const x of next.sets.values()) {
          if (!isKernelFilled(x)) continue;
          const was = before.get(x.name);
          assert.deepEqual(
            await elementsOf(x.name),
            was && was[0] === x.spec ? was[1] : [],
            `${x.name} after step ${i}`,
          );
        }
        await remember(next, client);
        prev = next;
      }
      const kernel = await terseBlocks();
      await reset();
      await nft(fullScript(prev!));
      assert.deepEqual(kernel, await terseBlocks());
    }
    assert.ok(kept > 0, 'some full sync kept an affinity set');
    assert.equal(await otherTable(), otherBefore);
    await lab.exec('node', 'nft', ['delete', 'table', 'ip', 'other']);
  });
});
