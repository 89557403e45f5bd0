/**
 * Userspace mode portals (upstream pkg/proxy/userspace, pre-1.26): instead of binding each service
 * address, the relay listens on one local "proxy port" per service port and traffic policy set, and
 * NAT rules in chains of our own bring service traffic there:
 * - nat KUBE-PORTALS-CONTAINER (from PREROUTING): traffic from pods/outside to a cluster IP, external
 *   IP or LB IP is REDIRECTed to the proxy port;
 * - nat KUBE-PORTALS-HOST (from OUTPUT): the node's own traffic is DNATed to node IP:proxy port;
 * - nat KUBE-NODEPORT-CONTAINER / KUBE-NODEPORT-HOST: the same for NodePorts on local addresses;
 * - filter KUBE-NODEPORT-NON-LOCAL (from INPUT): accepts traffic to NodePort proxy ports.
 * Pure: no I/O. Every value placed in a rule is validated, so the text cannot carry an injected rule.
 */
import type { DesiredState } from '../../proxy/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { IPFamily } from '../../model/types.js';
import { ipVersion, joinHostPort } from '../../net/ip.js';
import { planListeners, type ListenerKind, type ListenerPlan, type RelayProtocol } from './render.js';

/** The chains portal mode owns (and removes on shutdown and --cleanup). */
export const PORTAL_CHAINS = {
  containerPortal: 'KUBE-PORTALS-CONTAINER',
  hostPortal: 'KUBE-PORTALS-HOST',
  containerNodePort: 'KUBE-NODEPORT-CONTAINER',
  hostNodePort: 'KUBE-NODEPORT-HOST',
  nonLocalNodePort: 'KUBE-NODEPORT-NON-LOCAL',
} as const;

/** nat chains of portal mode, in the order they are declared. */
export const PORTAL_NAT_CHAINS: readonly string[] = [
  PORTAL_CHAINS.containerPortal,
  PORTAL_CHAINS.hostPortal,
  PORTAL_CHAINS.containerNodePort,
  PORTAL_CHAINS.hostNodePort,
];
/** filter chains of portal mode. */
export const PORTAL_FILTER_CHAINS: readonly string[] = [PORTAL_CHAINS.nonLocalNodePort];

/** A rule in a built-in chain that jumps to one of our chains. */
export interface PortalJump {
  readonly table: 'nat' | 'filter';
  readonly chain: 'PREROUTING' | 'OUTPUT' | 'INPUT';
  /** Insert at the top (portals must come before NodePorts) or append. */
  readonly position: 'prepend' | 'append';
  /** The rule's arguments after `-A CHAIN` (as given to iptables -C/-I/-D). */
  readonly args: readonly string[];
}

const PORTAL_COMMENT = 'handle ClusterIPs; NOTE: this must be before the NodePort rules';
const NODEPORT_COMMENT = 'handle service NodePorts; NOTE: this must be after the portal rules';
const NONLOCAL_COMMENT = 'Ensure that non-local NodePort traffic can flow';

/** The jumps portal mode ensures in the built-in chains (as upstream's iptablesInit). */
export const PORTAL_JUMPS: readonly PortalJump[] = [
  {
    table: 'nat',
    chain: 'PREROUTING',
    position: 'prepend',
    args: ['-m', 'comment', '--comment', PORTAL_COMMENT, '-j', PORTAL_CHAINS.containerPortal],
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    position: 'prepend',
    args: ['-m', 'comment', '--comment', PORTAL_COMMENT, '-j', PORTAL_CHAINS.hostPortal],
  },
  {
    table: 'nat',
    chain: 'PREROUTING',
    position: 'append',
    args: [
      '-m',
      'comment',
      '--comment',
      NODEPORT_COMMENT,
      '-m',
      'addrtype',
      '--dst-type',
      'LOCAL',
      '-j',
      PORTAL_CHAINS.containerNodePort,
    ],
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    position: 'append',
    args: [
      '-m',
      'comment',
      '--comment',
      NODEPORT_COMMENT,
      '-m',
      'addrtype',
      '--dst-type',
      'LOCAL',
      '-j',
      PORTAL_CHAINS.hostNodePort,
    ],
  },
  {
    table: 'filter',
    chain: 'INPUT',
    position: 'prepend',
    args: ['-m', 'comment', '--comment', NONLOCAL_COMMENT, '-j', PORTAL_CHAINS.nonLocalNodePort],
  },
];

/** One address:port that a portal rule sends to a relay socket. */
export interface Portal {
  /** The relay socket (PortalPlan.sockets[].id) that receives this traffic. */
  readonly socketId: string;
  readonly serviceName: string;
  readonly protocol: RelayProtocol;
  readonly kind: ListenerKind;
  /** The matched destination; '' for a NodePort on any local address. */
  readonly address: string;
  readonly port: number;
}

