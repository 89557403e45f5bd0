import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conntrackSysctls } from './linux-setup-plan.js';
import { defaultProxyConfig } from '../config/defaults.js';

test('defaults: raise nf_conntrack_max to max(perCore*cpus, min); set the TCP timeouts; leave UDP alone', () => {
  const c = defaultProxyConfig();
  assert.deepEqual(conntrackSysctls(c, 2), [
    { path: 'net/netfilter/nf_conntrack_max', value: 131072, onlyRaise: true },
    { path: 'net/netfilter/nf_conntrack_tcp_timeout_established', value: 86400 },
    { path: 'net/netfilter/nf_conntrack_tcp_timeout_close_wait', value: 3600 },
  ]);
  assert.equal(conntrackSysctls(c, 8)[0]!.value, 262144);
});

test('zero values leave the kernel alone; liberal and UDP timeouts when set', () => {
  const c = defaultProxyConfig();
  c.conntrack.maxPerCore = 0;
  c.conntrack.tcpEstablishedTimeoutMs = 0;
  c.conntrack.tcpCloseWaitTimeoutMs = 0;
  c.conntrack.tcpBeLiberal = true;
  c.conntrack.udpTimeoutMs = 30_000;
  assert.deepEqual(conntrackSysctls(c, 2), [
    { path: 'net/netfilter/nf_conntrack_tcp_be_liberal', value: 1 },
    { path: 'net/netfilter/nf_conntrack_udp_timeout', value: 30 },
  ]);
});
