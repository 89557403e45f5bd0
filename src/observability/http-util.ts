/**
 * Small HTTP helpers shared by the health, service-health and metrics servers: binding
 * "host:port" strings the way Go's net.Listen does, and closing servers the way Go's
 * http.Server.Close does (immediately, dropping idle keep-alive connections).
 */
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KpError } from '../errors.js';

/** A "host:port" split into parts; host "" means every address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses "host:port", "[v6]:port" or ":port". Throws an Error naming the value when it is not
 * of that shape or the port is outside 0..65535.
 */
export function parseHostPort(value: string): HostPort {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new KpError(
      'KP_ERR_BAD_ADDRESS',
      `invalid bind address ${JSON.stringify(value)}: want "host:port", "[ipv6]:port" or ":port"`,
    );
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Joins host and port, bracketing IPv6 literals (Go's net.JoinHostPort). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts an HTTP server for `handler` on host:port and resolves once it is listening (rejects with
 * the bind error, e.g. EADDRINUSE). An empty host listens on every address, dual-stack when the
 * machine has IPv6, like Go's "" / "0.0.0.0" listeners.
 */
export function listenHttp(
  handler: RequestListener,
  host: string,
  port: number,
): Promise<{ server: Server; address: AddressInfo }> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    // Go's server has no request timeout by default either; keep-alive is bounded so that idle
    // LB probes do not pin sockets forever.
    server.keepAliveTimeout = 30_000;
    const onError = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen({ port, host: host === '' ? undefined : host }, () => {
      server.off('error', onError);
      resolve({ server, address: server.address() as AddressInfo });
    });
  });
}

/** Closes `server` and its open connections; resolves when it has fully stopped. Never rejects. */
export function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/** Writes a complete response with the given status, headers and body. */
export function reply(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string,
): void {
  res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Go's ServeMux answer for an unknown path. */
export function notFound(res: ServerResponse): void {
  reply(
    res,
    404,
    { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' },
    '404 page not found\n',
  );
}

/** The path part of a request URL (no query), or "/" when absent. */
export function requestPath(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
