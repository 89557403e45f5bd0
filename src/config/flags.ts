/**
 * A pflag-compatible command-line parser and kube-proxy's flag table.
 *
 * Hand-written because commander and util.parseArgs both reject `--masquerade-all=false`. Accepted
 * forms (as spf13/pflag): `--x=value`, `--x value` (the next argument is taken even when it starts with
 * "-", so `--oom-score-adj -999` works), boolean `--x` / `--x=false`, shorthands `-v=4`, `-v 4`, `-v4`,
 * `--` to end flags. Underscores in long names are read as dashes (Kubernetes' WordSepNormalizeFunc).
 * Repeating a flag overwrites, except list flags (append) and --feature-gates (merge), as pflag does.
 */
import { FlagError } from './errors.js';
import { parseGoDuration } from './duration.js';

export { parseGoDuration, formatGoDuration } from './duration.js';

/** How a flag's text is turned into a value. */
export type FlagType =
  | 'bool'
  | 'string'
  | 'int32'
  | 'float'
  | 'duration'
  | 'stringSlice'
  | 'mapStringBool'
  /** --version: optional value ("true", "false", "raw"); bare means "true". */
  | 'version';

export interface FlagSpec {
  /** Upstream long name without dashes. */
  readonly name: string;
  readonly shorthand?: string;
  readonly type: FlagType;
  /** The value name shown in help ("duration", "ipport", "ProxyMode"). */
  readonly valueName: string;
  /** The default as help shows it; "" shows none. */
  readonly defaultText: string;
  readonly help: string;
  /** When set, using the flag produces this warning. */
  readonly deprecated?: string;
}

/** A parsed value: booleans, strings, numbers (durations in ms), lists, feature-gate maps. */
export type FlagValue = boolean | string | number | readonly string[] | Readonly<Record<string, boolean>>;

export interface ParsedArgs {
  /** Only the flags given explicitly, by long name. */
  readonly values: ReadonlyMap<string, FlagValue>;
  /** Arguments that are not flags, in order. */
  readonly positionals: readonly string[];
}

const d = (
  name: string,
  type: FlagType,
  valueName: string,
  defaultText: string,
  help: string,
  extra: { shorthand?: string; deprecated?: string } = {},
): FlagSpec => ({ name, type, valueName, defaultText, help, ...extra });

/**
 * Every flag kube-proxy-ts accepts: upstream's names, types and defaults (upstream cmd/kube-proxy/app/options.go), then our
 * own. Help texts are ours. The table is the single source for the parser and for helpText().
 */
