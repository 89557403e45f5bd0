/**
 * The userspace UDP relay (upstream pkg/proxy/userspace proxysocket.go, UDP half): per-client sessions
 * (client ip:port -> a socket to the chosen endpoint) that expire after an idle timeout; replies leave
 * through the service socket. Sessions to endpoints that left the plan are pruned at once, since UDP has
 * no connection that could finish on its own (as conntrack cleanup does in the kernel modes).
 */
import * as dgram from 'node:dgram';
import type { Endpoint } from '../../proxy/types.js';
import type { Balancer } from './balancer.js';
import type { ListenerPlan } from './render.js';
import { countEndpoint, errCode, type RelayContext } from './relay-stats.js';

/** One client's session: its own socket to one endpoint. */
export interface UdpSession {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly socket: dgram.Socket;
  readonly balancer: Balancer<Endpoint>;
  timer: NodeJS.Timeout;
  closed: boolean;
}

/** A bound UDP service socket and its sessions, as the proxier holds it. */
export interface UdpListener {
  readonly plan: ListenerPlan;
  readonly socket: dgram.Socket;
  readonly sessions: Map<string, UdpSession>;
}

/** Relays the datagrams of every UDP listener of one proxier. */
export class UdpRelay {
  constructor(
    private readonly ctx: RelayContext,
    /** Session idle timeout, ms. */
    private readonly idleTimeoutMs: number,
  ) {}

  /**
   * Forwards one datagram from a client to its session's endpoint, opening the session on first
   * contact; dropped (and counted) when the plan has no usable endpoint.
   */
  onMessage(l: UdpListener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let s = l.sessions.get(key);
    if (!s) {
      const bal = this.ctx.balancer(l.plan.balancerKey);
      const ep = bal?.next(rinfo.address);
      if (!bal || !ep) {
        this.ctx.counters.udpDropped++;
        return;
      }
      s = this.openSession(l, key, rinfo, ep, bal);
    }
    s.timer.refresh();
    this.ctx.counters.udpDatagramsToEndpoint++;
    s.socket.send(msg, s.endpoint.port, s.endpoint.ip);
  }

  /** Closes a session (idempotent) and releases its endpoint in the balancer. */
  closeSession(l: UdpListener, s: UdpSession): void {
    if (s.closed) return;
    s.closed = true;
    clearTimeout(s.timer);
    if (l.sessions.get(s.key) === s) l.sessions.delete(s.key);
    try {
      s.socket.close();
    } catch {
      /* already closed after an error */
    }
    s.balancer.connectionClosed(s.endpoint.endpoint);
    this.ctx.counters.udpSessionsClosed++;
    this.ctx.counters.udpActiveSessions--;
  }

  /** Closes every session of `l`. */
  closeAll(l: UdpListener): void {
    for (const s of [...l.sessions.values()]) this.closeSession(l, s);
  }

  /** Closes the sessions of `l` whose endpoint is no longer in its plan. */
  prune(l: UdpListener): void {
    const live = new Set(l.plan.endpoints.map((e) => e.endpoint));
    for (const s of [...l.sessions.values()]) if (!live.has(s.endpoint.endpoint)) this.closeSession(l, s);
  }

  private openSession(
    l: UdpListener,
    key: string,
    client: dgram.RemoteInfo,
    ep: Endpoint,
    bal: Balancer<Endpoint>,
  ): UdpSession {
    const socket = dgram.createSocket({ type: ep.ip.includes(':') ? 'udp6' : 'udp4' });
    const timer = setTimeout(() => {
      this.closeSession(l, s);
    }, this.idleTimeoutMs);
    timer.unref();
    const s: UdpSession = { key, endpoint: ep, socket, balancer: bal, timer, closed: false };
    socket.on('message', (reply, from) => {
      // The socket is unconnected (no async connect before the first send); ignore strangers.
      if (from.port !== ep.port || from.address !== ep.ip) return;
      s.timer.refresh();
      this.ctx.counters.udpDatagramsToClient++;
      l.socket.send(reply, client.port, client.address);
    });
    socket.on('error', (err) => {
      this.ctx.logger.debug({ endpoint: ep.endpoint, err: errCode(err) }, 'udp session error');
      this.closeSession(l, s);
    });
    l.sessions.set(key, s);
    bal.connectionOpened(ep.endpoint);
    this.ctx.counters.udpSessionsOpened++;
    this.ctx.counters.udpActiveSessions++;
    countEndpoint(this.ctx.counters, ep.endpoint);
    return s;
  }
}
