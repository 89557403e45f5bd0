import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeExec } from './fake-exec.js';
import { ExecError } from './run.js';
import { assertToolsPresent, backendFromEnv, detectBackend, toolsFor, type Exec } from './iptables.js';

/** An exec that answers `<tool> [args]` from a table of save outputs; missing entries fail like a missing tool. */
function fakeSaves(outputs: Record<string, string>): Exec {
  return fakeExec(({ cmd, args }) => {
    const out = outputs[[cmd, ...args].join(' ')];
    if (out === undefined) throw new ExecError('KP_ERR_EXEC_NOT_FOUND', cmd, args, null, 'not found');
    return { stdout: out };
  }).exec;
}

test('toolsFor names the family and backend binaries', () => {
  assert.deepEqual(toolsFor('nft', 'IPv6'), {
    backend: 'nft',
    family: 'IPv6',
    iptables: 'ip6tables-nft',
    restore: 'ip6tables-nft-restore',
    save: 'ip6tables-nft-save',
  });
  assert.equal(toolsFor('legacy', 'IPv4').restore, 'iptables-legacy-restore');
});

test('KUBE_PROXY_IPTABLES_BACKEND overrides detection and rejects other values by name', async () => {
  assert.equal(backendFromEnv({}), undefined);
  assert.equal(backendFromEnv({ KUBE_PROXY_IPTABLES_BACKEND: ' Legacy ' }), 'legacy');
  assert.throws(
    () => backendFromEnv({ KUBE_PROXY_IPTABLES_BACKEND: 'xtables' }),
    /KUBE_PROXY_IPTABLES_BACKEND must be "legacy" or "nft", got "xtables"/,
  );
  assert.deepEqual(await detectBackend(fakeSaves({}), { KUBE_PROXY_IPTABLES_BACKEND: 'legacy' }), {
    backend: 'legacy',
    reason: 'KUBE_PROXY_IPTABLES_BACKEND=legacy',
  });
});

test('the kubelet hint chain decides, nft first', async () => {
  const hint = '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n';
  assert.equal(
    (await detectBackend(fakeSaves({ 'iptables-legacy-save -t mangle': hint }), {})).backend,
    'legacy',
  );
  assert.equal(
    (
      await detectBackend(
        fakeSaves({
          'iptables-legacy-save -t mangle': hint,
          'ip6tables-nft-save -t mangle': '*mangle\n:KUBE-KUBELET-CANARY - [0:0]\n',
        }),
        {},
      )
    ).backend,
    'nft',
  );
});

test('without a hint, more rules in legacy means legacy; otherwise (and by default) nft', async () => {
  const rules = (n: number) => `*filter\n${'-A INPUT -j ACCEPT\n'.repeat(n)}COMMIT\n`;
  assert.equal(
    (await detectBackend(fakeSaves({ 'iptables-legacy-save': rules(3), 'iptables-nft-save': rules(1) }), {}))
      .backend,
    'legacy',
  );
  assert.equal(
    (await detectBackend(fakeSaves({ 'iptables-legacy-save': rules(1), 'iptables-nft-save': rules(1) }), {}))
      .backend,
    'nft',
  );
  const none = await detectBackend(fakeSaves({}), {});
  assert.deepEqual(none, { backend: 'nft', reason: 'no rules in either backend; nft is the default' });
});

test('assertToolsPresent names the missing binaries and the override', () => {
  assert.throws(() => {
    assertToolsPresent(toolsFor('legacy', 'IPv6'), (c) =>
      c.startsWith('ip6tables-legacy-') ? undefined : `/usr/sbin/${c}`,
    );
  }, /needs ip6tables-legacy-restore, ip6tables-legacy-save on PATH.*KUBE_PROXY_IPTABLES_BACKEND/);
  assert.doesNotThrow(() => {
    assertToolsPresent(toolsFor('nft', 'IPv4'), (c) => `/usr/sbin/${c}`);
  });
});
