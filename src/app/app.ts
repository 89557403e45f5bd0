/**
 * Composition root: wires a source, the state tracker, one proxier per IP family, the sync loop,
 * metrics and health servers. Also the one-shot commands (render, cleanup).
 */
import type { CommandLine, ProxyConfig } from '../config/types.js';
import { resolveNodeName } from '../config/load.js';
import { getBackend, registeredModes, type Backend, type Proxier } from '../backends/backend.js';
import type { IPFamily, Kind } from '../model/types.js';
import { familyOfValid } from '../net/ip.js';
import type { Logger } from '../observability/logger.js';
import { createMetrics, type ProxyMetrics } from '../observability/metrics.js';
import { createMetricsServer } from '../observability/metrics-server.js';
import { ProxyHealthServer } from '../observability/proxy-health.js';
import { ServiceHealthServer } from '../observability/service-health.js';
import { resolveFamilyOptions } from '../proxy/family-options.js';
import type { FamilyOptions } from '../proxy/options.js';
import { StateTracker } from '../proxy/state-tracker.js';
import type { Source, SourceEvent, SourceScope } from '../sources/source.js';
import { createManifestSource } from '../sources/manifest-source.js';
import { createApiSource } from '../sources/api-source.js';
import { ApiClient, loadConnectionSettings } from '../k8s/client.js';
import { osHostname, readInterfaceAddresses } from './machine.js';
import { SyncLoop, type SyncHooks } from './sync-loop.js';
import { applyLinuxSetup } from './linux-setup.js';
import { KpError, ModeUnavailableError } from '../errors.js';

/** The backend for the configured mode, configured; or a ModeUnavailableError that lists what is built. */
export function backendFor(config: ProxyConfig): Backend {
  const b = getBackend(config.mode);
  if (!b) {
    throw new ModeUnavailableError(
      `proxy mode "${config.mode}" is not built into this version of kube-proxy-ts; available modes: ${registeredModes().join(', ')}`,
    );
  }
  return b.fromConfig(config);
}

/** Creates the configured source (manifests when --manifests is set, else the API server). */
export async function createSource(
  config: ProxyConfig,
  scope: SourceScope,
  logger: Logger,
): Promise<{ source: Source; close: () => void }> {
  if (config.manifests !== '') {
    const source = createManifestSource({
      dir: config.manifests,
      scope,
      logger,
      serviceClusterIPRanges: config.serviceClusterIPRange,
      nodePortRange: config.serviceNodePortRange,
    });
    return { source, close: () => {} };
  }
  const settings = await loadConnectionSettings({
    kubeconfig: config.clientConnection.kubeconfig,
    master: config.master,
  });
  logger.info({ server: settings.server.href, origin: settings.origin }, 'connecting to the API server');
  const client = new ApiClient({
    settings,
    qps: config.clientConnection.qps,
    burst: config.clientConnection.burst,
  });
  const source = createApiSource({
    connection: client,
    scope,
    logger,
    configSyncPeriodMs: config.configSyncPeriodMs,
  });
  return {
    source,
    close: () => {
      client.close();
    },
  };
}

const BASE_KINDS: readonly Kind[] = ['Service', 'EndpointSlice', 'Node'];

/**
 * Starts `source` and collects events until every kind in `kinds` has synced. Returns the events (for
 * replay into a tracker) and a setter that routes later events elsewhere.
 */
function collectUntilSynced(
  source: Source,
  kinds: readonly Kind[],
): { ready: Promise<SourceEvent[]>; route: (h: (ev: SourceEvent) => void) => void } {
  const buffered: SourceEvent[] = [];
  const synced = new Set<Kind>();
  let target: ((ev: SourceEvent) => void) | undefined;
  let resolveReady!: (evs: SourceEvent[]) => void;
  let rejectReady!: (err: unknown) => void;
  const ready = new Promise<SourceEvent[]>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  let done = false;
  const handler = (ev: SourceEvent): void => {
    if (target) {
      target(ev);
      return;
    }
    buffered.push(ev);
    if (ev.type === 'synced') synced.add(ev.kind);
    if (!done && kinds.every((k) => synced.has(k))) {
      done = true;
      resolveReady(buffered);
    }
  };
  source.start(handler).catch((err: unknown) => {
    rejectReady(err);
  });
  return {
    ready,
    route: (h) => {
      target = h;
    },
  };
}

/**
 * The IP families to proxy: the primary node IP's family, plus the other family when the node has an
 * address of it (upstream runs a dual-stack metaproxier then).
 */
export function detectFamilies(tracker: StateTracker): IPFamily[] {
  const node = tracker.currentNode();
  const v4 = tracker.nodeIPs('IPv4')[0];
  const primary: IPFamily =
    v4 && v4 !== '127.0.0.1' ? 'IPv4' : tracker.nodeIPs('IPv6')[0] !== '::1' ? 'IPv6' : 'IPv4';
  const fams = new Set<IPFamily>([primary]);
  for (const a of node?.addresses ?? []) {
    if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && a.address) fams.add(familyOfValid(a.address));
  }
  return (['IPv4', 'IPv6'] as const).filter((f) => fams.has(f));
}

