/**
 * The internal, defaulted and validated configuration (KubeProxyConfiguration v1alpha1 plus our own
 * knobs). Durations are in milliseconds. Produced by config/load.ts from flags and the --config file.
 */
import type { ProxyMode } from '../model/proxy-mode.js';

export interface ProxyConfig {
  readonly bindAddress: string;
  readonly bindAddressHardFail: boolean;
  /** "host:port"; "" disables. */
  readonly healthzBindAddress: string;
  /** "host:port"; "" disables. */
  readonly metricsBindAddress: string;
  readonly enableProfiling: boolean;
  /** --show-hidden-metrics-for-version ("1.33"); "" shows none. Optional so hand-built configs need not set it. */
  readonly showHiddenMetricsForVersion?: string;
  readonly clientConnection: {
    readonly kubeconfig: string;
    readonly acceptContentTypes: string;
    readonly contentType: string;
    readonly qps: number;
    readonly burst: number;
  };
  /** --master: API server URL. */
  readonly master: string;
  readonly hostnameOverride: string;
  readonly featureGates: Readonly<Record<string, boolean>>;
  /** Resolved: "" becomes iptables. */
  readonly mode: ProxyMode;
  readonly iptables: {
    readonly masqueradeBit: number;
    readonly masqueradeAll: boolean;
    readonly localhostNodePorts: boolean;
    readonly syncPeriodMs: number;
    readonly minSyncPeriodMs: number;
  };
  readonly ipvs: {
    readonly syncPeriodMs: number;
    readonly minSyncPeriodMs: number;
    readonly scheduler: string;
    readonly excludeCIDRs: readonly string[];
    readonly strictARP: boolean;
    readonly tcpTimeoutMs: number;
    readonly tcpFinTimeoutMs: number;
    readonly udpTimeoutMs: number;
  };
  readonly nftables: {
    readonly masqueradeBit: number;
    readonly masqueradeAll: boolean;
    readonly syncPeriodMs: number;
    readonly minSyncPeriodMs: number;
  };
  readonly conntrack: {
    readonly maxPerCore: number;
    readonly min: number;
    readonly tcpEstablishedTimeoutMs: number;
    readonly tcpCloseWaitTimeoutMs: number;
    readonly tcpBeLiberal: boolean;
    readonly udpTimeoutMs: number;
    readonly udpStreamTimeoutMs: number;
  };
  readonly oomScoreAdj: number;
  readonly configSyncPeriodMs: number;
  readonly portRange: string;
  /** Parsed from the comma-separated clusterCIDR. */
  readonly clusterCIDRs: readonly string[];
  readonly detectLocalMode: '' | 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
  readonly detectLocal: { readonly bridgeInterface: string; readonly interfaceNamePrefix: string };
  /** CIDRs, or ["primary"]; empty = all. */
  readonly nodePortAddresses: readonly string[];
  /** Userspace mode: UDP idle timeout. */
  readonly udpIdleTimeoutMs: number;
  readonly logging: {
    readonly verbosity: number;
    readonly format: string;
    /** --log-text-split-stream / --log-json-split-stream (or logging.options.<format>.splitStream). */
    readonly splitStream?: { readonly text: boolean; readonly json: boolean };
    /** --vmodule, validated (pattern=N,...); accepted with no effect (no per-file verbosity here). */
    readonly vmodule?: string;
  };

  // ---- our own (not in upstream's file; flags only) ----
  /** --manifests DIR: use the embedded manifests source instead of an API server. */
  readonly manifests: string;
  /** --manifests-max-file-size: bytes; a bigger manifest file is skipped (and named in an error). */
  readonly manifestsMaxFileSize: number;
  /** --service-cluster-ip-range for the manifests source's ClusterIP allocation (comma-separated, one per family). */
  readonly serviceClusterIPRange: readonly string[];
  /** --service-node-port-range "30000-32767". */
  readonly serviceNodePortRange: { readonly min: number; readonly max: number };
  /** Userspace mode: load-balancing algorithm for new connections. */
  readonly userspaceBalancer: 'round-robin' | 'least-connections';
  /** Userspace mode: program NAT portals when root and iptables allow (--userspace-portals). */
  readonly userspacePortals: boolean;
  /**
   * --priority-services: "ns/name" of Services programmed alone, before the bulk, on the first sync
   * (default/kubernetes always is; see proxy/priority.ts).
   */
  readonly priorityServices: readonly string[];
  /**
   * --ipvs-health-check=tcp and its -interval/-timeout/-fall/-rise: TCP probes of IPVS real servers
   * (ipvs mode); a failing one gets weight 0. mode "" is off.
   */
  readonly ipvsHealthCheck: {
    readonly mode: '' | 'tcp';
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly fall: number;
    readonly rise: number;
  };
}

/** Actions selected on the command line besides running the daemon. */
export interface CommandLine {
  readonly command:
    'run' | 'render' | 'explain' | 'version' | 'help' | 'cleanup' | 'write-config' | 'init-only';
  readonly config: ProxyConfig;
  readonly writeConfigTo: string;
  /** --config: the file the configuration came from ("" when none); the daemon exits when it changes. */
  readonly configPath?: string;
  /** Every flag's effective value as text (given, else its default), for /flagz. */
  readonly flagValues?: Readonly<Record<string, string>>;
  /** Names of the flags given explicitly (for messages). */
  readonly explicitFlags: ReadonlySet<string>;
  /** Warnings to log once the logger exists (deprecated or ignored flags/fields). */
  readonly warnings: readonly string[];
  /** `kube-proxy explain`: the flags as given (validated by the explain command, exit status 2). */
  readonly explain?: {
    readonly protocol: string | undefined;
    readonly source: string | undefined;
    readonly destination: string | undefined;
    readonly output: string;
    readonly live: boolean;
  };
}
