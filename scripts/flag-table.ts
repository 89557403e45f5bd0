/**
 * Prints the markdown table of every flag with its status here, from the real flag table
 * (src/config/flags.ts). docs/operations.md embeds its output between the FLAG-TABLE markers;
 * test/docs.test.ts fails when they differ or when a flag has no status.
 *   node --import tsx scripts/flag-table.ts
 */
import { FLAGS } from '../src/config/flags.js';

type Status = 'supported' | 'accepted, ignored (warning)' | 'accepted, no effect' | 'ours';

/** Status and a note for every flag. A flag missing here makes the docs test fail. */
export const FLAG_STATUS: Readonly<Record<string, [Status, string]>> = {
  config: [
    'supported',
    'KubeProxyConfiguration v1alpha1 or v1alpha2; explicit flags override it (warning); a change on disk logs and exits 1 (the pod restarts)',
  ],
  'write-config-to': ['supported', 'writes v1alpha1 and exits'],
  cleanup: ['supported', 'removes the rules of every mode, then exits'],
  'init-only': [
    'supported',
    'sets the sysctls the mode needs (and conntrack), then exits; for an init container',
  ],
  kubeconfig: [
    'supported',
    'token, tokenFile and client certificates are tested; exec plugins go through client-node, untested',
  ],
  master: ['supported', ''],
  'kube-api-content-type': ['accepted, no effect', 'we always request JSON (read-only, small objects)'],
  'kube-api-qps': ['supported', ''],
  'kube-api-burst': ['supported', ''],
  'hostname-override': ['supported', ''],
  'bind-address': ['supported', 'used to pick the node IP, as upstream'],
  'bind-address-hard-fail': ['supported', ''],
  'healthz-bind-address': ['supported', '/healthz, /livez and /readyz (ours)'],
  'metrics-bind-address': ['supported', '/metrics, /healthz, /proxyMode, /configz, /debug/explain'],
  'healthz-port': ['supported', 'deprecated upstream; warns'],
  'metrics-port': ['supported', 'deprecated upstream; warns'],
  profiling: [
    'supported',
    '/debug/pprof/profile?seconds=N (V8 .cpuprofile) and /debug/pprof/heap (.heapsnapshot) on the metrics server',
  ],
  'show-hidden-metrics-for-version': ['accepted, no effect', 'no hidden metrics exist yet'],
  'proxy-mode': [
    'supported',
    'iptables (default), nftables, ipvs, userspace; kernelspace is Windows-only and rejected',
  ],
  'feature-gates': [
    'supported',
    'validated as upstream: an unknown gate, or a locked gate set against its lock, is an error; --help lists the gates kube-proxy reads; one set against a built-in behaviour, read by nothing here, or deprecated is logged once',
  ],
  'iptables-masquerade-bit': ['supported', ''],
  'masquerade-all': ['supported', 'iptables and nftables'],
  'iptables-localhost-nodeports': ['supported', ''],
  'iptables-sync-period': ['supported', 'also nftables, as upstream'],
  'iptables-min-sync-period': ['supported', 'also nftables, as upstream'],
  'ipvs-sync-period': ['supported', ''],
  'ipvs-min-sync-period': ['supported', ''],
  'ipvs-scheduler': ['supported', 'rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh'],
  'ipvs-exclude-cidrs': ['supported', ''],
  'ipvs-strict-arp': ['supported', ''],
  'ipvs-tcp-timeout': ['supported', ''],
  'ipvs-tcpfin-timeout': ['supported', ''],
  'ipvs-udp-timeout': ['supported', ''],
  'cluster-cidr': ['supported', 'one CIDR per family'],
  'detect-local-mode': ['supported', 'ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix'],
  'pod-bridge-interface': ['supported', ''],
  'pod-interface-name-prefix': ['supported', ''],
  'nodeport-addresses': ['supported', 'CIDRs, or "primary"'],
  'oom-score-adj': ['supported', 'kernel modes'],
  'conntrack-max-per-core': [
    'supported',
    'kernel modes; nf_conntrack_max is only raised, and then the hashsize to max/4 (from the initial netns only: it is global)',
  ],
  'conntrack-min': ['supported', ''],
  'conntrack-tcp-timeout-established': ['supported', ''],
  'conntrack-tcp-timeout-close-wait': ['supported', ''],
  'conntrack-tcp-be-liberal': ['supported', ''],
  'conntrack-udp-timeout': ['supported', ''],
  'conntrack-udp-timeout-stream': ['supported', ''],
  'config-sync-period': ['supported', 'informer-style resync of the API source'],
  'proxy-port-range': ['supported', 'userspace mode portal ports; deprecated upstream'],
  'udp-timeout': ['supported', 'userspace mode UDP session idle timeout; deprecated upstream'],
  v: ['supported', 'klog verbosity: 2 debug, 4 trace'],
  vmodule: ['accepted, no effect', 'validated (pattern=N,...); -v applies to the whole process; logged once'],
  'logging-format': ['supported', 'text (default): klog lines; json: one JSON object per line (pino fields)'],
  'log-flush-frequency': ['accepted, no effect', 'logs are written immediately; logged once'],
  'log-text-split-stream': ['supported', 'info to stdout, warnings and errors to stderr'],
  'log-json-split-stream': ['supported', 'info to stdout, warnings and errors to stderr'],
  'log-text-info-buffer-size': ['accepted, no effect', 'nothing is buffered; logged once'],
  'log-json-info-buffer-size': ['accepted, no effect', 'nothing is buffered; logged once'],
  version: ['supported', ''],
  help: ['supported', ''],
  manifests: ['ours', 'run on a folder of manifests instead of an API server'],
  'manifests-max-file-size': ['ours', 'a bigger manifest file is skipped, with an error naming it'],
  'service-cluster-ip-range': ['ours', 'cluster IP allocation for --manifests'],
  'service-node-port-range': ['ours', 'node port allocation for --manifests'],
  'userspace-balancer': ['ours', 'round-robin or least-connections'],
  protocol: ['ours', "`kube-proxy explain` only: the connection's protocol"],
  source: ['ours', '`kube-proxy explain` only: where the connection comes from'],
  destination: ['ours', '`kube-proxy explain` only: where it is addressed to'],
  output: ['ours', '`kube-proxy explain` only: text or json'],
  live: ['ours', "`kube-proxy explain` only: trace the kernel's rules (root), exit 3 when they differ"],
  'userspace-portals': ['ours', 'false: no NAT portal rules, listen on local addresses only'],
  'ipvs-health-check': [
    'ours',
    'tcp: probe endpoints; ipvs: weight 0 while failing; userspace: skipped for new connections',
  ],
  'ipvs-health-check-interval': ['ours', 'one probe per real server per interval'],
  'ipvs-health-check-timeout': ['ours', ''],
  'ipvs-health-check-fall': ['ours', ''],
  'ipvs-health-check-rise': ['ours', ''],
  'priority-services': [
    'ours',
    'programmed alone before the bulk on a node without rules; default/kubernetes always is',
  ],
};

/** The markdown table. */
export function flagTable(): string {
  const rows = FLAGS.map((f) => {
    const [status, note] = FLAG_STATUS[f.name] ?? ['UNDOCUMENTED', ''];
    const name = `\`--${f.name}\`${f.shorthand ? ` / \`-${f.shorthand}\`` : ''}`;
    return `| ${name} | ${f.defaultText === '' ? '' : `\`${f.defaultText}\``} | ${status} | ${note} |`;
  });
  return ['| flag | default | status here | notes |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}

if (process.argv[1]?.endsWith('flag-table.ts')) process.stdout.write(flagTable());
