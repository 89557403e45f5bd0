/**
 * The contract between the core and a proxy mode, and the registry of modes
 * (an interface plus a registry, as grpc-js does for load balancers).
 */
import type { DesiredState } from '../proxy/types.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { Logger } from '../observability/logger.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { EndpointHealth } from '../proxy/health-check.js';
import type { DriftFinding } from './drift.js';

import type { ProxyMode } from '../model/proxy-mode.js';
import type { Kind } from '../model/types.js';
import type { ProxyConfig } from '../config/types.js';

export type { ProxyMode };

/** What a sync reports back, for metrics and the runner. */
export interface SyncOutcome {
  /** Rule counts per table (iptables_total / iptables_last), when the mode has them. */
  readonly ruleCounts?: Readonly<Record<string, { total: number; written: number }>>;
}

/** One family's data plane. Created once; sync() is never called concurrently. */
export interface Proxier {
  /**
   * Programs the data plane to match `state`. `full` asks for a complete rewrite (first sync, after
   * a failure, periodically, after a topology change). Throws on failure; the runner retries with full=true.
   */
  sync(state: DesiredState, full: boolean): Promise<SyncOutcome>;
  /**
   * Optional: whether the kernel already holds rules this mode programmed (a restart), checked
   * cheaply before the first sync. When true (or when the check throws) the sync loop does not
   * program the priority Services alone first, since a sync of that small state would remove every
   * other Service's rules until the bulk sync lands. Absent means "nothing survives a restart".
   */
  hasProgrammedRules?(): Promise<boolean>;
  /**
   * Optional: reads back cheaply what the last successful sync wrote and returns every difference
   * (backends/drift.ts). Empty when nothing differs, or when the proxier does not know what it
   * wrote (before its first sync, after a failure: the next full sync rewrites everything anyway).
   * Never called during sync(). Must not touch other owners' objects.
   */
  checkDrift?(): Promise<readonly DriftFinding[]>;
  /**
   * Stops timers and listeners the proxier owns. Kernel modes leave their rules in place (they keep
   * working and survive a restart); userspace removes its portal rules, which would otherwise send
   * service traffic to closed sockets.
   */
  close(): Promise<void>;
}

export interface BackendDeps {
  readonly logger: Logger;
  readonly options: FamilyOptions;
  /**
   * Asks the runner for a full sync soon, outside the proxier's own sync() (e.g. iptables' canary
   * chain vanished because something flushed the tables). The composition root wires it to
   * SyncLoop.forceFullSync(). Optional: tests and one-shot callers may omit it.
   */
  readonly onNeedFullSync?: () => void;
  /** The daemon's metrics, for counters a mode owns (restore failures, conntrack reconciler). */
  readonly metrics?: ProxyMetrics;
  /** The mode's syncPeriod (ms): the interval of periodic checks a proxier runs itself (iptables canary). */
  readonly syncPeriodMs?: number;
  /**
   * --ipvs-health-check: the proxier hands it its TCP endpoints after each sync and programs the
   * unhealthy ones with weight 0 (IPVS), or skips them for new connections (userspace). Absent: no
   * health checking.
   */
  readonly health?: EndpointHealth;
  /**
   * One full collection of the daemon's heap (observability/memory.ts collectGarbage), for a
   * proxier that lets go of much of a long sync's memory as it goes (iptables' restores at scale).
   * Absent: never collects mid-sync.
   */
  readonly collectGarbage?: () => Promise<unknown>;
}

/**
 * What a render may know of the machine beyond the state (`kube-proxy render` knows none of it;
 * explain reads it, to render what the daemon programs here).
 */
export interface RenderMachine {
  /** Every address on the machine's interfaces, with the interface's name (IPVS NodePorts). */
  readonly localAddresses?: readonly { readonly iface: string; readonly address: string }[];
}

/** How often a mode syncs: upstream's per-mode syncPeriod and minSyncPeriod (ms). */
export interface SyncPeriods {
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  /**
   * How often the runner syncs with nothing queued (absent: hourly, as upstream's iptables and
   * nftables proxiers). Upstream's IPVS proxier syncs every syncPeriod, which is how an address
   * added to the node gets its NodePorts.
   */
  readonly periodicSyncMs?: number;
}

/**
 * A proxy mode, described in one registration (backends/<mode>/backend.ts): what it needs, what it
 * watches, how often it syncs, how it is configured, and its render/create/cleanup. The composition
 * root knows no mode by name; it asks the registry.
 */
export interface Backend {
  readonly mode: ProxyMode;
  /** True when the mode programs the kernel: the daemon then sets upstream's startup sysctls. */
  readonly kernel: boolean;
  /** Kinds the mode needs beyond Services, EndpointSlices and the Node (nftables: ServiceCIDR). */
  readonly watches: readonly Kind[];
  /** What the system must provide (tools on PATH, kernel features), as a line each: docs and --help. */
  readonly prerequisites: readonly string[];
  /** The mode's sync periods from the configuration (upstream reads the mode's own section). */
  syncPeriods(config: ProxyConfig): SyncPeriods;
  /** The backend configured for `config` (options beyond FamilyOptions, e.g. userspace's balancer). */
  fromConfig(config: ProxyConfig): Backend;
  /**
   * Pure: the text `kube-proxy render` prints for these per-family states (sorted, stable). With
   * `whole`, `states` are parts of those states (explain renders only the service ports a packet can
   * touch): choices that depend on the whole state (iptables' large-cluster mode) are taken from it.
   * `machine`, when given, holds the machine facts the daemon would use (see RenderMachine).
   */
  render(
    states: readonly DesiredState[],
    options: readonly FamilyOptions[],
    whole?: readonly DesiredState[],
    machine?: RenderMachine,
  ): string;
  /** Creates the proxier for one family. Fails with a clear message when the system cannot run the mode. */
  create(deps: BackendDeps): Promise<Proxier>;
  /** `--cleanup`: removes everything this mode ever created (best effort, all families). */
  cleanup(logger: Logger): Promise<void>;
  /**
   * Modes whose `--cleanup` must run after this one's: this mode's rules jump into chains those modes
   * also create and delete (IPVS into iptables mode's KUBE-MARK-MASQ), which are busy until ours go.
   */
  readonly cleanupBefore?: readonly ProxyMode[];
}

const registry = new Map<ProxyMode, Backend>();

/** Registers a backend; the composition root calls this for every built mode. */
export function registerBackend(b: Backend): void {
  registry.set(b.mode, b);
}

/** The backend for `mode`, or undefined when that mode is not built. */
export function getBackend(mode: ProxyMode): Backend | undefined {
  return registry.get(mode);
}

export function registeredModes(): ProxyMode[] {
  return [...registry.keys()].sort();
}
