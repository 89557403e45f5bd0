/**
 * The daemon (upstream's ProxyServer): create() turns the command line into everything the proxy
 * needs without touching the system (the configured backend, the source and its API client, metrics
 * and health objects), so a configuration error fails before any sysctl, listener or rule changes;
 * run() then sets the startup sysctls, opens the healthz and metrics listeners, starts the source
 * and, once the initial lists are in, one proxier per IP family under the sync loop; stop() undoes run().
 */
import type { CommandLine, ProxyConfig } from '../config/types.js';
import { resolveNodeName } from '../config/load.js';
import type { Backend, Proxier, SyncPeriods } from '../backends/backend.js';
import type { IPFamily } from '../model/types.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { Logger } from '../observability/logger.js';
import { createMetrics, type ProxyMetrics } from '../observability/metrics.js';
import { createMetricsServer } from '../observability/metrics-server.js';
import { ProxyHealthServer } from '../observability/proxy-health.js';
import { ServiceHealthServer } from '../observability/service-health.js';
import { syncObservabilityHooks } from '../observability/sync-metrics.js';
import { StateTracker } from '../proxy/state-tracker.js';
import type { Source, SourceEvent, SourceScope } from '../sources/source.js';
import { KpError } from '../errors.js';
import { EventRecorder, healthCheckListenEvent, startupEvents } from '../k8s/events.js';
import { KUBERNETES_COMPAT, VERSION } from '../version.js';
import { osHostname, readInterfaceAddresses, readLocalAddresses } from './machine.js';
import { ExplainService } from './explain-service.js';
import { SyncLoop } from './sync-loop.js';
import { applyLinuxSetup } from './linux-setup.js';
import { prioritySet } from '../proxy/priority.js';
import { HealthChecker } from './health-checker.js';
import {
  BASE_KINDS,
  backendFor,
  collectUntilSynced,
  createSource,
  detectFamilies,
  familyOptions,
} from './startup.js';
import { collectGarbage, GarbageSchedule } from '../observability/memory.js';

/** The first retry of a failed sync (then doubling, at most syncPeriod). */
export const SYNC_RETRY_INITIAL_MS = 1000;

/** A running daemon, as main.ts and the tests hold it. */
export interface Daemon {
  /** Resolves once the data plane has been programmed for the first time; rejects if startup failed. */
  readonly firstSync: Promise<void>;
  stop(): Promise<void>;
}

export class ProxyServer implements Daemon {
  readonly firstSync: Promise<void>;
  private resolveFirst!: () => void;
  private rejectFirst!: (err: unknown) => void;
  private readonly health: ProxyHealthServer;
  private readonly metricsServer: ReturnType<typeof createMetricsServer>;
  /** /debug/explain: answers from the last synced state of each family. */
  private readonly explain: ExplainService;
  private readonly closers: (() => Promise<void> | void)[] = [];
  private readonly proxiers = new Map<IPFamily, Proxier>();
  private readonly checkers: HealthChecker[] = [];
  private loop: SyncLoop | undefined;
  private serviceHealth: ServiceHealthServer | undefined;
  private stopped = false;
  /** Events go where upstream sends them; only with an API server (the manifests source has none). */
  private recorder: EventRecorder | undefined;

  private constructor(
    private readonly config: ProxyConfig,
    private readonly logger: Logger,
    private readonly backend: Backend,
    private readonly nodeName: string,
    private readonly periods: SyncPeriods,
    private readonly metrics: ProxyMetrics,
    private readonly source: Source,
    closeSource: () => void,
    flagValues: Readonly<Record<string, string>> = {},
  ) {
    this.firstSync = new Promise<void>((res, rej) => {
      this.resolveFirst = res;
      this.rejectFirst = rej;
    });
    // An unobserved rejection must not crash the process before run()'s caller attaches a handler.
    this.firstSync.catch(() => undefined);
    this.health = new ProxyHealthServer({ healthTimeoutMs: 2 * periods.syncPeriodMs, metrics, logger });
    this.explain = new ExplainService(backend, readInterfaceAddresses(), readLocalAddresses);
    this.metricsServer = createMetricsServer(metrics.registry, {
      proxyMode: config.mode,
      configz: config,
      logger,
      explain: (q) => this.explain.handle(q),
      enableProfiling: config.enableProfiling,
      // The z-pages are alpha upstream and off unless their gates are on; so here.
      ...(config.featureGates.ComponentFlagz === true ? { flagz: flagValues } : {}),
      ...(config.featureGates.ComponentStatusz === true
        ? {
            statusz: {
              started: new Date(Date.now() - process.uptime() * 1000),
              binaryVersion: `${VERSION} (kube-proxy-ts)`,
              emulationVersion: KUBERNETES_COMPAT.replace(/^v/, ''),
              runtimeVersion: process.version,
            },
          }
        : {}),
    });
    this.closers.push(closeSource);
  }

