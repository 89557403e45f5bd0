import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { raiseConntrackHashsize, runInitOnly } from './linux-setup.js';
import { defaultProxyConfig } from '../config/defaults.js';
import { createMemoryLogger } from '../observability/logger.js';

/** A fake /proc/sys holding `files` (path → value). */
function fakeProcSys(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'kpt-procsys-'));
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), `${v}\n`);
  }
  return root;
}

const read = (root: string, p: string): string => readFileSync(join(root, p), 'utf8').trim();

test('--init-only in ipvs mode with strictARP sets the IPVS, forwarding and ARP sysctls', () => {
  const root = fakeProcSys({
    'net/ipv4/vs/conntrack': '0',
    'net/ipv4/vs/expire_nodest_conn': '0',
    'net/ipv4/vs/expire_quiescent_template': '0',
    'net/ipv4/ip_forward': '0',
    'net/ipv4/conf/all/arp_ignore': '0',
    'net/ipv4/conf/all/arp_announce': '0',
    'net/netfilter/nf_conntrack_tcp_timeout_established': '432000',
  });
  try {
    const config = defaultProxyConfig();
    config.mode = 'ipvs';
    config.ipvs.strictARP = true;
    const log = createMemoryLogger();
    assert.equal(runInitOnly(config, true, log, root), true);
    for (const p of ['vs/conntrack', 'vs/expire_nodest_conn', 'vs/expire_quiescent_template', 'ip_forward'])
      assert.equal(read(root, `net/ipv4/${p}`), '1', p);
    assert.equal(read(root, 'net/ipv4/conf/all/arp_ignore'), '1');
    assert.equal(read(root, 'net/ipv4/conf/all/arp_announce'), '2');
    assert.equal(read(root, 'net/netfilter/nf_conntrack_tcp_timeout_established'), '86400');
    // nf_conntrack_max is missing from the fake tree: a warning, not a failure.
    assert.ok(
      log.entries.some((e) => e.level === 'warn' && e.obj.sysctl === 'net.netfilter.nf_conntrack_max'),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--init-only fails when a sysctl the mode needs cannot be set (no IPVS in the kernel)', () => {
  const root = fakeProcSys({ 'net/ipv4/ip_forward': '1' });
  try {
    const config = defaultProxyConfig();
    config.mode = 'ipvs';
    const log = createMemoryLogger();
    assert.equal(runInitOnly(config, true, log, root), false);
    assert.ok(log.entries.some((e) => e.level === 'error' && e.obj.sysctl === 'net.ipv4.vs.conntrack'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--init-only in nftables mode needs no mode sysctl; iptables without localhost NodePorts neither', () => {
  const root = fakeProcSys({});
  try {
    const config = defaultProxyConfig();
    config.mode = 'nftables';
    assert.equal(runInitOnly(config, true, createMemoryLogger(), root), true);
    config.mode = 'iptables';
    config.iptables.localhostNodePorts = false;
    assert.equal(runInitOnly(config, true, createMemoryLogger(), root), true);
    config.iptables.localhostNodePorts = true;
    assert.equal(runInitOnly(config, true, createMemoryLogger(), root), false, 'route_localnet is missing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('conntrack hashsize: raised to max/4 when smaller, only in the initial network namespace', () => {
  const root = fakeProcSys({ hashsize: '16384' });
  const file = join(root, 'hashsize');
  try {
    const log = createMemoryLogger();
    assert.equal(raiseConntrackHashsize(262144, log, { file, inInitialNetns: () => false }), false);
    assert.equal(read(root, 'hashsize'), '16384', 'left alone outside the initial netns');
    assert.equal(raiseConntrackHashsize(262144, log, { file, inInitialNetns: () => true }), true);
    assert.equal(read(root, 'hashsize'), '65536');
    assert.equal(
      raiseConntrackHashsize(131072, log, { file, inInitialNetns: () => true }),
      false,
      'never lowered',
    );
    assert.equal(read(root, 'hashsize'), '65536');
    rmSync(file);
    assert.equal(raiseConntrackHashsize(524288, log, { file, inInitialNetns: () => true }), false);
    assert.ok(log.entries.some((e) => e.level === 'warn' && /hashsize/.test(e.msg)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
