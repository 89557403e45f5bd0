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
import { SCENARIOS, familyOptions, statesOf } from '../test/golden/nftables/scenarios.js';
import { makeSlice } from '../test/fixtures/objects.js';
import { renderNFTables } from '../src/backends/nftables/render.js';
import { buildLayout, type NftLayout } from '../src/backends/nftables/render-layout.js';
import { diffScript, fullScript } from '../src/backends/nftables/render-script.js';
import { SlotAllocator } from '../src/backends/nftables/slots.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('nft', ['--version']).status !== 0) return 'nft is not installed';
  return labSkipReason();
}

describe('rendered nftables scripts load with nft', { skip: skipReason() }, () => {
  let lab: Lab;
  const nft = (script: string, check = false) => lab.exec('node', 'nft', check ? ['-c', '-f', '-'] : ['-f', '-'], { input: script });
  const reset = () => lab.exec('node', 'nft', ['-f', '-'], { input: 'add table ip kube-proxy\ndelete table ip kube-proxy\nadd table ip6 kube-proxy\ndelete table ip6 kube-proxy\n' });

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
    await nft(renderNFTables(statesOf(objs, ['IPv4', 'IPv6']), [familyOptions('IPv4'), familyOptions('IPv6')]));
    const t = await lab.exec('node', 'nft', ['list', 'tables']);
    assert.match(t.stdout, /table ip kube-proxy/);
    assert.match(t.stdout, /table ip6 kube-proxy/);
  });

  test('incremental transactions between random scenario sets all load, and end equal to a fresh full load', async () => {
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
          objs.push(makeSlice('ns1', 'svc1', 'svc1-extra', Array.from({ length: s.extra }, (_, i) => ({ ip: `10.181.0.${i + 1}`, nodeName: 'node-2' }))));
        const next = buildLayout(statesOf(objs)[0]!, familyOptions('IPv4'), slots);
        const script = prev ? diffScript(prev, next).script : fullScript(next);
        if (script) await nft(script);
        prev = next;
      }
      const incremental = (await lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy'])).stdout;
      await nft(fullScript(prev!));
      const fresh = (await lab.exec('node', 'nft', ['list', 'table', 'ip', 'kube-proxy'])).stdout;
      // The kernel lists objects in creation order, which differs; compare the sorted blocks.
      const blocks = (t: string) => t.trim().replace(/\n}$/, '').split('\n\n').map((b) => b.trim()).sort();
      assert.deepEqual(blocks(incremental), blocks(fresh));
    }
  });
});
