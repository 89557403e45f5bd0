// The portal executor against a fake Exec: no process is spawned and no firewall is touched.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fakeExec as sharedFakeExec } from '../../exec/fake-exec.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { toolsFor, type Exec } from '../../exec/iptables.js';
import {
  applyPortalRules,
  cleanupPortals,
  decidePortals,
  ensurePortalJumps,
  removePortals,
} from './portal.js';
import { PORTAL_JUMPS } from './portal-render.js';

interface Call {
  cmd: string;
  args: readonly string[];
  input?: string;
}

/** The shared fake Exec: `answer` returns [code, stdout] or throws; calls are recorded. */
function fakeExec(answer: (c: Call) => [number, string]): { exec: Exec; calls: Call[] } {
  const f = sharedFakeExec((c) => {
    const [code, stdout] = answer(c);
    return { code, stdout };
  });
  return { exec: f.exec, calls: f.calls };
}

const NFT4 = toolsFor('nft', 'IPv4');
const env = { KUBE_PROXY_IPTABLES_BACKEND: 'nft' };
const findAll = (c: string) => `/usr/sbin/${c}`;

describe('decidePortals', () => {
  it('direct when not root, without calling anything', async () => {
    const { exec, calls } = fakeExec(() => [0, '']);
    assert.deepEqual(await decidePortals('IPv4', { exec, isRoot: false, find: findAll, env }), {
      mode: 'direct',
      reason: 'not running as root',
    });
    assert.equal(calls.length, 0);
  });

  it('direct when a binary is missing, naming it', async () => {
    const { exec } = fakeExec(() => [0, '']);
    const d = await decidePortals('IPv6', {
      exec,
      isRoot: true,
      find: (c) => (c.endsWith('restore') ? undefined : c),
      env,
    });
    assert.deepEqual(d, { mode: 'direct', reason: 'ip6tables-nft-restore not found on PATH' });
  });

  it('direct when the nat table cannot be read; portal when it can', async () => {
    const bad = fakeExec(() => [4, '']);
    const d = await decidePortals('IPv4', { exec: bad.exec, isRoot: true, find: findAll, env });
    assert.equal(d.mode, 'direct');
    assert.match(d.reason, /iptables-nft-save -t nat failed/);
    const good = fakeExec(() => [0, '*nat\nCOMMIT\n']);
    const p = await decidePortals('IPv4', { exec: good.exec, isRoot: true, find: findAll, env });
    assert.equal(p.mode, 'portal');
    assert.deepEqual(p.mode === 'portal' ? p.tools : undefined, NFT4);
  });

  it('a bad KUBE_PROXY_IPTABLES_BACKEND falls back to direct with the reason', async () => {
    const { exec } = fakeExec(() => [0, '']);
    const d = await decidePortals('IPv4', {
      exec,
      isRoot: true,
      find: findAll,
      env: { KUBE_PROXY_IPTABLES_BACKEND: 'bogus' },
    });
    assert.equal(d.mode, 'direct');
    assert.match(d.reason, /KUBE_PROXY_IPTABLES_BACKEND must be "legacy" or "nft", got "bogus"/);
  });
});

describe('apply and jumps', () => {
  it('applies with restore -w --noflush and the text on stdin', async () => {
    const { exec, calls } = fakeExec(() => [0, '']);
    await applyPortalRules(NFT4, '*nat\nCOMMIT\n', exec);
    assert.deepEqual(calls, [
      { cmd: 'iptables-nft-restore', args: ['-w', '--noflush'], input: '*nat\nCOMMIT\n' },
    ]);
  });

  it('adds only the jumps -C does not find: prepends with -I 1, appends with -A', async () => {
    const { exec, calls } = fakeExec((c) => [
      c.args.includes('-C') && c.args.includes('KUBE-PORTALS-HOST') ? 0 : c.args.includes('-C') ? 1 : 0,
      '',
    ]);
    assert.equal(await ensurePortalJumps(NFT4, exec), PORTAL_JUMPS.length - 1);
    const adds = calls
      .filter((c) => !c.args.includes('-C'))
      .map((c) => `${c.args.slice(0, 5).join(' ')} ${c.args.at(-1)}`);
    // -I takes position 1 so portals come before anything else in the chain.
    assert.ok(calls.filter((c) => c.args.includes('-I')).every((c) => c.args[5] === '1'));
    assert.deepEqual(adds, [
      '-w -t nat -I PREROUTING KUBE-PORTALS-CONTAINER',
      '-w -t nat -A PREROUTING KUBE-NODEPORT-CONTAINER',
      '-w -t nat -A OUTPUT KUBE-NODEPORT-HOST',
      '-w -t filter -I INPUT KUBE-NODEPORT-NON-LOCAL',
    ]);
  });
});

describe('removePortals and cleanup', () => {
  const natSave =
    '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-PORTALS-CONTAINER - [0:0]\n:KUBE-NODEPORT-HOST - [0:0]\nCOMMIT\n';
  it('deletes jumps to the chains that exist (until gone), then flushes and deletes those chains', async () => {
    let deletes = 0;
    const { exec, calls } = fakeExec((c) => {
      if (c.cmd.endsWith('-save')) return [0, c.args[1] === 'nat' ? natSave : '*filter\nCOMMIT\n'];
      if (c.args.includes('-D')) return [deletes++ === 0 ? 0 : 1, ''];
      return [0, ''];
    });
    assert.deepEqual(await removePortals(NFT4, exec), []);
    const ops = calls
      .filter((c) => !c.cmd.endsWith('-save'))
      .map((c) => `${c.args[2]} ${c.args[3]} ${c.args.at(-1)}`);
    assert.deepEqual(ops, [
      'nat -D KUBE-PORTALS-CONTAINER',
      'nat -D KUBE-PORTALS-CONTAINER',
      'nat -D KUBE-NODEPORT-HOST',
      'nat -F KUBE-PORTALS-CONTAINER',
      'nat -X KUBE-PORTALS-CONTAINER',
      'nat -F KUBE-NODEPORT-HOST',
      'nat -X KUBE-NODEPORT-HOST',
    ]);
  });

  it('does nothing but look when none of our chains exist (never creates tables)', async () => {
    const { exec, calls } = fakeExec(() => [0, '*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n']);
    assert.deepEqual(await removePortals(NFT4, exec), []);
    assert.ok(calls.every((c) => c.cmd.endsWith('-save')));
  });

  it('cleanup reports failures with the command', async () => {
    const { exec } = fakeExec((c) =>
      c.cmd.endsWith('-save') ? [0, natSave] : [c.args.includes('-X') || c.args.includes('-D') ? 1 : 0, ''],
    );
    await assert.rejects(
      cleanupPortals(createMemoryLogger(), { exec, isRoot: true, find: findAll, env }),
      /userspace portal cleanup \(IPv4\): .*-X KUBE-PORTALS-CONTAINER/,
    );
  });

  it('cleanup without root does nothing', async () => {
    const { exec, calls } = fakeExec(() => [0, '']);
    await cleanupPortals(createMemoryLogger(), { exec, isRoot: false });
    assert.equal(calls.length, 0);
  });
});