export const FLAGS: readonly FlagSpec[] = [
  d(
    'config',
    'string',
    'string',
    '',
    'Path to a KubeProxyConfiguration file (v1alpha1 or v1alpha2). Flags given explicitly override its values.',
  ),
  d(
    'write-config-to',
    'string',
    'string',
    '',
    'Write the resolved configuration as a v1alpha1 file to this path and exit.',
  ),
  d('cleanup', 'bool', '', 'false', 'Remove the rules of every proxy mode and exit.'),
  d('init-only', 'bool', '', 'false', 'Do the privileged initialisation (sysctls) and exit.'),
  d(
    'kubeconfig',
    'string',
    'string',
    '',
    'Path to a kubeconfig file for the API server (in-cluster config when empty).',
  ),
  d('master', 'string', 'string', '', 'API server URL; overrides the server in the kubeconfig.'),
  d(
    'kube-api-content-type',
    'string',
    'string',
    'application/vnd.kubernetes.protobuf',
    'Content type of requests sent to the API server.',
  ),
  d('kube-api-qps', 'float', 'float32', '5', 'Requests per second allowed to the API server.'),
  d('kube-api-burst', 'int32', 'int32', '10', 'Request burst allowed to the API server.'),
  d('hostname-override', 'string', 'string', '', 'Node name to use instead of the OS hostname.'),
  d(
    'bind-address',
    'string',
    'ip',
    '0.0.0.0',
    "Overrides the node's primary IP (used for node IP detection; no socket is bound to it).",
  ),
  d(
    'bind-address-hard-fail',
    'bool',
    '',
    'false',
    'Exit when the healthz or metrics server cannot bind its port.',
  ),
  d(
    'healthz-bind-address',
    'string',
    'ipport',
    '0.0.0.0:10256',
    'IP:port for the health check server; empty disables it.',
  ),
  d(
    'metrics-bind-address',
    'string',
    'ipport',
    '127.0.0.1:10249',
    'IP:port for the metrics server; empty disables it.',
  ),
  d('healthz-port', 'int32', 'int32', '10256', 'Port of the health check server; 0 disables it.', {
    deprecated: '--healthz-port is deprecated; use --healthz-bind-address',
  }),
  d('metrics-port', 'int32', 'int32', '10249', 'Port of the metrics server; 0 disables it.', {
    deprecated: '--metrics-port is deprecated; use --metrics-bind-address',
  }),
  d('profiling', 'bool', '', 'false', 'Serve profiling data under /debug/pprof on the metrics server.'),
  d(
    'show-hidden-metrics-for-version',
    'string',
    'string',
    '',
    'Previous minor version (e.g. 1.33) whose hidden metrics should be shown.',
  ),
  d(
    'proxy-mode',
    'string',
    'ProxyMode',
    '',
    "Proxy mode: 'iptables' (when empty), 'ipvs', 'nftables' or 'userspace'.",
  ),
  d(
    'feature-gates',
    'mapStringBool',
    'mapStringBool',
    '',
    'Comma-separated key=true|false pairs enabling or disabling features. Options are:',
  ),
  d(
    'iptables-masquerade-bit',
    'int32',
    'int32',
    '14',
    'Bit of the fwmark space marking packets that need SNAT (iptables and ipvs modes); 0 to 31.',
  ),
  d('masquerade-all', 'bool', '', 'false', 'SNAT all traffic sent to Service cluster IPs.'),
  d(
    'iptables-localhost-nodeports',
    'bool',
    '',
    'true',
    'Allow NodePorts on 127.0.0.1 (iptables mode, IPv4 only).',
  ),
  d(
    'iptables-sync-period',
    'duration',
    'duration',
    '30s',
    'Longest time between full rule resyncs (iptables and nftables); greater than 0.',
  ),
  d(
    'iptables-min-sync-period',
    'duration',
    'duration',
    '1s',
    'Shortest time between rule resyncs (iptables and nftables); 0 resyncs on every change.',
  ),
  d(
    'ipvs-sync-period',
    'duration',
    'duration',
    '30s',
    'Longest time between full IPVS resyncs; greater than 0.',
  ),
  d('ipvs-min-sync-period', 'duration', 'duration', '0s', 'Shortest time between IPVS resyncs.'),
  d(
    'ipvs-scheduler',
    'string',
    'string',
    '',
    'IPVS scheduler (rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh); empty means rr.',
  ),
  d(
    'ipvs-exclude-cidrs',
    'stringSlice',
    'strings',
    '',
    'Comma-separated CIDRs whose IPVS services cleanup must leave alone.',
  ),
  d(
    'ipvs-strict-arp',
    'bool',
    '',
    'false',
    'Set arp_ignore=1 and arp_announce=2 so the node does not answer ARP for kube-ipvs0 addresses.',
  ),
  d(
    'ipvs-tcp-timeout',
    'duration',
    'duration',
    '0s',
    'IPVS idle TCP session timeout; 0 keeps the kernel value.',
  ),
  d(
    'ipvs-tcpfin-timeout',
    'duration',
    'duration',
    '0s',
    'IPVS TCP timeout after FIN; 0 keeps the kernel value.',
  ),
  d('ipvs-udp-timeout', 'duration', 'duration', '0s', 'IPVS UDP timeout; 0 keeps the kernel value.'),
  d(
    'cluster-cidr',
    'string',
    'string',
    '',
    'Pod CIDR(s) of the cluster, comma-separated, at most one per IP family.',
  ),
  d(
    'detect-local-mode',
    'string',
    'LocalMode',
    '',
    'How to tell pod traffic: ClusterCIDR (when empty), NodeCIDR, BridgeInterface or InterfaceNamePrefix.',
  ),
  d(
    'pod-bridge-interface',
    'string',
    'string',
    '',
    'Bridge whose traffic counts as local (detect-local-mode=BridgeInterface).',
  ),
  d(
    'pod-interface-name-prefix',
    'string',
    'string',
    '',
    'Interface name prefix whose traffic counts as local (detect-local-mode=InterfaceNamePrefix).',
  ),
  d(
    'nodeport-addresses',
    'stringSlice',
    'strings',
    '',
    "CIDRs of node IPs that accept NodePort traffic, or 'primary'; empty means all.",
  ),
  d('oom-score-adj', 'int32', 'int32', '-999', 'oom_score_adj of the process; -1000 to 1000.'),
  d(
    'conntrack-max-per-core',
    'int32',
    'int32',
    '32768',
    'Conntrack entries per CPU core (0 leaves nf_conntrack_max alone and ignores --conntrack-min).',
  ),
  d('conntrack-min', 'int32', 'int32', '131072', 'Minimum nf_conntrack_max, whatever the core count.'),
  d(
    'conntrack-tcp-timeout-established',
    'duration',
    'duration',
    '24h0m0s',
    'Conntrack timeout of idle established TCP connections; 0 leaves it alone.',
  ),
  d(
    'conntrack-tcp-timeout-close-wait',
    'duration',
    'duration',
    '1h0m0s',
    'Conntrack timeout of TCP connections in CLOSE_WAIT.',
  ),
  d(
    'conntrack-tcp-be-liberal',
    'bool',
    '',
    'false',
    'Set nf_conntrack_tcp_be_liberal=1 so out-of-window TCP packets are not marked INVALID.',
  ),
  d(
    'conntrack-udp-timeout',
    'duration',
    'duration',
    '0s',
    'Conntrack timeout of UNREPLIED UDP flows; 0 leaves it alone.',
  ),
  d(
    'conntrack-udp-timeout-stream',
    'duration',
    'duration',
    '0s',
    'Conntrack timeout of ASSURED UDP flows; 0 leaves it alone.',
  ),
  d(
    'config-sync-period',
    'duration',
    'duration',
    '15m0s',
    'How often the API watch caches are resynced; greater than 0.',
  ),
  d('proxy-port-range', 'string', 'port-range', '', 'Host port range for the userspace proxy (begin-end).', {
    deprecated: '--proxy-port-range is deprecated and only used by the userspace mode',
  }),
  d(
    'udp-timeout',
    'duration',
    'duration',
    '250ms',
    'Idle timeout of proxied UDP flows in the userspace mode.',
    {
      deprecated: '--udp-timeout is deprecated and only used by the userspace mode',
    },
  ),
  d('v', 'int32', 'Level', '0', 'Log verbosity.', { shorthand: 'v' }),
  d(
    'vmodule',
    'string',
    'pattern=N,...',
    '',
    'Per-file verbosity (pattern=N,...); validated, then has no effect here: -v applies to the whole process.',
  ),
  d(
    'logging-format',
    'string',
    'string',
    'text',
    "Log format: 'text' (klog lines, as upstream) or 'json' (one JSON object per line).",
  ),
  d(
    'log-flush-frequency',
    'duration',
    'duration',
    '5s',
    'Accepted for compatibility; has no effect: logs are written immediately.',
  ),
  d(
    'log-text-split-stream',
    'bool',
    '',
    'false',
    'Text format: write info messages to stdout, warnings and errors to stderr.',
  ),
  d(
    'log-json-split-stream',
    'bool',
    '',
    'false',
    'JSON format: write info messages to stdout, warnings and errors to stderr.',
  ),
  d(
    'log-text-info-buffer-size',
    'string',
    'quantity',
    '0',
    'Accepted for compatibility; has no effect: info messages are not buffered.',
  ),
  d(
    'log-json-info-buffer-size',
    'string',
    'quantity',
    '0',
    'Accepted for compatibility; has no effect: info messages are not buffered.',
  ),
  d(
    'version',
    'version',
    'version[=true]',
    '',
    "Print version information and exit; '--version=raw' prints more.",
  ),
  d('help', 'bool', '', '', 'Print this help and exit.', { shorthand: 'h' }),
  // ---- ours ----
  d(
    'manifests',
    'string',
    'dir',
    '',
    'Read Services, EndpointSlices and Nodes from YAML files in this folder instead of an API server.',
  ),
  d(
    'manifests-max-file-size',
    'int32',
    'bytes',
    '8388608',
    'Largest manifest file --manifests reads, in bytes; a bigger file is skipped with an error naming it.',
  ),
  d(
    'service-cluster-ip-range',
    'stringSlice',
    'strings',
    '10.96.0.0/12',
    'ClusterIP ranges (one per family) used to allocate ClusterIPs for --manifests.',
  ),
  d(
    'service-node-port-range',
    'string',
    'port-range',
    '30000-32767',
    'NodePort range used to allocate node ports for --manifests.',
  ),
  d(
    'userspace-balancer',
    'string',
    'string',
    'round-robin',
    "Userspace mode load balancing: 'round-robin' or 'least-connections'.",
  ),
  // ---- kube-proxy explain ----
  d('protocol', 'string', 'TCP|UDP|SCTP', '', 'explain: the protocol of the connection to explain.'),
  d(
    'source',
    'string',
    'IP[:PORT]',
    '',
    'explain: where the connection comes from (a pod, a node IP, or outside).',
  ),
  d('destination', 'string', 'IP:PORT', '', 'explain: where the connection is addressed to.'),
  d('output', 'string', 'text|json', 'text', 'explain: output format.', { shorthand: 'o' }),
  d(
    'live',
    'bool',
    '',
    'false',
    "explain: trace the kernel's rules in the current network namespace (root) and report where they differ from the desired state.",
  ),
  d(
    'userspace-portals',
    'bool',
    '',
    'true',
    'Userspace mode: as root with iptables, program NAT portal rules that bring service traffic to the proxy; false listens on local service addresses and NodePorts only.',
  ),
  d(
    'ipvs-health-check',
    'string',
    'string',
    '',
    "Health-check IPVS real servers: 'tcp' probes each by TCP connect and gives a failing one weight 0; empty is off.",
  ),
  d(
    'ipvs-health-check-interval',
    'duration',
    'duration',
    '5s',
    'Time between two probes of one real server.',
  ),
  d('ipvs-health-check-timeout', 'duration', 'duration', '5s', 'A probe connect slower than this fails.'),
  d(
    'ipvs-health-check-fall',
    'int32',
    'int32',
    '2',
    'Consecutive failed probes that make a real server unhealthy.',
  ),
  d('ipvs-health-check-rise', 'int32', 'int32', '1', 'Consecutive good probes that make it healthy again.'),
  d(
    'priority-services',
    'stringSlice',
    'strings',
    'kube-system/kube-dns',
    'Services (namespace/name) programmed first, in one small sync before the rest, when the proxy starts on a node without rules; default/kubernetes always is.',
  ),
];

