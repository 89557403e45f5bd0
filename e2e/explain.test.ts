/**
 * The proof of `kube-proxy explain` (root only): for random desired states (every Service type, both
 * traffic policies, ClientIP affinity, source ranges, not-ready and terminating endpoints, zone
 * hints) and random connections, explain's answer on the rendered rules equals what the kernel does
 * with the same rules in the lab's node namespace and a real packet:
 * - DNAT: the connection is answered by an endpoint pod, and sampling (bounded) reaches every listed
 *   endpoint (only a subset with ClientIP affinity, which sticks to the first pick); the backend sees
 *   a node address exactly when explain says masquerade;
 * - REJECT: refused; DROP: no answer; NONE: no endpoint pod answers (the packet left untouched).
 * Run for iptables-legacy, iptables-nft and nftables, seeded and bounded (about a minute each).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { createLab, labSkipReason, parseReply, type Lab, type ConnResult } from './lab/topology.js';
import {
  connectionArb,
  destinationOf,
  protocolOf,
  TARGET_PORT,
  worldArb,
  worldObjects,
  WORLD_NODE,
  type WorldSpec,
  type WorldConnection,
} from '../test/fixtures/explain-world.js';
import { familyOptions as baseOptions } from '../test/fixtures/options.js';
import { renderForDisplay } from '../src/backends/iptables/render-display.js';
import { renderNFTables } from '../src/backends/nftables/render.js';
import { desiredStatesFromObjects } from '../src/proxy/state-from-objects.js';
import { explainWith, formatText, loadTracer, type ExplainContext } from '../src/explain/explain.js';

const VARIANTS = [
  { name: 'iptables-legacy', mode: 'iptables', tool: 'iptables-legacy' },
  { name: 'iptables-nft', mode: 'iptables', tool: 'iptables-nft' },
  { name: 'nftables', mode: 'nftables', tool: 'nft' },
] as const;

const BACKENDS = ['b0', 'b1', 'b2', 'b3'];
/** Senders: outside, a client pod, two backend pods (hairpin), the node. */
const SENDERS = ['ext', 'client', 'b0', 'b1', 'node'] as const;
const RUNS = Number(process.env.EXPLAIN_E2E_RUNS ?? 10);
const SEED = Number(process.env.EXPLAIN_E2E_SEED ?? 4242);

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const t of ['iptables-legacy-restore', 'iptables-nft-restore', 'nft', 'conntrack'])
    if (spawnSync(t, ['--version']).error) return `${t} is not installed`;
  return labSkipReason();
}

const EMPTY_TABLES = [
  '*filter',
  ':INPUT ACCEPT [0:0]',
  ':FORWARD ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  'COMMIT',
  '*nat',
  ':PREROUTING ACCEPT [0:0]',
  ':INPUT ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':POSTROUTING ACCEPT [0:0]',
  'COMMIT',
  '',
].join('\n');

const skip = skipReason();

const ONLY = process.env.EXPLAIN_E2E_VARIANT;

