/**
 * The proxy health server (upstream pkg/proxy/healthcheck/proxy_health.go): per-family sync
 * freshness, node eligibility, and the /healthz and /livez handlers on healthzBindAddress.
 *
 * Health rule: a family is unhealthy when it has a queued update (queuedUpdate without a later
 * updated) older than healthTimeout. Only families that have called updated() at least once are
 * judged, as upstream's loop runs over the last-updated map; proxiers call updated() once when
 * their sync loop starts, so a proxier whose first sync never succeeds still goes unhealthy.
 *
 * /readyz (ours, not upstream's) answers whether the data plane is programmed: see readiness.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IPFamily, Node } from '../model/types.js';
import { TAINT_TO_BE_DELETED } from '../model/types.js';
import type { Logger } from './logger.js';
import type { ProxyMetrics } from './metrics.js';
import {
  type Clock,
  type GoInstant,
  ZERO_GO_TIME,
  formatGoTime,
  formatRFC3339Nano,
  goTimeAfter,
  goTimeSubMs,
  realClock,
} from './go-time.js';
import { closeHttp, listenHttp, notFound, parseHostPort, reply, requestPath } from './http-util.js';
import { KpError } from '../errors.js';
import { ReadinessTracker, readinessBody, type Readiness } from './readiness.js';

/**
 * Response body style.
 * - `json` (upstream ≥ 1.33, PR #129271): `json.Marshal` of ProxyHealth:
 *   `{"lastUpdated":"<RFC3339Nano>","currentTime":"…","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"…","healthy":true}}}`
 *   (`nodeEligible` only on /healthz; `status` omitted when no family has updated yet).
 * - `legacy` (≤ 1.32): `{"lastUpdated": "<Go Time.String()>","currentTime": "…", "nodeEligible": true}`,
 *   and /livez without nodeEligible.
 */
export type HealthBodyFormat = 'json' | 'legacy';

/** One family's view, as upstream's ProxierHealth. */
export interface FamilyHealth {
  readonly lastUpdated: GoInstant;
  readonly healthy: boolean;
}

/** The overall view, as upstream's ProxyHealth (without node eligibility). */
export interface ProxyHealth {
  readonly healthy: boolean;
  /** The most recent updated() time over all families (zero time when none). */
  readonly lastUpdated: GoInstant;
  readonly currentTime: GoInstant;
  /** Per family, in IPv4, IPv6 order. */
  readonly status: ReadonlyMap<IPFamily, FamilyHealth>;
}

export interface ProxyHealthOptions {
  /** Upstream: 2 × syncPeriod. A queued update older than this makes the proxy unhealthy. */
  readonly healthTimeoutMs: number;
  /** Where /healthz and /livez responses are counted (kubeproxy_proxy_healthz_total / livez_total). */
  readonly metrics?: Pick<ProxyMetrics, 'proxyHealthzTotal' | 'proxyLivezTotal'>;
  readonly clock?: Clock;
  /** Default `json` (current upstream). */
  readonly bodyFormat?: HealthBodyFormat;
  readonly logger?: Logger;
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' } as const;
const FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];

/**
 * True when the node may receive load-balancer traffic: it has no deletionTimestamp and no
 * ToBeDeletedByClusterAutoscaler taint. An absent node (deleted, or not yet seen) is ineligible.
 */
export function isNodeEligible(node: Node | undefined): boolean {
  if (node === undefined) return false;
  if (node.meta.deletionTimestamp !== undefined && node.meta.deletionTimestamp !== '') return false;
  return !node.taints.some((t) => t.key === TAINT_TO_BE_DELETED);
}

/**
 * Health state plus its HTTP servers. State methods are cheap and synchronous; call them from the
 * sync runner. The same state can be served on several addresses (v1alpha2 healthz address lists).
 */
export class ProxyHealthServer {
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly format: HealthBodyFormat;
  private readonly lastUpdated = new Map<IPFamily, GoInstant>();
  private readonly oldestPendingQueued = new Map<IPFamily, GoInstant>();
  // Upstream treats the node as eligible until told otherwise, so a starting proxy is not drained.
  private eligible = true;
  private readonly servers = new Set<Server>();
  private readonly readinessTracker: ReadinessTracker;

  constructor(private readonly options: ProxyHealthOptions) {
    if (!(Number.isFinite(options.healthTimeoutMs) && options.healthTimeoutMs >= 0)) {
      throw new KpError(
        'KP_ERR_INVALID_ARGUMENT',
        `ProxyHealthServer: healthTimeoutMs must be a non-negative number, got ${String(options.healthTimeoutMs)}`,
      );
    }
    this.clock = options.clock ?? realClock;
    this.timeoutMs = options.healthTimeoutMs;
    this.format = options.bodyFormat ?? 'json';
    this.readinessTracker = new ReadinessTracker(this.timeoutMs, this.clock);
  }

  /** Records that `family` has changes waiting; keeps the time of the oldest one until updated(). */
  queuedUpdate(family: IPFamily): void {
    if (!this.oldestPendingQueued.has(family)) this.oldestPendingQueued.set(family, this.clock.now());
    this.readinessTracker.queued(family);
  }

  /** For /readyz: the families the proxy runs; each is unready until its first full sync. */
  expectFamilies(families: readonly IPFamily[]): void {
    this.readinessTracker.expect(families);
  }

  /**
   * For /readyz: a sync of `family` succeeded (`full`: the whole state was programmed). Does not
   * touch /healthz, which updated() drives with upstream's semantics.
   */
  syncSucceeded(family: IPFamily, full: boolean): void {
    this.readinessTracker.synced(family, full);
  }

