/**
 * Userspace mode data plane: TCP and UDP relays (upstream pkg/proxy/userspace ProxySocket). The thin
 * I/O edge over the pure planners (render.ts, portal-render.ts) and endpoint chooser (balancer.ts).
 *
 * Two ways to reach the relay, decided once when the proxier is created (and logged):
 * - portal mode (root and iptables): one socket per service port and policy set on a proxy port
 *   (ephemeral or from --proxy-port-range), and NAT rules in our own chains send the service
 *   addresses there (portal.ts); the rules are removed on close() and by --cleanup;
 * - direct mode (otherwise): listeners on the service addresses themselves (those that are local).
 *
 * - TCP: tcp-relay.ts (accept paused, choose, connect with retry over endpoints, splice);
 * - UDP: udp-relay.ts (per-client sessions, idle expiry, pruning);
 * - portal proxy ports from --proxy-port-range: port-allocator.ts.
 * - sync() diffs the plan against the open sockets; removed endpoints stop getting new connections,
 *   open TCP connections to them finish on their own; removed listeners stop accepting.
 */
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import type { BackendDeps, Proxier, SyncOutcome } from '../backend.js';
import type { DesiredState, Endpoint } from '../../proxy/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyMetrics } from '../../observability/metrics.js';
import type { EndpointHealth } from '../../proxy/health-check.js';

const NO_UNHEALTHY: ReadonlySet<string> = new Set();
import { joinHostPort } from '../../net/ip.js';
import { Balancer, type BalancerAlgorithm } from './balancer.js';
import { planListeners, skippedPorts, type ListenerPlan } from './render.js';
import { planPortals, renderPortalRules, type Portal } from './portal-render.js';
import {
  applyPortalRules,
  ensurePortalJumps,
  removePortals,
  type PortalDecision,
  type PortalProbe,
} from './portal.js';
import { KpError } from '../../errors.js';
import { PortAllocator, type PortRange } from './port-allocator.js';
import { TcpRelay } from './tcp-relay.js';
import { UdpRelay, type UdpSession } from './udp-relay.js';
import { errCode, newStats, type RelayContext, type RelayStats } from './relay-stats.js';

export type { RelayStats } from './relay-stats.js';

/** Tunables of the relay beyond FamilyOptions. */
export interface UserspaceRelayOptions {
  /** Endpoint choice for new connections; default round-robin. */
  readonly algorithm?: BalancerAlgorithm;
  /** Per-attempt TCP connect timeout to an endpoint, ms; default 2000. */
  readonly connectTimeoutMs?: number;
  /** UDP session idle timeout, ms; default FamilyOptions.udpIdleTimeoutMs (upstream 250 ms). */
  readonly udpIdleTimeoutMs?: number;
  /** Socket buffer high-water mark in bytes for both legs; default node's. */
  readonly highWaterMark?: number;
  /** Read buffer of each connection's endpoint socket, bytes; default 16 KiB (tcp-relay.ts). */
  readonly readBufferBytes?: number;
  /** 'auto' (default): portals when root with iptables, else direct listening; 'off': always direct. */
  readonly portals?: 'auto' | 'off';
  /** Proxy ports for portal sockets (--proxy-port-range); unset = ephemeral ports. */
  readonly portRange?: PortRange;
  /** Portal sockets' listen address; default the wildcard (REDIRECT delivers to the incoming interface's address). */
  readonly portalListenAddress?: string;
  /** Overrides for the portal decision and the iptables commands (tests). */
  readonly probe?: PortalProbe;
}

/** `port` is the port actually bound (differs from plan.listen.port for portal sockets). */
type OpenListener =
  | { kind: 'TCP'; plan: ListenerPlan; port: number; server: net.Server }
  | {
      kind: 'UDP';
      plan: ListenerPlan;
      port: number;
      socket: dgram.Socket;
      sessions: Map<string, UdpSession>;
    };