  /**
   * Everything that can fail on configuration, checked and built before the system is touched: the
   * mode, the node name, and the source (a kubeconfig that cannot be read or used fails here).
   */
  static async create(cmd: CommandLine, logger: Logger): Promise<ProxyServer> {
    const config = cmd.config;
    const backend = backendFor(config);
    const nodeName = resolveNodeName(config, osHostname());
    const periods = backend.syncPeriods(config);
    const scope: SourceScope = { nodeName, serviceCIDRs: backend.watches.includes('ServiceCIDR') };
    const { source, close, client } = await createSource(config, scope, logger, {
      enforceServiceClusterIPRange: cmd.explicitFlags.has('service-cluster-ip-range'),
    });
    const metrics = createMetrics({ mode: config.mode });
    const server = new ProxyServer(
      config,
      logger,
      backend,
      nodeName,
      periods,
      metrics,
      source,
      close,
      cmd.flagValues,
    );
    if (client) server.recorder = new EventRecorder(client, nodeName, logger);
    return server;
  }

  /** Changes the system (sysctls, listeners) and starts the source and, once it has synced, the proxiers. */
  async run(): Promise<void> {
    const { config, logger, backend } = this;
    logger.info(
      {
        mode: config.mode,
        nodeName: this.nodeName,
        source: config.manifests ? `manifests ${config.manifests}` : 'api',
      },
      'starting kube-proxy-ts',
    );
    for (const ev of startupEvents(config.mode, this.nodeName)) void this.recorder?.record(ev);
    if (backend.kernel) applyLinuxSetup(config, logger);
    await this.listen('healthz server', config.healthzBindAddress, (a) => this.health.listen(a));
    this.closers.push(() => this.health.close());
    await this.listen('metrics server', config.metricsBindAddress, (a) => this.metricsServer.listen(a));
    this.closers.push(() => this.metricsServer.close());
    // ServiceCIDRs are not awaited: a cluster without the API would block startup forever; they
    // flow in whenever they arrive and the next sync uses them.
    const { ready, route } = collectUntilSynced(this.source, BASE_KINDS);
    // A startup failure (no data-plane tool, unreadable manifests folder) is fatal: firstSync rejects.
    this.startProxying(ready, route).catch((err: unknown) => {
      this.rejectFirst(err);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.checkers) c.stop();
    await this.source.stop();
    await this.loop?.stop();
    for (const p of this.proxiers.values()) await p.close();
    await this.serviceHealth?.close();
    for (const c of this.closers.reverse()) await c();
  }

  private async listen(what: string, addr: string, fn: (a: string) => Promise<unknown>): Promise<void> {
    if (addr === '') return;
    try {
      await fn(addr);
      this.logger.info({ address: addr }, `${what} listening`);
    } catch (err) {
      const msg = `${what} cannot listen on ${addr}: ${err instanceof Error ? err.message : String(err)}`;
      if (this.config.bindAddressHardFail) throw new KpError('KP_ERR_LISTEN', msg, { cause: err });
      this.logger.error(msg);
    }
  }

  private async startProxying(
    ready: Promise<SourceEvent[]>,
    route: (h: (ev: SourceEvent) => void) => void,
  ): Promise<void> {
    const startedAt = Date.now();
    const { config, logger, backend, nodeName, metrics, health } = this;
    const events = await ready;
    if (this.stopped) return;
    // The probe tracker lives in its own function: a closure below (onEvent, the hooks) would otherwise
    // keep it, a second copy of every Service and slice index, for the daemon's life.
    const { families, optionsByFamily, podCIDRs } = probeState(events, config, nodeName);
    const tracker = new StateTracker({
      families,
      nodeName,
      bindAddress: config.bindAddress,
      waitForNode: true,
    });
    const hc = config.ipvsHealthCheck;
    for (const f of families) {
      // Only modes that hand the checker their endpoints (ipvs, userspace) get probes; the others never set targets.
      const checker =
        hc.mode === 'tcp'
          ? new HealthChecker({
              family: f,
              options: hc,
              logger: logger.child({ family: f }),
              metrics,
              // A flipped real server is re-weighted by a full sync (health changes are rare).
              onChange: () => this.loop?.forceFullSync(),
            })
          : undefined;
      if (checker) this.checkers.push(checker);
      this.proxiers.set(
        f,
        await backend.create({
          logger: logger.child({ family: f }),
          options: optionsByFamily.get(f)!,
          metrics,
          syncPeriodMs: this.periods.syncPeriodMs,
          onNeedFullSync: () => this.loop?.forceFullSync(),
          collectGarbage,
          ...(checker ? { health: checker } : {}),
        }),
      );
    }
    const npa = [...optionsByFamily.values()];
    const hcAddresses = npa.some((o) => o.nodePortAddresses.matchAll)
      ? []
      : npa.flatMap((o) => o.nodePortAddresses.ips);
    const serviceHealth = new ServiceHealthServer({
      addresses: hcAddresses,
      proxyHealthy: () => health.health().healthy,
      logger,
      nodeName,
      onListenError: (e) => {
        void this.recorder?.record(healthCheckListenEvent(e.service, e.message));
      },
    });
    this.serviceHealth = serviceHealth;
    const hooks = syncObservabilityHooks({
      metrics,
      health,
      serviceHealth,
      logger,
      startedAt,
      afterSync: () => {
        this.resolveFirst();
      },
    });
    const observed = hooks.synced;
    // userspace mode relays connections on this thread: no full collection (a pause of up to seconds
    // at 10k) after partial syncs there, only after full syncs.
    const gc = new GarbageSchedule(config.mode === 'userspace' ? Infinity : undefined);
    hooks.synced = (r) => {
      observed?.(r);
      this.explain.synced(r.state, optionsByFamily.get(r.family)!);
      // A full sync's transients are garbage now: collect them rather than let the heap sit on them;
      // under churn, once a minute at most, less often when a collection is slow (observability/memory.ts).
      if (gc.afterSync(r.full, r.at)) {
        const t0 = performance.now();
        void collectGarbage().then(() => {
          gc.took(performance.now() - t0);
        });
      }
    };
    const loop = new SyncLoop(
      tracker,
      this.proxiers,
      {
        ...this.periods,
        priorityServices: prioritySet(config.priorityServices),
        driftCheckPeriodMs: this.periods.syncPeriodMs,
        // Sooner than upstream's one retry per syncPeriod: a transient failure (the xtables lock, a
        // userspace port still held) heals in a second; a persistent one backs off to syncPeriod.
        retryBackoffInitialMs: SYNC_RETRY_INITIAL_MS,
      },
      hooks,
      logger,
    );
    this.loop = loop;
    let lastPodCIDRs = podCIDRs;
    const onEvent = (ev: SourceEvent): void => {
      loop.handleEvent(ev);
      if (ev.type !== 'synced' && ev.object.kind === 'Node') {
        const node = tracker.currentNode();
        health.syncNode(node);
        const cidrs = JSON.stringify(node?.podCIDRs ?? []);
        if (config.detectLocalMode === 'NodeCIDR' && cidrs !== lastPodCIDRs) {
          // Upstream exits so that the proxier restarts with the new detector; we rebuild nothing live.
          logger.error(
            { old: lastPodCIDRs, new: cidrs },
            'the node pod CIDRs changed with detect-local-mode=NodeCIDR; restart kube-proxy to apply',
          );
          lastPodCIDRs = cidrs;
        }
        if (tracker.topologyChanged(families[0]!)) loop.forceFullSync();
      }
    };
    for (const ev of events) loop.handleEvent(ev);
    health.syncNode(tracker.currentNode());
    route(onEvent);
    loop.start();
  }
}

/** Creates and runs the proxy until stop(): ProxyServer.create, then run. */
export async function runDaemon(cmd: CommandLine, logger: Logger): Promise<Daemon> {
  const server = await ProxyServer.create(cmd, logger);
  await server.run();
  return server;
}

/**
 * What the initial events say before any tracker is kept: the IP families to proxy, each family's
 * options, and the node's pod CIDRs (JSON, for change detection). The probe tracker is dropped on return.
 */
function probeState(
  events: readonly SourceEvent[],
  config: ProxyConfig,
  nodeName: string,
): { families: IPFamily[]; optionsByFamily: Map<IPFamily, FamilyOptions>; podCIDRs: string } {
  const probe = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName, bindAddress: config.bindAddress });
  for (const ev of events) probe.onEvent(ev);
  const families = detectFamilies(probe);
  const interfaceAddresses = readInterfaceAddresses();
  const optionsByFamily = new Map<IPFamily, FamilyOptions>();
  for (const f of families) optionsByFamily.set(f, familyOptions(config, probe, f, interfaceAddresses));
  return { families, optionsByFamily, podCIDRs: JSON.stringify(probe.currentNode()?.podCIDRs ?? []) };
}
