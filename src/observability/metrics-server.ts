/**
 * The metrics server on metricsBindAddress (upstream cmd/kube-proxy/app/server.go serveMetrics):
 * `/metrics` (Prometheus text), `/healthz` (component-base's ping check: "ok"), `/proxyMode`
 * (the mode as plain text), `/configz` (the running configuration as JSON), and ours:
 * `/debug/explain?protocol=&source=&destination=[&live=1]` (kube-proxy explain's JSON); `/flagz` and
 * `/statusz` when their gates are on, and `/debug/pprof/...` with --profiling, as upstream.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import { closeHttp, listenHttp, notFound, parseHostPort, reply, requestPath } from './http-util.js';
import { flagzText, statuszText, type StatuszInfo } from './zpages.js';
import { handleProfiling } from './profiling.js';

export interface MetricsServerOptions {
  /** Served as-is by /proxyMode (e.g. "iptables"). */
  readonly proxyMode: string;
  /** The configuration shown by /configz; omitted → /configz returns `{}`. */
  readonly configz?: unknown;
  /** The /configz section name; upstream registers the config under its API group. */
  readonly configzName?: string;
  readonly logger?: Logger;
  /** Answers /debug/explain from the query string (JSON body); absent → 404. */
  readonly explain?: (query: URLSearchParams) => Promise<{ status: number; body: string }>;
  /** /flagz (gate ComponentFlagz): every flag's effective value by name; omitted → 404. */
  readonly flagz?: Readonly<Record<string, string>>;
  /** /statusz (gate ComponentStatusz): the process's start time and versions; omitted → 404. */
  readonly statusz?: Omit<StatuszInfo, 'now' | 'paths'>;
  /** --profiling: serve /debug/pprof (CPU profile, heap snapshot). */
  readonly enableProfiling?: boolean;
}

/** An HTTP endpoint: its request listener, and listen/close for real sockets. */
export interface HttpEndpoint {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts serving on "host:port"; resolves with the bound address, rejects with the bind error. */
  listen(hostPort: string): Promise<AddressInfo>;
  /** Stops every listener started by listen(). */
  close(): Promise<void>;
}

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' } as const;

/** Creates the metrics server for `registry`. Nothing listens until listen() is called. */
export function createMetricsServer(registry: Registry, options: MetricsServerOptions): HttpEndpoint {
  const servers = new Set<Server>();
  const configzName = options.configzName ?? 'kubeproxy.config.k8s.io';

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = requestPath(req.url);
    switch (path) {
      case '/metrics':
        renderMetrics(registry).then(
          (text) => {
            reply(res, 200, { 'Content-Type': METRICS_CONTENT_TYPE }, text);
          },
          (err: unknown) => {
            options.logger?.error({ err }, 'Failed to render metrics');
            reply(res, 500, TEXT, `error gathering metrics: ${String(err)}\n`);
          },
        );
        return;
      case '/healthz':
      case '/healthz/ping': {
        // component-base healthz with only the ping check; ?verbose lists the checks.
        const verbose = (req.url ?? '').includes('verbose');
        reply(res, 200, TEXT, verbose && path === '/healthz' ? '[+]ping ok\nhealthz check passed\n' : 'ok');
        return;
      }
      case '/proxyMode':
        reply(res, 200, TEXT, options.proxyMode);
        return;
      case '/configz': {
        const body = options.configz === undefined ? {} : { [configzName]: options.configz };
        reply(
          res,
          200,
          { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' },
          JSON.stringify(body),
        );
        return;
      }
      case '/debug/explain': {
        const explain = options.explain;
        if (!explain) {
          notFound(res);
          return;
        }
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const json = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' } as const;
        explain(query).then(
          (r) => {
            reply(res, r.status, json, r.body);
          },
          (err: unknown) => {
            reply(res, 500, json, `${JSON.stringify({ error: String(err) })}\n`);
          },
        );
        return;
      }
      case '/flagz':
        if (options.flagz === undefined) break;
        reply(res, 200, TEXT, flagzText(options.flagz));
        return;
      case '/statusz':
        if (options.statusz === undefined) break;
        reply(res, 200, TEXT, statuszText({ ...options.statusz, now: new Date(), paths: paths() }));
        return;
      default:
        if (options.enableProfiling === true && handleProfiling(path, req, res)) return;
    }
    notFound(res);
  };
  const paths = (): string[] => [
    '/configz',
    '/healthz',
    '/metrics',
    '/proxyMode',
    ...(options.flagz ? ['/flagz'] : []),
    ...(options.statusz ? ['/statusz'] : []),
    ...(options.enableProfiling === true ? ['/debug/pprof'] : []),
  ];

  return {
    handle,
    async listen(hostPort: string): Promise<AddressInfo> {
      const { host, port } = parseHostPort(hostPort);
      const { server, address } = await listenHttp(handle, host === '0.0.0.0' ? '' : host, port);
      servers.add(server);
      options.logger?.debug({ address: hostPort }, 'Starting metrics HTTP server');
      return address;
    },
    async close(): Promise<void> {
      const all = [...servers];
      servers.clear();
      await Promise.all(all.map(closeHttp));
    },
  };
}