function familyOptions(
  config: ProxyConfig,
  tracker: StateTracker,
  family: IPFamily,
  interfaceAddresses: readonly string[],
): FamilyOptions {
  return resolveFamilyOptions(config, family, {
    interfaceAddresses,
    nodeIPs: tracker.nodeIPs(family),
    nodePodCIDRs: tracker.currentNode()?.podCIDRs ?? [],
    randomFully: true,
  });
}

/** `kube-proxy render`: prints what the daemon would program for the current input, then stops. */
export async function runRender(cmd: CommandLine, logger: Logger, write: (s: string) => void): Promise<void> {
  const config = cmd.config;
  const backend = backendFor(config);
  const nodeName = resolveNodeName(config, osHostname());
  const scope: SourceScope = { nodeName, serviceCIDRs: backend.watches.includes('ServiceCIDR') };
  const { source, close } = await createSource(config, scope, logger);
  const { ready } = collectUntilSynced(
    source,
    scope.serviceCIDRs ? [...BASE_KINDS, 'ServiceCIDR'] : BASE_KINDS,
  );
  const events = await ready;
  await source.stop();
  close();
  const probe = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName, bindAddress: config.bindAddress });
  for (const ev of events) probe.onEvent(ev);
  const families = detectFamilies(probe);
  const tracker = new StateTracker({ families, nodeName, bindAddress: config.bindAddress });
  for (const ev of events) tracker.onEvent(ev);
  const interfaceAddresses = readInterfaceAddresses();
  const states = families.map((f) => tracker.build(f));
  const options = families.map((f) => familyOptions(config, tracker, f, interfaceAddresses));
  write(backend.render(states, options));
}

/** `kube-proxy --cleanup`: every built mode removes what it created (upstream cleans all modes). */
export async function runCleanup(logger: Logger): Promise<boolean> {
  let ok = true;
  for (const mode of registeredModes()) {
    try {
      await getBackend(mode)!.cleanup(logger);
    } catch (err) {
      ok = false;
      logger.error({ mode, err }, 'cleanup failed');
    }
  }
  return ok;
}

function metricsHooks(
  metrics: ProxyMetrics,
  health: ProxyHealthServer,
  serviceHealth: ServiceHealthServer,
  logger: Logger,
): SyncHooks {
  return {
    started: (families) => {
      for (const f of families) health.updated(f);
    },
    queued: (families) => {
      for (const f of families) {
        health.queuedUpdate(f);
        metrics.syncProxyRulesLastQueuedTimestamp.set({ ip_family: f }, Date.now() / 1000);
      }
    },
    changeRecorded: (kind) => {
      (kind === 'service' ? metrics.serviceChangesTotal : metrics.endpointChangesTotal).inc();
    },
    pending: (c) => {
      metrics.serviceChangesPending.set(c.services);
      metrics.endpointChangesPending.set(c.endpoints);
    },
    synced: (r) => {
      const labels = { ip_family: r.family };
      const secs = r.durationMs / 1000;
      metrics.syncProxyRulesDuration.observe(labels, secs);
      (r.full ? metrics.syncFullProxyRulesDuration : metrics.syncPartialProxyRulesDuration).observe(
        labels,
        secs,
      );
      metrics.syncProxyRulesLastTimestamp.set(labels, r.at / 1000);
      for (const t of r.state.lastChangeTriggerTimes) {
        if (r.at >= t) metrics.networkProgrammingDuration.observe(labels, (r.at - t) / 1000);
      }
      metrics.noLocalEndpointsTotal.set(
        { ...labels, traffic_policy: 'internal' },
        r.state.noLocalEndpoints.internal,
      );
      metrics.noLocalEndpointsTotal.set(
        { ...labels, traffic_policy: 'external' },
        r.state.noLocalEndpoints.external,
      );
      for (const [table, c] of Object.entries(r.outcome.ruleCounts ?? {})) {
        metrics.iptablesRulesTotal.set({ ...labels, table }, c.total);
        metrics.iptablesRulesLastSync.set({ ...labels, table }, c.written);
      }
      health.updated(r.family);
      // Counts apply to services the server knows, so set them once the listeners are in place.
      // Copy first: the state's maps are live and change with the next build.
      const counts = new Map(r.state.localReadyEndpoints);
      serviceHealth.syncServices(new Map(r.state.healthCheckNodePorts)).then(
        () => {
          serviceHealth.syncEndpoints(counts);
        },
        (err: unknown) => {
          logger.error({ err }, 'service health check servers');
        },
      );
    },
  };
}

export interface Daemon {
  /** Resolves once the data plane has been programmed for the first time; rejects if startup failed. */
  readonly firstSync: Promise<void>;
  stop(): Promise<void>;
}