/** What portal mode needs for one family: relay sockets (listen port 0 = to be chosen) and the portals to them. */
export interface PortalPlan {
  /**
   * One socket per service port and policy set ("<key>|internal" serves the cluster IP, "|external"
   * the rest). `listen` is the wildcard address and port 0; the proxier picks the port. Sorted by id.
   */
  readonly sockets: readonly ListenerPlan[];
  /** Sorted by service port, kind, address (the order of planListeners). */
  readonly portals: readonly Portal[];
}

/** The wildcard address portal sockets listen on: REDIRECT rewrites to the incoming interface's address. */
export function wildcardAddress(family: IPFamily): string {
  return family === 'IPv6' ? '::' : '0.0.0.0';
}

/** "TCP/portal/<balancerKey>": the id of the relay socket that serves one policy set of one service port. */
export function portalSocketId(protocol: RelayProtocol, balancerKey: string): string {
  return `${protocol}/portal/${balancerKey}`;
}

/**
 * Groups the listener plan of `state` into portal sockets and portals. With nodePortAddresses
 * unset (match all), a NodePort gets one portal for every local address ('' = `addrtype LOCAL`);
 * otherwise one per configured address. Sockets listen on `listenAddress` (default the wildcard,
 * which REDIRECT needs). Deterministic for equal input.
 */
export function planPortals(
  state: DesiredState,
  opts: FamilyOptions,
  listenAddress: string = wildcardAddress(state.family),
): PortalPlan {
  const sockets = new Map<string, ListenerPlan>();
  const portals: Portal[] = [];
  const seenAnyLocal = new Set<string>();
  for (const p of planListeners(state, opts)) {
    const socketId = portalSocketId(p.protocol, p.balancerKey);
    if (!sockets.has(socketId)) {
      sockets.set(socketId, { ...p, id: socketId, listen: { address: listenAddress, port: 0 } });
    }
    let address = p.service.address;
    if (p.kind === 'nodePort' && opts.nodePortAddresses.matchAll) {
      const k = `${p.protocol}/${p.service.port}`;
      if (seenAnyLocal.has(k)) continue;
      seenAnyLocal.add(k);
      address = '';
    }
    portals.push({
      socketId,
      serviceName: p.serviceName,
      protocol: p.protocol,
      kind: p.kind,
      address,
      port: p.service.port,
    });
  }
  return { sockets: [...sockets.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)), portals };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$/;

function checkPort(what: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new RangeError(`portal rules: ${what} must be an integer 1-65535, got ${String(port)}`);
  return port;
}

function checkIP(what: string, ip: string, family: IPFamily): string {
  const v = ipVersion(ip);
  if (v !== (family === 'IPv6' ? 6 : 4))
    throw new RangeError(`portal rules: ${what} must be an ${family} address, got ${JSON.stringify(ip)}`);
  return ip;
}

function checkName(name: string): string {
  if (!NAME_RE.test(name))
    throw new RangeError(
      `portal rules: service name ${JSON.stringify(name)} has characters not allowed in a rule comment`,
    );
  return name;
}

/** Input of {@link renderPortalRules} for one family. */
export interface PortalRulesInput {
  readonly family: IPFamily;
  readonly portals: readonly Portal[];
  /** The relay's port for each socket id; portals of sockets without one are left out (not listening). */
  readonly proxyPorts: ReadonlyMap<string, number | string>;
  /** Where the node's own traffic is DNATed (the primary node IP; loopback when there is none). */
  readonly hostIP: string;
}

/**
 * Full iptables-restore text (for `--noflush`) of our chains: declaring a chain empties it, so every
 * apply rewrites our chains and touches nothing else. One rule per portal in the container chain and
 * one in the host chain; NodePorts also get an ACCEPT of their proxy port in the filter chain.
 * A proxy port given as a string is a display placeholder (render without a daemon) and must look
 * like `<...>`. Throws RangeError naming the value when an address, port or name is not valid.
 */
