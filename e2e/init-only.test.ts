/**
 * `kube-proxy --init-only` (root): in a lab node namespace, the CLI sets the sysctls the mode needs
 * (iptables with localhost NodePorts: route_localnet) and the conntrack sysctls of that namespace,
 * programs no rule, and exits 0, as upstream's init container mode does. The machine's own sysctls
 * are untouched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab } from './lab/topology.js';

const CLI = fileURLToPath(new URL('../bin/kube-proxy.js', import.meta.url));
const HOST_ESTABLISHED = '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established';

const skip = process.getuid?.() !== 0 ? 'needs root' : labSkipReason();

describe('--init-only sets the mode sysctls in its namespace and exits 0', { skip }, () => {
  let lab: Lab;
  const sysctl = async (key: string): Promise<string> =>
    (await lab.exec('node', 'sysctl', ['-n', key])).stdout.trim();

  before(async () => {
    assert.ok(
      existsSync(fileURLToPath(new URL('../dist/main.js', import.meta.url))),
      'run npm run build first',
    );
    lab = await createLab({ pods: 1 });
  });
  after(async () => {
    await lab?.destroy();
  });

  test('iptables mode: route_localnet and the conntrack timeout are set, nothing is programmed', async () => {
    const hostBefore = readFileSync(HOST_ESTABLISHED, 'utf8');
    assert.equal(await sysctl('net.ipv4.conf.all.route_localnet'), '0');
    const r = await lab.exec(
      'node',
      process.execPath,
      [CLI, '--init-only', '--proxy-mode=iptables', '--conntrack-tcp-timeout-established=12345s'],
      { allowFail: true },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /init-only/);
    assert.equal(await sysctl('net.ipv4.conf.all.route_localnet'), '1');
    assert.equal(await sysctl('net.netfilter.nf_conntrack_tcp_timeout_established'), '12345');
    assert.doesNotMatch((await lab.exec('node', 'iptables-save', [])).stdout, /KUBE-/);
    assert.equal(readFileSync(HOST_ESTABLISHED, 'utf8'), hostBefore, "the machine's own value is untouched");
  });

  test('ipvs mode on a kernel without IPVS: the IPVS sysctls cannot be set, so it exits 1 naming one', async (t) => {
    if (existsSync('/proc/sys/net/ipv4/vs')) {
      t.skip('this kernel has IPVS');
      return;
    }
    const r = await lab.exec('node', process.execPath, [CLI, '--init-only', '--proxy-mode=ipvs'], {
      allowFail: true,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /net\.ipv4\.vs\.conntrack/);
  });
});
