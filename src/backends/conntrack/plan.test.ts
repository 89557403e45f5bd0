import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import type { DesiredState } from '../../proxy/types.js';
import {
  cleanupRequired,
  filterArgs,
  parseConntrackList,
  planConntrackCleanup,
  planStuckTCPSyns,
  type UdpFlow,
} from './plan.js';

const NODE = 'node-1';

function stateOf(
  objs: Parameters<typeof desiredStatesFromObjects>[0],
  conntrack?: Partial<DesiredState['conntrack']>,
): DesiredState {
  const [s] = desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: NODE });
  return { ...s!, conntrack: { ...s!.conntrack, ...conntrack } };
}

const udpDNS = makeService('ns', 'dns', {
  type: 'NodePort',
  clusterIP: '172.30.0.10',
  externalIPs: ['192.0.2.5'],
  ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }],
});
const dnsSlice = (ips: string[], extra: Parameters<typeof makeSlice>[3][number][] = []) =>
  makeSlice(
    'ns',
    'dns',
    'dns-1',
    [...ips.map((ip) => ({ ip, nodeName: NODE })), ...extra],
    [{ name: 'dns', port: 5353, protocol: 'UDP' }],
  );

const flow = (origDst: string, origDport: number, replySrc: string, origSport = 40000): UdpFlow => ({
  origSrc: '10.244.0.10',
  origDst,
  origSport,
  origDport,
  replySrc,
});

test('parseConntrackList reads the original and reply tuples, skipping other lines', () => {
  const text = [
    'udp      17 29 src=10.244.0.10 dst=172.30.0.10 sport=40001 dport=53 [UNREPLIED] src=10.244.0.11 dst=10.244.0.10 sport=5353 dport=40001 mark=0 use=1',
    'tcp      6 117 TIME_WAIT src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 [ASSURED] mark=0 use=1',
    'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.',
    '',
  ].join('\n');
  assert.deepEqual(parseConntrackList(text), [
    {
      origSrc: '10.244.0.10',
      origDst: '172.30.0.10',
      origSport: 40001,
      origDport: 53,
      replySrc: '10.244.0.11',
    },
  ]);
});

test('nothing is planned when no UDP service changed (upstream skips the reconciler)', () => {
  const s = stateOf([makeNode(NODE, ['10.100.0.2']), udpDNS, dnsSlice(['10.244.0.11'])], {
    udpServicePorts: new Set(),
    deletedUDPClusterIPs: new Set(),
  });
  assert.equal(cleanupRequired(s), false);
  assert.deepEqual(planConntrackCleanup(s, [flow('172.30.0.10', 53, '10.244.0.99')]), {
    required: false,
    deletions: [],
  });
});

test('flows to a service IP or nodePort whose reply source is not a serving endpoint are deleted', () => {
  const s = stateOf([makeNode(NODE, ['10.100.0.2']), udpDNS, dnsSlice(['10.244.0.11'])]);
  assert.ok(cleanupRequired(s), 'the first build marks every UDP service as changed');
  const plan = planConntrackCleanup(s, [
    flow('172.30.0.10', 53, '10.244.0.11'), // current endpoint: kept
    flow('172.30.0.10', 53, '10.244.0.12'), // removed endpoint
    flow('172.30.0.10', 53, '172.30.0.10'), // created while the service had no endpoints (not DNATed)
    flow('192.0.2.5', 53, '10.244.0.12'), // external IP
    flow('10.100.0.2', 30053, '10.244.0.12'), // nodePort
    flow('172.30.0.10', 54, '10.244.0.12'), // another port: not ours
    flow('172.30.0.99', 53, '10.244.0.12'), // another IP: not ours
  ]);
  assert.deepEqual(plan.deletions, [
    { origDst: '10.100.0.2', origDport: 30053, replySrc: '10.244.0.12' },
    { origDst: '172.30.0.10', origDport: 53, replySrc: '10.244.0.12' },
    { origDst: '172.30.0.10', origDport: 53, replySrc: '172.30.0.10' },
    { origDst: '192.0.2.5', origDport: 53, replySrc: '10.244.0.12' },
  ]);
  assert.deepEqual(filterArgs(plan.deletions[0]!), [
    '-p',
    'udp',
    '--orig-dst',
    '10.100.0.2',
    '--dport',
    '30053',
    '--reply-src',
    '10.244.0.12',
  ]);
});

test('serving terminating endpoints are valid targets; a service without serving endpoints loses every flow (kubernetes#139628)', () => {
  const term = stateOf([
    makeNode(NODE, ['10.100.0.2']),
    udpDNS,
    dnsSlice([], [{ ip: '10.244.0.13', ready: false, serving: true, terminating: true, nodeName: NODE }]),
  ]);
  assert.deepEqual(
    planConntrackCleanup(term, [
      flow('172.30.0.10', 53, '10.244.0.13'),
      flow('172.30.0.10', 53, '10.244.0.12'),
    ]).deletions,
    [{ origDst: '172.30.0.10', origDport: 53, replySrc: '10.244.0.12' }],
  );
  const none = stateOf([
    makeNode(NODE, ['10.100.0.2']),
    udpDNS,
    dnsSlice([], [{ ip: '10.244.0.14', ready: false, serving: false, terminating: true, nodeName: NODE }]),
  ]);
  assert.deepEqual(
    planConntrackCleanup(none, [
      flow('172.30.0.10', 53, '10.244.0.12'),
      flow('10.100.0.2', 30053, '10.244.0.12'),
      flow('172.30.0.10', 54, '10.244.0.12'),
    ]).deletions,
    [
      { origDst: '10.100.0.2', origDport: 30053, replySrc: '10.244.0.12' },
      { origDst: '172.30.0.10', origDport: 53, replySrc: '10.244.0.12' },
    ],
    'flows DNATed to the removed endpoint go, so the next packet meets the REJECT; other ports stay',
  );
});