/** Runs the proxy until stop(). */
export async function runDaemon(cmd: CommandLine, logger: Logger): Promise<Daemon> {
  const config = cmd.config;
  const backend = backendFor(config);
  const nodeName = resolveNodeName(config, osHostname());
  const { syncPeriodMs, minSyncPeriodMs } = backend.syncPeriods(config);
  logger.info(
    { mode: config.mode, nodeName, source: config.manifests ? `manifests ${config.manifests}` : 'api' },
    'starting kube-proxy-ts',
  );

  if (backend.kernel) applyLinuxSetup(config, logger);
  const metrics = createMetrics({ mode: config.mode });
  const health = new ProxyHealthServer({ healthTimeoutMs: 2 * syncPeriodMs, metrics, logger });
  const metricsServer = createMetricsServer(metrics.registry, {
    proxyMode: config.mode,
    configz: config,
    logger,
  });
  const closers: (() => Promise<void> | void)[] = [];
  const listen = async (what: string, addr: string, fn: (a: string) => Promise<unknown>): Promise<void> => {
    if (addr === '') return;
    try {
      await fn(addr);
      logger.info({ address: addr }, `${what} listening`);
    } catch (err) {
      const msg = `${what} cannot listen on ${addr}: ${err instanceof Error ? err.message : String(err)}`;
      if (config.bindAddressHardFail) throw new KpError('KP_ERR_LISTEN', msg, { cause: err });
      logger.error(msg);
    }
  };
  await listen('healthz server', config.healthzBindAddress, (a) => health.listen(a));
  closers.push(() => health.close());
  await listen('metrics server', config.metricsBindAddress, (a) => metricsServer.listen(a));
  closers.push(() => metricsServer.close());

  const scope: SourceScope = { nodeName, serviceCIDRs: backend.watches.includes('ServiceCIDR') };
  const { source, close } = await createSource(config, scope, logger);
  closers.push(close);
  // ServiceCIDRs are not awaited: a cluster without the API would block startup forever; they
  // flow in whenever they arrive and the next sync uses them.
  const { ready, route } = collectUntilSynced(source, BASE_KINDS);

  let loop: SyncLoop | undefined;
  let serviceHealth: ServiceHealthServer | undefined;
  const proxiers = new Map<IPFamily, Proxier>();
  let resolveFirst!: () => void;
  let rejectFirst!: (err: unknown) => void;
  const firstSync = new Promise<void>((res, rej) => {
    resolveFirst = res;
    rejectFirst = rej;
  });
  let stopped = false;

  const startup = (async () => {
    const events = await ready;
    if (stopped) return;
    const probe = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName, bindAddress: config.bindAddress });
    for (const ev of events) probe.onEvent(ev);
    const families = detectFamilies(probe);
    const tracker = new StateTracker({
      families,
      nodeName,
      bindAddress: config.bindAddress,
      waitForNode: true,
    });
    const interfaceAddresses = readInterfaceAddresses();
    const optionsByFamily = new Map(
      families.map((f) => [f, familyOptions(config, probe, f, interfaceAddresses)] as const),
    );
    for (const f of families) {
      proxiers.set(
        f,
        await backend.create({
          logger: logger.child({ family: f }),
          options: optionsByFamily.get(f)!,
          metrics,
          syncPeriodMs,
          onNeedFullSync: () => loop?.forceFullSync(),
        }),
      );
    }
    const npa = [...optionsByFamily.values()];
    const hcAddresses = npa.some((o) => o.nodePortAddresses.matchAll)
      ? []
      : npa.flatMap((o) => o.nodePortAddresses.ips);
    serviceHealth = new ServiceHealthServer({
      addresses: hcAddresses,
      proxyHealthy: () => health.health().healthy,
      logger,
      nodeName,
    });
    const hooks = metricsHooks(metrics, health, serviceHealth, logger);
    const userSynced = hooks.synced;
    let first = true;
    hooks.synced = (r) => {
      userSynced?.(r);
      if (first) {
        first = false;
        resolveFirst();
      }
    };
    loop = new SyncLoop(tracker, proxiers, { syncPeriodMs, minSyncPeriodMs }, hooks, logger);
    const l = loop;
    let lastPodCIDRs = JSON.stringify(probe.currentNode()?.podCIDRs ?? []);
    const onEvent = (ev: SourceEvent): void => {
      l.handleEvent(ev);
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
        if (tracker.topologyChanged(families[0]!)) l.forceFullSync();
      }
    };
    for (const ev of events) l.handleEvent(ev);
    health.syncNode(tracker.currentNode());
    route(onEvent);
    l.start();
  })();
  // A startup failure (no data-plane tool, unreadable manifests folder) is fatal: firstSync rejects.
  startup.catch((err: unknown) => {
    rejectFirst(err);
  });

  return {
    firstSync,
    stop: async () => {
      stopped = true;
      await source.stop();
      await loop?.stop();
      for (const p of proxiers.values()) await p.close();
      await serviceHealth?.close();
      for (const c of closers.reverse()) await c();
    },
  };
}