const byName = new Map(FLAGS.map((f) => [f.name, f]));
const byShort = new Map(FLAGS.filter((f) => f.shorthand !== undefined).map((f) => [f.shorthand!, f]));

/** Go strconv.ParseBool. */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Splits a pflag string slice value (comma-separated; "" is the empty list). */
function splitList(s: string): string[] {
  if (s.trim() === '') return [];
  return s.split(',').map((x) => x.trim());
}

function convert(spec: FlagSpec, raw: string, previous: FlagValue | undefined): FlagValue {
  const bad = (why: string): never => {
    throw new FlagError(`invalid argument ${JSON.stringify(raw)} for "--${spec.name}" flag: ${why}`);
  };
  switch (spec.type) {
    case 'bool': {
      const b = parseBool(raw);
      return b ?? bad('expected true or false');
    }
    case 'string':
      return raw;
    case 'version':
      return raw === 'raw'
        ? 'raw'
        : (parseBool(raw) ?? bad('expected true, false or raw'))
          ? 'true'
          : 'false';
    case 'int32': {
      const t = raw.trim();
      let n: number;
      if (/^[+-]?\d+$/.test(t)) n = Number(t);
      else if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t))
        n = (t.startsWith('-') ? -1 : 1) * Number.parseInt(t.replace(/^[+-]?0[xX]/, ''), 16);
      else return bad('expected an integer');
      if (n < -2147483648 || n > 2147483647) bad('out of range for int32');
      return n;
    }
    case 'float': {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim())) bad('expected a number');
      return Number(raw.trim());
    }
    case 'duration':
      try {
        return parseGoDuration(raw.trim());
      } catch (e) {
        return bad((e as Error).message);
      }
    case 'stringSlice': {
      const prev = Array.isArray(previous) ? (previous as readonly string[]) : [];
      return [...prev, ...splitList(raw)];
    }
    case 'mapStringBool': {
      const out: Record<string, boolean> = { ...(previous as Readonly<Record<string, boolean>> | undefined) };
      for (const part of splitList(raw)) {
        const eq = part.indexOf('=');
        if (eq < 0) bad(`missing "=" in ${JSON.stringify(part)} (expected key=true|false)`);
        const key = part.slice(0, eq).trim();
        const b = parseBool(part.slice(eq + 1).trim());
        if (key === '') bad(`empty key in ${JSON.stringify(part)}`);
        if (b === undefined) bad(`invalid value for ${JSON.stringify(key)} (expected true or false)`);
        out[key] = b!;
      }
      return out;
    }
  }
}

