/**
 * The command line: argv and the optional --config file to the resolved, validated configuration and
 * the action to take.
 *
 * Precedence (upstream's has changed between releases and mostly ignores flags next to --config; ours
 * is one rule): **defaults < --config file < flags given explicitly on the command line**. A flag left
 * at its default never overrides the file. Mixing --config with flags that override file fields
 * produces a warning, as upstream warns. `--iptables-sync-period` and `--iptables-min-sync-period` set
 * the nftables periods too (upstream's internal config shares them); `--masquerade-all` sets both the
 * iptables and nftables flags for the same reason.
 */
import { readFileSync } from 'node:fs';
import type { CommandLine, ProxyConfig } from './types.js';
import { ConfigError, FlagError } from './errors.js';
import { FLAGS, flagSpec, formatGoDuration, parseArgs, type FlagValue } from './flags.js';
import { featureGateErrors, featureGateHelpLines, reviewFeatureGates } from './feature-gates.js';
import {
  decodeKubeProxyConfiguration,
  expandNodePortAddresses,
  formatProblem,
  resolveProxyMode,
} from './decode.js';
import { defaultProxyConfig, type MutableProxyConfig } from './defaults.js';
import { parsePortRange, validateProxyConfig } from './validate.js';
import { splitHostPort, joinHostPort } from '../net/ip.js';

export { renderConfigFile } from './encode.js';

interface FlagBinding {
  readonly flag: string;
  /** The v1alpha1 field paths the flag sets (to name the flag in validation errors). */
  readonly paths: readonly string[];
  /**
   * Whether giving the flag next to --config earns the mixing warning: true for flags that override a
   * file field, false for flags the file cannot set and for those upstream itself lets win over the
   * file (logging flags, --hostname-override).
   */
  readonly warnWithConfig: boolean;
  /** Applies the flag's value; throws RangeError with the reason when the value is unusable. */
  readonly apply: (c: MutableProxyConfig, v: FlagValue) => void;
}

const asStr = (v: FlagValue): string => v as string;
const asNum = (v: FlagValue): number => v as number;
const asBool = (v: FlagValue): boolean => v as boolean;
const asList = (v: FlagValue): string[] => [...(v as readonly string[])];

function b(flag: string, paths: string[], apply: FlagBinding['apply'], warnWithConfig = true): FlagBinding {
  return { flag, paths, apply, warnWithConfig };
}

/** Replaces (or adds) the port of a "host:port"; the deprecated --*-port flags use it. */
function withPort(addr: string, port: number, fallbackHost: string): string {
  if (port === 0) return '';
  let host = fallbackHost;
  try {
    host = splitHostPort(addr).host || fallbackHost;
  } catch {
    // Keep the fallback: an empty or malformed address has no host worth keeping.
  }
  return joinHostPort(host, port);
}

