/**
 * The CLI renders only the service ports a packet can touch (scope.ts): for random desired states
 * and connections, every mode's answer (the whole text form: reasons, quoted rules, verdict,
 * exclusions) on that part equals its answer on the whole render. Large-cluster mode (iptables drops
 * comments above 1000 endpoints) follows the whole state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../backends/index.js';
import { getBackend } from '../backends/backend.js';
import { familyOptions as baseOptions } from '../../test/fixtures/options.js';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import {
  connectionArb,
  destinationOf,
  protocolOf,
  worldArb,
  worldObjects,
  WORLD_NODE,
} from '../../test/fixtures/explain-world.js';
import { desiredStatesFromObjects } from '../proxy/state-from-objects.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState } from '../proxy/types.js';
import { explain, formatText, type ExplainContext } from './explain.js';
import type { Packet } from './packet.js';
import { scopeForPacket } from './scope.js';

const ADDR = {
  nodeIP: '10.100.0.2',
  outsideCIDR: '10.100.0.0/24',
  podIPs: ['10.244.0.11', '10.244.0.12', '10.244.0.13', '10.244.0.14'],
};
const SOURCES = ['10.100.0.1', '10.244.0.10', '10.244.0.11', '10.244.0.12', '10.100.0.2'];
const MODES = ['iptables', 'nftables', 'ipvs', 'userspace'] as const;

function options(mode: (typeof MODES)[number]): FamilyOptions {
  return baseOptions({
    family: 'IPv4',
    localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/24'] },
    localhostNodePorts: mode === 'iptables',
  });
}

/** The whole render's answer and the part's, as text. */
function both(mode: (typeof MODES)[number], state: DesiredState, p: Packet): [string, string] {
  const backend = getBackend(mode)!;
  const opts = options(mode);
  const ctx: ExplainContext = {
    mode,
    state,
    options: opts,
    rules: backend.render([state], [opts]),
    interfaceAddresses: ['10.100.0.2', '10.244.0.1'],
  };
  const part = backend.render([scopeForPacket(state, p)], [opts], [state]);
  return [formatText(explain(ctx, p)), formatText(explain({ ...ctx, rules: part }, p))];
}

test('property: the answer on the rules of the touched service ports is the answer on all of them', () => {
  fc.assert(
    fc.property(
      worldArb(ADDR.podIPs.length, 6).chain((w) =>
        fc.tuple(fc.constant(w), fc.array(connectionArb(w, SOURCES.length), { minLength: 1, maxLength: 6 })),
      ),
      ([w, conns]) => {
        const [state] = desiredStatesFromObjects(worldObjects(w, ADDR), {
          families: ['IPv4'],
          nodeName: WORLD_NODE,
        });
        for (const c of conns) {
          const [ip, port] = destinationOf(w, c, ADDR.nodeIP);
          const p = {
            protocol: protocolOf(w, c),
            src: SOURCES[c.source]!,
            srcPort: 0,
            dst: ip,
            dstPort: port,
          };
          for (const mode of MODES) {
            const [whole, part] = both(mode, state!, p);
            assert.equal(part, whole, `${mode} ${JSON.stringify(c)}`);
          }
        }
      },
    ),
    { numRuns: 150, seed: 20261202, includeErrorInReport: true },
  );
});

test('large-cluster mode follows the whole state, not the part', () => {
  const objs = [makeNode('node-1', ['10.100.0.2'])];
  for (let i = 0; i < 210; i++) {
    const name = `s${i}`;
    objs.push(makeService('ns', name, { clusterIP: `172.30.${i >> 8}.${i & 255}` }) as never);
    objs.push(
      makeSlice(
        'ns',
        name,
        `${name}-a`,
        Array.from({ length: 5 }, (_, k) => ({ ip: `10.180.${i}.${k + 1}`, nodeName: 'node-2' })),
      ) as never,
    );
  }
  const [state] = desiredStatesFromObjects(objs, { families: ['IPv4'], nodeName: 'node-1' });
  const p: Packet = { protocol: 'TCP', src: '10.244.0.5', srcPort: 0, dst: '172.30.0.7', dstPort: 80 };
  assert.equal(scopeForPacket(state!, p).services.size, 1);
  const [whole, part] = both('iptables', state!, p);
  assert.equal(part, whole);
  // 1050 endpoints: the SEP rules carry no comment.
  assert.match(whole, /-A KUBE-SEP-\S+ -m tcp -p tcp -j DNAT/);
});
