/**
 * KubeProxyConfiguration files (kubeproxy.config.k8s.io v1alpha1 and v1alpha2, YAML or JSON):
 * decoding, upstream's defaulting, validation, and writing a v1alpha1 file back.
 *
 * Decoding is strict like upstream's strict decoder: an unknown field is an error naming its path.
 * Defaulting follows upstream's SetDefaults_KubeProxyConfiguration: zero durations, empty strings
 * and null pointers get defaults, so `iptables.minSyncPeriod: 0s` in a v1alpha1 file means 1s (a known
 * upstream quirk; there is no way to ask for 0 there), while `conntrack.maxPerCore: 0` stays 0 (it is a
 * pointer upstream, and only null is defaulted).
 */
import { z } from 'zod';
import { parseDocument, stringify } from 'yaml';
import type { ProxyMode } from '../backends/backend.js';
import { ipFamily, parseCIDR, splitHostPort, joinHostPort } from '../net/ip.js';
import type { ProxyConfig } from './types.js';
import { ConfigError } from './errors.js';
import { parseGoDuration, formatGoDuration } from './duration.js';

export const API_GROUP = 'kubeproxy.config.k8s.io';
export const V1ALPHA1 = `${API_GROUP}/v1alpha1`;
export const V1ALPHA2 = `${API_GROUP}/v1alpha2`;

const HEALTHZ_PORT = 10256;
const METRICS_PORT = 10249;
const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** A config object whose fields can be assigned while it is being built. */
export type MutableProxyConfig = DeepMutable<ProxyConfig>;
type DeepMutable<T> = T extends readonly (infer U)[]
  ? DeepMutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: DeepMutable<T[K]> }
    : T;

/**
 * The defaults: upstream's v1alpha1 table (reference §9.1), mode resolved to iptables, plus our own
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
    serviceClusterIPRange: ['10.96.0.0/12'],
    serviceNodePortRange: { min: 30000, max: 32767 },
    userspaceBalancer: 'round-robin',
    userspacePortals: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Schemas. Every field is nullish: Go decodes null into the zero value, which defaulting then fills.

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
const conntrackSchema = z
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
};

const v1alpha1Schema = z.strictObject({
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

const v1alpha2Schema = z.strictObject({
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

type V1Alpha1 = z.infer<typeof v1alpha1Schema>;
type V1Alpha2 = z.infer<typeof v1alpha2Schema>;

// ---------------------------------------------------------------------------------------------

/** The result of reading a file: defaulted, mode resolved, not yet validated. */
export interface DecodedConfig {
  readonly apiVersion: string;
  readonly config: MutableProxyConfig;
  readonly warnings: readonly string[];
  /** Maps a v1alpha1 field path (as validateProxyConfig reports) to the path in this file's version. */
  readonly fieldPath: (v1alpha1Path: string) => string;
}

/** One invalid value, named by its v1alpha1 field path. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  readonly value: unknown;
}

const LABEL = 'KubeProxyConfiguration';

/** "KubeProxyConfiguration: iptables.masqueradeBit: must be between 0 and 31 (value: 40)". */
export function formatProblem(label: string, path: string, message: string, value: unknown): string {
  const v = value === undefined ? '' : ` (value: ${JSON.stringify(value)})`;
  return `${label}: ${path}: ${message}${v}`;
}

/**
 * The proxy mode a configured string selects: "" is iptables (upstream's Linux default). Throws a
 * RangeError for kernelspace (Windows only) and unknown modes. "state" is our debugging mode that
 * renders the desired state only.
 */
export function resolveProxyMode(raw: string): ProxyMode {
  switch (raw) {
    case '':
    case 'iptables':
      return 'iptables';
    case 'ipvs':
    case 'nftables':
    case 'userspace':
    case 'state':
      return raw;
    case 'kernelspace':
      throw new RangeError(
        'kernelspace is the Windows proxy mode and is not supported on Linux; use iptables, nftables, ipvs or userspace',
      );
    default:
      throw new RangeError('must be one of "", iptables, ipvs, nftables, userspace');
  }
}

/** Upstream's AppendPortIfNeeded: a bare IP gets the port; anything else is left for validation. */
function appendPortIfNeeded(addr: string, port: number): string {
  try {
    splitHostPort(addr);
    return addr;
  } catch {
    const f = ipFamily(addr);
    return f === undefined ? addr : joinHostPort(addr, port);
  }
}

