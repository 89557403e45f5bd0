/**
 * /readyz end to end (root only): the real daemon in nftables mode in the lab's node namespace, with
 * a PATH shim in front of `nft` that makes every rule-writing transaction (`nft -f -`) fail while a
 * fault file exists (reads, `nft -c` probes and listings still work). /readyz must answer 503 before
 * the first sync, 200 after it, 503 while syncs keep failing, and 200 again once the fault is gone;
 * /healthz keeps upstream's rule throughout the start (healthy before any sync).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { labSkipReason, type LabProcess } from './lab/topology.js';
import { prepareScenarioLab, type ScenarioContext, svc, slice } from './scenarios/index.js';
import { startScenarioDaemon } from './scenarios/daemon.js';
import { which } from '../src/exec/run.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['nft', 'curl'])
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  return labSkipReason();
}

interface ReadyBody {
  ready: boolean;
  reason?: string;
  status: Record<string, { ready: boolean; reason?: string }>;
}

describe('/readyz means programmed (nftables mode, failing nft injected)', { skip: skipReason() }, () => {
  let ctx: ScenarioContext;
  let dispose: (() => Promise<void>) | undefined;
  let daemon: LabProcess;
  let shimDir = '';
  let fault = '';

  const get = async (path: string): Promise<{ code: number; body: string }> => {
    const r = await ctx.lab.exec(
      'node',
      'curl',
      ['-s', '-m', '2', '-w', '\n%{http_code}', `http://127.0.0.1:10256${path}`],
      { allowFail: true },
    );
    const i = r.stdout.lastIndexOf('\n');
    return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };
  const readyz = async (): Promise<{ code: number; body: ReadyBody }> => {
    const r = await get('/readyz');
    return { code: r.code, body: JSON.parse(r.body) as ReadyBody };
  };

  before(async () => {
    ({ ctx, dispose } = await prepareScenarioLab({ localhostNodePorts: false }));
    const realNft = which('nft');
    assert.ok(realNft, 'nft not found');
    shimDir = mkdtempSync(join(tmpdir(), 'kpt-nftshim-'));
    fault = join(shimDir, 'fault');
    // Only the rule-writing call fails: `nft -f -` exactly (probes use -c, listings -t).
    writeFileSync(
      join(shimDir, 'nft'),
      `#!/bin/sh\nif [ -e '${fault}' ] && [ "$1" = "-f" ]; then echo "nft: injected fault" >&2; exit 1; fi\nexec '${realNft}' "$@"\n`,
    );
    chmodSync(join(shimDir, 'nft'), 0o755);
    writeFileSync(fault, '');
    daemon = startScenarioDaemon(ctx, {
      mode: 'nftables',
      // Short period: retries every 2 s, and "behind" for more than 2 × 2 s makes the node unready.
      args: ['--iptables-sync-period=2s', '--iptables-min-sync-period=0s'],
      // Every transaction through `nft -f -`, where the shim injects its fault: the kept `nft -i`
      // (the default for scripts under 64 KB, which this small table's full sync is too) is off.
      env: { PATH: `${shimDir}:${process.env.PATH ?? ''}`, KUBE_PROXY_NFT_SESSION: '0' },
    });
  });

  after(async () => {
    await daemon?.stop(20_000);
    await dispose?.();
    if (shimDir) rmSync(shimDir, { recursive: true, force: true });
  });

  test('503 before the first sync, with the reason; /healthz healthy as upstream', async () => {
    const r = await ctx.until('readyz answers', async () => {
      const x = await get('/readyz');
      return x.code !== 0 ? x : undefined;
    });
    assert.equal(r.code, 503, r.body);
    // The first sync fails (the fault is on): the reason names the failures once the loop runs.
    const failing = await ctx.until('a failed first sync is reported', async () => {
      const x = await readyz();
      return /last sync failed \d+ times: .*injected fault/.test(x.body.status.IPv4?.reason ?? '')
        ? x
        : undefined;
    });
    assert.equal(failing.code, 503);
    assert.equal(failing.body.ready, false);
    assert.equal(
      (await get('/healthz')).code,
      200,
      'upstream /healthz is healthy until a queued update times out',
    );
    assert.equal(
      (await ctx.lab.tcp('client', '172.30.0.10', 80, { timeoutMs: 500 })).ok,
      false,
      'nothing programmed',
    );
  });

  test('200 once the first full sync succeeded, and traffic flows', async () => {
    unlinkSync(fault);
    const r = await ctx.until('ready', async () => {
      const x = await readyz();
      return x.code === 200 ? x : undefined;
    });
    assert.deepEqual(r.body.status.IPv4?.ready, true);
    assert.equal((await ctx.lab.tcp('client', '172.30.0.10', 80)).ok, true);
  });

  test('503 while syncs keep failing, naming the failures', async () => {
    writeFileSync(fault, '');
    // A change the daemon cannot program.
    ctx.write('extra.yaml', [
      svc('extra', { clusterIP: '172.30.0.40' }),
      slice('extra', [{ ip: ctx.ip.b1 }]),
    ]);
    const r = await ctx.until(
      'unready',
      async () => {
        const x = await readyz();
        return x.code === 503 ? x : undefined;
      },
      30_000,
    );
    assert.match(r.body.status.IPv4?.reason ?? '', /^last sync failed \d+ times: .*injected fault/);
    assert.equal((await ctx.lab.tcp('client', '172.30.0.40', 80, { timeoutMs: 500 })).ok, false);
  });

  test('200 again after the fault is gone, and the change is programmed', async () => {
    unlinkSync(fault);
    await ctx.until('ready again', async () => (await readyz()).code === 200, 30_000);
    assert.equal((await ctx.lab.tcp('client', '172.30.0.40', 80)).ok, true);
    assert.ok(!existsSync(fault));
  });
});