/** In application order: later bindings see earlier ones (the deprecated ports edit the addresses). */
const BINDINGS: readonly FlagBinding[] = [
  b('kubeconfig', ['clientConnection.kubeconfig'], (c, v) => (c.clientConnection.kubeconfig = asStr(v))),
  b('master', ['master'], (c, v) => (c.master = asStr(v)), false),
  b(
    'kube-api-content-type',
    ['clientConnection.contentType'],
    (c, v) => (c.clientConnection.contentType = asStr(v)),
  ),
  b('kube-api-qps', ['clientConnection.qps'], (c, v) => (c.clientConnection.qps = asNum(v))),
  b('kube-api-burst', ['clientConnection.burst'], (c, v) => (c.clientConnection.burst = asNum(v))),
  b(
    'hostname-override',
    ['hostnameOverride'],
    (c, v) => {
      const raw = asStr(v);
      if (raw === '') return; // upstream ignores an empty value rather than clearing the file's
      if (raw.trim() === '') throw new RangeError('must not be only whitespace');
      c.hostnameOverride = raw.trim().toLowerCase();
    },
    false,
  ),
  b('bind-address', ['bindAddress'], (c, v) => (c.bindAddress = asStr(v))),
  b('bind-address-hard-fail', ['bindAddressHardFail'], (c, v) => (c.bindAddressHardFail = asBool(v))),
  b('healthz-bind-address', ['healthzBindAddress'], (c, v) => (c.healthzBindAddress = asStr(v))),
  b('metrics-bind-address', ['metricsBindAddress'], (c, v) => (c.metricsBindAddress = asStr(v))),
  b(
    'healthz-port',
    ['healthzBindAddress'],
    (c, v) => (c.healthzBindAddress = withPort(c.healthzBindAddress, asNum(v), '0.0.0.0')),
  ),
  b(
    'metrics-port',
    ['metricsBindAddress'],
    (c, v) => (c.metricsBindAddress = withPort(c.metricsBindAddress, asNum(v), '127.0.0.1')),
  ),
  b('profiling', ['enableProfiling'], (c, v) => (c.enableProfiling = asBool(v))),
  b(
    'show-hidden-metrics-for-version',
    ['showHiddenMetricsForVersion'],
    (c, v) => (c.showHiddenMetricsForVersion = asStr(v)),
  ),
  b('proxy-mode', ['mode'], (c, v) => (c.mode = resolveProxyMode(asStr(v).trim()))),
  b(
    'feature-gates',
    ['featureGates'],
    (c, v) => (c.featureGates = { ...c.featureGates, ...(v as Record<string, boolean>) }),
  ),
  b('iptables-masquerade-bit', ['iptables.masqueradeBit'], (c, v) => (c.iptables.masqueradeBit = asNum(v))),
  b('masquerade-all', ['iptables.masqueradeAll', 'nftables.masqueradeAll'], (c, v) => {
    c.iptables.masqueradeAll = asBool(v);
    c.nftables.masqueradeAll = asBool(v);
  }),
  b(
    'iptables-localhost-nodeports',
    ['iptables.localhostNodePorts'],
    (c, v) => (c.iptables.localhostNodePorts = asBool(v)),
  ),
  b('iptables-sync-period', ['iptables.syncPeriod', 'nftables.syncPeriod'], (c, v) => {
    c.iptables.syncPeriodMs = asNum(v);
    c.nftables.syncPeriodMs = asNum(v);
  }),
  b('iptables-min-sync-period', ['iptables.minSyncPeriod', 'nftables.minSyncPeriod'], (c, v) => {
    c.iptables.minSyncPeriodMs = asNum(v);
    c.nftables.minSyncPeriodMs = asNum(v);
  }),
  b('ipvs-sync-period', ['ipvs.syncPeriod'], (c, v) => (c.ipvs.syncPeriodMs = asNum(v))),
  b('ipvs-min-sync-period', ['ipvs.minSyncPeriod'], (c, v) => (c.ipvs.minSyncPeriodMs = asNum(v))),
  b('ipvs-scheduler', ['ipvs.scheduler'], (c, v) => (c.ipvs.scheduler = asStr(v))),
  b('ipvs-exclude-cidrs', ['ipvs.excludeCIDRs'], (c, v) => (c.ipvs.excludeCIDRs = asList(v))),
  b('ipvs-strict-arp', ['ipvs.strictARP'], (c, v) => (c.ipvs.strictARP = asBool(v))),
  b('ipvs-tcp-timeout', ['ipvs.tcpTimeout'], (c, v) => (c.ipvs.tcpTimeoutMs = asNum(v))),
  b('ipvs-tcpfin-timeout', ['ipvs.tcpFinTimeout'], (c, v) => (c.ipvs.tcpFinTimeoutMs = asNum(v))),
  b('ipvs-udp-timeout', ['ipvs.udpTimeout'], (c, v) => (c.ipvs.udpTimeoutMs = asNum(v))),
  b('cluster-cidr', ['clusterCIDR'], (c, v) => {
    c.clusterCIDRs = asStr(v)
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  }),
  b(
    'detect-local-mode',
    ['detectLocalMode'],
    (c, v) => (c.detectLocalMode = asStr(v) as MutableProxyConfig['detectLocalMode']),
  ),
  b(
    'pod-bridge-interface',
    ['detectLocal.bridgeInterface'],
    (c, v) => (c.detectLocal.bridgeInterface = asStr(v)),
  ),
  b(
    'pod-interface-name-prefix',
    ['detectLocal.interfaceNamePrefix'],
    (c, v) => (c.detectLocal.interfaceNamePrefix = asStr(v)),
  ),
  b(
    'nodeport-addresses',
    ['nodePortAddresses'],
    (c, v) => (c.nodePortAddresses = expandNodePortAddresses(asList(v))),
  ),
  b('oom-score-adj', ['oomScoreAdj'], (c, v) => (c.oomScoreAdj = asNum(v))),
  b('conntrack-max-per-core', ['conntrack.maxPerCore'], (c, v) => (c.conntrack.maxPerCore = asNum(v))),
  b('conntrack-min', ['conntrack.min'], (c, v) => (c.conntrack.min = asNum(v))),
  b(
    'conntrack-tcp-timeout-established',
    ['conntrack.tcpEstablishedTimeout'],
    (c, v) => (c.conntrack.tcpEstablishedTimeoutMs = asNum(v)),
  ),
  b(
    'conntrack-tcp-timeout-close-wait',
    ['conntrack.tcpCloseWaitTimeout'],
    (c, v) => (c.conntrack.tcpCloseWaitTimeoutMs = asNum(v)),
  ),
  b('conntrack-tcp-be-liberal', ['conntrack.tcpBeLiberal'], (c, v) => (c.conntrack.tcpBeLiberal = asBool(v))),
  b('conntrack-udp-timeout', ['conntrack.udpTimeout'], (c, v) => (c.conntrack.udpTimeoutMs = asNum(v))),
  b(
    'conntrack-udp-timeout-stream',
    ['conntrack.udpStreamTimeout'],
    (c, v) => (c.conntrack.udpStreamTimeoutMs = asNum(v)),
  ),
  b('config-sync-period', ['configSyncPeriod'], (c, v) => (c.configSyncPeriodMs = asNum(v))),
  b('proxy-port-range', ['portRange'], (c, v) => (c.portRange = asStr(v))),
  b('udp-timeout', ['udpIdleTimeout'], (c, v) => (c.udpIdleTimeoutMs = asNum(v))),
  b('v', ['logging.verbosity'], (c, v) => (c.logging.verbosity = asNum(v)), false),
  b('logging-format', ['logging.format'], (c, v) => (c.logging.format = asStr(v)), false),
  b(
    'vmodule',
    ['logging.vmodule'],
    (c, v) => {
      const raw = asStr(v).trim();
      for (const part of raw === '' ? [] : raw.split(',')) {
        if (!/^[^=,\s]+=\d+$/.test(part.trim()))
          throw new RangeError(`expected pattern=N, got ${JSON.stringify(part)}`);
      }
      c.logging.vmodule = raw;
    },
    false,
  ),
  b(
    'log-text-split-stream',
    ['logging.options.text.splitStream'],
    (c, v) => (c.logging.splitStream = { text: asBool(v), json: c.logging.splitStream?.json ?? false }),
    false,
  ),
  b(
    'log-json-split-stream',
    ['logging.options.json.splitStream'],
    (c, v) => (c.logging.splitStream = { text: c.logging.splitStream?.text ?? false, json: asBool(v) }),
    false,
  ),
  // ---- ours (not in the file) ----
  b('manifests', ['manifests'], (c, v) => (c.manifests = asStr(v)), false),
  b(
    'manifests-max-file-size',
    ['manifestsMaxFileSize'],
    (c, v) => (c.manifestsMaxFileSize = asNum(v)),
    false,
  ),
  b(
    'service-cluster-ip-range',
    ['serviceClusterIPRange'],
    (c, v) => (c.serviceClusterIPRange = asList(v)),
    false,
  ),
  b(
    'service-node-port-range',
    ['serviceNodePortRange'],
    (c, v) => {
      const r = parsePortRange(asStr(v));
      if (!r) throw new RangeError('must be begin-end, e.g. 30000-32767');
      c.serviceNodePortRange = r;
    },
    false,
  ),
  b(
    'userspace-balancer',
    ['userspaceBalancer'],
    (c, v) => (c.userspaceBalancer = asStr(v) as MutableProxyConfig['userspaceBalancer']),
    false,
  ),
  b('userspace-portals', ['userspacePortals'], (c, v) => (c.userspacePortals = asBool(v)), false),
  b(
    'ipvs-health-check',
    ['ipvsHealthCheck.mode'],
    (c, v) => (c.ipvsHealthCheck.mode = asStr(v) as MutableProxyConfig['ipvsHealthCheck']['mode']),
    false,
  ),
  b(
    'ipvs-health-check-interval',
    ['ipvsHealthCheck.interval'],
    (c, v) => (c.ipvsHealthCheck.intervalMs = asNum(v)),
    false,
  ),
  b(
    'ipvs-health-check-timeout',
    ['ipvsHealthCheck.timeout'],
    (c, v) => (c.ipvsHealthCheck.timeoutMs = asNum(v)),
    false,
  ),
  b('ipvs-health-check-fall', ['ipvsHealthCheck.fall'], (c, v) => (c.ipvsHealthCheck.fall = asNum(v)), false),
  b('ipvs-health-check-rise', ['ipvsHealthCheck.rise'], (c, v) => (c.ipvsHealthCheck.rise = asNum(v)), false),
  b('priority-services', ['kubeProxyTs.priorityServices'], (c, v) => (c.priorityServices = asList(v))),
];