/** The userspace proxier of one IP family. sync() is not reentrant (the runner never overlaps calls). */
export class UserspaceProxier implements Proxier {
  private readonly logger: Logger;
  private readonly options: FamilyOptions;
  private readonly algorithm: BalancerAlgorithm;
  private readonly open = new Map<string, OpenListener>();
  private readonly balancers = new Map<string, Balancer<Endpoint>>();
  /** Bind failures already logged: id -> error code (logged again only if the code changes). */
  private readonly bindFailures = new Map<string, string>();
  private readonly skippedLogged = new Set<string>();
  private readonly counters = newStats();
  private closed = false;
  private readonly decision: PortalDecision;
  /** Portal sockets' ports from --proxy-port-range; undefined = ephemeral ports. */
  private readonly ports: PortAllocator | undefined;
  private readonly tcp: TcpRelay;
  private readonly udp: UdpRelay;
  private readonly portalListenAddress: string | undefined;
  private readonly probe: PortalProbe;
  /** Portal mode: the rules text last applied, whether the jumps were ensured, portals logged as reachable. */
  private lastRules = '';
  private jumpsEnsured = false;
  private readonly portalsLogged = new Map<string, Portal>();
  private portals: readonly Portal[] = [];
  private summarized = false;
  private readonly metrics: ProxyMetrics | undefined;
  /** --ipvs-health-check: probes the TCP endpoints; new connections skip the failing ones. */
  private readonly health: EndpointHealth | undefined;
  /** Consecutive syncs with a listener that could not bind; the retry delay doubles with each. */

  /** `decision` defaults to direct mode; createUserspaceBackend decides with decidePortals(). */
  constructor(
    deps: BackendDeps,
    opts: UserspaceRelayOptions = {},
    decision: PortalDecision = { mode: 'direct', reason: 'not requested' },
  ) {
    this.logger = deps.logger.child({ mode: 'userspace', family: deps.options.family });
    this.options = deps.options;
    this.metrics = deps.metrics;
    this.algorithm = opts.algorithm ?? 'round-robin';
    this.decision = decision;
    this.ports = opts.portRange ? new PortAllocator(opts.portRange) : undefined;
    this.health = deps.health;
    const ctx: RelayContext = {
      logger: this.logger,
      counters: this.counters,
      balancer: (key) => this.balancers.get(key),
      unhealthy: () => this.health?.unhealthy() ?? NO_UNHEALTHY,
    };
    this.tcp = new TcpRelay(ctx, {
      connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
      highWaterMark: opts.highWaterMark,
      readBufferBytes: opts.readBufferBytes,
    });
    this.udp = new UdpRelay(
      ctx,
      opts.udpIdleTimeoutMs ?? (deps.options.udpIdleTimeoutMs > 0 ? deps.options.udpIdleTimeoutMs : 250),
    );
    this.portalListenAddress = opts.portalListenAddress;
    this.probe = opts.probe ?? {};
  }

  /** 'portal' or 'direct' (fixed at creation). */
  get mode(): PortalDecision['mode'] {
    return this.decision.mode;
  }

  /** Portal mode: the relay port serving each portal socket id. */
  proxyPorts(): Map<string, number> {
    return new Map([...this.open].map(([id, l]) => [id, l.port]));
  }

  /** A snapshot of the counters. */
  stats(): RelayStats {
    return { ...this.counters, perEndpoint: new Map(this.counters.perEndpoint) };
  }

  /** Ids ("TCP/127.0.0.10:8080") of the sockets currently listening, sorted. */
  listening(): string[] {
    return [...this.open.keys()].sort();
  }

  /** The balancer for a plan's balancerKey (tests inspect affinity and counts). */
  balancer(balancerKey: string): Balancer<Endpoint> | undefined {
    return this.balancers.get(balancerKey);
  }

