/**
 * The API source: one reflector per kind kube-proxy watches (upstream cmd/kube-proxy/app/server.go), merged into the
 * Source event stream.
 */
import type { ApiClient } from '../k8s/client.js';
import type { ReflectorEvent, ReflectorTiming } from '../k8s/reflector.js';
import { Reflector } from '../k8s/reflector.js';
import { ApiHealth, type ApiHealthStatus } from '../k8s/api-health.js';
import { PROXY_LABEL_SELECTOR } from '../model/filters.js';
import type { Kind } from '../model/types.js';
import type { Logger } from '../observability/logger.js';
import type { Source, SourceHandler, SourceScope } from './source.js';

/** The collections watched, with upstream's selectors. */
export interface WatchedResource {
  readonly kind: Kind;
  readonly path: string;
  /** Older versions of the same collection, tried when the server answers 404. */
  readonly fallbackPaths?: readonly string[];
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** What the api source watches for `scope`: exported so tests and docs can show the exact requests. */
export function watchedResources(scope: SourceScope): WatchedResource[] {
  const r: WatchedResource[] = [
    { kind: 'Service', path: '/api/v1/services', labelSelector: PROXY_LABEL_SELECTOR },
    {
      kind: 'EndpointSlice',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: PROXY_LABEL_SELECTOR,
    },
    { kind: 'Node', path: '/api/v1/nodes', fieldSelector: `metadata.name=${scope.nodeName}` },
  ];
  // Only when the caller runs with ServiceCIDRs (MultiCIDRServiceAllocator): on a cluster that serves
  // no version of it, this kind never syncs, exactly like upstream's informer would not.
  if (scope.serviceCIDRs) {
    r.push({
      kind: 'ServiceCIDR',
      path: '/apis/networking.k8s.io/v1/servicecidrs',
      fallbackPaths: ['/apis/networking.k8s.io/v1beta1/servicecidrs'],
    });
  }
  return r;
}

export interface ApiSourceOptions {
  /** The API client (see k8s/client.ts); the source does not close it. */
  readonly connection: ApiClient;
  readonly scope: SourceScope;
  readonly logger: Logger;
  /**
   * Upstream's configSyncPeriod informer resync: every period, each object in force is re-delivered
   * as an update with old === object. 0 or absent disables it (trackers treat such updates as no-ops,
   * so it only matters for parity).
   */
  readonly configSyncPeriodMs?: number;
  /** Reflector timings; tests shrink them. */
  readonly timing?: Partial<ReflectorTiming>;
  /** LIST page size; default 500. */
  readonly pageSize?: number;
  readonly random?: () => number;
}

/**
 * The source's state for readiness and diagnostics: "never synced" is `synced: false`; "sync failing"
 * is a `fault` (after the first sync too: the proxy then serves its last known state).
 */
export interface ApiSourceStatus extends ApiHealthStatus {
  /** Every watched kind has delivered its first complete list. */
  readonly synced: boolean;
}

/** The api source plus introspection for the app (readiness) and tests. */
export interface ApiSource extends Source {
  /** True once every watched kind has delivered its first complete list. */
  hasSynced(): boolean;
  /** Synced or not, and the current fault (kind, operator message, error, since) if any. */
  status(): ApiSourceStatus;
  /** Resolves true when every kind has synced, false if stopped first. */
  waitForSync(): Promise<boolean>;
}

/**
 * Creates a Source backed by list+watch against the API server. Events of one kind arrive in server
 * order; kinds are independent. Each kind emits `{type:'synced', kind}` once, after its first list.
 */
export function createApiSource(opts: ApiSourceOptions): ApiSource {
  const log = opts.logger.child({ source: 'api' });
  let handler: SourceHandler | undefined;
  let stopped = false;
  let resyncTimer: NodeJS.Timeout | undefined;
  const health = new ApiHealth(log);
  const reflectors = watchedResources(opts.scope).map(
    (res) =>
      new Reflector({
        client: opts.connection,
        kind: res.kind,
        path: res.path,
        ...(res.fallbackPaths ? { fallbackPaths: res.fallbackPaths } : {}),
        ...(res.labelSelector !== undefined ? { labelSelector: res.labelSelector } : {}),
        ...(res.fieldSelector !== undefined ? { fieldSelector: res.fieldSelector } : {}),
        ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
        logger: log,
        health,
        ...(opts.timing ? { timing: opts.timing } : {}),
        ...(opts.random ? { random: opts.random } : {}),
        onEvent: (ev: ReflectorEvent) => {
          if (!stopped) handler?.(ev);
        },
      }),
  );

  return {
    start(h: SourceHandler): Promise<void> {
      if (handler) return Promise.reject(new Error('api source already started'));
      handler = h;
      log.info({ server: opts.connection.server, kinds: reflectors.length }, 'starting list/watch');
      for (const r of reflectors) r.start();
      const period = opts.configSyncPeriodMs ?? 0;
      if (period > 0) {
        resyncTimer = setInterval(() => {
          for (const r of reflectors) {
            if (!r.hasSynced()) continue;
            for (const o of r.items()) if (!stopped) handler?.({ type: 'update', old: o, object: o });
          }
        }, period);
      }
      return Promise.resolve();
    },
    async stop(): Promise<void> {
      stopped = true;
      if (resyncTimer) clearInterval(resyncTimer);
      await Promise.all(reflectors.map((r) => r.stop()));
    },
    hasSynced: () => reflectors.every((r) => r.hasSynced()),
    status: () => ({ synced: reflectors.every((r) => r.hasSynced()), ...health.status() }),
    async waitForSync(): Promise<boolean> {
      const all = await Promise.all(reflectors.map((r) => r.waitForSync()));
      return all.every(Boolean);
    },
  };
}
