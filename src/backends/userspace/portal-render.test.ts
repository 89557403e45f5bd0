import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { KubeObject } from '../../model/types.js';
import {
  PORTAL_JUMPS,
  jumpRuleText,
  planPortals,
  portalSocketId,
  renderPortalRules,
  renderPortalSection,
  type Portal,
} from './portal-render.js';
import { familyOptions } from '../../../test/fixtures/options.js';

const OPTS: FamilyOptions = familyOptions({ localhostNodePorts: true, randomFully: false });

function state(objects: KubeObject[]) {
  return desiredStatesFromObjects([makeNode('node-a', ['192.168.1.10']), ...objects], {
    families: ['IPv4'],
    nodeName: 'node-a',
  })[0]!;
}

const web = makeService(
  'ns',
  'web',
  {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.5',
    externalIPs: ['203.0.113.7'],
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 },
      { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
    ],
  },
  { status: { loadBalancer: { ingress: [{ ip: '198.51.100.9' }] } } },
);
const webSlice = makeSlice(
  'ns',
  'web',
  'web-1',
  [{ ip: '10.1.0.1', nodeName: 'node-a' }],
  [
    { name: 'http', port: 8080, protocol: 'TCP' },
    { name: 'dns', port: 5353, protocol: 'UDP' },
  ],
);

describe('planPortals', () => {
  it('one socket per service port and policy set; portals for every address kind; NodePort on any local address', () => {
    const plan = planPortals(state([web, webSlice]), OPTS);
    assert.deepEqual(
      plan.sockets.map((s) => [s.id, s.listen.address, s.listen.port]),
      [
        ['TCP/portal/ns/web:http/TCP|external', '0.0.0.0', 0],
        ['TCP/portal/ns/web:http/TCP|internal', '0.0.0.0', 0],
        ['UDP/portal/ns/web:dns/UDP|external', '0.0.0.0', 0],
        ['UDP/portal/ns/web:dns/UDP|internal', '0.0.0.0', 0],
      ],
    );
    const http = plan.portals
      .filter((p) => p.protocol === 'TCP')
      .map((p) => [p.kind, p.address, p.port, p.socketId.split('|')[1]]);
    assert.deepEqual(http, [
      ['clusterIP', '172.30.0.5', 80, 'internal'],
      ['externalIP', '203.0.113.7', 80, 'external'],
      ['loadBalancer', '198.51.100.9', 80, 'external'],
      ['nodePort', '', 30080, 'external'],
    ]);
  });

  it('nodePortAddresses set: one NodePort portal per configured address', () => {
    const opts = {
      ...OPTS,
      localhostNodePorts: false,
      nodePortAddresses: { matchAll: false, ips: ['192.168.1.10'], cidrs: ['192.168.1.0/24'] },
    };
    const np = planPortals(state([web, webSlice]), opts).portals.filter((p) => p.kind === 'nodePort');
    assert.deepEqual(
      np.map((p) => [p.protocol, p.address, p.port]),
      [
        ['UDP', '192.168.1.10', 30053],
        ['TCP', '192.168.1.10', 30080],
      ],
    );
  });
});

