/**
 * The userspace TCP relay (upstream pkg/proxy/userspace proxysocket.go, TCP half): a connection accepted
 * paused on a service socket gets an endpoint from the balancer, a connect with a timeout, on failure the
 * next endpoint (at most once each), then both directions relayed with backpressure; half-close passes
 * through. No usable endpoint: the client is reset (like REJECT).
 *
 * Cost per connection (docs/benchmarks.md, userspace mode): the relay's own code is a few percent of
 * its CPU; most is node's socket and stream machinery. So the hot path keeps that machinery small:
 * - endpoint -> client: the endpoint socket reads with the `onread` option into one buffer per
 *   connection, taken from a free list, and each chunk is written straight to the client. No per-read
 *   buffer allocation and no Readable queue. A write that did not complete at once still references the
 *   buffer, so reading stops until the client has taken every byte;
 * - client -> endpoint: a 'data' listener writes to the endpoint and pauses the client when the write
 *   is buffered past the high-water mark, until 'drain' (what pipe() does, with fewer listeners);
 * - the client's address (a getpeername call) is read only for ClientIP affinity; the retry bookkeeping
 *   is created only when a connect fails.
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
  /** Read buffer per endpoint socket, bytes; default READ_BUFFER_BYTES. */
  readonly readBufferBytes?: number | undefined;
}

/**
 * Size of the read buffer of an endpoint socket, held while the connection is open. Node reads at most
 * 64 KiB at a time itself; upstream's Go relay holds 32 KiB per direction (io.Copy). 16/32/64 KiB cost
 * 1.5x/1.1-1.2x/1.0x HAProxy's CPU per MB in bench/userspace.
 */
export const READ_BUFFER_BYTES = 32 * 1024;
/** Free read buffers kept for reuse; more are allocated when more connections are open. */
const MAX_FREE_BUFFERS = 256;

const noop = (): void => undefined;

/** Relays the TCP connections of every listener of one proxier; remembers live connections for closeAll(). */
export class TcpRelay {
  /** Every connection from accept until both legs have closed, so closeAll() can end them. */
  private readonly conns = new Set<TcpConnection>();
  private readonly freeBuffers: Buffer[] = [];

  constructor(
    readonly ctx: RelayContext,
    readonly opts: TcpRelayOptions,
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
    this.ctx.counters.tcpAccepted++;
    client.on('error', noop); // handled on close
    const plan = listener.plan;
    const bal = this.ctx.balancer(plan.balancerKey);
    if (!bal || bal.list.length === 0) {
      this.ctx.counters.tcpRejected++;
      client.resetAndDestroy();
      return;
    }
    const conn = new TcpConnection(this, plan, bal, client);
    this.conns.add(conn);
    conn.attempt();
  }

  /** Destroys both legs of every live connection. */
  closeAll(): void {
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }

  /** A read buffer for an endpoint socket. */
  takeBuffer(): Buffer {
    return this.freeBuffers.pop() ?? Buffer.allocUnsafe(this.opts.readBufferBytes ?? READ_BUFFER_BYTES);
  }

  /** Called once per connection when both legs have closed (or it never connected). */
  finished(conn: TcpConnection, buffer: Buffer | undefined): void {
    this.conns.delete(conn);
    // Both sockets are closed: nothing reads into the buffer or still writes from it.
    if (buffer && this.freeBuffers.length < MAX_FREE_BUFFERS) this.freeBuffers.push(buffer);
  }
}

/** One client connection: the connect attempts, then the relay both ways. */
class TcpConnection {
  private up: net.Socket | undefined;
  private ep: Endpoint | undefined;
  /** Endpoints already tried; created on the first failed connect. */
  private tried: Set<string> | undefined;
  private readonly maxAttempts: number;
  private readonly clientIP: string;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private connected = false;
  /** Legs closed after the splice (2 = done). */
  private closed = 0;
  private buffer: Buffer | undefined;
  /** Reading from the endpoint stopped until the client has flushed (onUpstreamRead returned false). */
  private readStopped = false;
  private over = false;

  constructor(
    private readonly relay: TcpRelay,
    private readonly plan: ListenerPlan,
    private readonly bal: Balancer<Endpoint>,
    private readonly client: net.Socket,
  ) {
    this.maxAttempts = bal.list.length;
    // getpeername is a syscall: only affinity needs the client's address.
    this.clientIP = bal.sticky ? (client.remoteAddress ?? '') : '';
    client.once('close', this.onClientEarlyClose);
  }