/** Flags of `kube-proxy explain` only: the connection to explain and how to answer. */
const EXPLAIN_FLAGS = ['protocol', 'source', 'destination', 'output', 'live'] as const;

const CONTROL_FLAGS = new Set([
  'config',
  'write-config-to',
  'cleanup',
  'init-only',
  'version',
  'help',
  ...EXPLAIN_FLAGS,
]);

/**
 * Upstream flags that parse here but have nothing to act on; giving one logs once why. (--vmodule is
 * bound and validated above, then lands here too.)
 */
export const NO_EFFECT_FLAGS: Readonly<Record<string, string>> = {
  vmodule: 'per-source-file verbosity has no meaning here; -v applies to the whole process',
  'log-flush-frequency': 'logs are written immediately, never buffered',
  'log-text-info-buffer-size': 'info messages are not buffered',
  'log-json-info-buffer-size': 'info messages are not buffered',
};

/** Default file reader: UTF-8 contents of a path. */
function readUtf8(p: string): string {
  return readFileSync(p, 'utf8');
}

function render(v: FlagValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Parses the command line (argv without the node binary and script: `process.argv.slice(2)`) and, when
 * --config is given, the file read with `readFile`. Applies the precedence documented above, resolves
 * the mode ("" is iptables) and validates the result.
 *
 * `-h/--help` and `--version` return at once with the default config (the file is not read).
 * The command is, first match wins: help, version, write-config (--write-config-to), cleanup, init-only,
 * render (first positional "render"), explain (first positional "explain"; its own flags only there), run.
 *
 * Throws FlagError for unknown flags, malformed flag values and unexpected arguments; ConfigError for
 * an unreadable or invalid file and for invalid values, one line per problem naming the flag (when it
 * was given explicitly) or the file's field path, and the value.
 */
export function parseCommandLine(
  argv: readonly string[],
  readFile: (p: string) => string = readUtf8,
): CommandLine {
  const { values, positionals } = parseArgs(argv);
  let command: CommandLine['command'] = 'run';
  if (positionals.length > 0) {
    if (positionals[0] === 'render') command = 'render';
    if (positionals[0] === 'explain') command = 'explain';
    const extra = positionals.slice(command === 'run' ? 0 : 1);
    if (extra.length > 0) {
      throw new FlagError(
        `unexpected argument ${JSON.stringify(extra[0])}: kube-proxy takes no arguments (besides the "render" and "explain" subcommands)`,
      );
    }
  }
  for (const f of EXPLAIN_FLAGS)
    if (values.has(f) && command !== 'explain' && values.get('help') !== true)
      throw new FlagError(`--${f} is a flag of "kube-proxy explain" only`);
  const explain =
    command === 'explain'
      ? {
          protocol: values.get('protocol') as string | undefined,
          source: values.get('source') as string | undefined,
          destination: values.get('destination') as string | undefined,
          output: (values.get('output') as string | undefined) ?? 'text',
          live: values.get('live') === true,
        }
      : undefined;
  const explicitFlags = new Set(values.keys());
  const writeConfigTo = (values.get('write-config-to') as string | undefined) ?? '';
  if (values.get('help') === true)
    return { command: 'help', config: defaultProxyConfig(), writeConfigTo, explicitFlags, warnings: [] };
  const version = values.get('version');
  if (version !== undefined && version !== 'false') {
    return { command: 'version', config: defaultProxyConfig(), writeConfigTo, explicitFlags, warnings: [] };
  }

  const warnings: string[] = [];
  let config = defaultProxyConfig();
  let fieldPath = (p: string): string => p;
  const configPath = (values.get('config') as string | undefined) ?? '';
  if (configPath !== '') {
    let text: string;
    try {
      text = readFile(configPath);
    } catch (e) {
      throw new ConfigError([`--config: cannot read ${JSON.stringify(configPath)}: ${(e as Error).message}`]);
    }
    let decoded;
    try {
      decoded = decodeKubeProxyConfiguration(text);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.problems.map((p) => `${configPath}: ${p}`));
      throw e;
    }
    config = decoded.config;
    fieldPath = decoded.fieldPath;
    warnings.push(...decoded.warnings.map((w) => `${configPath}: ${w}`));
  }

  const problems: string[] = [];
  for (const binding of BINDINGS) {
    const v = values.get(binding.flag);
    if (v === undefined) continue;
    try {
      binding.apply(config, v);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      problems.push(
        `invalid value for --${binding.flag}: ${e.message} (value: ${JSON.stringify(render(v))})`,
      );
    }
  }

  for (const name of explicitFlags) {
    const dep = flagSpec(name)?.deprecated;
    if (dep) warnings.push(dep);
    const why = NO_EFFECT_FLAGS[name];
    if (why !== undefined) warnings.push(`--${name} is accepted and has no effect here: ${why}`);
  }
  if (configPath !== '') {
    const overriding = BINDINGS.filter((x) => x.warnWithConfig && explicitFlags.has(x.flag)).map(
      (x) => `--${x.flag}`,
    );
    if (overriding.length > 0) {
      warnings.push(
        `flags given together with --config override the file's values: ${overriding.join(', ')}`,
      );
    }
  }
  const gateErrors = featureGateErrors(config.featureGates);
  if (gateErrors.length > 0) throw new ConfigError(gateErrors);
  warnings.push(...reviewFeatureGates(config.featureGates));
  if (config.mode === 'ipvs')
    warnings.push('the ipvs proxy mode is deprecated upstream (KEP-5495); consider nftables');

  const flagOfPath = new Map<string, string>();
  for (const x of BINDINGS) {
    if (!explicitFlags.has(x.flag)) continue;
    for (const p of x.paths) flagOfPath.set(p, x.flag);
  }
  for (const p of validateProxyConfig(config)) {
    const flag = flagOfPath.get(p.path);
    if (flag !== undefined)
      problems.push(`invalid value for --${flag}: ${p.message} (value: ${JSON.stringify(p.value)})`);
    else
      problems.push(
        formatProblem(
          configPath ? `${configPath}: KubeProxyConfiguration` : 'KubeProxyConfiguration',
          fieldPath(p.path),
          p.message,
          p.value,
        ),
      );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  if (writeConfigTo !== '') command = 'write-config';
  else if (values.get('cleanup') === true) command = 'cleanup';
  else if (values.get('init-only') === true) command = 'init-only';
  return {
    command,
    config,
    writeConfigTo,
    explicitFlags,
    warnings,
    configPath,
    flagValues: effectiveFlagValues(values),
    ...(explain ? { explain } : {}),
  };
}

/** Each flag's value as pflag prints it: the given value, else the default text. */
function effectiveFlagValues(values: ReadonlyMap<string, FlagValue>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of FLAGS) {
    const v = values.get(f.name);
    if (v === undefined) out[f.name] = f.defaultText;
    else if (f.type === 'duration') out[f.name] = formatGoDuration(v as number);
    else if (Array.isArray(v)) out[f.name] = (v as readonly string[]).join(',');
    else if (typeof v === 'object')
      out[f.name] = Object.entries(v)
        .map(([k, b]) => `${k}=${String(b)}`)
        .join(',');
    else out[f.name] = String(v);
  }
  return out;
}

