/**
 * The userspace TCP relay (upstream pkg/proxy/userspace proxysocket.go, TCP half): a connection accepted
 * paused on a service socket gets an endpoint from the balancer, a connect with a timeout, on failure the
 * next endpoint (at most once each), then both directions piped with backpressure; half-close passes
 * through. No usable endpoint: the client is reset (like REJECT).
 */
import * as net from 'node:net';
import type { Endpoint } from '../../proxy/types.js';
import type { Balancer } from './balancer.js';
import type { ListenerPlan } from './render.js';
import { countEndpoint, errCode, type RelayContext } from './relay-stats.js';

/** Tunables of the TCP relay. */
export interface TcpRelayOptions {
  /** Per-attempt connect timeout to an endpoint, ms. */
  readonly connectTimeoutMs: number;
  /** Socket buffer high-water mark in bytes for both legs; undefined = node's. */
  readonly highWaterMark: number | undefined;
}

/** Relays the TCP connections of every listener of one proxier; remembers live sockets for closeAll(). */
export class TcpRelay {
  /** Both legs of every live connection, so closeAll() can end them. */
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly ctx: RelayContext,
    private readonly opts: TcpRelayOptions,
  ) {}

  /** Options for net.createServer that the relay relies on (paused accept, half-open). */
  serverOptions(): net.ServerOpts {
    return {
      allowHalfOpen: true,
      pauseOnConnect: true,
      noDelay: true,
      ...(this.opts.highWaterMark ? { highWaterMark: this.opts.highWaterMark } : {}),
    };
  }

  /**
   * Relays `client`, accepted paused on `listener`, to an endpoint of the listener's current plan.
   * Never throws; failures reset the client and are counted.
   */
  onConnection(listener: { readonly plan: ListenerPlan }, client: net.Socket): void {
    const counters = this.ctx.counters;
    counters.tcpAccepted++;
    client.on('error', () => {
      /* handled on close */
    });
    const plan = listener.plan;
    const bal = this.ctx.balancer(plan.balancerKey);
    const clientIP = client.remoteAddress ?? '';
    const maxAttempts = bal?.list.length ?? 0;
    const tried = new Set<string>();
    let done = false;
    client.once('close', () => {
      done = true;
    });

    const reject = (): void => {
      counters.tcpRejected++;
      if (!client.destroyed) client.resetAndDestroy();
    };

    const attempt = (): void => {
      if (done || client.destroyed) return;
      // A failing endpoint (health check) is skipped while another one is left; when only failing
      // ones are, they are still tried: a probe can be wrong, a refused client is certain.
      const unhealthy = this.ctx.unhealthy();
      let ep: Endpoint | undefined;
      if (tried.size < maxAttempts && bal) {
        if (unhealthy.size > 0) ep = bal.next(clientIP, new Set([...tried, ...unhealthy]));
        ep ??= bal.next(clientIP, tried);
      }
      if (!bal || !ep) {
        reject();
        return;
      }
      tried.add(ep.endpoint);
      const up = net.connect({
        host: ep.ip,
        port: ep.port,
        allowHalfOpen: true,
        noDelay: true,
        ...(this.opts.highWaterMark ? { highWaterMark: this.opts.highWaterMark } : {}),
      });
      let connected = false;
      const timer = setTimeout(() => {
        if (!connected) up.destroy(new Error('ETIMEDOUT'));
      }, this.opts.connectTimeoutMs);
      const onEarlyClose = (): void => {
        if (!connected) up.destroy();
      };
      client.once('close', onEarlyClose);
      up.once('error', (err) => {
        if (connected) return;
        clearTimeout(timer);
        client.off('close', onEarlyClose);
        counters.tcpDialFailures++;
        this.ctx.logger.debug(
          { endpoint: ep.endpoint, service: plan.serviceName, err: errCode(err) },
          'endpoint connect failed; trying the next',
        );
        up.destroy();
        attempt();
      });
      up.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        client.off('close', onEarlyClose);
        if (done || client.destroyed) {
          up.destroy();
          return;
        }
        this.splice(client, up, bal, ep);
      });
    };
    attempt();
  }

  /** Destroys both legs of every live connection. */
  closeAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Pipes both ways; FIN passes through each way independently, an error resets the other side. */
  private splice(client: net.Socket, up: net.Socket, bal: Balancer<Endpoint>, ep: Endpoint): void {
    const counters = this.ctx.counters;
    counters.tcpConnected++;
    counters.tcpActive++;
    countEndpoint(counters, ep.endpoint);
    bal.connectionOpened(ep.endpoint);
    this.sockets.add(client);
    this.sockets.add(up);
    up.on('error', () => {
      /* handled on close */
    });
    let closedCount = 0;
    const onClose = (self: net.Socket, other: net.Socket) => (hadError: boolean) => {
      this.sockets.delete(self);
      // A clean close means both directions finished; the other side ends on its own after flushing.
      if (hadError && !other.destroyed) other.resetAndDestroy();
      if (++closedCount === 2) {
        counters.tcpActive--;
        counters.tcpBytesToEndpoint += up.bytesWritten;
        counters.tcpBytesToClient += client.bytesWritten;
        bal.connectionClosed(ep.endpoint);
      }
    };
    client.on('close', onClose(client, up));
    up.on('close', onClose(up, client));
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }
}
