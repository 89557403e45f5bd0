import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { KubeObject } from '../../model/types.js';
import { nodePortListenAddresses, planListeners, renderUserspace } from './render.js';
import { familyOptions } from '../../../test/fixtures/options.js';

const OPTS: FamilyOptions = familyOptions({ randomFully: false });

function state(objects: KubeObject[]) {
  return desiredStatesFromObjects([makeNode('node-a', ['192.168.1.10']), ...objects], {
    families: ['IPv4'],
    nodeName: 'node-a',
  })[0]!;
}

const lbService = makeService(
  'ns',
  'web',
  {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.5',
    externalIPs: ['203.0.113.7'],
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
  },
  { status: { loadBalancer: { ingress: [{ ip: '198.51.100.9' }] } } },
);
const lbSlice = makeSlice(
  'ns',
  'web',
  'web-1',
  [
    { ip: '10.1.0.1', nodeName: 'node-a' },
    { ip: '10.1.0.2', nodeName: 'node-b' },
  ],
  [{ name: 'http', port: 8080, protocol: 'TCP' }],
);

describe('planListeners', () => {
  it('one listener per address kind; cluster IP uses the cluster set, external kinds the eTP=Local set', () => {
    const plans = planListeners(state([lbService, lbSlice]), OPTS);
    assert.deepEqual(
      plans.map((p) => [
        p.kind,
        p.id,
        p.endpoints.map((e) => e.endpoint).join(','),
        p.balancerKey.split('|')[1],
      ]),
      [
        ['clusterIP', 'TCP/172.30.0.5:80', '10.1.0.1:8080,10.1.0.2:8080', 'internal'],
        ['externalIP', 'TCP/203.0.113.7:80', '10.1.0.1:8080', 'external'],
        ['loadBalancer', 'TCP/198.51.100.9:80', '10.1.0.1:8080', 'external'],
        ['nodePort', 'TCP/192.168.1.10:30080', '10.1.0.1:8080', 'external'],
      ],
    );
    for (const p of plans) assert.deepEqual(p.service, p.listen);
  });

  it('iTP=Local with only remote endpoints: empty set, "drop"; no endpoints at all: "reject"', () => {
    const svc = makeService('ns', 'loc', { clusterIP: '172.30.0.6', internalTrafficPolicy: 'Local' });
    const sl = makeSlice('ns', 'loc', 'loc-1', [{ ip: '10.1.0.3', nodeName: 'node-b' }]);
    const empty = makeService('ns', 'empty', { clusterIP: '172.30.0.7' });
    const plans = planListeners(state([svc, sl, empty]), OPTS);
    assert.deepEqual(
      plans.map((p) => [p.serviceName, p.endpoints.length, p.noEndpoints]),
      [
        ['ns/empty:p80', 0, 'reject'],
        ['ns/loc:p80', 0, 'drop'],
      ],
    );
  });

  it('carries ClientIP affinity, skips SCTP, dedups a shared address/port (first key wins)', () => {
    const a = makeService('ns', 'a', {
      clusterIP: '172.30.0.8',
      externalIPs: ['203.0.113.1'],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
    });
    const b = makeService('ns', 'b', {
      clusterIP: '172.30.0.9',
      externalIPs: ['203.0.113.1'],
      ports: [
        { name: 's', port: 80, protocol: 'SCTP' },
        { name: 'p80', port: 80, protocol: 'TCP' },
      ],
    });
    const plans = planListeners(state([a, b]), OPTS);
    assert.deepEqual(
      plans.map((p) => `${p.serviceName} ${p.id} ${p.stickyMaxAgeSeconds}`),
      ['ns/a:p80 TCP/172.30.0.8:80 30', 'ns/a:p80 TCP/203.0.113.1:80 30', 'ns/b:p80 TCP/172.30.0.9:80 0'],
    );
  });

  it('NodePort addresses: configured IPs, plus 127.0.0.1 with localhost NodePorts', () => {
    const s = state([]);
    assert.deepEqual(nodePortListenAddresses(s, OPTS), ['192.168.1.10']);
    assert.deepEqual(
      nodePortListenAddresses(s, {
        ...OPTS,
        localhostNodePorts: true,
        nodePortAddresses: { matchAll: false, ips: ['192.168.1.10', '10.9.9.9'], cidrs: [] },
      }),
      ['10.9.9.9', '127.0.0.1', '192.168.1.10'],
    );
  });
});

describe('renderUserspace', () => {
  it('prints a stable, aligned table (byte-identical for equal input)', () => {
    const s = state([
      lbService,
      lbSlice,
      makeService('ns', 'dns', {
        clusterIP: '172.30.0.10',
        ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
      }),
      makeService('ns', 'sc', {
        clusterIP: '172.30.0.11',
        ports: [{ name: 'x', port: 9, protocol: 'SCTP' }],
      }),
    ]);
    const out = renderUserspace([s], [OPTS]);
    assert.equal(renderUserspace([s], [OPTS]), out);
    assert.equal(
      out,
      [
        '# userspace IPv4',
        'SERVICE-PORT  PROTO  LISTEN              KIND          ENDPOINTS                    AFFINITY',
        'ns/dns:dns    UDP    172.30.0.10:53      clusterIP     none (reject)                None',
        'ns/web:http   TCP    172.30.0.5:80       clusterIP     10.1.0.1:8080,10.1.0.2:8080  None',
        'ns/web:http   TCP    203.0.113.7:80      externalIP    10.1.0.1:8080                None',
        'ns/web:http   TCP    198.51.100.9:80     loadBalancer  10.1.0.1:8080                None',
        'ns/web:http   TCP    192.168.1.10:30080  nodePort      10.1.0.1:8080                None',
        '# skipped ns/sc:x: SCTP is not supported in userspace mode',
        '',
      ].join('\n'),
    );
  });

  it('names the family it lacks options for', () => {
    assert.throws(() => renderUserspace([state([])], []), /no FamilyOptions for family IPv4/);
  });
});