test('frontends a port no longer has lose their flows unless a live UDP port uses them (kubernetes#141371)', () => {
  const s = stateOf([makeNode(NODE, ['10.100.0.2']), udpDNS, dnsSlice(['10.244.0.11'])], {
    goneUDPFrontends: {
      ipPorts: new Set(['192.0.2.77|53', '172.30.0.10|53']),
      nodePorts: new Set([30099, 30053]),
    },
  });
  const plan = planConntrackCleanup(s, [
    flow('192.0.2.77', 53, '10.244.0.11'), // a removed external IP, even to a live endpoint
    flow('10.100.0.2', 30099, '10.244.0.11'), // a nodePort the service no longer has
    flow('172.30.0.10', 53, '10.244.0.11'), // reused by the live port: its endpoint is valid, kept
    flow('10.100.0.2', 30053, '10.244.0.11'), // live nodePort, valid endpoint: kept
    flow('192.0.2.77', 54, '10.244.0.11'), // another port of that IP: not ours
  ]);
  assert.deepEqual(plan.deletions, [
    { origDst: '10.100.0.2', origDport: 30099, replySrc: '10.244.0.11' },
    { origDst: '192.0.2.77', origDport: 53, replySrc: '10.244.0.11' },
  ]);
});

test('deleted UDP cluster IPs are cleared by destination, unless the IP is still used by a UDP port', () => {
  const s = stateOf([makeNode(NODE, ['10.100.0.2']), udpDNS, dnsSlice(['10.244.0.11'])], {
    deletedUDPClusterIPs: new Set(['172.30.0.50', '172.30.0.10']),
  });
  assert.deepEqual(planConntrackCleanup(s, []).deletions, [{ origDst: '172.30.0.50' }]);
  assert.deepEqual(filterArgs({ origDst: '172.30.0.50' }), ['-p', 'udp', '--orig-dst', '172.30.0.50']);
});

test('planStuckTCPSyns: only un-NATed SYN_SENT flows to a TCP frontend, one deletion per frontend', () => {
  const web = makeService('ns', 'web', {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.20',
    externalIPs: ['192.0.2.7'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
  });
  const s = stateOf([
    makeNode(NODE, ['10.100.0.2']),
    web,
    makeSlice(
      'ns',
      'web',
      'web-1',
      [{ ip: '10.244.0.11', nodeName: NODE }],
      [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ),
    udpDNS,
    dnsSlice(['10.244.0.12']),
  ]);
  const text = [
    // stuck: nobody translated it (reply source = original destination), a cluster IP frontend; twice
    'tcp      6 110 SYN_SENT src=10.244.0.10 dst=172.30.0.20 sport=40000 dport=80 [UNREPLIED] src=172.30.0.20 dst=10.244.0.10 sport=80 dport=40000 mark=0 use=1',
    'tcp      6 111 SYN_SENT src=10.244.0.13 dst=172.30.0.20 sport=40001 dport=80 [UNREPLIED] src=172.30.0.20 dst=10.244.0.13 sport=80 dport=40001 mark=0 use=1',
    // stuck on the external IP
    'tcp      6 112 SYN_SENT src=10.244.0.10 dst=192.0.2.7 sport=40002 dport=80 [UNREPLIED] src=192.0.2.7 dst=10.244.0.10 sport=80 dport=40002 mark=0 use=1',
    // DNATed by the rules (an endpoint answers for it): left alone
    'tcp      6 113 SYN_SENT src=10.244.0.10 dst=172.30.0.20 sport=40003 dport=80 [UNREPLIED] src=10.244.0.11 dst=10.244.0.10 sport=8080 dport=40003 mark=0 use=1',
    // not a frontend: another port of the cluster IP, and an address we do not serve
    'tcp      6 114 SYN_SENT src=10.244.0.10 dst=172.30.0.20 sport=40004 dport=81 [UNREPLIED] src=172.30.0.20 dst=10.244.0.10 sport=81 dport=40004 mark=0 use=1',
    'tcp      6 115 SYN_SENT src=10.244.0.10 dst=203.0.113.9 sport=40005 dport=80 [UNREPLIED] src=203.0.113.9 dst=10.244.0.10 sport=80 dport=40005 mark=0 use=1',
    // the UDP service's address on its port, in a TCP flow: not a TCP frontend
    'tcp      6 116 SYN_SENT src=10.244.0.10 dst=172.30.0.10 sport=40006 dport=53 [UNREPLIED] src=172.30.0.10 dst=10.244.0.10 sport=53 dport=40006 mark=0 use=1',
  ].join('\n');
  const flows = parseConntrackList(text, 'tcp');
  assert.equal(flows.length, 7);
  assert.equal(parseConntrackList(text).length, 0, 'the UDP reader skips TCP lines');
  const plan = planStuckTCPSyns(s, flows);
  assert.deepEqual(plan, [
    { protocol: 'tcp', origDst: '172.30.0.20', origDport: 80, replySrc: '172.30.0.20', state: 'SYN_SENT' },
    { protocol: 'tcp', origDst: '192.0.2.7', origDport: 80, replySrc: '192.0.2.7', state: 'SYN_SENT' },
  ]);
  assert.deepEqual(filterArgs(plan[0]!), [
    '-p',
    'tcp',
    '--orig-dst',
    '172.30.0.20',
    '--dport',
    '80',
    '--reply-src',
    '172.30.0.20',
    '--state',
    'SYN_SENT',
  ]);
});