export function renderPortalRules(input: PortalRulesInput): string {
  const { family } = input;
  const hostIP = checkIP('host IP', input.hostIP, family);
  const plen = family === 'IPv6' ? 128 : 32;
  const nat: Record<string, string[]> = {};
  for (const c of PORTAL_NAT_CHAINS) nat[c] = [];
  const filter: string[] = [];
  for (const p of input.portals) {
    const raw = input.proxyPorts.get(p.socketId);
    if (raw === undefined) continue;
    if (typeof raw === 'string' && !/^<[a-z0-9-]{1,20}>$/.test(raw))
      throw new RangeError(
        `portal rules: proxy port placeholder ${JSON.stringify(raw)} must look like <proxy-port-N>`,
      );
    const proxyPort = typeof raw === 'string' ? raw : String(checkPort(`proxy port of ${p.socketId}`, raw));
    const proto = p.protocol === 'UDP' ? 'udp' : 'tcp';
    const head = `-m comment --comment "${checkName(p.serviceName)}" -p ${proto} -m ${proto}`;
    const port = checkPort(`port of ${p.serviceName}`, p.port);
    const dst =
      p.address === '' ? '' : ` -d ${checkIP(`address of ${p.serviceName}`, p.address, family)}/${plen}`;
    if (p.address === '' && p.kind !== 'nodePort')
      throw new RangeError(`portal rules: ${p.serviceName} (${p.kind}) has no address`);
    const redirect = `-j REDIRECT --to-ports ${proxyPort}`;
    const dnat = `-j DNAT --to-destination ${family === 'IPv6' ? `[${hostIP}]` : hostIP}:${proxyPort}`;
    const [container, host] =
      p.kind === 'nodePort'
        ? [PORTAL_CHAINS.containerNodePort, PORTAL_CHAINS.hostNodePort]
        : [PORTAL_CHAINS.containerPortal, PORTAL_CHAINS.hostPortal];
    nat[container]!.push(`-A ${container} ${head}${dst} --dport ${port} ${redirect}`);
    nat[host]!.push(`-A ${host} ${head}${dst} --dport ${port} ${dnat}`);
    if (p.kind === 'nodePort') {
      const accept = `-A ${PORTAL_CHAINS.nonLocalNodePort} ${head} --dport ${proxyPort} -j ACCEPT`;
      if (!filter.includes(accept)) filter.push(accept);
    }
  }
  const lines: string[] = ['*nat'];
  for (const c of PORTAL_NAT_CHAINS) lines.push(`:${c} - [0:0]`);
  for (const c of PORTAL_NAT_CHAINS) lines.push(...nat[c]!);
  lines.push('COMMIT', '*filter');
  for (const c of PORTAL_FILTER_CHAINS) lines.push(`:${c} - [0:0]`);
  lines.push(...filter, 'COMMIT');
  return lines.join('\n') + '\n';
}

/** Quotes one argument the way iptables-save prints it (for displaying jump rules). */
function quoteArg(a: string): string {
  return /^[A-Za-z0-9._:/,=-]+$/.test(a) ? a : `"${a}"`;
}

/** A jump as an iptables-save line, e.g. `-I PREROUTING -m comment --comment "..." -j KUBE-PORTALS-CONTAINER`. */
export function jumpRuleText(j: PortalJump): string {
  return `${j.position === 'prepend' ? '-I' : '-A'} ${j.chain} ${j.args.map(quoteArg).join(' ')}`;
}

/**
 * The portal section of `kube-proxy render --proxy-mode userspace` for one family: a label, the jump
 * rules, the socket-to-proxy-port table and the restore text. Proxy ports come from `portRange`
 * (assigned per protocol in socket order, as the daemon does on a fresh start when the ports are free) or, without a range, are shown as
 * placeholders `<proxy-port-N>` because the daemon binds ephemeral ports.
 */
export function renderPortalSection(
  state: DesiredState,
  opts: FamilyOptions,
  portRange?: { min: number; max: number },
): string {
  const plan = planPortals(state, opts);
  const ports = new Map<string, number | string>();
  const perProtocol = new Map<string, number>();
  plan.sockets.forEach((s, i) => {
    const n = perProtocol.get(s.protocol) ?? 0;
    perProtocol.set(s.protocol, n + 1);
    if (portRange) {
      if (portRange.min + n <= portRange.max) ports.set(s.id, portRange.min + n);
    } else ports.set(s.id, `<proxy-port-${i + 1}>`);
  });
  const hostIP = state.nodeIPs[0] ?? (state.family === 'IPv6' ? '::1' : '127.0.0.1');
  const lines: string[] = [
    `# userspace portals ${state.family} (programmed instead of direct listening when the daemon runs as root with iptables)`,
    portRange
      ? `# proxy ports from --proxy-port-range ${portRange.min}-${portRange.max}, assigned per protocol in socket order (as on a fresh start)`
      : '# proxy ports are ephemeral (no --proxy-port-range): <proxy-port-N> stands for the port the daemon binds',
    '# jumps ensured in the built-in chains:',
    ...PORTAL_JUMPS.map((j) => `#   -t ${j.table} ${jumpRuleText(j)}`),
    '# sockets:',
    ...plan.sockets.map((s) => {
      const p = ports.get(s.id);
      return `#   ${s.id} listen ${p === undefined ? 'none (port range exhausted)' : typeof p === 'string' ? `${s.listen.address}:${p}` : joinHostPort(s.listen.address, p)}`;
    }),
  ];
  return (
    lines.join('\n') +
    '\n' +
    renderPortalRules({ family: state.family, portals: plan.portals, proxyPorts: ports, hostIP })
  );
}