  /** For /readyz: a sync of `family` failed with `err`. */
  syncFailed(family: IPFamily, err: unknown): void {
    this.readinessTracker.failed(family, err);
  }

  /** Whether every family is programmed and not behind for longer than the timeout (see readiness.ts). */
  readiness(): Readiness {
    return this.readinessTracker.readiness();
  }

  /** Records a successful sync of `family`: clears its pending update and sets lastUpdated = now. */
  updated(family: IPFamily): void {
    this.oldestPendingQueued.delete(family);
    this.lastUpdated.set(family, this.clock.now());
  }

  /** Sets node eligibility from the Node object (see isNodeEligible). */
  syncNode(node: Node | undefined): void {
    this.eligible = isNodeEligible(node);
  }

  /** Sets node eligibility directly. */
  setNodeEligible(eligible: boolean): void {
    this.eligible = eligible;
  }

  nodeEligible(): boolean {
    return this.eligible;
  }

  /** The health of every family that has synced at least once, and overall. */
  health(): ProxyHealth {
    const currentTime = this.clock.now();
    const status = new Map<IPFamily, FamilyHealth>();
    let lastUpdated = ZERO_GO_TIME;
    let healthy = true;
    for (const family of FAMILIES) {
      const last = this.lastUpdated.get(family);
      if (last === undefined) continue;
      if (goTimeAfter(last, lastUpdated)) lastUpdated = last;
      const pending = this.oldestPendingQueued.get(family);
      const late = pending !== undefined && goTimeSubMs(currentTime, pending) >= this.timeoutMs;
      if (late) healthy = false;
      status.set(family, { lastUpdated: last, healthy: !late });
    }
    return { healthy, lastUpdated, currentTime, status };
  }

  /** Proxy health ignoring the node (what the service health checks and /livez use). */
  isHealthy(): boolean {
    return this.health().healthy;
  }

  /** The request listener serving /healthz, /livez and /readyz (404 elsewhere); exposed for embedding and tests. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = requestPath(req.url);
    if (path === '/healthz') this.serve(res, true);
    else if (path === '/livez') this.serve(res, false);
    else if (path === '/readyz') {
      const r = this.readinessTracker.readiness();
      reply(res, r.ready ? 200 : 503, JSON_HEADERS, readinessBody(r));
    } else notFound(res);
  };

  private serve(res: ServerResponse, withNode: boolean): void {
    const h = this.health();
    const nodeEligible = this.eligible;
    const ok = h.healthy && (!withNode || nodeEligible);
    const code = ok ? 200 : 503;
    (withNode ? this.options.metrics?.proxyHealthzTotal : this.options.metrics?.proxyLivezTotal)?.inc({
      code: String(code),
    });
    // While healthy, upstream reports "now" as lastUpdated: old clients read that field as the
    // sync loop's heartbeat. Both styles take a fresh reading for it, as upstream does.
    const now = this.clock.now();
    const shown = withNode ? nodeEligible : undefined;
    const body = this.format === 'legacy' ? legacyBody(h, ok, now, shown) : jsonBody(h, ok, now, shown);
    reply(res, code, JSON_HEADERS, body);
  }

  /**
   * Starts serving on "host:port" (":port" or "0.0.0.0:port" for every address; port 0 picks one).
   * Resolves with the bound address; rejects with the bind error.
   */
  async listen(hostPort: string): Promise<AddressInfo> {
    const { host, port } = parseHostPort(hostPort);
    const { server, address } = await listenHttp(this.handle, host === '0.0.0.0' ? '' : host, port);
    this.servers.add(server);
    this.options.logger?.debug({ address: hostPort }, 'Starting healthz HTTP server');
    return address;
  }

  /** Stops every listener started by listen(). */
  async close(): Promise<void> {
    const all = [...this.servers];
    this.servers.clear();
    await Promise.all(all.map(closeHttp));
  }
}

function legacyBody(
  h: ProxyHealth,
  ok: boolean,
  currentTime: GoInstant,
  nodeEligible: boolean | undefined,
): string {
  // ≤1.32 reported the lastUpdated of the family that failed, not the newest one.
  let last = h.lastUpdated;
  for (const f of h.status.values()) {
    if (!f.healthy) {
      last = f.lastUpdated;
      break;
    }
  }
  // ≤1.32 took currentTime in the handler and, while healthy, reused it as lastUpdated.
  if (ok) last = currentTime;
  const q = (t: GoInstant): string => JSON.stringify(formatGoTime(t));
  return nodeEligible === undefined
    ? `{"lastUpdated": ${q(last)},"currentTime": ${q(currentTime)}}`
    : `{"lastUpdated": ${q(last)},"currentTime": ${q(currentTime)}, "nodeEligible": ${String(nodeEligible)}}`;
}

function jsonBody(h: ProxyHealth, ok: boolean, now: GoInstant, nodeEligible: boolean | undefined): string {
  const t = formatRFC3339Nano;
  // Key order follows upstream's struct field order; encoding/json sorts map keys (IPv4 < IPv6).
  const body: Record<string, unknown> = {
    lastUpdated: t(ok ? now : h.lastUpdated),
    currentTime: t(h.currentTime),
  };
  if (nodeEligible !== undefined) body.nodeEligible = nodeEligible;
  body.healthy = h.healthy;
  if (h.status.size > 0) {
    const status: Record<string, unknown> = {};
    for (const [family, f] of h.status)
      status[family] = { lastUpdated: t(f.lastUpdated), healthy: f.healthy };
    body.status = status;
  }
  return JSON.stringify(body);
}
