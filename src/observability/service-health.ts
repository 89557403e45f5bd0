/**
 * Per-service health check node ports for externalTrafficPolicy=Local services (upstream
 * pkg/proxy/healthcheck/service_health.go). Cloud load balancers probe
 * `<nodeIP>:<healthCheckNodePort>` and send traffic only to nodes that answer 200, i.e. nodes with
 * at least one local ready endpoint while the proxy itself is healthy.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import { closeHttp, joinHostPort, listenHttp, reply } from './http-util.js';

/** A listener that could not be opened; upstream records a FailedToStartServiceHealthcheck Event. */
export interface ServiceHealthListenError {
  /** "namespace/name". */
  readonly service: string;
  readonly port: number;
  /** The address that failed ("" = every address). */
  readonly address: string;
  readonly error: Error;
  /** Human-readable, in upstream's Event wording. */
  readonly message: string;
}

export interface ServiceHealthOptions {
  /**
   * IPs to listen on (the node IPs matching nodePortAddresses). Empty, or any of "0.0.0.0" / "::",
   * means every address of the node.
   */
  readonly addresses: readonly string[];
  /** The proxy's own health (ProxyHealthServer.isHealthy); false makes every service answer 503. */
  readonly proxyHealthy: () => boolean;
  readonly logger: Logger;
  /** Used in listen-failure messages. */
  readonly nodeName?: string;
  /** Called for each service whose port could not be opened; it is retried on the next syncServices. */
  readonly onListenError?: (e: ServiceHealthListenError) => void;
}

interface Instance {
  readonly nsn: string;
  readonly port: number;
  readonly servers: Server[];
  endpoints: number;
}

const isWildcard = (ip: string): boolean => ip === '' || ip === '0.0.0.0' || ip === '::';

function splitNsn(nsn: string): { namespace: string; name: string } {
  const slash = nsn.indexOf('/');
  return slash < 0
    ? { namespace: '', name: nsn }
    : { namespace: nsn.slice(0, slash), name: nsn.slice(slash + 1) };
}

/**
 * The body upstream writes: a tab-indented JSON document without a trailing newline, e.g.
 * {\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "svc"\n\t},\n\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}
 */
export function serviceHealthBody(nsn: string, localEndpoints: number, proxyHealthy: boolean): string {
  const { namespace, name } = splitNsn(nsn);
  return [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    '\t},',
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${String(proxyHealthy)}`,
    '}',
  ].join('\n');
}

/**
 * Manages one HTTP listener set per service health check node port. Calls are serialised: a
 * syncServices() that arrives while another is binding waits for it.
 */
export class ServiceHealthServer {
  private readonly services = new Map<string, Instance>();
  private readonly hosts: readonly string[];
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: ServiceHealthOptions) {
    const specific = options.addresses.filter((a) => !isWildcard(a));
    // One wildcard covers everything; binding it next to specific IPs would collide on the port.
    this.hosts =
      specific.length === options.addresses.length && specific.length > 0 ? [...new Set(specific)] : [''];
  }

  /**
   * Makes `services` ("namespace/name" → healthCheckNodePort) the active set: closes listeners of
   * services that are gone or whose port changed, opens the new ones. A port that cannot be bound
   * is logged and reported through onListenError, and retried on the next call; the others keep
   * working. Resolves when every bind attempt has finished; never rejects.
   */
  syncServices(services: ReadonlyMap<string, number>): Promise<void> {
    const run = this.queue.then(() => this.doSyncServices(new Map(services)));
    this.queue = run;
    return run;
  }

  /**
   * Sets the local ready endpoint count per service ("namespace/name" → count). Services with a
   * listener but absent from the map get 0. Counts for services without a listener are ignored.
   */
  syncEndpoints(endpoints: ReadonlyMap<string, number>): void {
    for (const [nsn, inst] of this.services) inst.endpoints = endpoints.get(nsn) ?? 0;
  }

  /** Service → port of every listener currently open (for diagnostics and tests). */
  activeServices(): Map<string, number> {
    return new Map([...this.services].map(([nsn, inst]) => [nsn, inst.port]));
  }

  /** Closes every listener. */
  async close(): Promise<void> {
    await this.syncServices(new Map());
  }

  private async doSyncServices(wanted: Map<string, number>): Promise<void> {
    const log = this.options.logger;
    const closing: Promise<void>[] = [];
    for (const [nsn, inst] of this.services) {
      if (wanted.get(nsn) !== inst.port) {
        log.debug({ service: nsn, port: inst.port }, 'Closing healthcheck');
        this.services.delete(nsn);
        closing.push(...inst.servers.map(closeHttp));
      }
    }
    // Closes first, so a port moving from one service to another can be re-bound.
    await Promise.all(closing);

    await Promise.all(
      [...wanted]
        .filter(([nsn]) => !this.services.has(nsn))
        .map(async ([nsn, port]) => {
          log.debug({ service: nsn, port }, 'Opening healthcheck');
          const inst: Instance = { nsn, port, servers: [], endpoints: 0 };
          // Registered before binding so the first probe on an early-bound address gets a real answer.
          this.services.set(nsn, inst);
          for (const host of this.hosts) {
            try {
              const { server } = await listenHttp(this.handlerFor(nsn), host, port);
              inst.servers.push(server);
            } catch (err) {
              // Like upstream: drop what was opened so a later retry (or another owner) can bind.
              this.services.delete(nsn);
              await Promise.all(inst.servers.map(closeHttp));
              this.reportListenError(nsn, port, host, err);
              return;
            }
          }
        }),
    );
  }

  private reportListenError(nsn: string, port: number, host: string, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const address = joinHostPort(host, port);
    const message = `node ${this.options.nodeName ?? ''} failed to start healthcheck ${JSON.stringify(nsn)} on port ${port}: listen tcp ${address}: ${error.message}`;
    this.options.logger.error(
      { err: error.message, node: this.options.nodeName, service: nsn, port, address },
      'Failed to start healthcheck',
    );
    try {
      this.options.onListenError?.({ service: nsn, port, address: host, error, message });
    } catch (cbErr) {
      this.options.logger.error({ err: String(cbErr), service: nsn }, 'onListenError callback threw');
    }
  }

  private handlerFor(nsn: string): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      const inst = this.services.get(nsn);
      if (inst === undefined) {
        // Upstream writes nothing for a closed health check (Go then sends an empty 200).
        this.options.logger.error({ service: nsn }, 'Received request for closed healthcheck');
        reply(res, 200, {}, '');
        return;
      }
      const count = inst.endpoints;
      let healthy: boolean;
      try {
        healthy = this.options.proxyHealthy();
      } catch {
        healthy = false;
      }
      reply(
        res,
        count !== 0 && healthy ? 200 : 503,
        {
          'Content-Type': 'application/json',
          'X-Content-Type-Options': 'nosniff',
          // Newer upstream also hints the weight to load balancers that read it.
          'X-Load-Balancing-Endpoint-Weight': String(count),
        },
        serviceHealthBody(nsn, count, healthy),
      );
    };
  }
}
