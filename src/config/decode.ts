/**
 * Reading a KubeProxyConfiguration file (kubeproxy.config.k8s.io v1alpha1 and v1alpha2, YAML or JSON):
 * strict decoding (an unknown field is an error naming its path), conversion of either version to the
 * internal ProxyConfig over upstream's defaults, and parseKubeProxyConfiguration, which also validates.
 *
 * A zero duration in a v1alpha1 file is defaulted, so `iptables.minSyncPeriod: 0s` means 1s (a known
 * upstream quirk), while `conntrack.maxPerCore: 0` stays 0 (a pointer upstream: only null is defaulted).
 */
import { z } from 'zod';
import { parseDocument } from 'yaml';
import type { ProxyMode } from '../model/proxy-mode.js';
import { ipFamily, parseCIDR, splitHostPort, joinHostPort } from '../net/ip.js';
import type { ProxyConfig } from './types.js';
import { ConfigError } from './errors.js';
import { parseGoDuration } from './duration.js';
import {
  HEALTHZ_PORT,
  METRICS_PORT,
  PROTOBUF,
  V1ALPHA1,
  V1ALPHA2,
  defaultProxyConfig,
  type MutableProxyConfig,
} from './defaults.js';
import { conntrackSchema, v1alpha1Schema, v1alpha2Schema, type V1Alpha1, type V1Alpha2 } from './schema.js';
import { validateProxyConfig } from './validate.js';

/** The result of reading a file: defaulted, mode resolved, not yet validated. */
export interface DecodedConfig {
  readonly apiVersion: string;
  readonly config: MutableProxyConfig;
  readonly warnings: readonly string[];
  /** Maps a v1alpha1 field path (as validateProxyConfig reports) to the path in this file's version. */
  readonly fieldPath: (v1alpha1Path: string) => string;
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
 * validating values. Throws ConfigError for unreadable YAML, a wrong apiVersion/kind, a v1alpha2 unknown
 * field (named by path), a value of the wrong type, a malformed duration, or an unsupported mode. A
 * v1alpha1 unknown field is a warning (upstream decodes leniently after a strict failure).
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
    const f = checked(v1alpha1Schema, raw, warnings);
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

/**
 * Validates `raw` against a schema; throws ConfigError naming mistyped values, and unknown fields too
 * unless `lenient` collects warnings: then, as upstream falls back to lenient decoding after a strict
 * decoding error, each unknown field is named in a warning and dropped.
 */
function checked<T>(schema: z.ZodType<T>, raw: unknown, lenient?: string[]): T {
  let res = schema.safeParse(raw);
  if (res.success) return res.data;
  if (lenient !== undefined && res.error.issues.some((i) => i.code === 'unrecognized_keys')) {
    const copy = structuredClone(raw);
    for (let round = 0; round < 8 && !res.success; round++) {
      const unknown = res.error.issues.filter((i) => i.code === 'unrecognized_keys');
      if (unknown.length === 0) break;
      for (const issue of unknown) {
        const parent = valueAt(copy, issue.path) as Record<string, unknown>;
        for (const k of issue.keys) {
          lenient.push(
            `unknown field ${JSON.stringify([...issue.path.map(String), k].join('.'))} ignored (lenient decoding, as upstream)`,
          );
          Reflect.deleteProperty(parent, k);
        }
      }
      res = schema.safeParse(copy);
    }
    if (res.success) return res.data;
  }
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
  const logOptions = (f.logging?.options ?? {}) as Record<string, { splitStream?: unknown } | undefined>;
  const split = { text: logOptions.text?.splitStream === true, json: logOptions.json?.splitStream === true };
  c.logging = {
    verbosity: f.logging?.verbosity ?? 0,
    format: f.logging?.format || 'text',
    ...(split.text || split.json ? { splitStream: split } : {}),
  };
  c.hostnameOverride = f.hostnameOverride ?? '';
  c.bindAddressHardFail = f.bindAddressHardFail ?? false;
  c.enableProfiling = f.enableProfiling ?? false;
  c.showHiddenMetricsForVersion = f.showHiddenMetricsForVersion ?? '';
  c.detectLocalMode = (f.detectLocalMode ?? '') as MutableProxyConfig['detectLocalMode'];
  c.nodePortAddresses = expandNodePortAddresses(f.nodePortAddresses ?? []);
  c.configSyncPeriodMs = duration('configSyncPeriod', f.configSyncPeriod, 15 * 60_000, true);
  const ours = f.kubeProxyTs;
  if (ours?.priorityServices != null) c.priorityServices = [...ours.priorityServices];
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
