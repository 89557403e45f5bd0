import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { familyOptions } from '../../../test/golden/iptables/scenarios.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import { createMemoryLogger } from '../../observability/logger.js';
import type { DesiredState } from '../../proxy/types.js';
import { toolsFor, type Exec } from '../../exec/iptables.js';
import { fakeExec as sharedFakeExec } from '../../exec/fake-exec.js';
import { IPVSProxier } from './proxier.js';

const NODE = 'node-1';
const udpDNS = makeService('ns', 'dns', {
  clusterIP: '172.30.0.10',
  ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
});
const dnsSlice = makeSlice(
  'ns',
  'dns',
  'dns-1',
  [{ ip: '10.244.0.11', nodeName: NODE }],
  [{ name: 'dns', port: 5353, protocol: 'UDP' }],
);

function stateOf(udpChanged: boolean): DesiredState {
  const [s] = desiredStatesFromObjects([makeNode(NODE, ['10.100.0.2']), udpDNS, dnsSlice], {
    families: ['IPv4'],
    nodeName: NODE,
  });
  return {
    ...s!,
    conntrack: {
      udpServicePorts: new Set(udpChanged ? [...s!.services.keys()] : []),
      deletedUDPClusterIPs: new Set(),
    },
  };
}

/** A kernel that starts empty and accepts everything; records each command line. */
function fakeExec(failConntrack = false): { exec: Exec; calls: string[] } {
  const f = sharedFakeExec(({ cmd, args }) => {
    if (cmd === 'conntrack' && failConntrack) throw new Error('conntrack: not found');
    const stdout =
      cmd === 'conntrack' && args[0] === '-L'
        ? 'udp      17 29 src=10.244.0.10 dst=172.30.0.10 sport=40001 dport=53 [UNREPLIED] src=172.30.0.10 dst=10.244.0.10 sport=53 dport=40001 mark=0 use=1\n'
        : '';
    return { code: cmd === 'ip' && args.includes('show') ? 1 : 0, stdout };
  });
  return { exec: f.exec, calls: f.lines };
}

function proxier(
  exec: Exec,
  conntrackCleanup?: boolean,
): { p: IPVSProxier; logs: ReturnType<typeof createMemoryLogger> } {
  const logs = createMemoryLogger();
  const p = new IPVSProxier({
    logger: logs,
    options: familyOptions('IPv4'),
    exec,
    iptables: toolsFor('legacy', 'IPv4'),
    writeSysctl: () => undefined,
    graceful: { checkIntervalMs: 3_600_000, timeoutMs: 3_600_000 },
    ...(conntrackCleanup !== undefined ? { conntrackCleanup } : {}),
  });
  return { p, logs };
}

test('after a sync that touched a UDP service, stale UDP conntrack entries are listed and deleted (after the kernel is programmed)', async () => {
  const { exec, calls } = fakeExec();
  const { p } = proxier(exec);
  await p.sync(stateOf(true), true);
  await p.close();
  const list = calls.findIndex((c) => c.startsWith('conntrack -L'));
  assert.ok(list > calls.findIndex((c) => c.startsWith('ipvsadm -R')), calls.join('\n'));
  // The flow to the cluster IP was answered by the VIP itself (not DNATed): it must go.
  assert.ok(
    calls.some((c) => c.startsWith('conntrack -D -f ipv4 -p udp') && c.includes('172.30.0.10')),
    calls.join('\n'),
  );
  assert.ok(p.last!.phases.conntrack !== undefined);
});

test('no UDP conntrack work when no UDP service changed (a full sync only looks for stuck TCP SYNs), none when disabled', async () => {
  for (const [udpChanged, enabled, expected] of [
    [false, true, ['conntrack -L -f ipv4 -p tcp --state SYN_SENT']],
    [true, false, []],
  ] as const) {
    const { exec, calls } = fakeExec();
    const { p } = proxier(exec, enabled);
    await p.sync(stateOf(udpChanged), true);
    await p.close();
    assert.deepEqual(
      calls.filter((c) => c.startsWith('conntrack')),
      expected,
      calls.join('\n'),
    );
  }
});

test('a conntrack failure is logged and does not fail the sync', async () => {
  const { exec } = fakeExec(true);
  const { p, logs } = proxier(exec);
  await p.sync(stateOf(true), true);
  await p.close();
  assert.ok(
    logs.entries.some((e) => e.msg === 'conntrack cleanup failed'),
    JSON.stringify(logs.entries),
  );
});

test('NodePorts on every local address but kube-ipvs0 (and loopback, IPv6 link-local); an added address gets them at the next sync', async () => {
  const np = makeService('ns', 'np', {
    type: 'NodePort',
    clusterIP: '172.30.0.11',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
  });
  const npSlice = makeSlice(
    'ns',
    'np',
    'np-1',
    [{ ip: '10.244.0.12', nodeName: NODE }],
    [{ name: 'http', port: 8080, protocol: 'TCP' }],
  );
  const [s] = desiredStatesFromObjects([makeNode(NODE, ['10.100.0.2']), np, npSlice], {
    families: ['IPv4'],
    nodeName: NODE,
  });
  const addrs = [
    { iface: 'lo', address: '127.0.0.1' },
    { iface: 'eth0', address: '10.100.0.2' },
    { iface: 'eth0', address: 'fe80::1' },
    { iface: 'cbr0', address: '10.244.0.1' },
    { iface: 'kube-ipvs0', address: '172.30.0.11' },
  ];
  const inner = fakeExec();
  const calls: string[] = [];
  const exec: Exec = (cmd, args, o) => {
    calls.push(`${cmd} ${args.join(' ')}\n${o?.input ?? ''}`);
    return inner.exec(cmd, args, o);
  };
  const p = new IPVSProxier({
    logger: createMemoryLogger(),
    options: familyOptions('IPv4'),
    exec,
    iptables: toolsFor('legacy', 'IPv4'),
    writeSysctl: () => undefined,
    graceful: { checkIntervalMs: 3_600_000, timeoutMs: 3_600_000 },
    localAddresses: () => addrs,
  });
  const vsAdds = (): string[] =>
    calls
      .filter((c) => c.startsWith('ipvsadm -R'))
      .flatMap((c) => [...c.matchAll(/-A -t (\S+):30080 /g)].map((m) => m[1]!));
  await p.sync(s!, true);
  assert.deepEqual(vsAdds().sort(), ['10.100.0.2', '10.244.0.1']);
  addrs.push({ iface: 'eth0', address: '10.100.0.50' });
  calls.length = 0;
  await p.sync(s!, false);
  assert.ok(p.last!.full, 'a changed address set makes the sync full');
  // The fake kernel stays empty, so the full sync programs every address again, the new one included.
  assert.deepEqual(vsAdds().sort(), ['10.100.0.2', '10.100.0.50', '10.244.0.1']);
  await p.close();
});
