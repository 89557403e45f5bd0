import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveLocalDetector, resolveNodePortAddresses } from './family-options.js';
import type { ProxyConfig } from '../config/types.js';

const facts = {
  interfaceAddresses: ['127.0.0.1', '10.0.0.5', '192.168.1.2', '::1', 'fd00::5'],
  nodeIPs: ['10.0.0.5'],
};

test('nodePortAddresses: unset or zero CIDR is match-all and admits loopback', () => {
  assert.deepEqual(resolveNodePortAddresses([], 'IPv4', facts), {
    matchAll: true,
    ips: [],
    cidrs: [],
    containsIPv4Loopback: true,
  });
  assert.equal(resolveNodePortAddresses(['0.0.0.0/0'], 'IPv4', facts).matchAll, true);
});

test('nodePortAddresses: CIDRs select the machine addresses inside them, per family', () => {
  const r = resolveNodePortAddresses(['10.0.0.0/8', 'fd00::/64'], 'IPv4', facts);
  assert.deepEqual(r, {
    matchAll: false,
    ips: ['10.0.0.5'],
    cidrs: ['10.0.0.0/8'],
    containsIPv4Loopback: false,
  });
  assert.deepEqual(resolveNodePortAddresses(['10.0.0.0/8', 'fd00::/64'], 'IPv6', facts).ips, ['fd00::5']);
  // a list with no CIDR of this family means all addresses of it
  assert.equal(resolveNodePortAddresses(['fd00::/64'], 'IPv4', facts).matchAll, true);
  assert.equal(resolveNodePortAddresses(['127.0.0.0/8'], 'IPv4', facts).containsIPv4Loopback, true);
});

test('nodePortAddresses: "primary" is the node primary IP', () => {
  assert.deepEqual(resolveNodePortAddresses(['primary'], 'IPv4', facts).ips, ['10.0.0.5']);
});

test('local detector per mode and family', () => {
  const base = {
    detectLocalMode: '',
    clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/64'],
    detectLocal: { bridgeInterface: 'cbr0', interfaceNamePrefix: 'veth' },
  } as unknown as ProxyConfig;
  assert.deepEqual(resolveLocalDetector(base, 'IPv4', []), { kind: 'cidr', cidrs: ['10.244.0.0/16'] });
  assert.deepEqual(resolveLocalDetector({ ...base, clusterCIDRs: [] }, 'IPv4', []), { kind: 'none' });
  assert.deepEqual(resolveLocalDetector({ ...base, detectLocalMode: 'NodeCIDR' }, 'IPv6', ['fd00:1::/80']), {
    kind: 'cidr',
    cidrs: ['fd00:1::/80'],
  });
  assert.deepEqual(resolveLocalDetector({ ...base, detectLocalMode: 'BridgeInterface' }, 'IPv4', []), {
    kind: 'bridge',
    iface: 'cbr0',
  });
  assert.deepEqual(resolveLocalDetector({ ...base, detectLocalMode: 'InterfaceNamePrefix' }, 'IPv4', []), {
    kind: 'prefix',
    prefix: 'veth',
  });
});
