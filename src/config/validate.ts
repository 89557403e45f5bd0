/**
 * Validation of a ProxyConfig (upstream pkg/proxy/apis/config/validation, plus our own knobs). Returns
 * every problem, each named by its v1alpha1 field path; callers format them.
 */
import { ipFamily, parseCIDR, splitHostPort } from '../net/ip.js';
import type { ProxyConfig } from './types.js';
import { formatGoDuration } from './duration.js';
import { priorityServiceError } from '../model/extensions.js';
import { healthCheckOptionErrors } from '../model/extensions.js';

/** One invalid value, named by its v1alpha1 field path. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  readonly value: unknown;
}

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
  if (!Number.isInteger(c.manifestsMaxFileSize) || c.manifestsMaxFileSize < 1)
    out.push({
      path: 'manifestsMaxFileSize',
      message: 'must be a positive number of bytes',
      value: c.manifestsMaxFileSize,
    });
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
  const hc = c.ipvsHealthCheck;
  if (hc.mode !== '' && hc.mode !== 'tcp')
    out.push({ path: 'ipvsHealthCheck.mode', message: 'must be "" (off) or tcp', value: hc.mode });
  for (const why of healthCheckOptionErrors(hc))
    out.push({
      path: 'ipvsHealthCheck',
      message: why,
      value: `interval ${hc.intervalMs}ms timeout ${hc.timeoutMs}ms fall ${hc.fall} rise ${hc.rise}`,
    });
  for (const entry of c.priorityServices) {
    const why = priorityServiceError(entry);
    if (why !== undefined) out.push({ path: 'kubeProxyTs.priorityServices', message: why, value: entry });
  }
  return out;
}