  /**
   * Opens, updates and closes listeners to match `state`. A listener that cannot bind (EADDRINUSE,
   * EACCES, an exhausted port range) does not stop the others: every other listener is served, then
   * sync() throws KP_ERR_LISTEN so that the sync counts as failed: the sync loop retries it with
   * backoff (1 s, doubling, at most the sync period; SyncLoopOptions.retryBackoffInitialMs). EADDRNOTAVAIL (the
   * address is not on this machine) is not a failure: address changes bring their own sync.
   */
  // Every sync compares the whole plan with the open sockets; `full` only forces the portal rules
  // and jumps to be rewritten.
  async sync(state: DesiredState, full = false): Promise<SyncOutcome> {
    if (this.closed) throw new KpError('KP_ERR_CLOSED', 'userspace proxier: sync after close');
    for (const s of skippedPorts(state)) {
      if (this.skippedLogged.has(s.servicePortKey)) continue;
      this.skippedLogged.add(s.servicePortKey);
      this.logger.warn({ service: s.serviceName }, `not relaying ${s.serviceName}: ${s.reason}`);
    }
    let plans: readonly ListenerPlan[];
    if (this.decision.mode === 'portal') {
      const pp = planPortals(state, this.options, this.portalListenAddress);
      plans = pp.sockets;
      this.portals = pp.portals;
    } else {
      plans = planListeners(state, this.options);
    }
    this.updateBalancers(plans);

    const wanted = new Map(plans.map((p) => [p.id, p]));
    for (const [id, l] of this.open) {
      if (!wanted.has(id)) void this.closeListener(l, 'service port removed');
    }
    for (const id of this.bindFailures.keys()) if (!wanted.has(id)) this.bindFailures.delete(id);

    const opening: Promise<string | undefined>[] = [];
    for (const plan of plans) {
      const cur = this.open.get(plan.id);
      if (cur) {
        const changed =
          cur.plan.servicePortKey !== plan.servicePortKey ||
          cur.plan.endpoints.length !== plan.endpoints.length;
        cur.plan = plan;
        if (cur.kind === 'UDP') this.udp.prune(cur);
        if (changed) this.logReachable(plan, 'now');
      } else {
        opening.push(this.openListener(plan));
      }
    }
    await Promise.all(opening);
    if (this.decision.mode === 'portal') await this.syncPortals(state, full);
    if (!this.summarized) {
      this.summarized = true;
      this.logSummary();
    }
    const failed = [...this.bindFailures].filter(([, code]) => code !== 'EADDRNOTAVAIL');
    if (failed.length === 0) return {};
    throw new KpError(
      'KP_ERR_LISTEN',
      `userspace: cannot listen on ${failed.length} service address(es): ${failed
        .slice(0, 5)
        .map(([id, code]) => `${id} (${code})`)
        .join(', ')}${failed.length > 5 ? ', ...' : ''}; retrying`,
    );
  }

  private async syncPortals(state: DesiredState, full: boolean): Promise<void> {
    if (this.decision.mode !== 'portal') return;
    const tools = this.decision.tools;
    const ports = this.proxyPorts();
    const hostIP = state.nodeIPs[0] ?? (state.family === 'IPv6' ? '::1' : '127.0.0.1');
    const text = renderPortalRules({
      family: state.family,
      portals: this.portals,
      proxyPorts: ports,
      hostIP,
    });
    if (full || text !== this.lastRules) {
      this.lastRules = '';
      await applyPortalRules(tools, text, this.probe.exec);
      this.lastRules = text;
    }
    if (full || !this.jumpsEnsured) {
      const added = await ensurePortalJumps(tools, this.probe.exec);
      if (added > 0 && this.jumpsEnsured)
        this.logger.warn({ added }, 'portal jump rules were missing and have been restored');
      this.jumpsEnsured = true;
    }
    const now = new Map<string, Portal>();
    for (const p of this.portals) if (ports.has(p.socketId)) now.set(portalKey(p), p);
    for (const [k, p] of this.portalsLogged) {
      if (now.has(k)) continue;
      this.portalsLogged.delete(k);
      this.logger.info(
        { service: p.serviceName, kind: p.kind, address: p.address, port: p.port, protocol: p.protocol },
        `service ${p.serviceName} no longer reachable at ${portalWhere(p)}`,
      );
    }
    for (const [k, p] of now) {
      if (this.portalsLogged.has(k)) continue;
      this.portalsLogged.set(k, p);
      const proxyPort = ports.get(p.socketId);
      this.logger.info(
        {
          service: p.serviceName,
          kind: p.kind,
          address: p.address,
          port: p.port,
          protocol: p.protocol,
          proxyPort,
        },
        `service ${p.serviceName} is now reachable at ${portalWhere(p)} (${p.kind}, portal to proxy port ${String(proxyPort)})`,
      );
    }
  }

  /** What can be reached where, as one line per address: the startup summary. */
  summary(): { reachable: string[]; unreachable: string[] } {
    const reachable: string[] = [];
    const unreachable: string[] = [];
    if (this.decision.mode === 'portal') {
      const ports = this.proxyPorts();
      for (const p of this.portals) {
        const port = ports.get(p.socketId);
        if (port === undefined)
          unreachable.push(`${p.serviceName} ${portalWhere(p)} (${p.kind}): no proxy port could be bound`);
        else reachable.push(`${p.serviceName} ${portalWhere(p)} (${p.kind}) -> proxy port ${port}`);
      }
    } else {
      for (const l of [...this.open.values()].sort((a, b) => (a.plan.id < b.plan.id ? -1 : 1))) {
        reachable.push(
          `${l.plan.serviceName} ${l.plan.protocol.toLowerCase()} ${joinHostPort(l.plan.listen.address, l.port)} (${l.plan.kind})`,
        );
      }
      for (const [id, code] of [...this.bindFailures].sort()) unreachable.push(`${id}: ${code}`);
    }
    return { reachable, unreachable };
  }

