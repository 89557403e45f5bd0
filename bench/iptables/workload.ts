/**
 * Synthetic cluster for the iptables benchmark: N ClusterIP+NodePort services × M endpoints fed
 * through the real validators and StateTracker, so the states the proxier sees are the daemon's.
 */
import { StateTracker } from '../../src/proxy/state-tracker.js';
import { validateEndpointSlice, validateNode, validateService } from '../../src/model/validate.js';
import type { EndpointSlice } from '../../src/model/types.js';
import type { DesiredState } from '../../src/proxy/types.js';
import type { FamilyOptions } from '../../src/proxy/options.js';
import { familyOptions } from '../../test/fixtures/options.js';

/** The node the workload's local endpoints sit on. */
export const BENCH_NODE = 'node-0';

function ip(base: number, i: number): string {
  const v = base + i;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function slice(i: number, m: number, gen: number): EndpointSlice {
  return validateEndpointSlice({
    kind: 'EndpointSlice',
    metadata: {
      namespace: `ns${i % 50}`,
      name: `svc-${i}-abc`,
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: m }, (_, k) => ({
      addresses: [ip(0x0a000000, (i * m + k + gen * 7) % 0xffffff)],
      conditions: { ready: true },
      nodeName: `node-${k}`,
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
}

/** A workload whose state can be rebuilt after changing k services' endpoints. */
export interface Workload {
  /** The state after the initial load (every service in changedServices). */
  readonly initial: DesiredState;
  /** Replaces the endpoints of `k` services (different ones each call); returns the next state. */
  change(k: number): DesiredState;
  /** Marks `state` as programmed (the sync loop's commit). */
  commit(state: DesiredState): void;
}

/** Builds N services × M endpoints (1 TCP port each, every 3rd one a NodePort). */
export function makeWorkload(n: number, m: number): Workload {
  const t = new StateTracker({ families: ['IPv4'], nodeName: BENCH_NODE });
  t.onEvent({
    type: 'add',
    object: validateNode({
      kind: 'Node',
      metadata: { name: BENCH_NODE },
      status: { addresses: [{ type: 'InternalIP', address: '10.100.0.2' }] },
    }),
  });
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    const nodePort = i % 3 === 0 && i / 3 < 30000 ? 30000 + ((i / 3) % 2768) : undefined;
    const svc = validateService({
      kind: 'Service',
      metadata: { namespace: `ns${i % 50}`, name: `svc-${i}` },
      spec: {
        type: nodePort !== undefined && i < 3 * 2768 ? 'NodePort' : 'ClusterIP',
        clusterIP: ip(0xac100000, i + 10),
        ports: [
          {
            name: 'http',
            port: 80,
            protocol: 'TCP',
            ...(nodePort !== undefined && i < 3 * 2768 ? { nodePort } : {}),
          },
        ],
      },
    });
    t.onEvent({ type: 'add', object: svc });
    const s = slice(i, m, 0);
    slices.push(s);
    t.onEvent({ type: 'add', object: s });
  }
  t.onEvent({ type: 'synced', kind: 'Service' });
  t.onEvent({ type: 'synced', kind: 'EndpointSlice' });
  t.onEvent({ type: 'synced', kind: 'Node' });
  const initial = t.build('IPv4');
  let gen = 0;
  let cursor = 0;
  return {
    initial,
    change: (k) => {
      gen++;
      for (let j = 0; j < k; j++) {
        const i = (cursor++ * 7919) % n;
        const next = slice(i, m, gen);
        t.onEvent({ type: 'update', old: slices[i]!, object: next });
        slices[i] = next;
      }
      return t.build('IPv4');
    },
    commit: (s) => {
      t.commit(s);
    },
  };
}

/** FamilyOptions as the daemon resolves them with --cluster-cidr=10.244.0.0/16 and defaults. */
export function benchOptions(): FamilyOptions {
  return familyOptions({
    localhostNodePorts: true,
    localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/16'] },
  });
}
