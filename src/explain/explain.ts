/**
 * `kube-proxy explain`: why a NEW connection goes where it goes. The answer is traced through the
 * text the mode programs (what `kube-proxy render` prints, or what the kernel holds with --live),
 * and the desired state says why beside it. Request parsing, the per-mode dispatch, and the text and
 * JSON forms live here. Pure.
 */
import { canonicalIP, familyOfValid, ipFamily, cidrContains, parseCIDR } from '../net/ip.js';
import { KpError } from '../errors.js';
import type { ProxyMode } from '../model/proxy-mode.js';
import type { IPFamily } from '../model/types.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState } from '../proxy/types.js';
import type { LocalAddress } from '../backends/ipvs/render.js';
import { tablesFromText } from './iptables-tables.js';
import { IPTablesTracer } from './iptables-trace.js';
import { IPVSTracer, ipvsModelFromText } from './ipvs-trace.js';
import { UserspaceTracer, userspaceModelFromText } from './userspace-trace.js';
import { applyScript } from './nft-table-model.js';
import { NftTracer } from './nft-trace.js';
import {
  isLoopbackAddress,
  type Packet,
  type SourceKind,
  type TraceEnv,
  type TraceResult,
} from './packet.js';
import { explainFromState, ipvsServiceAddresses, type Excluded, type Frontend, type Why } from './why.js';

/** A malformed explain request: names the parameter and the value (exit status 2 on the CLI, 400 over HTTP). */
export class ExplainInputError extends KpError {
  constructor(
    readonly parameter: string,
    readonly value: string,
    why: string,
  ) {
    super('KP_ERR_EXPLAIN_INPUT', `invalid ${parameter} ${JSON.stringify(value)}: ${why}`);
  }
}

/** The raw request, as given on the command line or in the query string. */
export interface ExplainRequest {
  readonly protocol: string | undefined;
  readonly source: string | undefined;
  readonly destination: string | undefined;
}

function parsePort(param: string, value: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535)
    throw new ExplainInputError(param, value, `port ${JSON.stringify(text)} is not in 1-65535`);
  return Number(text);
}

/** "IP", "IP:PORT", "[IPv6]:PORT", or a bare IPv6 address. */
function parseHostPort(param: string, value: string, needPort: boolean): { ip: string; port: number } {
  let host = value;
  let port: string | undefined;
  const br = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (br) {
    host = br[1]!;
    port = br[2];
  } else if ((value.match(/:/g) ?? []).length === 1) {
    const i = value.indexOf(':');
    host = value.slice(0, i);
    port = value.slice(i + 1);
  }
  const ip = ipFamily(host) ? canonicalIP(host) : undefined;
  if (!ip) throw new ExplainInputError(param, value, `${JSON.stringify(host)} is not an IP address`);
  if (port === undefined) {
    if (needPort) throw new ExplainInputError(param, value, 'expected IP:PORT (IPv6: [IP]:PORT)');
    return { ip, port: 0 };
  }
  return { ip, port: parsePort(param, value, port) };
}

/**
 * Validates a request. `flag` turns a parameter name into how the caller spells it ("--source" on
 * the CLI, "source" over HTTP). Throws ExplainInputError for a missing or malformed parameter and for
 * a source and destination of different families.
 */
export function parseExplainRequest(req: ExplainRequest, flag: (name: string) => string): Packet {
  const need = (name: keyof ExplainRequest): string => {
    const v = req[name];
    if (v === undefined || v === '') throw new ExplainInputError(flag(name), '', 'is required');
    return v;
  };
  const protoText = need('protocol');
  const protocol = protoText.toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
    throw new ExplainInputError(flag('protocol'), protoText, 'expected TCP, UDP or SCTP');
  const src = parseHostPort(flag('source'), need('source'), false);
  const dst = parseHostPort(flag('destination'), need('destination'), true);
  if (familyOfValid(src.ip) !== familyOfValid(dst.ip))
    throw new ExplainInputError(
      flag('source'),
      req.source!,
      `is ${familyOfValid(src.ip)} but the destination ${dst.ip} is ${familyOfValid(dst.ip)}`,
    );
  return { protocol, src: src.ip, srcPort: src.port, dst: dst.ip, dstPort: dst.port };
}