describe('renderPortalRules', () => {
  const portals: Portal[] = [
    {
      socketId: portalSocketId('TCP', 'k|internal'),
      serviceName: 'ns/a:http',
      protocol: 'TCP',
      kind: 'clusterIP',
      address: '172.30.0.1',
      port: 80,
    },
    {
      socketId: portalSocketId('TCP', 'k|external'),
      serviceName: 'ns/a:http',
      protocol: 'TCP',
      kind: 'nodePort',
      address: '',
      port: 30080,
    },
    {
      socketId: portalSocketId('UDP', 'u|internal'),
      serviceName: 'ns/d:dns',
      protocol: 'UDP',
      kind: 'clusterIP',
      address: '172.30.0.2',
      port: 53,
    },
    {
      socketId: portalSocketId('UDP', 'gone|internal'),
      serviceName: 'ns/g:x',
      protocol: 'UDP',
      kind: 'clusterIP',
      address: '172.30.0.3',
      port: 53,
    },
  ];
  const ports = new Map([
    [portalSocketId('TCP', 'k|internal'), 40001],
    [portalSocketId('TCP', 'k|external'), 40002],
    [portalSocketId('UDP', 'u|internal'), 40001],
  ]);

  it('golden: container REDIRECT, host DNAT to the node IP, NodePort chains, filter ACCEPT; unbound sockets left out', () => {
    assert.equal(
      renderPortalRules({ family: 'IPv4', portals, proxyPorts: ports, hostIP: '10.0.0.2' }),
      [
        '*nat',
        ':KUBE-PORTALS-CONTAINER - [0:0]',
        ':KUBE-PORTALS-HOST - [0:0]',
        ':KUBE-NODEPORT-CONTAINER - [0:0]',
        ':KUBE-NODEPORT-HOST - [0:0]',
        '-A KUBE-PORTALS-CONTAINER -m comment --comment "ns/a:http" -p tcp -m tcp -d 172.30.0.1/32 --dport 80 -j REDIRECT --to-ports 40001',
        '-A KUBE-PORTALS-CONTAINER -m comment --comment "ns/d:dns" -p udp -m udp -d 172.30.0.2/32 --dport 53 -j REDIRECT --to-ports 40001',
        '-A KUBE-PORTALS-HOST -m comment --comment "ns/a:http" -p tcp -m tcp -d 172.30.0.1/32 --dport 80 -j DNAT --to-destination 10.0.0.2:40001',
        '-A KUBE-PORTALS-HOST -m comment --comment "ns/d:dns" -p udp -m udp -d 172.30.0.2/32 --dport 53 -j DNAT --to-destination 10.0.0.2:40001',
        '-A KUBE-NODEPORT-CONTAINER -m comment --comment "ns/a:http" -p tcp -m tcp --dport 30080 -j REDIRECT --to-ports 40002',
        '-A KUBE-NODEPORT-HOST -m comment --comment "ns/a:http" -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.2:40002',
        'COMMIT',
        '*filter',
        ':KUBE-NODEPORT-NON-LOCAL - [0:0]',
        '-A KUBE-NODEPORT-NON-LOCAL -m comment --comment "ns/a:http" -p tcp -m tcp --dport 40002 -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('IPv6: /128 matches and a bracketed DNAT target', () => {
    const v6: Portal[] = [
      {
        socketId: 's',
        serviceName: 'ns/a:http',
        protocol: 'TCP',
        kind: 'clusterIP',
        address: 'fd00::10',
        port: 80,
      },
    ];
    const out = renderPortalRules({
      family: 'IPv6',
      portals: v6,
      proxyPorts: new Map([['s', 41000]]),
      hostIP: 'fd00::2',
    });
    assert.match(out, /-d fd00::10\/128 --dport 80 -j REDIRECT --to-ports 41000/);
    assert.match(out, /-j DNAT --to-destination \[fd00::2\]:41000/);
  });

  it('rejects bad values with a message naming them', () => {
    const one = (p: Partial<Portal>, port: number | string = 40000, hostIP = '10.0.0.2') =>
      renderPortalRules({
        family: 'IPv4',
        portals: [
          {
            socketId: 's',
            serviceName: 'ns/a:http',
            protocol: 'TCP',
            kind: 'clusterIP',
            address: '172.30.0.1',
            port: 80,
            ...p,
          },
        ],
        proxyPorts: new Map([['s', port]]),
        hostIP,
      });
    assert.throws(() => one({ port: 0 }), /port of ns\/a:http must be an integer 1-65535, got 0/);
    assert.throws(() => one({}, 70000), /proxy port of s must be an integer 1-65535, got 70000/);
    assert.throws(
      () => one({ address: '172.30.0.1 -j ACCEPT' }),
      /must be an IPv4 address, got "172\.30\.0\.1 -j ACCEPT"/,
    );
    assert.throws(() => one({ address: 'fd00::1' }), /IPv4 address/);
    assert.throws(
      () => one({ serviceName: 'ns/a" -j DROP "' }),
      /service name .* has characters not allowed/,
    );
    assert.throws(() => one({}, '40000; -A'), /placeholder/);
    assert.throws(() => one({}, 40000, 'not-an-ip'), /host IP must be an IPv4 address/);
    assert.throws(() => one({ address: '' }), /has no address/);
  });

  it('property: every rule line has the fixed shape, whatever valid addresses and ports come in', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
    const portal = fc.record({
      socketId: fc.constantFrom('a', 'b', 'c'),
      serviceName: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}\/[a-z][a-z0-9-]{0,10}:[a-z0-9-]{0,8}$/),
      protocol: fc.constantFrom('TCP' as const, 'UDP' as const),
      kind: fc.constantFrom(
        'clusterIP' as const,
        'externalIP' as const,
        'loadBalancer' as const,
        'nodePort' as const,
      ),
      address: ipv4,
      port: fc.integer({ min: 1, max: 65535 }),
    });
    fc.assert(
      fc.property(
        fc.array(portal, { maxLength: 20 }),
        fc.integer({ min: 1, max: 65535 }),
        ipv4,
        (ps, pp, host) => {
          const out = renderPortalRules({
            family: 'IPv4',
            portals: ps,
            proxyPorts: new Map([
              ['a', pp],
              ['b', pp],
            ]),
            hostIP: host,
          });
          const rule =
            /^-A KUBE-(PORTALS-CONTAINER|PORTALS-HOST|NODEPORT-CONTAINER|NODEPORT-HOST|NODEPORT-NON-LOCAL) -m comment --comment "[a-z0-9/:-]+" -p (tcp -m tcp|udp -m udp)( -d [0-9.]+\/32)? --dport \d+ -j (REDIRECT --to-ports \d+|DNAT --to-destination [0-9.]+:\d+|ACCEPT)$/;
          for (const line of out.trimEnd().split('\n')) {
            if (/^(\*nat|\*filter|COMMIT|:KUBE-[A-Z-]+ - \[0:0\])$/.test(line)) continue;
            assert.match(line, rule);
          }
          assert.equal(
            out,
            renderPortalRules({
              family: 'IPv4',
              portals: ps,
              proxyPorts: new Map([
                ['a', pp],
                ['b', pp],
              ]),
              hostIP: host,
            }),
          );
        },
      ),
    );
  });
});