/** Whether a flag may appear without a value (bools and --version). */
function optionalValue(spec: FlagSpec): string | undefined {
  if (spec.type === 'bool') return 'true';
  if (spec.type === 'version') return 'true';
  return undefined;
}

/**
 * Parses argv (without the node binary and script path) against `table`. Returns the explicitly given
 * flags (typed; durations in ms) and the positional arguments. Throws FlagError naming the flag for an
 * unknown flag, a missing value, or a value of the wrong type.
 */
export function parseArgs(argv: readonly string[], table: readonly FlagSpec[] = FLAGS): ParsedArgs {
  const names = table === FLAGS ? byName : new Map(table.map((f) => [f.name, f]));
  const shorts =
    table === FLAGS
      ? byShort
      : new Map(table.filter((f) => f.shorthand !== undefined).map((f) => [f.shorthand!, f]));
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  const set = (spec: FlagSpec, raw: string): void => {
    values.set(spec.name, convert(spec, raw, values.get(spec.name)));
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = (eq < 0 ? body : body.slice(0, eq)).replaceAll('_', '-');
      const spec = names.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) {
        set(spec, body.slice(eq + 1));
        continue;
      }
      const implicit = optionalValue(spec);
      if (implicit !== undefined) {
        set(spec, implicit);
        continue;
      }
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
      set(spec, argv[++i]!);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // A shorthand cluster: "-v4", "-v=4", "-v 4", "-h".
      let rest = arg.slice(1);
      while (rest !== '') {
        const c = rest[0]!;
        const spec = shorts.get(c);
        if (!spec) throw new FlagError(`unknown shorthand flag: '${c}' in ${arg}`);
        rest = rest.slice(1);
        if (rest.startsWith('=')) {
          set(spec, rest.slice(1));
          rest = '';
        } else if (optionalValue(spec) !== undefined) {
          set(spec, optionalValue(spec)!);
        } else if (rest !== '') {
          set(spec, rest);
          rest = '';
        } else {
          if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: '${c}' in ${arg}`);
          set(spec, argv[++i]!);
        }
      }
      continue;
    }
    positionals.push(arg);
  }
  return { values, positionals };
}

/** The spec of a long flag name, or undefined. */
export function flagSpec(name: string): FlagSpec | undefined {
  return byName.get(name);
}
