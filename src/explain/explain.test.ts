/**
 * kube-proxy explain: request parsing, golden text answers (one per verdict kind, iptables and
 * nftables), and a property test: for random desired states and connections, what the tracers read
 * from the rendered rules agrees with what the desired state says (verdict, endpoints, masquerade).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertGolden } from '../../test/golden/golden.js';
import { SCENARIOS, familyOptions as nftOptions, statesOf } from '../../test/golden/nftables/scenarios.js';
import { familyOptions as baseOptions } from '../../test/fixtures/options.js';
import {
  connectionArb,
  destinationOf,
  protocolOf,
  worldArb,
  worldObjects,
  WORLD_NODE,
} from '../../test/fixtures/explain-world.js';
import { renderForDisplay } from '../backends/iptables/render-display.js';
import { renderNFTables } from '../backends/nftables/render.js';
import { renderIPVSText } from '../backends/ipvs/render.js';
import { renderUserspaceWithPortals } from '../backends/userspace/backend.js';
import { desiredStatesFromObjects } from '../proxy/state-from-objects.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState } from '../proxy/types.js';
import {
  ExplainInputError,
  explain,
  explainWith,
  formatJSON,
  formatText,
  loadTracer,
  parseExplainRequest,
  type ExplainContext,
} from './explain.js';

const flag = (n: string): string => `--${n}`;

describe('request parsing', () => {
  test('accepts IPv4 and IPv6 forms, with or without a source port', () => {
    assert.deepEqual(
      parseExplainRequest({ protocol: 'tcp', source: '10.0.0.1', destination: '10.96.0.1:443' }, flag),
      {
        protocol: 'TCP',
        src: '10.0.0.1',
        srcPort: 0,
        dst: '10.96.0.1',
        dstPort: 443,
      },
    );
    assert.deepEqual(
      parseExplainRequest({ protocol: 'UDP', source: '[fd00::1]:5353', destination: '[fd00:0::a]:53' }, flag),
      { protocol: 'UDP', src: 'fd00::1', srcPort: 5353, dst: 'fd00::a', dstPort: 53 },
    );
  });
  const bad: [Record<string, string | undefined>, RegExp][] = [
    [
      { protocol: 'ICMP', source: '1.1.1.1', destination: '2.2.2.2:80' },
      /^invalid --protocol "ICMP": expected TCP, UDP or SCTP$/,
    ],
    [
      { protocol: 'TCP', source: '1.1.1', destination: '2.2.2.2:80' },
      /^invalid --source "1.1.1": "1.1.1" is not an IP address$/,
    ],
    [
      { protocol: 'TCP', source: '1.1.1.1', destination: '2.2.2.2' },
      /^invalid --destination "2.2.2.2": expected IP:PORT/,
    ],
    [
      { protocol: 'TCP', source: '1.1.1.1', destination: '2.2.2.2:70000' },
      /^invalid --destination "2.2.2.2:70000": port "70000" is not in 1-65535$/,
    ],
    [
      { protocol: 'TCP', source: '1.1.1.1', destination: '[::1]:80' },
      /^invalid --source "1.1.1.1": is IPv4 but the destination ::1 is IPv6$/,
    ],
    [{ protocol: 'TCP', source: undefined, destination: '2.2.2.2:80' }, /^invalid --source "": is required$/],
    [{ protocol: 'TCP', source: '010.0.0.1', destination: '2.2.2.2:80' }, /^invalid --source "010.0.0.1"/],
  ];
  for (const [req, want] of bad)
    test(`rejects ${JSON.stringify(req)}`, () => {
      assert.throws(
        () =>
          parseExplainRequest(
            { protocol: req.protocol, source: req.source, destination: req.destination },
            flag,
          ),
        (err: unknown) => err instanceof ExplainInputError && want.test(err.message),
      );
    });
});

type Mode = 'iptables' | 'nftables' | 'ipvs' | 'userspace';

/** What `kube-proxy render --proxy-mode <mode>` prints for one family. */
function renderMode(mode: Mode, state: DesiredState, options: FamilyOptions): string {
  switch (mode) {
    case 'nftables':
      return renderNFTables([state], [options]);
    case 'iptables':
      return renderForDisplay([state], [options]);
    case 'ipvs':
      return renderIPVSText([state], [options]);
    case 'userspace':
      return renderUserspaceWithPortals([state], [options]);
  }
}

function contextFor(mode: Mode, scenario: string): ExplainContext {
  const [state] = statesOf(SCENARIOS[scenario]!);
  const options = mode === 'nftables' ? nftOptions('IPv4') : nftOptions('IPv4', { localhostNodePorts: true });
  return { mode, state: state!, options, rules: renderMode(mode, state!, options), interfaceAddresses: [] };
}

