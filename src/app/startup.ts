/**
 * What the daemon and the one-shot commands (render, explain) share to get from a configuration to
 * per-family state: the configured backend and source, the initial event collection, the IP families
 * and each family's options. Touches nothing on the system.
 */
import type { ProxyConfig } from '../config/types.js';
import { getBackend, registeredModes, type Backend } from '../backends/backend.js';
import type { IPFamily, Kind } from '../model/types.js';
import { familyOfValid } from '../net/ip.js';
import type { Logger } from '../observability/logger.js';
import { resolveFamilyOptions } from '../proxy/family-options.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { StateTracker } from '../proxy/state-tracker.js';
import type { Source, SourceEvent, SourceScope } from '../sources/source.js';
import { createManifestSource } from '../sources/manifest-source.js';
import { createApiSource } from '../sources/api-source.js';
import { ApiClient, loadConnectionSettings } from '../k8s/client.js';
import { ModeUnavailableError } from '../errors.js';

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

/**
 * Creates the configured source (manifests when --manifests is set, else the API server).
 * `extra.enforceServiceClusterIPRange`: the manifests source refuses Services whose cluster IP is outside
 * --service-cluster-ip-range (pass true when the operator set that flag).
 */
export async function createSource(
  config: ProxyConfig,
  scope: SourceScope,
  logger: Logger,
  extra: { readonly enforceServiceClusterIPRange?: boolean } = {},
): Promise<{ source: Source; close: () => void; client?: ApiClient }> {
  if (config.manifests !== '') {
    const source = createManifestSource({
      dir: config.manifests,
      scope,
      logger,
      maxFileBytes: config.manifestsMaxFileSize,
      enforceServiceClusterIPRange: extra.enforceServiceClusterIPRange ?? false,
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
    client,
    close: () => {
      client.close();
    },
  };
}

/** What every mode watches; a backend's `watches` adds to it. */
export const BASE_KINDS: readonly Kind[] = ['Service', 'EndpointSlice', 'Node'];

/**
 * Starts `source` and collects events until every kind in `kinds` has synced. Returns the events (for
 * replay into a tracker) and a setter that routes later events elsewhere; calling it empties the
 * returned array, so replay the events first.
 */
export function collectUntilSynced(
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
      // Replayed by now; the source's handler would otherwise keep every initial event alive.
      buffered.length = 0;
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

/** One family's FamilyOptions from the configuration, the node and the machine's interface addresses. */
export function familyOptions(
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
