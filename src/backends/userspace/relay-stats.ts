/**
 * What the userspace relays share: their counters and the context the proxier hands them.
 */
import type { Endpoint } from '../../proxy/types.js';
import type { Logger } from '../../observability/logger.js';
import type { Balancer } from './balancer.js';

/** Counters since creation, for tests and debugging. Byte counts are added when a connection closes. */
export interface RelayStats {
  tcpAccepted: number;
  /** Connections relayed to an endpoint. */
  tcpConnected: number;
  /** Connections reset because no endpoint was usable or every attempt failed. */
  tcpRejected: number;
  /** Failed connect attempts to endpoints (each retried on the next endpoint). */
  tcpDialFailures: number;
  tcpActive: number;
  /** Client -> endpoint and endpoint -> client bytes of closed TCP connections. */
  tcpBytesToEndpoint: number;
  tcpBytesToClient: number;
  udpSessionsOpened: number;
  udpSessionsClosed: number;
  udpActiveSessions: number;
  udpDatagramsToEndpoint: number;
  udpDatagramsToClient: number;
  /** Datagrams dropped for want of an endpoint. */
  udpDropped: number;
  /** Connections / sessions opened per endpoint string. */
  perEndpoint: Map<string, number>;
}

/** Zeroed counters. */
export function newStats(): RelayStats {
  return {
    tcpAccepted: 0,
    tcpConnected: 0,
    tcpRejected: 0,
    tcpDialFailures: 0,
    tcpActive: 0,
    tcpBytesToEndpoint: 0,
    tcpBytesToClient: 0,
    udpSessionsOpened: 0,
    udpSessionsClosed: 0,
    udpActiveSessions: 0,
    udpDatagramsToEndpoint: 0,
    udpDatagramsToClient: 0,
    udpDropped: 0,
    perEndpoint: new Map(),
  };
}

/** Counts one more connection or session to `endpoint`. */
export function countEndpoint(stats: RelayStats, endpoint: string): void {
  stats.perEndpoint.set(endpoint, (stats.perEndpoint.get(endpoint) ?? 0) + 1);
}

/** A socket error's code ("EADDRINUSE"), or the error as text when it has none. */
export function errCode(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
}

/** What a relay needs from the proxier that owns it. */
export interface RelayContext {
  readonly logger: Logger;
  /** The proxier's counters; the relays update them in place. */
  readonly counters: RelayStats;
  /** The balancer of a plan's balancerKey, as of now (sync() replaces them). */
  balancer(balancerKey: string): Balancer<Endpoint> | undefined;
  /** Endpoints ("ip:port") the health checker found failing (--ipvs-health-check); empty without one. */
  unhealthy(): ReadonlySet<string>;
}