/**
 * The --help text: usage, then every flag with its value type, help, default and deprecation, in
 * table order.
 */
export function helpText(): string {
  const rows = FLAGS.map((f) => {
    const left = `${f.shorthand !== undefined ? `-${f.shorthand}, ` : '    '}--${f.name}${f.valueName ? ` ${f.valueName}` : ''}`;
    let right = f.help;
    if (f.defaultText !== '' && f.type !== 'bool') right += ` (default ${JSON.stringify(f.defaultText)})`;
    else if (f.type === 'bool' && f.defaultText === 'true') right += ' (default true)';
    if (f.deprecated) right += ` (DEPRECATED: ${f.deprecated})`;
    return [left, right] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 3;
  const lines = rows.flatMap(([l, r]) => {
    const row = `  ${l.padEnd(width)}${r}`;
    // Like upstream, --feature-gates lists every gate it knows under its row.
    if (!l.includes('--feature-gates ')) return [row];
    return [row, ...featureGateHelpLines().map((x) => `  ${' '.repeat(width + 2)}${x}`)];
  });
  return [
    'kube-proxy-ts: the Kubernetes network proxy (userspace, iptables, ipvs and nftables modes).',
    '',
    'Usage:',
    '  kube-proxy [flags]',
    '  kube-proxy render [flags] --manifests DIR   print what the proxy would program, then exit',
    '  kube-proxy explain --protocol P --source IP[:PORT] --destination IP:PORT [-o text|json] [--live] [flags]',
    '                                              trace one NEW connection through the rules and say why',
    '',
    'Flags (explicit flags override values from --config):',
    ...lines,
    '',
  ].join('\n');
}

/**
 * The node name kube-proxy runs as: hostnameOverride when it is not blank, else the OS hostname;
 * trimmed and lowercased either way (upstream lowercases both).
 */
export function resolveNodeName(config: Pick<ProxyConfig, 'hostnameOverride'>, osHostname: string): string {
  const o = config.hostnameOverride.trim();
  return (o !== '' ? o : osHostname.trim()).toLowerCase();
}

/** The flag names load.ts binds (for tests that check every table flag is wired). */
export function boundFlagNames(): readonly string[] {
  return [...BINDINGS.map((x) => x.flag), ...CONTROL_FLAGS, ...Object.keys(NO_EFFECT_FLAGS)];
}