/** One family's inputs: the state, its options, the text the mode programs, the node's addresses. */
export interface ExplainContext {
  readonly mode: ProxyMode;
  readonly state: DesiredState;
  readonly options: FamilyOptions;
  /** What the mode programs for this family: `kube-proxy render` output, or a live read-back. */
  readonly rules: string;
  /** Addresses on the node's interfaces (addrtype LOCAL besides the node IPs). */
  readonly interfaceAddresses: readonly string[];
  /**
   * The same with their interfaces, when the rules were rendered with them (IPVS NodePorts answer on
   * every address but kube-ipvs0's; without them, on the node IPs, as `kube-proxy render` prints).
   */
  readonly localAddresses?: readonly LocalAddress[];
}

/**
 * The machine's addresses when this machine is the node (one of them is one of `nodeIPs`), else
 * undefined: explain run elsewhere (another host, another network namespace, `--hostname-override`)
 * cannot see the node's interfaces, and renders IPVS NodePorts on the node IPs as `render` does.
 */
export function nodeLocalAddresses(
  local: readonly LocalAddress[],
  nodeIPs: readonly string[],
): readonly LocalAddress[] | undefined {
  const node = new Set(nodeIPs.map((ip) => canonicalIP(ip) ?? ip));
  return local.some((a) => node.has(canonicalIP(a.address.split('%')[0] ?? '') ?? a.address))
    ? local
    : undefined;
}

/** The answer, in the stable JSON shape README documents. */
export interface ExplainJSON {
  readonly verdict: TraceResult['verdict'];
  readonly endpoints: readonly string[];
  readonly masquerade: boolean;
  readonly service: string | null;
  readonly frontend: Frontend | null;
  readonly steps: readonly { readonly table: string; readonly chain: string; readonly rule: string }[];
  readonly excluded: readonly Excluded[];
}

/** The full answer: the JSON part plus the reasons and the request, for the text form. */
export interface Explanation {
  readonly json: ExplainJSON;
  readonly packet: Packet;
  readonly source: SourceKind;
  readonly why: Why;
  readonly unreadable: readonly string[];
}

/** A prepared rule set: parse once, explain many packets (the daemon and the bench keep one). */
export interface Tracer {
  trace(p: Packet, env: TraceEnv): TraceResult;
}

/** Builds the tracer for `ctx.mode` over `ctx.rules`. Throws an Error naming the first line it cannot load. */
export function loadTracer(ctx: Pick<ExplainContext, 'mode' | 'state' | 'rules'>): Tracer {
  switch (ctx.mode) {
    case 'iptables':
      return new IPTablesTracer(tablesFromText(ctx.rules));
    case 'nftables':
      return new NftTracer(applyScript(undefined, ctx.rules), ctx.state.family === 'IPv6' ? 'ip6' : 'ip');
    case 'ipvs':
      return new IPVSTracer(ipvsModelFromText(ctx.rules));
    case 'userspace':
      return new UserspaceTracer(userspaceModelFromText(ctx.rules, ctx.state.family));
    default:
      throw new ExplainInputError(
        '--proxy-mode',
        ctx.mode,
        'explain supports iptables, nftables, ipvs and userspace',
      );
  }
}

/**
 * The node-local test of a mode: node IPs and interface addresses; loopback too but in nftables mode
 * (fib type local is not asked of it there); the kube-ipvs0 service addresses in IPVS mode.
 */
export function localTest(
  ctx: Pick<ExplainContext, 'mode' | 'state' | 'interfaceAddresses'>,
): (ip: string) => boolean {
  const set = new Set([...ctx.state.nodeIPs, ...ctx.interfaceAddresses]);
  // IPVS mode binds every service address to kube-ipvs0: they are the node's own addresses too.
  if (ctx.mode === 'ipvs') for (const ip of ipvsServiceAddresses(ctx.state)) set.add(ip);
  return ctx.mode === 'nftables' ? (ip) => set.has(ip) : (ip) => set.has(ip) || isLoopbackAddress(ip);
}

/** Where `src` comes from: the node (a local address), a local pod (per the detector), or outside. */
export function sourceKind(
  options: FamilyOptions,
  state: DesiredState,
  src: string,
  isLocal: (ip: string) => boolean,
): { kind: SourceKind; podInterface?: string } {
  if (isLocal(src)) return { kind: 'node' };
  const d = options.localDetector;
  const inCIDRs = (cidrs: readonly string[]): boolean =>
    cidrs.some((c) => {
      const p = parseCIDR(c);
      try {
        return p !== undefined && cidrContains(p, src);
      } catch {
        return false;
      }
    });
  switch (d.kind) {
    case 'cidr':
      return inCIDRs(d.cidrs) ? { kind: 'pod' } : { kind: 'outside' };
    // An interface detector cannot be asked about an address: a source in the node's pod CIDRs
    // is taken to arrive on the pod interface it names.
    case 'bridge':
      return inCIDRs(state.nodePodCIDRs) ? { kind: 'pod', podInterface: d.iface } : { kind: 'outside' };
    case 'prefix':
      return inCIDRs(state.nodePodCIDRs)
        ? { kind: 'pod', podInterface: `${d.prefix}0` }
        : { kind: 'outside' };
    case 'none':
      return inCIDRs(state.nodePodCIDRs) ? { kind: 'pod' } : { kind: 'outside' };
  }
}

