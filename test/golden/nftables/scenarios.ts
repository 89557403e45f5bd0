/**
 * Object sets and options for the nftables renderer tests (golden files, diff tests, load test).
 */
import type { IPFamily, KubeObject } from '../../../src/model/types.js';
import type { FamilyOptions } from '../../../src/proxy/options.js';
import type { DesiredState } from '../../../src/proxy/types.js';
import { desiredStatesFromObjects } from '../../../src/proxy/state-from-objects.js';
import { makeNode, makeService, makeSlice } from '../../fixtures/objects.js';
import { familyOptions as baseFamilyOptions } from '../../fixtures/options.js';

export const NODE = 'node-1';

/** nftables-mode FamilyOptions: upstream defaults (mark bit 14, no localhost NodePorts, nodePortAddresses unset). */
export function familyOptions(family: IPFamily, over: Partial<FamilyOptions> = {}): FamilyOptions {
  return baseFamilyOptions({
    family,
    localDetector: { kind: 'cidr', cidrs: [family === 'IPv4' ? '10.0.0.0/8' : 'fd00:10::/64'] },
    ...over,
  });
}

/** Desired states of `objects` for node NODE. */
export function statesOf(objects: readonly KubeObject[], families: IPFamily[] = ['IPv4']): DesiredState[] {
  return desiredStatesFromObjects(objects, { families, nodeName: NODE });
}

const node = makeNode(NODE, ['192.168.0.2']);
const local = (ip: string) => ({ ip, nodeName: NODE });
const remote = (ip: string) => ({ ip, nodeName: 'node-2' });

/** Named scenarios: each a list of objects. */
export const SCENARIOS: Record<string, KubeObject[]> = {
  'basic-clusterip': [
    node,
    makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' }),
    makeSlice('ns1', 'svc1', 'svc1-a', [local('10.180.0.1'), remote('10.180.0.2'), remote('10.180.2.1')]),
  ],
  'no-endpoints': [node, makeService('ns9', 'empty', { clusterIP: '172.30.0.49', type: 'NodePort', ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30089 }] })],
  nodeport: [
    node,
    makeService('ns2', 'np', { clusterIP: '172.30.0.42', type: 'NodePort', ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30080 }] }),
    makeSlice('ns2', 'np', 'np-a', [local('10.180.0.3'), remote('10.180.0.4')]),
  ],
  'etp-local': [
    node,
    makeService('ns3', 'lb', {
      clusterIP: '172.30.0.43',
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 30000,
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30081 }],
    }, { status: { loadBalancer: { ingress: [{ ip: '5.6.7.8' }] } } }),
    makeSlice('ns3', 'lb', 'lb-a', [local('10.180.0.5'), remote('10.180.0.6')]),
  ],
  'etp-local-no-local-endpoints': [
    node,
    makeService('ns3', 'lb', {
      clusterIP: '172.30.0.43',
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      externalIPs: ['192.168.99.11'],
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30081 }],
    }),
    makeSlice('ns3', 'lb', 'lb-a', [remote('10.180.0.6')]),
  ],
  'itp-local': [
    node,
    makeService('ns4', 'itp', { clusterIP: '172.30.0.44', internalTrafficPolicy: 'Local' }),
    makeSlice('ns4', 'itp', 'itp-a', [local('10.180.0.7'), remote('10.180.0.8')]),
  ],
  'loadbalancer-source-ranges': [
    node,
    makeService('ns5', 'fw', {
      clusterIP: '172.30.0.45',
      type: 'LoadBalancer',
      loadBalancerSourceRanges: [' 203.0.113.0/25 ', '203.0.113.0/24', '192.168.0.0/24'],
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30082 }],
    }, { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } }),
    makeSlice('ns5', 'fw', 'fw-a', [remote('10.180.0.9')]),
  ],
  affinity: [
    node,
    makeService('ns6', 'sticky', { clusterIP: '172.30.0.46', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } } }),
    makeSlice('ns6', 'sticky', 'sticky-a', [local('10.180.0.10'), remote('10.180.0.11')]),
  ],
  'sctp-udp': [
    node,
    makeService('ns7', 'dns', {
      clusterIP: '172.30.0.47',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        { name: 'sctp', port: 9999, protocol: 'SCTP' },
      ],
    }),
    makeSlice('ns7', 'dns', 'dns-a', [local('10.180.0.12')], [
      { name: 'dns', port: 5353, protocol: 'UDP' },
      { name: 'dns-tcp', port: 5353, protocol: 'TCP' },
      { name: 'sctp', port: 9999, protocol: 'SCTP' },
    ]),
  ],
  'terminating-fallback': [
    node,
    makeService('ns8', 'term', { clusterIP: '172.30.0.48' }),
    makeSlice('ns8', 'term', 'term-a', [
      { ip: '10.180.0.13', ready: false, serving: true, terminating: true, nodeName: NODE },
      { ip: '10.180.0.14', ready: false, serving: false, terminating: true, nodeName: NODE },
    ]),
  ],
};
