import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base32Std } from '../common/base32.js';
import { endpointChainName, isServiceChainName, servicePortChainHash, servicePortChainName } from './hash.js';

test('base32Std matches RFC 4648 test vectors', () => {
  const enc = (s: string): string => base32Std(Buffer.from(s, 'utf8'));
  assert.equal(enc(''), '');
  assert.equal(enc('f'), 'MY======');
  assert.equal(enc('fo'), 'MZXQ====');
  assert.equal(enc('foo'), 'MZXW6===');
  assert.equal(enc('foob'), 'MZXW6YQ=');
  assert.equal(enc('fooba'), 'MZXW6YTB');
  assert.equal(enc('foobar'), 'MZXW6YTBOI======');
});

test('service port chain names match upstream', () => {
  assert.equal(servicePortChainName('KUBE-SVC-', 'ns1/svc1:p80', 'tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  // protocol is lowercased before hashing, so "TCP" gives the same name
  assert.equal(servicePortChainName('KUBE-SVC-', 'ns1/svc1:p80', 'TCP'), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  assert.equal(servicePortChainHash('ns1/svc1:p80', 'tcp'), 'XPGD46QRK7WJZT7O');
  // names seen in upstream TestOverallIPTablesRules
  assert.equal(servicePortChainName('KUBE-EXT-', 'ns2/svc2:p80', 'tcp'), 'KUBE-EXT-GNZBNJ2PO5MGZ6GT');
  assert.equal(servicePortChainName('KUBE-FW-', 'ns5/svc5:p80', 'tcp'), 'KUBE-FW-NUKIZ6OKUXPJNT4C');
});

test('endpoint chain names match upstream', () => {
  assert.equal(endpointChainName('ns1/svc1:p80', 'tcp', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  assert.equal(endpointChainName('ns4/svc4:p80', 'tcp', '10.180.0.5:80'), 'KUBE-SEP-C6EBXVWJJZMIWKLZ');
  assert.equal(endpointChainName('ns5/svc5:p80', 'tcp', '10.180.0.3:80'), 'KUBE-SEP-I77PXRDZVX7PMWMN');
});

test('names differ by protocol and fit the 28-char iptables limit', () => {
  const tcp = servicePortChainName('KUBE-SVC-', 'ns/s:p', 'tcp');
  const udp = servicePortChainName('KUBE-SVC-', 'ns/s:p', 'udp');
  const sctp = servicePortChainName('KUBE-SVC-', 'ns/s:p', 'sctp');
  assert.equal(new Set([tcp, udp, sctp]).size, 3);
  assert.ok(endpointChainName('ns/s:p', 'tcp', '[fd00::1]:80').length <= 28);
  assert.match(tcp, /^KUBE-SVC-[A-Z2-7]{16}$/);
});

test('isServiceChainName', () => {
  for (const c of ['KUBE-SVC-X', 'KUBE-SVL-X', 'KUBE-EXT-X', 'KUBE-FW-X', 'KUBE-SEP-X'])
    assert.ok(isServiceChainName(c), c);
  for (const c of [
    'KUBE-SERVICES',
    'KUBE-NODEPORTS',
    'KUBE-MARK-MASQ',
    'KUBE-PROXY-FIREWALL',
    'KUBE-FIREWALL',
  ])
    assert.ok(!isServiceChainName(c), c);
});