/** Picks the state of `p`'s family, or throws ExplainInputError saying which families there are. */
export function stateForFamily<T extends { state: DesiredState }>(
  contexts: readonly T[],
  p: Packet,
  destinationFlag: string,
): T {
  const fam: IPFamily = familyOfValid(p.dst);
  const c = contexts.find((x) => x.state.family === fam);
  if (!c)
    throw new ExplainInputError(
      destinationFlag,
      p.dst.includes(':') ? `[${p.dst}]:${p.dstPort}` : `${p.dst}:${p.dstPort}`,
      `is ${fam} but the proxy's state has ${contexts.map((x) => x.state.family).join(' and ') || 'no family'} only`,
    );
  return c;
}

/**
 * Explains `p` with a prepared tracer (see loadTracer) for `ctx`. `why`, when given, is the desired
 * state's reasons already worked out for `ctx` and `p` (explain --live traces twice).
 */
export function explainWith(tracer: Tracer, ctx: ExplainContext, p: Packet, known?: Why): Explanation {
  const isLocal = localTest(ctx);
  const src = sourceKind(ctx.options, ctx.state, p.src, isLocal);
  const env: TraceEnv = {
    isLocal,
    source: src.kind,
    ...(src.podInterface !== undefined ? { podInterface: src.podInterface } : {}),
  };
  const r = tracer.trace(p, env);
  const why =
    known ?? explainFromState(ctx.mode, ctx.state, ctx.options, p, src.kind, isLocal, ctx.localAddresses);
  return {
    json: {
      verdict: r.verdict,
      endpoints: r.endpoints,
      masquerade: r.masquerade,
      service: why.service?.info.nameString ?? null,
      frontend: why.frontend ?? null,
      steps: r.steps,
      excluded: why.excluded,
    },
    packet: p,
    source: src.kind,
    why,
    unreadable: r.unreadable,
  };
}

/** Explains `p` for `ctx` (loads the rules each call; keep a tracer for many packets). */
export function explain(ctx: ExplainContext, p: Packet): Explanation {
  return explainWith(loadTracer(ctx), ctx, p);
}

const hostPort = (ip: string, port: number): string =>
  ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;

/**
 * The text form: the request, the why (one line per decision), one line per matched rule quoted as
 * `render` prints it (`table chain: rule`), the verdict, and each excluded endpoint with its reason.
 */
export function formatText(e: Explanation): string {
  const j = e.json;
  const p = e.packet;
  const lines: string[] = [];
  lines.push(
    `explain ${p.protocol} ${p.srcPort ? hostPort(p.src, p.srcPort) : p.src} -> ${hostPort(p.dst, p.dstPort)} (NEW connection from ${e.source === 'node' ? 'the node' : e.source === 'pod' ? 'a local pod' : 'outside'})`,
  );
  for (const r of e.why.reasons) lines.push(`why: ${r}`);
  for (const s of j.steps) lines.push(`step: ${s.table}: ${s.rule}`);
  const verdict =
    j.verdict === 'DNAT'
      ? `verdict: DNAT to ${j.endpoints.join(', ')}`
      : j.verdict === 'NONE'
        ? 'verdict: NONE (no kube-proxy rule touched the packet)'
        : `verdict: ${j.verdict}`;
  lines.push(`${verdict}; masquerade: ${j.masquerade ? 'yes' : 'no'}`);
  for (const x of j.excluded) lines.push(`excluded: ${x.endpoint}: ${x.reason}`);
  for (const u of e.unreadable) lines.push(`unreadable (treated as not matching): ${u}`);
  return `${lines.join('\n')}\n`;
}

/** The JSON form: exactly the documented keys, in their documented order, one line. */
export function formatJSON(e: Explanation): string {
  const j = e.json;
  return `${JSON.stringify({
    verdict: j.verdict,
    endpoints: j.endpoints,
    masquerade: j.masquerade,
    service: j.service,
    frontend: j.frontend,
    steps: j.steps.map((s) => ({ table: s.table, chain: s.chain, rule: s.rule })),
    excluded: j.excluded.map((x) => ({ endpoint: x.endpoint, reason: x.reason })),
  })}\n`;
}
