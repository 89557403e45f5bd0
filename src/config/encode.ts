/**
 * Writing a ProxyConfig back as a v1alpha1 KubeProxyConfiguration file (`--write-config-to`).
 */
import { stringify } from 'yaml';
import type { ProxyConfig } from './types.js';
import { formatGoDuration } from './duration.js';
import { V1ALPHA1 } from './defaults.js';

/** Recursively sorts object keys, as upstream's encoder (JSON, then YAML) does. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * The config as a v1alpha1 KubeProxyConfiguration YAML document (keys sorted, durations in Go form).
 * Parsing the output gives back the same file-representable fields, except where upstream's defaulting
 * rewrites zero values (an iptables/nftables minSyncPeriod of 0 and an empty, i.e. disabled, healthz
 * or metrics address read back as their defaults). Flag-only fields (--master, --manifests, our
 * allocation ranges, userspace balancer) are not written.
 */
export function renderConfigFile(c: ProxyConfig): string {
  const g = formatGoDuration;
  const doc: Record<string, unknown> = {
    apiVersion: V1ALPHA1,
    kind: 'KubeProxyConfiguration',
    bindAddress: c.bindAddress,
    bindAddressHardFail: c.bindAddressHardFail,
    clientConnection: { ...c.clientConnection },
    clusterCIDR: c.clusterCIDRs.join(','),
    configSyncPeriod: g(c.configSyncPeriodMs),
    conntrack: {
      maxPerCore: c.conntrack.maxPerCore,
      min: c.conntrack.min,
      tcpBeLiberal: c.conntrack.tcpBeLiberal,
      tcpCloseWaitTimeout: g(c.conntrack.tcpCloseWaitTimeoutMs),
      tcpEstablishedTimeout: g(c.conntrack.tcpEstablishedTimeoutMs),
      udpStreamTimeout: g(c.conntrack.udpStreamTimeoutMs),
      udpTimeout: g(c.conntrack.udpTimeoutMs),
    },
    detectLocal: { ...c.detectLocal },
    detectLocalMode: c.detectLocalMode,
    enableProfiling: c.enableProfiling,
    healthzBindAddress: c.healthzBindAddress,
    hostnameOverride: c.hostnameOverride,
    iptables: {
      localhostNodePorts: c.iptables.localhostNodePorts,
      masqueradeAll: c.iptables.masqueradeAll,
      masqueradeBit: c.iptables.masqueradeBit,
      minSyncPeriod: g(c.iptables.minSyncPeriodMs),
      syncPeriod: g(c.iptables.syncPeriodMs),
    },
    ipvs: {
      excludeCIDRs: c.ipvs.excludeCIDRs.length > 0 ? [...c.ipvs.excludeCIDRs] : null,
      minSyncPeriod: g(c.ipvs.minSyncPeriodMs),
      scheduler: c.ipvs.scheduler,
      strictARP: c.ipvs.strictARP,
      syncPeriod: g(c.ipvs.syncPeriodMs),
      tcpFinTimeout: g(c.ipvs.tcpFinTimeoutMs),
      tcpTimeout: g(c.ipvs.tcpTimeoutMs),
      udpTimeout: g(c.ipvs.udpTimeoutMs),
    },
    logging: {
      flushFrequency: '5s',
      format: c.logging.format,
      verbosity: c.logging.verbosity,
      ...(c.logging.splitStream
        ? {
            options: {
              text: { splitStream: c.logging.splitStream.text },
              json: { splitStream: c.logging.splitStream.json },
            },
          }
        : {}),
    },
    metricsBindAddress: c.metricsBindAddress,
    mode: c.mode,
    nftables: {
      masqueradeAll: c.nftables.masqueradeAll,
      masqueradeBit: c.nftables.masqueradeBit,
      minSyncPeriod: g(c.nftables.minSyncPeriodMs),
      syncPeriod: g(c.nftables.syncPeriodMs),
    },
    nodePortAddresses: c.nodePortAddresses.length > 0 ? [...c.nodePortAddresses] : null,
    oomScoreAdj: c.oomScoreAdj,
    portRange: c.portRange,
    showHiddenMetricsForVersion: c.showHiddenMetricsForVersion ?? '',
    winkernel: {
      enableDSR: false,
      forwardHealthCheckVip: false,
      networkName: '',
      rootHnsEndpointName: '',
      sourceVip: '',
    },
  };
  if (Object.keys(c.featureGates).length > 0) doc.featureGates = { ...c.featureGates };
  // Removed upstream with the userspace mode: written only when it matters, so upstream can read the rest.
  if (c.udpIdleTimeoutMs !== 250) doc.udpIdleTimeout = g(c.udpIdleTimeoutMs);
  return stringify(sortKeys(doc), { lineWidth: 0 });
}
