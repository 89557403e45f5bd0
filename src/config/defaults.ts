/**
 * KubeProxyConfiguration defaults: upstream's SetDefaults_KubeProxyConfiguration for v1alpha1 (zero
 * durations, empty strings and null pointers get defaults), mode resolved to iptables, plus our own knobs.
 */
import type { ProxyConfig } from './types.js';
import { DEFAULT_HEALTH_CHECK } from '../model/extensions.js';

export const API_GROUP = 'kubeproxy.config.k8s.io';
export const V1ALPHA1 = `${API_GROUP}/v1alpha1`;
export const V1ALPHA2 = `${API_GROUP}/v1alpha2`;

export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** A config object whose fields can be assigned while it is being built. */
export type MutableProxyConfig = DeepMutable<ProxyConfig>;
type DeepMutable<T> = T extends readonly (infer U)[]
  ? DeepMutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: DeepMutable<T[K]> }
    : T;

/**
 * The defaults: upstream's v1alpha1 table (upstream pkg/proxy/apis/config/v1alpha1/defaults.go), mode resolved to iptables, plus our own
 * knobs. A fresh object each call.
 */
export function defaultProxyConfig(): MutableProxyConfig {
  return {
    bindAddress: '0.0.0.0',
    bindAddressHardFail: false,
    healthzBindAddress: `0.0.0.0:${HEALTHZ_PORT}`,
    metricsBindAddress: `127.0.0.1:${METRICS_PORT}`,
    enableProfiling: false,
    showHiddenMetricsForVersion: '',
    clientConnection: { kubeconfig: '', acceptContentTypes: '', contentType: PROTOBUF, qps: 5, burst: 10 },
    master: '',
    hostnameOverride: '',
    featureGates: {},
    mode: 'iptables',
    iptables: {
      masqueradeBit: 14,
      masqueradeAll: false,
      localhostNodePorts: true,
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 1_000,
    },
    ipvs: {
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 0,
      scheduler: '',
      excludeCIDRs: [],
      strictARP: false,
      tcpTimeoutMs: 0,
      tcpFinTimeoutMs: 0,
      udpTimeoutMs: 0,
    },
    nftables: { masqueradeBit: 14, masqueradeAll: false, syncPeriodMs: 30_000, minSyncPeriodMs: 1_000 },
    conntrack: {
      maxPerCore: 32_768,
      min: 131_072,
      tcpEstablishedTimeoutMs: 24 * 3_600_000,
      tcpCloseWaitTimeoutMs: 3_600_000,
      tcpBeLiberal: false,
      udpTimeoutMs: 0,
      udpStreamTimeoutMs: 0,
    },
    oomScoreAdj: -999,
    configSyncPeriodMs: 15 * 60_000,
    portRange: '',
    clusterCIDRs: [],
    detectLocalMode: '',
    detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
    nodePortAddresses: [],
    udpIdleTimeoutMs: 250,
    logging: { verbosity: 0, format: 'text' },
    manifests: '',
    manifestsMaxFileSize: 8 * 1024 * 1024,
    serviceClusterIPRange: ['10.96.0.0/12'],
    serviceNodePortRange: { min: 30000, max: 32767 },
    userspaceBalancer: 'round-robin',
    userspacePortals: true,
    priorityServices: ['kube-system/kube-dns'],
    ipvsHealthCheck: { mode: '', ...DEFAULT_HEALTH_CHECK },
  };
}
