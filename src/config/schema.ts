/**
 * The zod schemas of KubeProxyConfiguration v1alpha1 and v1alpha2 files. Strict like upstream's strict
 * decoder: an unknown field fails the parse, and decode.ts turns that into an error naming its path.
 */
import { z } from 'zod';

const str = z.string().nullish();
const bool = z.boolean().nullish();
const int = z.number().int().nullish();
const num = z.number().nullish();
const strList = z.array(z.string()).nullish();
/** metav1.Duration only unmarshals from a string. */
const dur = z.string({ error: 'expected a duration string such as "30s"' }).nullish();

const clientConnection = z
  .strictObject({ kubeconfig: str, acceptContentTypes: str, contentType: str, qps: num, burst: int })
  .nullish();
const logging = z
  .strictObject({
    format: str,
    flushFrequency: z.union([z.number(), z.string()]).nullish(),
    verbosity: int,
    vmodule: z.unknown().optional(),
    options: z.looseObject({}).nullish(),
  })
  .nullish();
const winkernel = z
  .strictObject({
    networkName: str,
    sourceVip: str,
    enableDSR: bool,
    rootHnsEndpointName: str,
    forwardHealthCheckVip: bool,
  })
  .nullish();
export const conntrackSchema = z
  .strictObject({
    maxPerCore: int,
    min: int,
    tcpEstablishedTimeout: dur,
    tcpCloseWaitTimeout: dur,
    tcpBeLiberal: bool,
    udpTimeout: dur,
    udpStreamTimeout: dur,
  })
  .nullish();
const common = {
  apiVersion: z.string(),
  kind: z.literal('KubeProxyConfiguration', { error: 'must be "KubeProxyConfiguration"' }),
  featureGates: z.record(z.string(), z.boolean()).nullish(),
  clientConnection,
  logging,
  hostnameOverride: str,
  bindAddressHardFail: bool,
  enableProfiling: bool,
  showHiddenMetricsForVersion: str,
  mode: str,
  winkernel,
  detectLocalMode: str,
  nodePortAddresses: strList,
  configSyncPeriod: dur,
  /**
   * Ours, not upstream's: kube-proxy-ts' own settings, in one extension field so that the rest of
   * the file stays upstream's. (Upstream's strict decoder rejects it: a file that sets it is ours.)
   */
  kubeProxyTs: z.strictObject({ priorityServices: strList }).nullish(),
};

export const v1alpha1Schema = z.strictObject({
  ...common,
  bindAddress: str,
  healthzBindAddress: str,
  metricsBindAddress: str,
  iptables: z
    .strictObject({
      masqueradeBit: int,
      masqueradeAll: bool,
      localhostNodePorts: bool,
      snatNodeInternalIP: bool,
      syncPeriod: dur,
      minSyncPeriod: dur,
    })
    .nullish(),
  ipvs: z
    .strictObject({
      syncPeriod: dur,
      minSyncPeriod: dur,
      scheduler: str,
      excludeCIDRs: strList,
      strictARP: bool,
      tcpTimeout: dur,
      tcpFinTimeout: dur,
      udpTimeout: dur,
    })
    .nullish(),
  nftables: z
    .strictObject({ masqueradeBit: int, masqueradeAll: bool, syncPeriod: dur, minSyncPeriod: dur })
    .nullish(),
  conntrack: conntrackSchema,
  detectLocal: z.strictObject({ bridgeInterface: str, interfaceNamePrefix: str }).nullish(),
  clusterCIDR: str,
  oomScoreAdj: int,
  portRange: str,
  /** Removed upstream with the userspace mode; still meaningful here. */
  udpIdleTimeout: dur,
  windowsRunAsService: bool,
});

export const v1alpha2Schema = z.strictObject({
  ...common,
  nodeIPOverride: strList,
  healthzBindAddresses: strList,
  healthzBindPort: int,
  metricsBindAddresses: strList,
  metricsBindPort: int,
  configHardFail: bool,
  syncPeriod: dur,
  minSyncPeriod: dur,
  linux: z.strictObject({ masqueradeAll: bool, oomScoreAdj: int, conntrack: conntrackSchema }).nullish(),
  windows: z.strictObject({ runAsService: bool }).nullish(),
  iptables: z.strictObject({ masqueradeBit: int, localhostNodePorts: bool }).nullish(),
  ipvs: z
    .strictObject({
      masqueradeBit: int,
      scheduler: str,
      excludeCIDRs: strList,
      strictARP: bool,
      tcpTimeout: dur,
      tcpFinTimeout: dur,
      udpTimeout: dur,
    })
    .nullish(),
  nftables: z.strictObject({ masqueradeBit: int }).nullish(),
  detectLocal: z
    .strictObject({ bridgeInterface: str, interfaceNamePrefix: str, clusterCIDRs: strList })
    .nullish(),
});

export type V1Alpha1 = z.infer<typeof v1alpha1Schema>;
export type V1Alpha2 = z.infer<typeof v1alpha2Schema>;