for (const v of VARIANTS.filter((x) => ONLY === undefined || x.name === ONLY)) {
  describe(`explain agrees with the kernel: ${v.name}`, { skip }, () => {
    let lab: Lab;
    before(async () => {
      lab = await createLab({ pods: ['client', ...BACKENDS] });
      for (const b of BACKENDS)
        await lab.startBackend(b, { tcpPorts: [TARGET_PORT], udpPorts: [TARGET_PORT] });
    });
    after(() => lab?.destroy());

    /** Replaces every rule of ours in the node namespace with `rules` (and forgets old flows). */
    const load = async (rules: string): Promise<void> => {
      if (v.mode === 'iptables') {
        await lab.exec('node', `${v.tool}-restore`, ['-w'], { input: EMPTY_TABLES });
        await lab.exec('node', `${v.tool}-restore`, ['-w', '--noflush'], { input: rules });
      } else {
        await lab.exec('node', 'nft', ['-f', '-'], { input: rules });
      }
      await lab.exec('node', 'conntrack', ['-F'], { allowFail: true });
    };

    const ipOf = (name: string): string =>
      name === 'ext' ? lab.ext.ip : name === 'node' ? lab.node.ip : lab.pod(name).ip;

    const one = (from: string, proto: 'TCP' | 'UDP', ip: string, port: number, timeoutMs: number) =>
      proto === 'TCP' ? lab.tcp(from, ip, port, { timeoutMs }) : lab.udp(from, ip, port, { timeoutMs });

    /** Checks one connection against explain's answer; returns a failure description or undefined. */
    const check = async (
      w: WorldSpec,
      c: WorldConnection,
      ctx: ExplainContext,
      verdicts: Record<string, number>,
    ): Promise<string | undefined> => {
      const from = SENDERS[c.source]!;
      const [ip, port] = destinationOf(w, c, lab.node.ip);
      const proto = protocolOf(w, c);
      const src = ipOf(from);
      const e = explainWith(loadTracer(ctx), ctx, {
        protocol: proto,
        src,
        srcPort: 0,
        dst: ip,
        dstPort: port,
      });
      const j = e.json;
      verdicts[j.verdict] = (verdicts[j.verdict] ?? 0) + 1;
      const label = `${from} (${src}) ${proto} -> ${ip}:${port}\n${formatText(e)}`;
      const results: ConnResult[] = [];
      if (j.verdict === 'DNAT') {
        const want = new Set(j.endpoints);
        const seen = new Set<string>();
        const sticky = w.services[c.service]!.affinity;
        for (let i = 0; i < 10 * want.size + 10 && (sticky ? i < 6 : seen.size < want.size); i++) {
          const r = await one(from, proto, ip, port, 2000);
          results.push(r);
          if (!r.ok) return `${label}kernel: ${r.error} instead of an endpoint's answer`;
          const rep = parseReply(r.reply);
          const pod = rep ? lab.pods.find((x) => x.name === rep.backend) : undefined;
          const ep = pod ? `${pod.ip}:${TARGET_PORT}` : '';
          if (!rep || !pod || !want.has(ep))
            return `${label}kernel: answered by ${r.reply}, not a listed endpoint`;
          seen.add(ep);
          const masq = rep.clientIp !== src;
          const hairpin = pod.ip === src;
          if (hairpin && !masq) return `${label}kernel: a hairpin connection was not masqueraded`;
          if (!e.why.kept.some((k) => k.ip === src) && masq !== j.masquerade)
            return `${label}kernel: the backend saw ${rep.clientIp} (masquerade ${masq ? 'yes' : 'no'})`;
        }
        if (!sticky && seen.size < want.size)
          return `${label}kernel: only ${[...seen].join(', ')} answered in ${results.length} connections`;
        if (sticky && seen.size !== 1)
          return `${label}kernel: ClientIP affinity did not stick: ${[...seen].join(', ')}`;
        return undefined;
      }
      const r = await one(from, proto, ip, port, 700);
      const podAnswer =
        r.ok && parseReply(r.reply) && lab.pods.some((p) => p.name === parseReply(r.reply)!.backend);
      // A packet the node itself sends that OUTPUT drops or rejects fails the send with EPERM
      // (no ICMP is delivered to a local socket for it).
      const eperm = !r.ok && r.error === 'EPERM' && from === 'node';
      // The node routes service addresses back out of eth0 towards ext; a REJECT of such a packet
      // never reaches ext's socket as "refused" (seen with a bare nft reject rule too, outside
      // kube-proxy's rules), so from ext a rejected connection to a non-node address may time out.
      const bounced = from === 'ext' && !r.ok && r.error === 'timeout' && ip !== lab.node.ip;
      switch (j.verdict) {
        case 'REJECT':
          return (r.ok || r.error !== 'refused') && !eperm && !bounced
            ? `${label}kernel: ${r.ok ? r.reply : r.error}, not refused`
            : undefined;
        case 'DROP':
          return (r.ok || (r.error !== 'timeout' && r.error !== 'no-reply')) && !eperm
            ? `${label}kernel: ${r.ok ? r.reply : r.error}, not dropped`
            : undefined;
        case 'NONE':
        case 'ACCEPT':
          return podAnswer
            ? `${label}kernel: a service endpoint answered: ${r.ok ? r.reply : ''}`
            : undefined;
      }
    };

    test('property: random states and connections', async () => {
      let checked = 0;
      const verdicts: Record<string, number> = {};
      await fc.assert(
        fc.asyncProperty(
          worldArb(BACKENDS.length, 3).chain((w) =>
            fc.tuple(
              fc.constant(w),
              fc.array(connectionArb(w, SENDERS.length), { minLength: 2, maxLength: 6 }),
            ),
          ),
          fc.boolean(),
          async ([w, conns], masqueradeAll) => {
            const objects = worldObjects(w, {
              nodeIP: lab.node.ip,
              outsideCIDR: '10.100.0.0/24',
              podIPs: BACKENDS.map((b) => lab.pod(b).ip),
            });
            const [state] = desiredStatesFromObjects(objects, { families: ['IPv4'], nodeName: WORLD_NODE });
            const options = baseOptions({
              family: 'IPv4',
              localDetector: { kind: 'cidr', cidrs: ['10.244.0.0/24'] },
              masqueradeAll,
            });
            const rules =
              v.mode === 'nftables'
                ? renderNFTables([state!], [options])
                : renderForDisplay([state!], [options]);
            await load(rules);
            const ctx: ExplainContext = {
              mode: v.mode,
              state: state!,
              options,
              rules,
              interfaceAddresses: [lab.node.ip, lab.node.bridgeIp],
            };
            for (const c of conns) {
              const failure = await check(w, c, ctx, verdicts);
              assert.equal(failure, undefined, failure);
              checked++;
            }
          },
        ),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, includeErrorInReport: true },
      );
      // Every kind of answer the generator can produce was checked against the kernel at least once.
      assert.ok(checked > RUNS, `checked ${checked} connections`);
      for (const k of ['DNAT', 'REJECT', 'DROP', 'NONE'])
        assert.ok((verdicts[k] ?? 0) > 0, `no ${k} case: ${JSON.stringify(verdicts)}`);
    });
  });
}
