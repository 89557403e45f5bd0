/**
 * The userspace packet tracer: reads the listener table `kube-proxy render --proxy-mode userspace`
 * prints (one row per socket the relay owns: service port, protocol, listen address, kind,
 * endpoints, affinity) and answers which listener takes a NEW connection and which endpoints its
 * balancer can pick, in rotation order. The relay is a proxy: it opens its own connection to the
 * endpoint, so the backend always sees a node address. With no usable endpoint the relay resets a
 * TCP connection (REJECT) and drops a UDP datagram (DROP). ClientIP affinity needs an entry from an
 * earlier connection, so a NEW one can go to any endpoint. Portal mode (iptables REDIRECT to a proxy
 * port) brings the same traffic to the same balancer, so the listener table answers for both. Pure.
 */
import type { IPFamily } from '../model/types.js';
import type { Packet, TraceResult } from './packet.js';

/** One row of the listener table. */
export interface UserspaceListener {
  /** The row as `render` prints it, its cells two spaces apart. */
  readonly row: string;
  readonly service: string;
  readonly protocol: string;
  /** `ip:port` / `[ip6]:port`. */
  readonly listen: string;
  readonly kind: string;
  /** In the balancer's rotation order. */
  readonly endpoints: readonly string[];
  /** "reject" / "drop" when the row has no endpoints. */
  readonly none: string | undefined;
  readonly affinity: string;
}

/** One family's listeners, by `PROTO listen`. */
export interface UserspaceModel {
  readonly listeners: ReadonlyMap<string, UserspaceListener>;
}

/**
 * Parses the listener table of `family` from render text (other families' sections and the portal
 * comments are skipped). Throws an Error naming a row it cannot read.
 */
export function userspaceModelFromText(text: string, family: IPFamily): UserspaceModel {
  const listeners = new Map<string, UserspaceListener>();
  let mine = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('# userspace ')) {
      mine = line === `# userspace ${family}`;
      continue;
    }
    if (!mine || line === '' || line.startsWith('#') || line.startsWith('SERVICE-PORT ')) continue;
    // Columns are padded with at least two spaces; values hold single spaces at most.
    const cells = line.split(/ {2,}/);
    if (cells.length !== 6)
      throw new Error(`userspace render: cannot read listener row ${JSON.stringify(line)}`);
    const [service, protocol, listen, kind, eps, affinity] = cells as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const none = /^none \((\w+)\)$/.exec(eps);
    listeners.set(`${protocol} ${listen}`, {
      // The columns' padding depends on the other rows: quote the row with two spaces between cells.
      row: cells.join('  '),
      service,
      protocol,
      listen,
      kind,
      endpoints: none ? [] : eps.split(','),
      none: none?.[1],
      affinity,
    });
  }
  return { listeners };
}

/** A loaded listener table: trace many packets. */
export class UserspaceTracer {
  constructor(readonly model: UserspaceModel) {}

  /** Traces `p`: the listener on (protocol, destination) and its balancer's candidates, or NONE. */
  trace(p: Packet): TraceResult {
    const dst = p.dst.includes(':') ? `[${p.dst}]:${p.dstPort}` : `${p.dst}:${p.dstPort}`;
    const l = this.model.listeners.get(`${p.protocol} ${dst}`);
    if (!l) return { verdict: 'NONE', endpoints: [], masquerade: false, steps: [], unreadable: [] };
    const steps = [{ table: 'userspace', chain: 'listener', rule: l.row }];
    if (l.endpoints.length === 0)
      return {
        verdict: p.protocol === 'TCP' ? 'REJECT' : 'DROP',
        endpoints: [],
        masquerade: false,
        steps,
        unreadable: [],
      };
    return { verdict: 'DNAT', endpoints: [...l.endpoints], masquerade: true, steps, unreadable: [] };
  }
}