  /** Connects to the next endpoint to try, or resets the client when none is left. */
  attempt(): void {
    const client = this.client;
    if (client.destroyed) {
      this.finish();
      return;
    }
    // A failing endpoint (health check) is skipped while another one is left; when only failing
    // ones are, they are still tried: a probe can be wrong, a refused client is certain.
    const unhealthy = this.relay.ctx.unhealthy();
    const tried = this.tried;
    let ep: Endpoint | undefined;
    if ((tried?.size ?? 0) < this.maxAttempts) {
      if (unhealthy.size > 0)
        ep = this.bal.next(this.clientIP, tried ? new Set([...tried, ...unhealthy]) : unhealthy);
      ep ??= this.bal.next(this.clientIP, tried);
    }
    if (!ep) {
      this.relay.ctx.counters.tcpRejected++;
      client.resetAndDestroy();
      this.finish();
      return;
    }
    this.ep = ep;
    const hwm = this.relay.opts.highWaterMark;
    this.buffer ??= this.relay.takeBuffer();
    const up = net.connect({
      host: ep.ip,
      port: ep.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(hwm ? { highWaterMark: hwm } : {}),
      onread: { buffer: this.buffer, callback: this.onUpstreamRead },
    });
    this.up = up;
    this.timer = setTimeout(this.onConnectTimeout, this.relay.opts.connectTimeoutMs);
    up.on('error', this.onUpstreamError);
    up.once('connect', this.onUpstreamConnect);
  }

  /** Destroys both legs (closeAll). */
  destroy(): void {
    this.client.destroy();
    this.up?.destroy();
  }

  private finish(): void {
    if (this.over) return;
    this.over = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.relay.finished(this, this.buffer);
  }

  private readonly onClientEarlyClose = (): void => {
    if (this.connected) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    // The attempt in flight will not be used; its close releases the buffer.
    if (this.up)
      this.up.once('close', () => {
        this.finish();
      });
    else this.finish();
    this.up?.destroy();
  };

  private readonly onConnectTimeout = (): void => {
    if (!this.connected) this.up?.destroy(new Error('ETIMEDOUT'));
  };

  private readonly onUpstreamError = (err: Error): void => {
    if (this.connected) return; // handled on close
    clearTimeout(this.timer);
    this.timer = undefined;
    const up = this.up!;
    const ep = this.ep!;
    const counters = this.relay.ctx.counters;
    counters.tcpDialFailures++;
    this.relay.ctx.logger.debug(
      { endpoint: ep.endpoint, service: this.plan.serviceName, err: errCode(err) },
      'endpoint connect failed; trying the next',
    );
    (this.tried ??= new Set()).add(ep.endpoint);
    this.up = undefined;
    if (this.client.destroyed) {
      // onClientEarlyClose waits for this socket's close; it happens after 'error'.
      return;
    }
    // The next attempt reads into the same buffer: wait until this socket is closed.
    up.once('close', () => {
      this.attempt();
    });
    up.destroy();
  };

  private readonly onUpstreamConnect = (): void => {
    this.connected = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    const up = this.up!;
    client.off('close', this.onClientEarlyClose);
    if (client.destroyed) {
      up.once('close', () => {
        this.finish();
      });
      up.destroy();
      return;
    }
    const counters = this.relay.ctx.counters;
    const ep = this.ep!;
    counters.tcpConnected++;
    counters.tcpActive++;
    countEndpoint(counters, ep.endpoint);
    this.bal.connectionOpened(ep.endpoint);
    client.on('close', this.onLegClose);
    up.on('close', this.onUpLegClose);
    // client -> endpoint
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    up.on('drain', this.onUpstreamDrain);
    // endpoint -> client: onUpstreamRead; FIN passes through.
    up.on('end', this.onUpstreamEnd);
    client.resume();
  };

  private readonly onClientData = (chunk: Buffer): void => {
    if (!this.up!.write(chunk)) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    this.up!.end();
  };

  private readonly onUpstreamEnd = (): void => {
    this.client.end();
  };

  /**
   * A chunk from the endpoint, read into this connection's buffer. Returning false stops reading: the
   * client write still holds the buffer; onClientWritten starts reading again once it is flushed.
   */
  private readonly onUpstreamRead = (n: number, buf: Buffer): boolean => {
    const client = this.client;
    if (client.destroyed) return false;
    client.write(buf.subarray(0, n), this.onClientWritten);
    if (client.writableLength === 0) return true;
    this.readStopped = true;
    return false;
  };

  private readonly onClientWritten = (): void => {
    if (!this.readStopped || this.client.writableLength > 0) return;
    this.readStopped = false;
    this.up?.resume();
  };

  private readonly onLegClose = (hadError: boolean): void => {
    this.legClosed(this.up!, hadError);
  };

  private readonly onUpLegClose = (hadError: boolean): void => {
    this.legClosed(this.client, hadError);
  };

  /** A clean close means both directions finished; the other side ends on its own after flushing. */
  private legClosed(other: net.Socket, hadError: boolean): void {
    if (hadError && !other.destroyed) other.resetAndDestroy();
    if (++this.closed < 2) return;
    const counters = this.relay.ctx.counters;
    counters.tcpActive--;
    counters.tcpBytesToEndpoint += this.up!.bytesWritten;
    counters.tcpBytesToClient += this.client.bytesWritten;
    this.bal.connectionClosed(this.ep!.endpoint);
    this.finish();
  }
}