const GOLDEN_CASES: { name: string; scenario: string; src: string; dst: string; proto?: string }[] = [
  { name: 'dnat-clusterip-from-pod', scenario: 'basic-clusterip', src: '10.1.2.3', dst: '172.30.0.41:80' },
  { name: 'dnat-nodeport-etp-local', scenario: 'etp-local', src: '203.0.113.9', dst: '192.168.0.2:30081' },
  { name: 'reject-no-endpoints', scenario: 'no-endpoints', src: '203.0.113.9', dst: '172.30.0.49:80' },
  { name: 'drop-source-range', scenario: 'loadbalancer-source-ranges', src: '8.8.8.8', dst: '1.2.3.4:80' },
  {
    name: 'drop-no-local-endpoints',
    scenario: 'etp-local-no-local-endpoints',
    src: '8.8.8.8',
    dst: '192.168.0.2:30081',
  },
  { name: 'accept-health-check', scenario: 'etp-local', src: '8.8.8.8', dst: '192.168.0.2:30000' },
  { name: 'none-unknown-port', scenario: 'basic-clusterip', src: '10.1.2.3', dst: '172.30.0.41:81' },
  { name: 'terminating-fallback', scenario: 'terminating-fallback', src: '10.1.2.3', dst: '172.30.0.48:80' },
];

describe('golden text answers', () => {
  for (const mode of ['iptables', 'nftables', 'ipvs', 'userspace'] as const)
    for (const c of GOLDEN_CASES)
      test(`${mode}: ${c.name}`, () => {
        const ctx = contextFor(mode, c.scenario);
        const p = parseExplainRequest(
          { protocol: c.proto ?? 'TCP', source: c.src, destination: c.dst },
          flag,
        );
        assertGolden(`explain/${mode}-${c.name}`, formatText(explain(ctx, p)));
      });

  test('the JSON form has exactly the documented keys, in order', () => {
    const ctx = contextFor('iptables', 'basic-clusterip');
    const p = parseExplainRequest(
      { protocol: 'TCP', source: '10.1.2.3', destination: '172.30.0.41:80' },
      flag,
    );
    const j = JSON.parse(formatJSON(explain(ctx, p))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(j), [
      'verdict',
      'endpoints',
      'masquerade',
      'service',
      'frontend',
      'steps',
      'excluded',
    ]);
    assert.equal(j.verdict, 'DNAT');
    assert.deepEqual(j.endpoints, ['10.180.0.1:80', '10.180.0.2:80', '10.180.2.1:80']);
    assert.equal(j.service, 'ns1/svc1:p80');
    assert.equal(j.frontend, 'clusterIP');
    for (const s of j.steps as Record<string, unknown>[])
      assert.deepEqual(Object.keys(s), ['table', 'chain', 'rule']);
  });
});

// ------------------------------------------------------------------------------------------------
// Tracers vs the desired state.

const ADDR = {
  nodeIP: '10.100.0.2',
  outsideCIDR: '10.100.0.0/24',
  podIPs: ['10.244.0.11', '10.244.0.12', '10.244.0.13', '10.244.0.14'],
};
const SOURCES = ['10.100.0.1', '10.244.0.10', '10.244.0.11', '10.244.0.12', '10.100.0.2'];

function labOptions(mode: 'iptables' | 'nftables', over: Partial<FamilyOptions> = {}): FamilyOptions {
  return baseOptions({
    family: 'IPv4',
    localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/24'] },
    localhostNodePorts: mode === 'iptables',
    ...over,
  });
}

test("property: the traced answer of the rendered rules is the desired state's, in both modes", () => {
  fc.assert(
    fc.property(
      worldArb(ADDR.podIPs.length).chain((w) =>
        fc.tuple(
          fc.constant(w),
          fc.array(connectionArb(w, SOURCES.length), { minLength: 1, maxLength: 8 }),
          fc.boolean(),
        ),
      ),
      ([w, conns, masqueradeAll]) => {
        const [state] = desiredStatesFromObjects(worldObjects(w, ADDR), {
          families: ['IPv4'],
          nodeName: WORLD_NODE,
        });
        for (const mode of ['iptables', 'nftables'] as const) {
          const options = labOptions(mode, { masqueradeAll });
          const ctx: ExplainContext = {
            mode,
            state: state as DesiredState,
            options,
            rules:
              mode === 'nftables'
                ? renderNFTables([state!], [options])
                : renderForDisplay([state!], [options]),
            interfaceAddresses: ['10.100.0.2', '10.244.0.1'],
          };
          const tracer = loadTracer(ctx);
          for (const c of conns) {
            const [ip, port] = destinationOf(w, c, ADDR.nodeIP);
            const p = {
              protocol: protocolOf(w, c),
              src: SOURCES[c.source]!,
              srcPort: 0,
              dst: ip,
              dstPort: port,
            };
            const e = explainWith(tracer, ctx, p);
            const label = `${mode} ${JSON.stringify(c)} ${p.src} -> ${ip}:${port}\n${formatText(e)}`;
            assert.equal(e.json.verdict, e.why.expected, label);
            assert.deepEqual([...e.json.endpoints].sort(), e.why.kept.map((k) => k.endpoint).sort(), label);
            assert.equal(e.unreadable.length, 0, label);
            if (!e.why.kept.some((k) => k.ip === p.src))
              assert.equal(e.json.masquerade, e.why.masquerade, label);
            else assert.equal(e.json.masquerade, true, `${label}: hairpin`);
          }
        }
      },
    ),
    { numRuns: 300, seed: 20261202, includeErrorInReport: true },
  );
});