describe('renderPortalSection', () => {
  it('labels the section, lists jumps and sockets; placeholders without a range, per-protocol range ports with one', () => {
    const st = state([web, webSlice]);
    const eph = renderPortalSection(st, OPTS);
    assert.match(eph, /^# userspace portals IPv4/);
    assert.match(eph, /<proxy-port-N> stands for the port the daemon binds/);
    for (const j of PORTAL_JUMPS) assert.ok(eph.includes(jumpRuleText(j)), jumpRuleText(j));
    assert.match(eph, /-d 172\.30\.0\.5\/32 --dport 80 -j REDIRECT --to-ports <proxy-port-2>/);
    const ranged = renderPortalSection(st, OPTS, { min: 40000, max: 40010 });
    assert.match(ranged, /TCP\/portal\/ns\/web:http\/TCP\|internal listen 0\.0\.0\.0:40001/);
    assert.match(ranged, /UDP\/portal\/ns\/web:dns\/UDP\|external listen 0\.0\.0\.0:40000/);
    assert.match(ranged, /-d 172\.30\.0\.5\/32 --dport 80 -j DNAT --to-destination 192\.168\.1\.10:40001/);
    assert.equal(ranged, renderPortalSection(st, OPTS, { min: 40000, max: 40010 }));
  });
});
