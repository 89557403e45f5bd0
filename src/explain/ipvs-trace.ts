/**
 * The IPVS packet tracer: reads what `kube-proxy render --proxy-mode ipvs` prints for one family
 * (the kube-ipvs0 addresses, the ipset members, the ipvsadm virtual and real servers and the
 * iptables glue) and traces one NEW connection through it. The glue runs in the iptables tracer
 * (iptables-trace.ts), extended with `-m set --match-set` evaluated against the rendered members, the
 * `-m ipvs` match and an IPVS stage where the kernel's ip_vs hooks sit. Semantics, as upstream's:
 * - every address bound to kube-ipvs0 is local (addrtype LOCAL), so VIP traffic takes the INPUT path;
 * - a scheduler is a fork: a virtual server lists every real server it can reach, in ipvsadm order;
 * - persistence (ClientIP affinity) needs an entry from an earlier connection: never for a NEW one;
 * - a virtual server without real servers answers ICMP port unreachable (REJECT);
 * - the jumps from the built-in chains (which `render` does not print; the proxier ensures them at
 *   the head of each chain) are added as the proxier inserts them.
 * Pure.
 */
import { canonicalIP, cidrContains, parseCIDR, type CIDR } from '../net/ip.js';
import { JUMPS, DUMMY_DEVICE } from '../backends/ipvs/names.js';
import { IPTablesTables, tablesFromText } from './iptables-tables.js';
import {
  IPTablesTracer,
  ruleWords,
  type IPTablesExtensions,
  type IPVSService,
  type SetProbe,
} from './iptables-trace.js';
import type { Packet, TraceEnv, TraceResult } from './packet.js';

/** One ipset as `ipset restore` input creates and fills it. */
export interface IPSetModel {
  readonly name: string;
  readonly type: string;
  readonly members: Set<string>;
}

/** What one family's IPVS render text programs. */
export interface IPVSModel {
  /** Addresses bound to kube-ipvs0 (canonical). */
  readonly addresses: ReadonlySet<string>;
  readonly sets: ReadonlyMap<string, IPSetModel>;
  /** By `proto ip:port` (lower-case protocol, canonical address, IPv6 in brackets). */
  readonly services: ReadonlyMap<string, IPVSService>;
  readonly tables: IPTablesTables;
}

const hostPort = (ip: string, port: number): string =>
  ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;

/** `ip:port` / `[ip6]:port` as ipvsadm writes it, canonical; undefined when malformed. */
function splitHostPort(text: string): { ip: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const ip = m ? canonicalIP(m[1]!) : undefined;
  return m && ip !== undefined ? { ip, port: Number(m[2]) } : undefined;
}

const PROTO_FLAGS: Readonly<Record<string, string>> = {
  '-t': 'tcp',
  '--tcp-service': 'tcp',
  '-u': 'udp',
  '--udp-service': 'udp',
  '--sctp-service': 'sctp',
};

/**
 * Parses the render text of one family (sections `# link`, `# ipset`, `# ipvs`, `# iptables`).
 * Throws an Error naming the first line it cannot read.
 */