  private logSummary(): void {
    const { reachable, unreachable } = this.summary();
    const how =
      this.decision.mode === 'portal'
        ? 'portal mode (iptables rules send service traffic to the relay)'
        : `direct mode (${this.decision.reason}): only local service addresses are reachable`;
    this.logger.info(
      { proxyMode: 'userspace', relay: this.decision.mode, reachable, unreachable },
      `userspace startup summary, ${how}: ${reachable.length} reachable, ${unreachable.length} not` +
        (reachable.length > 0 ? `\n  reachable: ${reachable.join('\n  reachable: ')}` : '') +
        (unreachable.length > 0 ? `\n  NOT reachable: ${unreachable.join('\n  NOT reachable: ')}` : ''),
    );
  }

  /** Closes every listener, UDP session and TCP connection. */
  async close(): Promise<void> {
    this.closed = true;
    // Portal rules go first: left behind, they would send service traffic to a closed port.
    if (this.decision.mode === 'portal') {
      const errors = await removePortals(this.decision.tools, this.probe.exec);
      if (errors.length > 0)
        this.logger.error({ errors }, 'removing userspace portal rules failed; run kube-proxy --cleanup');
      else this.logger.info('userspace portal rules removed');
    }
    const waits: Promise<void>[] = [];
    for (const l of this.open.values()) waits.push(this.closeListener(l, 'proxier closing'));
    this.tcp.closeAll();
    await Promise.all(waits);
  }

  private updateBalancers(plans: readonly ListenerPlan[]): void {
    const seen = new Set<string>();
    for (const p of plans) {
      if (seen.has(p.balancerKey)) continue;
      seen.add(p.balancerKey);
      const b = this.balancers.get(p.balancerKey);
      if (b) {
        b.configure({ algorithm: this.algorithm, stickyMaxAgeSeconds: p.stickyMaxAgeSeconds });
        b.update(p.endpoints);
      } else {
        this.balancers.set(
          p.balancerKey,
          new Balancer(p.endpoints, {
            algorithm: this.algorithm,
            stickyMaxAgeSeconds: p.stickyMaxAgeSeconds,
          }),
        );
      }
    }
    for (const k of this.balancers.keys()) if (!seen.has(k)) this.balancers.delete(k);
    if (this.health) {
      const targets = new Set<string>();
      for (const p of plans) if (p.protocol === 'TCP') for (const e of p.endpoints) targets.add(e.endpoint);
      this.health.setTargets(targets);
    }
  }

  private logReachable(plan: ListenerPlan, when: string): void {
    // Portal sockets are announced per portal (syncPortals); the socket itself is a detail.
    if (this.decision.mode === 'portal') return;
    const where = `${plan.protocol.toLowerCase()} ${joinHostPort(plan.listen.address, plan.listen.port)}`;
    this.logger.info(
      {
        service: plan.serviceName,
        kind: plan.kind,
        address: plan.listen.address,
        port: plan.listen.port,
        protocol: plan.protocol,
        endpoints: plan.endpoints.length,
      },
      `service ${plan.serviceName} is ${when} reachable at ${where} (${plan.kind}, ${plan.endpoints.length} endpoints)`,
    );
  }

  /** Records a listener that could not bind; returns its error code. Logged when the code changes. */
  private bindFailed(plan: ListenerPlan, err: unknown): string {
    const code = errCode(err);
    this.metrics?.userspaceListenFailuresTotal.inc({
      ip_family: this.options.family,
      protocol: plan.protocol,
      code,
    });
    if (this.bindFailures.get(plan.id) === code) return code;
    this.bindFailures.set(plan.id, code);
    const where = joinHostPort(plan.listen.address, plan.listen.port);
    const why =
      code === 'EADDRNOTAVAIL'
        ? 'address is not on this machine'
        : code === 'EADDRINUSE'
          ? 'port already in use'
          : code;
    // An address not on this machine is expected (e.g. another node's external IP); a busy port is not.
    const level = code === 'EADDRNOTAVAIL' ? 'info' : 'warn';
    this.logger[level](
      {
        service: plan.serviceName,
        kind: plan.kind,
        address: plan.listen.address,
        port: plan.listen.port,
        protocol: plan.protocol,
        code,
      },
      `service ${plan.serviceName}: cannot listen on ${plan.protocol.toLowerCase()} ${where} (${why}); not reachable there${code === 'EADDRNOTAVAIL' ? '' : ' until a retry succeeds'}`,
    );
    return code;
  }