function splitComma(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/**
 * Expands the nodePortAddresses keywords newer upstream releases accept ("localhost", "all") into
 * CIDRs, so consumers only ever see CIDRs or the single value "primary".
 */
export function expandNodePortAddresses(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const v = raw.trim();
    if (v === 'localhost') out.push('127.0.0.0/8', '::1/128');
    else if (v === 'all') out.push('0.0.0.0/0', '::/0');
    else if (v !== '') out.push(v);
  }
  return [...new Set(out)];
}

/** Reads the raw value at a path in a parsed document (for error messages). */
function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/**
 * Parses and defaults a KubeProxyConfiguration document (YAML or JSON; v1alpha1 or v1alpha2) without
 * validating values. Throws ConfigError for unreadable YAML, a wrong apiVersion/kind, an unknown field
 * (named by path), a value of the wrong type, a malformed duration, or an unsupported mode.
 */
export function decodeKubeProxyConfiguration(text: string): DecodedConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${LABEL}: cannot parse file: ${e.message}`));
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([
      `${LABEL}: the file must contain a mapping (got ${raw === null ? 'nothing' : typeof raw})`,
    ]);
  }
  const apiVersion = (raw as Record<string, unknown>).apiVersion;
  if (apiVersion !== V1ALPHA1 && apiVersion !== V1ALPHA2) {
    throw new ConfigError([
      formatProblem(LABEL, 'apiVersion', `must be ${V1ALPHA1} or ${V1ALPHA2}`, apiVersion ?? ''),
    ]);
  }
  const problems: string[] = [];
  const warnings: string[] = [];
  const duration = (
    path: string,
    v: string | null | undefined,
    dflt: number,
    zeroIsUnset: boolean,
  ): number => {
    if (v === null || v === undefined) return dflt;
    try {
      const ms = parseGoDuration(v);
      return ms === 0 && zeroIsUnset ? dflt : ms;
    } catch (e) {
      problems.push(formatProblem(LABEL, path, (e as Error).message, v));
      return dflt;
    }
  };
  let decoded: MutableProxyConfig;
  let rawMode: string;
  if (apiVersion === V1ALPHA1) {
    const f = checked(v1alpha1Schema, raw);
    decoded = fromV1alpha1(f, duration, warnings);
    rawMode = (f.mode ?? '').trim();
  } else {
    const f = checked(v1alpha2Schema, raw);
    decoded = fromV1alpha2(f, duration, warnings, problems);
    rawMode = (f.mode ?? '').trim();
  }
  try {
    decoded.mode = resolveProxyMode(rawMode);
  } catch (e) {
    problems.push(formatProblem(LABEL, 'mode', (e as Error).message, rawMode));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    apiVersion,
    config: decoded,
    warnings,
    fieldPath: apiVersion === V1ALPHA1 ? (p) => p : v1alpha2Path,
  };
}

/** Validates `raw` against a schema; throws ConfigError naming unknown fields and mistyped values. */
function checked<T>(schema: z.ZodType<T>, raw: unknown): T {
  const res = schema.safeParse(raw);
  if (res.success) return res.data;
  const problems: string[] = [];
  for (const issue of res.error.issues) {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys)
        problems.push(`${LABEL}: unknown field ${JSON.stringify([...base, k].join('.'))}`);
    } else {
      problems.push(
        formatProblem(LABEL, base.join('.') || '(root)', issue.message, valueAt(raw, issue.path)),
      );
    }
  }
  throw new ConfigError(problems);
}

type DurationReader = (
  path: string,
  v: string | null | undefined,
  dflt: number,
  zeroIsUnset: boolean,
) => number;

function applyCommon(c: MutableProxyConfig, f: V1Alpha1 | V1Alpha2, duration: DurationReader): void {
  c.featureGates = { ...(f.featureGates ?? {}) };
  const cc = f.clientConnection ?? {};
  c.clientConnection = {
    kubeconfig: cc.kubeconfig ?? '',
    acceptContentTypes: cc.acceptContentTypes ?? '',
    contentType: cc.contentType || PROTOBUF,
    qps: cc.qps || 5,
    burst: cc.burst || 10,
  };
  c.logging = { verbosity: f.logging?.verbosity ?? 0, format: f.logging?.format || 'text' };
  c.hostnameOverride = f.hostnameOverride ?? '';
  c.bindAddressHardFail = f.bindAddressHardFail ?? false;
  c.enableProfiling = f.enableProfiling ?? false;
  c.showHiddenMetricsForVersion = f.showHiddenMetricsForVersion ?? '';
  c.detectLocalMode = (f.detectLocalMode ?? '') as MutableProxyConfig['detectLocalMode'];
  c.nodePortAddresses = expandNodePortAddresses(f.nodePortAddresses ?? []);
  c.configSyncPeriodMs = duration('configSyncPeriod', f.configSyncPeriod, 15 * 60_000, true);
}

function conntrackFrom(
  c: MutableProxyConfig,
  ct: z.infer<typeof conntrackSchema>,
  prefix: string,
  duration: DurationReader,
): void {
  const t = ct ?? {};
  c.conntrack = {
    maxPerCore: t.maxPerCore ?? 32_768,
    min: t.min ?? 131_072,
    tcpEstablishedTimeoutMs: duration(
      `${prefix}tcpEstablishedTimeout`,
      t.tcpEstablishedTimeout,
      24 * 3_600_000,
      false,
    ),
    tcpCloseWaitTimeoutMs: duration(`${prefix}tcpCloseWaitTimeout`, t.tcpCloseWaitTimeout, 3_600_000, false),
    tcpBeLiberal: t.tcpBeLiberal ?? false,
    udpTimeoutMs: duration(`${prefix}udpTimeout`, t.udpTimeout, 0, false),
    udpStreamTimeoutMs: duration(`${prefix}udpStreamTimeout`, t.udpStreamTimeout, 0, false),
  };
}

function fromV1alpha1(f: V1Alpha1, duration: DurationReader, warnings: string[]): MutableProxyConfig {
  const c = defaultProxyConfig();
  applyCommon(c, f, duration);
  c.bindAddress = f.bindAddress || '0.0.0.0';
  // Upstream derives the server defaults from bindAddress's family.
  const v4 = ipFamily(c.bindAddress) !== 'IPv6';
  c.healthzBindAddress = f.healthzBindAddress
    ? appendPortIfNeeded(f.healthzBindAddress, HEALTHZ_PORT)
    : `${v4 ? '0.0.0.0' : '[::]'}:${HEALTHZ_PORT}`;
  c.metricsBindAddress = f.metricsBindAddress
    ? appendPortIfNeeded(f.metricsBindAddress, METRICS_PORT)
    : `${v4 ? '127.0.0.1' : '[::1]'}:${METRICS_PORT}`;
  const ipt = f.iptables ?? {};
  c.iptables = {
    masqueradeBit: ipt.masqueradeBit ?? 14,
    masqueradeAll: ipt.masqueradeAll ?? false,
    localhostNodePorts: ipt.localhostNodePorts ?? true,
    syncPeriodMs: duration('iptables.syncPeriod', ipt.syncPeriod, 30_000, true),
    minSyncPeriodMs: duration('iptables.minSyncPeriod', ipt.minSyncPeriod, 1_000, true),
  };
  if (ipt.snatNodeInternalIP === true)
    warnings.push(`${LABEL}: iptables.snatNodeInternalIP is not supported by kube-proxy-ts and is ignored`);
  const ipvs = f.ipvs ?? {};
  c.ipvs = {
    syncPeriodMs: duration('ipvs.syncPeriod', ipvs.syncPeriod, 30_000, true),
    minSyncPeriodMs: duration('ipvs.minSyncPeriod', ipvs.minSyncPeriod, 0, false),
    scheduler: ipvs.scheduler ?? '',
    excludeCIDRs: [...(ipvs.excludeCIDRs ?? [])],
    strictARP: ipvs.strictARP ?? false,
    tcpTimeoutMs: duration('ipvs.tcpTimeout', ipvs.tcpTimeout, 0, false),
    tcpFinTimeoutMs: duration('ipvs.tcpFinTimeout', ipvs.tcpFinTimeout, 0, false),
    udpTimeoutMs: duration('ipvs.udpTimeout', ipvs.udpTimeout, 0, false),
  };
  const nft = f.nftables ?? {};
  c.nftables = {
    masqueradeBit: nft.masqueradeBit ?? 14,
    masqueradeAll: nft.masqueradeAll ?? false,
    syncPeriodMs: duration('nftables.syncPeriod', nft.syncPeriod, 30_000, true),
    minSyncPeriodMs: duration('nftables.minSyncPeriod', nft.minSyncPeriod, 1_000, true),
  };
  conntrackFrom(c, f.conntrack, 'conntrack.', duration);
  c.detectLocal = {
    bridgeInterface: f.detectLocal?.bridgeInterface ?? '',
    interfaceNamePrefix: f.detectLocal?.interfaceNamePrefix ?? '',
  };
  c.clusterCIDRs = splitComma(f.clusterCIDR ?? '');
  c.oomScoreAdj = f.oomScoreAdj ?? -999;
  c.portRange = f.portRange ?? '';
  c.udpIdleTimeoutMs = duration('udpIdleTimeout', f.udpIdleTimeout, 250, true);
  return c;
}

/**
 * v1alpha2 CIDR lists to our single "host:port": 0.0.0.0/0 and ::/0 become the unspecified address,
 * a loopback range becomes its first loopback IP, a host CIDR becomes that IP. Only the first entry
 * can be honoured; dropping others of the same family earns a warning.
 */
function bindFromCIDRs(
  field: string,
  list: readonly string[],
  port: number,
  problems: string[],
  warnings: string[],
): string {
  const first = list[0];
  if (first === undefined) return '';
  const cidr = parseCIDR(first);
  if (!cidr) {
    problems.push(formatProblem(LABEL, field, 'must be a list of CIDRs', list));
    return '';
  }
  let host: string | undefined;
  if (cidr.prefix === 0) host = cidr.family === 'IPv4' ? '0.0.0.0' : '::';
  else if (cidr.family === 'IPv4' && cidr.ip === '127.0.0.0') host = '127.0.0.1';
  else if ((cidr.family === 'IPv4' && cidr.prefix === 32) || (cidr.family === 'IPv6' && cidr.prefix === 128))
    host = cidr.ip;
  if (host === undefined) {
    problems.push(
      formatProblem(
        LABEL,
        field,
        'kube-proxy-ts can bind only to 0.0.0.0/0, ::/0, 127.0.0.0/8 or a single-address CIDR',
        first,
      ),
    );
    return '';
  }
  if (list.slice(1).some((x) => parseCIDR(x)?.family === cidr.family)) {
    warnings.push(`${LABEL}: ${field}: only ${first} is used; further CIDRs of the same family are ignored`);
  }
  return joinHostPort(host, port);
}

function fromV1alpha2(
  f: V1Alpha2,
  duration: DurationReader,
  warnings: string[],
  problems: string[],
): MutableProxyConfig {
  const c = defaultProxyConfig();
  applyCommon(c, f, duration);
  const nodeIPs = f.nodeIPOverride ?? [];
  c.bindAddress = nodeIPs[0] ?? '0.0.0.0';
  if (nodeIPs.length > 1)
    warnings.push(`${LABEL}: nodeIPOverride: only the first address (${nodeIPs[0]}) is used`);
  const hz = f.healthzBindAddresses?.length ? f.healthzBindAddresses : ['0.0.0.0/0', '::/0'];
  const mt = f.metricsBindAddresses?.length ? f.metricsBindAddresses : ['127.0.0.0/8', '::1/128'];
  c.healthzBindAddress = bindFromCIDRs(
    'healthzBindAddresses',
    hz,
    f.healthzBindPort || HEALTHZ_PORT,
    problems,
    warnings,
  );
  c.metricsBindAddress = bindFromCIDRs(
    'metricsBindAddresses',
    mt,
    f.metricsBindPort || METRICS_PORT,
    problems,
    warnings,
  );
  const sync = duration('syncPeriod', f.syncPeriod, 30_000, true);
  const minSync = duration('minSyncPeriod', f.minSyncPeriod, 1_000, true);
  const masqAll = f.linux?.masqueradeAll ?? false;
  const mode = (f.mode ?? '').trim();
  c.iptables = {
    // ipvs mode marks with the iptables bit; v1alpha2 gives it its own field.
    masqueradeBit: (mode === 'ipvs' ? f.ipvs?.masqueradeBit : f.iptables?.masqueradeBit) ?? 14,
    masqueradeAll: masqAll,
    localhostNodePorts: f.iptables?.localhostNodePorts ?? false,
    syncPeriodMs: sync,
    minSyncPeriodMs: minSync,
  };
  const ipvs = f.ipvs ?? {};
  c.ipvs = {
    syncPeriodMs: sync,
    minSyncPeriodMs: minSync,
    scheduler: ipvs.scheduler ?? '',
    excludeCIDRs: [...(ipvs.excludeCIDRs ?? [])],
    strictARP: ipvs.strictARP ?? false,
    tcpTimeoutMs: duration('ipvs.tcpTimeout', ipvs.tcpTimeout, 0, false),
    tcpFinTimeoutMs: duration('ipvs.tcpFinTimeout', ipvs.tcpFinTimeout, 0, false),
    udpTimeoutMs: duration('ipvs.udpTimeout', ipvs.udpTimeout, 0, false),
  };
  c.nftables = {
    masqueradeBit: f.nftables?.masqueradeBit ?? 14,
    masqueradeAll: masqAll,
    syncPeriodMs: sync,
    minSyncPeriodMs: minSync,
  };
  conntrackFrom(c, f.linux?.conntrack, 'linux.conntrack.', duration);
  c.oomScoreAdj = f.linux?.oomScoreAdj ?? -999;
  c.detectLocalMode = (f.detectLocalMode || 'ClusterCIDR') as MutableProxyConfig['detectLocalMode'];
  c.detectLocal = {
    bridgeInterface: f.detectLocal?.bridgeInterface ?? '',
    interfaceNamePrefix: f.detectLocal?.interfaceNamePrefix ?? '',
  };
  c.clusterCIDRs = (f.detectLocal?.clusterCIDRs ?? []).map((x) => x.trim()).filter((x) => x !== '');
  return c;
}

const V1ALPHA2_PATHS: Readonly<Record<string, string>> = {
  bindAddress: 'nodeIPOverride',
  healthzBindAddress: 'healthzBindAddresses',
  metricsBindAddress: 'metricsBindAddresses',
  'iptables.syncPeriod': 'syncPeriod',
  'iptables.minSyncPeriod': 'minSyncPeriod',
  'ipvs.syncPeriod': 'syncPeriod',
  'ipvs.minSyncPeriod': 'minSyncPeriod',
  'nftables.syncPeriod': 'syncPeriod',
  'nftables.minSyncPeriod': 'minSyncPeriod',
  'iptables.masqueradeAll': 'linux.masqueradeAll',
  'nftables.masqueradeAll': 'linux.masqueradeAll',
  oomScoreAdj: 'linux.oomScoreAdj',
  clusterCIDR: 'detectLocal.clusterCIDRs',
};

function v1alpha2Path(p: string): string {
  if (p.startsWith('conntrack.')) return `linux.${p}`;
  return V1ALPHA2_PATHS[p] ?? p;
}

// ---------------------------------------------------------------------------------------------
// Validation (upstream pkg/proxy/apis/config/validation, plus our own knobs).

const SCHEDULERS = new Set(['', 'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'sh', 'dh', 'sed', 'nq', 'mh']);
const LOCAL_MODES = new Set(['', 'ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix']);

function validateCIDRList(
  path: string,
  list: readonly string[],
  out: ConfigProblem[],
  onePerFamily: boolean,
): void {
  const families = new Map<string, number>();
  for (const x of list) {
    const c = parseCIDR(x);
    if (!c) {
      out.push({ path, message: 'must be a valid CIDR', value: x });
      continue;
    }
    families.set(c.family, (families.get(c.family) ?? 0) + 1);
  }
  if (onePerFamily && [...families.values()].some((n) => n > 1)) {
    out.push({ path, message: 'may hold at most one CIDR per IP family', value: list.join(',') });
  }
}

function validateHostPort(path: string, value: string, out: ConfigProblem[]): void {
  if (value === '') return;
  try {
    const { host, port } = splitHostPort(value);
    if (ipFamily(host) === undefined) out.push({ path, message: 'must be IP:port with a valid IP', value });
    else if (port < 1 || port > 65535) out.push({ path, message: 'port must be between 1 and 65535', value });
  } catch {
    out.push({ path, message: 'must be IP:port (IPv6 as [IP]:port)', value });
  }
}

function validateSync(prefix: string, sync: number, min: number, out: ConfigProblem[]): void {
  if (!(sync > 0))
    out.push({
      path: `${prefix}.syncPeriod`,
      message: 'must be greater than 0',
      value: formatGoDuration(sync),
    });
  if (min < 0)
    out.push({
      path: `${prefix}.minSyncPeriod`,
      message: 'must be greater than or equal to 0',
      value: formatGoDuration(min),
    });
  else if (sync > 0 && min > sync) {
    out.push({
      path: `${prefix}.minSyncPeriod`,
      message: `must be less than or equal to ${prefix}.syncPeriod (${formatGoDuration(sync)})`,
      value: formatGoDuration(min),
    });
  }
}

function intRange(path: string, v: number, lo: number, hi: number, out: ConfigProblem[]): void {
  if (!Number.isInteger(v) || v < lo || v > hi)
    out.push({ path, message: `must be between ${lo} and ${hi}`, value: v });
}

function nonNegative(path: string, v: number, out: ConfigProblem[], asDuration = false): void {
  if (!(v >= 0))
    out.push({
      path,
      message: 'must be greater than or equal to 0',
      value: asDuration ? formatGoDuration(v) : v,
    });
}

/** Parses "30000-32767" (or a single port) into an inclusive range; undefined when malformed. */
export function parsePortRange(text: string): { min: number; max: number } | undefined {
  const m = /^\s*(\d{1,5})(?:\s*([-+])\s*(\d{1,5}))?\s*$/.exec(text);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[3] === undefined ? a : m[2] === '+' ? a + Number(m[3]) : Number(m[3]);
  if (a > 65535 || b > 65535 || b < a) return undefined;
  return { min: a, max: b };
}

/**
 * Checks every value of a resolved config; returns one problem per invalid value, each named by its
 * v1alpha1 field path (our own knobs by their camelCase name). Pure; never throws.
 */
export function validateProxyConfig(c: ProxyConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (ipFamily(c.bindAddress) === undefined)
    out.push({ path: 'bindAddress', message: 'must be a valid IP address', value: c.bindAddress });
  validateHostPort('healthzBindAddress', c.healthzBindAddress, out);
  validateHostPort('metricsBindAddress', c.metricsBindAddress, out);
  if (!(c.clientConnection.qps >= 0))
    out.push({
      path: 'clientConnection.qps',
      message: 'must be greater than or equal to 0',
      value: c.clientConnection.qps,
    });
  if (!Number.isInteger(c.clientConnection.burst) || c.clientConnection.burst < 0) {
    out.push({
      path: 'clientConnection.burst',
      message: 'must be an integer greater than or equal to 0',
      value: c.clientConnection.burst,
    });
  }
  if (c.hostnameOverride !== '' && c.hostnameOverride.trim() === '') {
    out.push({ path: 'hostnameOverride', message: 'must not be only whitespace', value: c.hostnameOverride });
  }
  if (c.showHiddenMetricsForVersion && !/^\d+\.\d+$/.test(c.showHiddenMetricsForVersion)) {
    out.push({
      path: 'showHiddenMetricsForVersion',
      message: 'must be <major>.<minor>, e.g. 1.33',
      value: c.showHiddenMetricsForVersion,
    });
  }
  intRange('iptables.masqueradeBit', c.iptables.masqueradeBit, 0, 31, out);
  intRange('nftables.masqueradeBit', c.nftables.masqueradeBit, 0, 31, out);
  validateSync('iptables', c.iptables.syncPeriodMs, c.iptables.minSyncPeriodMs, out);
  validateSync('ipvs', c.ipvs.syncPeriodMs, c.ipvs.minSyncPeriodMs, out);
  validateSync('nftables', c.nftables.syncPeriodMs, c.nftables.minSyncPeriodMs, out);
  if (!SCHEDULERS.has(c.ipvs.scheduler)) {
    out.push({
      path: 'ipvs.scheduler',
      message: `must be one of ${[...SCHEDULERS].filter(Boolean).join(', ')} or ""`,
      value: c.ipvs.scheduler,
    });
  }
  validateCIDRList('ipvs.excludeCIDRs', c.ipvs.excludeCIDRs, out, false);
  nonNegative('ipvs.tcpTimeout', c.ipvs.tcpTimeoutMs, out, true);
  nonNegative('ipvs.tcpFinTimeout', c.ipvs.tcpFinTimeoutMs, out, true);
  nonNegative('ipvs.udpTimeout', c.ipvs.udpTimeoutMs, out, true);
  nonNegative('conntrack.maxPerCore', c.conntrack.maxPerCore, out);
  nonNegative('conntrack.min', c.conntrack.min, out);
  nonNegative('conntrack.tcpEstablishedTimeout', c.conntrack.tcpEstablishedTimeoutMs, out, true);
  nonNegative('conntrack.tcpCloseWaitTimeout', c.conntrack.tcpCloseWaitTimeoutMs, out, true);
  nonNegative('conntrack.udpTimeout', c.conntrack.udpTimeoutMs, out, true);
  nonNegative('conntrack.udpStreamTimeout', c.conntrack.udpStreamTimeoutMs, out, true);
  intRange('oomScoreAdj', c.oomScoreAdj, -1000, 1000, out);
  if (!(c.configSyncPeriodMs > 0))
    out.push({
      path: 'configSyncPeriod',
      message: 'must be greater than 0',
      value: formatGoDuration(c.configSyncPeriodMs),
    });
  if (!(c.udpIdleTimeoutMs > 0))
    out.push({
      path: 'udpIdleTimeout',
      message: 'must be greater than 0',
      value: formatGoDuration(c.udpIdleTimeoutMs),
    });
  if (c.portRange !== '' && parsePortRange(c.portRange) === undefined) {
    out.push({
      path: 'portRange',
      message: 'must be empty or begin-end (or begin+offset) within 0-65535',
      value: c.portRange,
    });
  }
  validateCIDRList('clusterCIDR', c.clusterCIDRs, out, true);
  if (c.clusterCIDRs.length > 2)
    out.push({
      path: 'clusterCIDR',
      message: 'may hold at most two CIDRs (one per family)',
      value: c.clusterCIDRs.join(','),
    });
  if (!LOCAL_MODES.has(c.detectLocalMode)) {
    out.push({
      path: 'detectLocalMode',
      message: 'must be one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix or ""',
      value: c.detectLocalMode,
    });
  } else if (c.detectLocalMode === 'BridgeInterface' && c.detectLocal.bridgeInterface === '') {
    out.push({
      path: 'detectLocal.bridgeInterface',
      message: 'must be set when detectLocalMode is BridgeInterface',
      value: '',
    });
  } else if (c.detectLocalMode === 'InterfaceNamePrefix' && c.detectLocal.interfaceNamePrefix === '') {
    out.push({
      path: 'detectLocal.interfaceNamePrefix',
      message: 'must be set when detectLocalMode is InterfaceNamePrefix',
      value: '',
    });
  }
  if (c.nodePortAddresses.includes('primary')) {
    if (c.nodePortAddresses.length !== 1) {
      out.push({
        path: 'nodePortAddresses',
        message: '"primary" must be the only value',
        value: c.nodePortAddresses,
      });
    }
  } else {
    validateCIDRList('nodePortAddresses', c.nodePortAddresses, out, false);
  }
  if (!Number.isInteger(c.logging.verbosity) || c.logging.verbosity < 0) {
    out.push({
      path: 'logging.verbosity',
      message: 'must be an integer greater than or equal to 0',
      value: c.logging.verbosity,
    });
  }
  if (c.logging.format !== 'text' && c.logging.format !== 'json') {
    out.push({ path: 'logging.format', message: 'must be text or json', value: c.logging.format });
  }
  // ---- ours ----
  if (c.serviceClusterIPRange.length === 0)
    out.push({ path: 'serviceClusterIPRange', message: 'must hold at least one CIDR', value: [] });
  validateCIDRList('serviceClusterIPRange', c.serviceClusterIPRange, out, true);
  const r = c.serviceNodePortRange;
  if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 1 || r.max > 65535 || r.min > r.max) {
    out.push({
      path: 'serviceNodePortRange',
      message: 'must be begin-end within 1-65535',
      value: `${r.min}-${r.max}`,
    });
  }
  if (c.userspaceBalancer !== 'round-robin' && c.userspaceBalancer !== 'least-connections') {
    out.push({
      path: 'userspaceBalancer',
      message: 'must be round-robin or least-connections',
      value: c.userspaceBalancer,
    });
  }
  return out;
}

/**
 * Parses, defaults and validates a KubeProxyConfiguration file. Throws ConfigError listing every
 * problem ("KubeProxyConfiguration: <field path>: <what> (value: <value>)").
 */
export function parseKubeProxyConfiguration(text: string): {
  config: ProxyConfig;
  warnings: readonly string[];
  apiVersion: string;
} {
  const d = decodeKubeProxyConfiguration(text);
  const problems = validateProxyConfig(d.config);
  if (problems.length > 0)
    throw new ConfigError(problems.map((p) => formatProblem(LABEL, d.fieldPath(p.path), p.message, p.value)));
  return { config: d.config, warnings: d.warnings, apiVersion: d.apiVersion };
}

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
    logging: { flushFrequency: '5s', format: c.logging.format, verbosity: c.logging.verbosity },
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