export function ipvsModelFromText(text: string): IPVSModel {
  const addresses = new Set<string>();
  const sets = new Map<string, IPSetModel>();
  const services = new Map<string, IPVSService & { realServers: IPVSService['realServers'][number][] }>();
  const iptables: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# ')) {
      const s = line.slice(2);
      if (['link', 'sysctl', 'ipset', 'ipvs', 'iptables'].includes(s)) section = s;
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const fail = (): never => {
      throw new Error(`ipvs render: cannot read ${section} line ${JSON.stringify(line)}`);
    };
    switch (section) {
      case 'link': {
        const m = new RegExp(`^address add (\\S+?)(?:/\\d+)? dev ${DUMMY_DEVICE}$`).exec(line);
        if (m) addresses.add(canonicalIP(m[1]!) ?? fail());
        break;
      }
      case 'ipset': {
        const w = line.split(' ');
        if (w[0] === 'create' && w.length >= 3)
          sets.set(w[1]!, { name: w[1]!, type: w[2]!, members: new Set() });
        else if (w[0] === 'add' && w.length === 3) (sets.get(w[1]!) ?? fail()).members.add(w[2]!);
        else fail();
        break;
      }
      case 'ipvs': {
        const w = ruleWords(line);
        const proto = PROTO_FLAGS[w[1] ?? ''];
        const vip = splitHostPort(w[2] ?? '');
        // fwmark services (-f) are not ours: they are left out, so nothing reaches them.
        if (!proto || !vip) {
          if (w[1] === '-f' || w[1] === '--fwmark-service') break;
          fail();
        }
        const key = `${proto} ${hostPort(vip!.ip, vip!.port)}`;
        if (w[0] === '-A') {
          services.set(key, {
            key,
            rule: line,
            vaddr: vip!.ip,
            vproto: proto!,
            vport: vip!.port,
            realServers: [],
          });
        } else if (w[0] === '-a') {
          const r = w.indexOf('-r');
          const rs = splitHostPort(w[r + 1] ?? '');
          const vs = services.get(key);
          if (r < 0 || !rs || !vs) fail();
          vs!.realServers.push({ ip: rs!.ip, port: rs!.port, rule: line });
        } else fail();
        break;
      }
      case 'iptables':
        iptables.push(line);
        break;
      default:
        break;
    }
  }
  const tables = tablesFromText(`${iptables.join('\n')}\n`);
  // The proxier prepends each jump in turn, so the last one ends up first.
  for (const j of JUMPS)
    tables.table(j.table).get(j.from)!.unshift(`-m comment --comment "${j.comment}" -j ${j.to}`);
  return { addresses, sets, services, tables };
}

function cidrOf(text: string): CIDR | undefined {
  return parseCIDR(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
}

/**
 * The matcher of `--match-set NAME FLAGS` over `set`: each dimension of the set type takes the
 * packet's source or destination (address, or `proto:port`), as ipset does. Undefined for a type or
 * flag count it does not know.
 */
export function setMatcher(
  set: IPSetModel,
  flags: readonly string[],
): ((p: SetProbe) => boolean) | undefined {
  const [kind, dimText] = set.type.split(':');
  const dims = (dimText ?? '').split(',');
  if (flags.length !== dims.length || flags.some((f) => f !== 'src' && f !== 'dst')) return undefined;
  const addr = (p: SetProbe, i: number): string => (flags[i] === 'src' ? p.src : p.dst);
  const port = (p: SetProbe, i: number): number => (flags[i] === 'src' ? p.srcPort : p.dstPort);
  if (kind === 'bitmap' && set.type === 'bitmap:port') return (p) => set.members.has(String(port(p, 0)));
  if (kind !== 'hash') return undefined;
  const key = (p: SetProbe, n: number): string =>
    dims
      .slice(0, n)
      .map((d, i) => (d === 'port' ? `${p.protocol.toLowerCase()}:${port(p, i)}` : addr(p, i)))
      .join(',');
  if (dims.every((d) => d === 'ip' || d === 'port')) return (p) => set.members.has(key(p, dims.length));
  if (dims[dims.length - 1] !== 'net' || dims.slice(0, -1).some((d) => d === 'net')) return undefined;
  // hash:…,net: the leading dimensions exactly, the last one by prefix.
  const nets = new Map<string, CIDR[]>();
  for (const m of set.members) {
    const i = m.lastIndexOf(',');
    const c = cidrOf(m.slice(i + 1));
    if (!c) continue;
    const head = m.slice(0, i);
    const list = nets.get(head) ?? [];
    list.push(c);
    nets.set(head, list);
  }
  const last = dims.length - 1;
  return (p) =>
    (nets.get(key(p, last)) ?? []).some((c) => {
      try {
        return cidrContains(c, addr(p, last));
      } catch {
        return false;
      }
    });
}

/** A loaded IPVS rule set: parse once, trace many packets. */
export class IPVSTracer {
  private readonly inner: IPTablesTracer;

  constructor(readonly model: IPVSModel) {
    const ext: IPTablesExtensions = {
      matchSet: (name, flags) => {
        const set = model.sets.get(name);
        return set ? setMatcher(set, flags) : undefined;
      },
      ipvs: (protocol, dst, dstPort) =>
        model.services.get(`${protocol.toLowerCase()} ${hostPort(dst, dstPort)}`),
      localAddresses: model.addresses,
    };
    this.inner = new IPTablesTracer(model.tables, ext);
  }

  /** Traces `p` (see the file comment). */
  trace(p: Packet, env: TraceEnv): TraceResult {
    return this.inner.trace(p, env);
  }
}