  /** Opens the listener of `plan`; returns the bind error code when it could not. */
  private async openListener(plan: ListenerPlan): Promise<string | undefined> {
    const ports = this.ports;
    if (plan.listen.port !== 0 || !ports) {
      try {
        await this.bindListener(plan, plan.listen.port);
        return undefined;
      } catch (err) {
        return this.bindFailed(plan, err);
      }
    }
    // A range port someone else holds (EADDRINUSE) is skipped; a bounded number of tries.
    const busy = new Set<number>();
    let lastErr: unknown = new Error(`${ports.describe()} is exhausted`);
    for (let attempt = 0; attempt < 32; attempt++) {
      const port = ports.reserve(plan.protocol, busy);
      if (port === undefined) break;
      try {
        await this.bindListener(plan, port);
        if (!this.open.has(plan.id)) ports.release(plan.protocol, port);
        return undefined;
      } catch (err) {
        ports.release(plan.protocol, port);
        lastErr = err;
        if (errCode(err) !== 'EADDRINUSE') break;
        busy.add(port);
      }
    }
    return this.bindFailed(plan, lastErr);
  }

  /** Binds one listener on `port`; throws the bind error. */
  private async bindListener(plan: ListenerPlan, port: number): Promise<void> {
    if (plan.protocol === 'TCP') {
      const server = net.createServer(this.tcp.serverOptions());
      const l: OpenListener = { kind: 'TCP', plan, port, server };
      server.on('connection', (sock) => {
        this.tcp.onConnection(l, sock);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: plan.listen.address, port, exclusive: false }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => {
        this.logger.warn({ err, listener: plan.id }, `listener ${plan.id} failed`);
      });
      if (this.closed) {
        server.close();
        return;
      }
      l.port = (server.address() as net.AddressInfo).port;
      this.open.set(plan.id, l);
    } else {
      const socket = dgram.createSocket({ type: plan.listen.address.includes(':') ? 'udp6' : 'udp4' });
      const l: OpenListener = { kind: 'UDP', plan, port, socket, sessions: new Map() };
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: plan.listen.address, port, exclusive: false }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.on('error', (err) => {
        this.logger.warn({ err, listener: plan.id }, `listener ${plan.id} failed`);
      });
      socket.on('message', (msg, rinfo) => {
        this.udp.onMessage(l, msg, rinfo);
      });
      if (this.closed) {
        socket.close();
        return;
      }
      l.port = socket.address().port;
      this.open.set(plan.id, l);
    }
    this.bindFailures.delete(plan.id);
    this.logReachable(plan, 'now');
  }

  private closeListener(l: OpenListener, why: string): Promise<void> {
    this.open.delete(l.plan.id);
    this.ports?.release(l.plan.protocol, l.port);
    this.logger.info(
      {
        service: l.plan.serviceName,
        address: l.plan.listen.address,
        port: l.plan.listen.port,
        protocol: l.plan.protocol,
      },
      `service ${l.plan.serviceName} no longer ${this.decision.mode === 'portal' ? 'served by proxy port' : 'reachable at'} ${l.plan.protocol.toLowerCase()} ${joinHostPort(l.plan.listen.address, l.port)} (${why})`,
    );
    if (l.kind === 'TCP') {
      // server.close() waits for open connections; resolve on stop-accepting so sync() never blocks on them.
      l.server.close();
      return Promise.resolve();
    }
    this.udp.closeAll(l);
    return new Promise((resolve) => {
      l.socket.close(() => {
        resolve();
      });
    });
  }
}

function portalKey(p: Portal): string {
  return `${p.protocol}/${p.kind}/${p.address}/${p.port}`;
}

function portalWhere(p: Portal): string {
  return `${p.protocol.toLowerCase()} ${p.address === '' ? `<any local address>:${p.port}` : joinHostPort(p.address, p.port)}`;
}
