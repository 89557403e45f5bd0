import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundFlagNames, helpText, parseCommandLine, renderConfigFile, resolveNodeName } from './load.js';
import { FLAGS } from './flags.js';
import { ConfigError, FlagError } from './errors.js';
import { defaultProxyConfig } from './defaults.js';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';
const files =
  (map: Record<string, string>) =>
  (p: string): string => {
    const t = map[p];
    if (t === undefined) throw new Error(`ENOENT: no such file '${p}'`);
    return t;
  };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return [...e.problems];
  }
  assert.fail('expected a ConfigError');
}

test('no arguments: run with the defaults and no warnings', () => {
  const r = parseCommandLine([]);
  assert.equal(r.command, 'run');
  assert.deepEqual(r.config, defaultProxyConfig());
  assert.deepEqual(r.warnings, []);
  assert.equal(r.explicitFlags.size, 0);
});

test('precedence: defaults < --config file < explicit flags', () => {
  const read = files({
    '/c.yaml': `${HEAD}mode: ipvs\noomScoreAdj: -100\niptables:\n  masqueradeBit: 10\nclusterCIDR: 10.244.0.0/16\n`,
  });
  const r = parseCommandLine(
    ['--config=/c.yaml', '--iptables-masquerade-bit=12', '--proxy-mode', 'nftables'],
    read,
  );
  assert.equal(r.config.iptables.masqueradeBit, 12); // flag beats file
  assert.equal(r.config.mode, 'nftables'); // flag beats file
  assert.equal(r.config.oomScoreAdj, -100); // file beats default
  assert.deepEqual(r.config.clusterCIDRs, ['10.244.0.0/16']);
  assert.equal(r.config.conntrack.min, 131_072); // default
  assert.deepEqual([...r.explicitFlags].sort(), ['config', 'iptables-masquerade-bit', 'proxy-mode']);
  assert.ok(
    r.warnings.some(
      (w) => w.includes('--config') && w.includes('--iptables-masquerade-bit') && w.includes('--proxy-mode'),
    ),
  );
});

test('a flag left at its default does not override the file', () => {
  const read = files({ '/c.yaml': `${HEAD}iptables:\n  masqueradeBit: 10\n` });
  const r = parseCommandLine(['--config', '/c.yaml', '--v=3'], read);
  assert.equal(r.config.iptables.masqueradeBit, 10);
  assert.equal(r.config.logging.verbosity, 3);
  assert.ok(!r.warnings.some((w) => w.includes('override')), 'logging flags alone do not warn');
});

test('--config alone does not warn', () => {
  const r = parseCommandLine(['--config=/c.yaml'], files({ '/c.yaml': HEAD }));
  assert.deepEqual(r.warnings, []);
});

test('--iptables-sync-period and --iptables-min-sync-period also set the nftables periods', () => {
  const r = parseCommandLine(['--iptables-sync-period=1m', '--iptables-min-sync-period=0']);
  assert.equal(r.config.iptables.syncPeriodMs, 60_000);
  assert.equal(r.config.nftables.syncPeriodMs, 60_000);
  assert.equal(r.config.iptables.minSyncPeriodMs, 0);
  assert.equal(r.config.nftables.minSyncPeriodMs, 0);
  assert.equal(r.config.ipvs.syncPeriodMs, 30_000);
});

test('--masquerade-all sets both iptables and nftables; --masquerade-all=false clears the file', () => {
  let r = parseCommandLine(['--masquerade-all']);
  assert.equal(r.config.iptables.masqueradeAll, true);
  assert.equal(r.config.nftables.masqueradeAll, true);
  r = parseCommandLine(
    ['--config=/c', '--masquerade-all=false'],
    files({ '/c': `${HEAD}iptables:\n  masqueradeAll: true\n` }),
  );
  assert.equal(r.config.iptables.masqueradeAll, false);
});

test('every flag of each type lands in the config', () => {
  const r = parseCommandLine([
    '--kubeconfig=/k',
    '--master',
    'https://10.0.0.1:6443',
    '--kube-api-content-type=application/json',
    '--kube-api-qps=20.5',
    '--kube-api-burst=40',
    '--hostname-override=  Node-A ',
    '--bind-address=10.0.0.5',
    '--bind-address-hard-fail',
    '--healthz-bind-address=127.0.0.1:1',
    '--metrics-bind-address=',
    '--profiling',
    '--show-hidden-metrics-for-version=1.33',
    '--feature-gates=WinDSR=true',
    '--iptables-localhost-nodeports=false',
    '--ipvs-sync-period=10s',
    '--ipvs-min-sync-period=1s',
    '--ipvs-scheduler=wrr',
    '--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/8',
    '--ipvs-strict-arp',
    '--ipvs-tcp-timeout=5s',
    '--ipvs-tcpfin-timeout=6s',
    '--ipvs-udp-timeout=7s',
    '--cluster-cidr=10.244.0.0/16,fd00::/48',
    '--detect-local-mode=InterfaceNamePrefix',
    '--pod-interface-name-prefix=veth',
    '--pod-bridge-interface=cni0',
    '--nodeport-addresses=primary',
    '--oom-score-adj=-1000',
    '--conntrack-max-per-core=0',
    '--conntrack-min=1',
    '--conntrack-tcp-timeout-established=1h',
    '--conntrack-tcp-timeout-close-wait=1m',
    '--conntrack-tcp-be-liberal',
    '--conntrack-udp-timeout=30s',
    '--conntrack-udp-timeout-stream=2m',
    '--config-sync-period=5m',
    '--logging-format=json',
    '--manifests=/m',
    '--service-cluster-ip-range=10.0.0.0/16,fd00:96::/112',
    '--service-node-port-range=20000-20100',
    '--userspace-balancer=least-connections',
  ]);
  const c = r.config;
  assert.deepEqual(c.clientConnection, {
    kubeconfig: '/k',
    acceptContentTypes: '',
    contentType: 'application/json',
    qps: 20.5,
    burst: 40,
  });
  assert.equal(c.master, 'https://10.0.0.1:6443');
  assert.equal(c.hostnameOverride, 'node-a');
  assert.equal(c.bindAddress, '10.0.0.5');
  assert.equal(c.bindAddressHardFail, true);
  assert.equal(c.healthzBindAddress, '127.0.0.1:1');
  assert.equal(c.metricsBindAddress, '', 'an explicit empty flag disables the server');
  assert.equal(c.enableProfiling, true);
  assert.equal(c.showHiddenMetricsForVersion, '1.33');
  assert.deepEqual(c.featureGates, { WinDSR: true });
  assert.equal(c.iptables.localhostNodePorts, false);
  assert.deepEqual(c.ipvs, {
    syncPeriodMs: 10_000,
    minSyncPeriodMs: 1_000,
    scheduler: 'wrr',
    excludeCIDRs: ['10.0.0.0/8', 'fd00::/8'],
    strictARP: true,
    tcpTimeoutMs: 5_000,
    tcpFinTimeoutMs: 6_000,
    udpTimeoutMs: 7_000,
  });
  assert.deepEqual(c.clusterCIDRs, ['10.244.0.0/16', 'fd00::/48']);
  assert.equal(c.detectLocalMode, 'InterfaceNamePrefix');
  assert.deepEqual(c.detectLocal, { bridgeInterface: 'cni0', interfaceNamePrefix: 'veth' });
  assert.deepEqual(c.nodePortAddresses, ['primary']);
  assert.equal(c.oomScoreAdj, -1000);
  assert.deepEqual(c.conntrack, {
    maxPerCore: 0,
    min: 1,
    tcpEstablishedTimeoutMs: 3_600_000,
    tcpCloseWaitTimeoutMs: 60_000,
    tcpBeLiberal: true,
    udpTimeoutMs: 30_000,
    udpStreamTimeoutMs: 120_000,
  });
  assert.equal(c.configSyncPeriodMs, 300_000);
  assert.equal(c.logging.format, 'json');
  assert.equal(c.manifests, '/m');
  assert.deepEqual(c.serviceClusterIPRange, ['10.0.0.0/16', 'fd00:96::/112']);
  assert.deepEqual(c.serviceNodePortRange, { min: 20000, max: 20100 });
  assert.equal(c.userspaceBalancer, 'least-connections');
});

test('every flag in the table is wired into the config or a command', () => {
  const bound = new Set(boundFlagNames());
  for (const f of FLAGS) assert.ok(bound.has(f.name), f.name);
});

test('deprecated flags work and warn', () => {
  const r = parseCommandLine([
    '--healthz-port=1234',
    '--metrics-port=0',
    '--proxy-port-range=1000-2000',
    '--udp-timeout=1s',
  ]);
  assert.equal(r.config.healthzBindAddress, '0.0.0.0:1234');
  assert.equal(r.config.metricsBindAddress, '');
  assert.equal(r.config.portRange, '1000-2000');
  assert.equal(r.config.udpIdleTimeoutMs, 1_000);
  for (const f of ['--healthz-port', '--metrics-port', '--proxy-port-range', '--udp-timeout']) {
    assert.ok(
      r.warnings.some((w) => w.startsWith(f)),
      f,
    );
  }
});

test('the deprecated port flag keeps the host of --healthz-bind-address', () => {
  const r = parseCommandLine(['--healthz-port=99', '--healthz-bind-address=[::1]:10256']);
  assert.equal(r.config.healthzBindAddress, '[::1]:99');
});

test('mode: "" is iptables, ipvs warns, kernelspace is rejected naming the flag', () => {
  assert.equal(parseCommandLine(['--proxy-mode=']).config.mode, 'iptables');
  const r = parseCommandLine(['--proxy-mode=ipvs']);
  assert.equal(r.config.mode, 'ipvs');
  assert.ok(r.warnings.some((w) => w.includes('ipvs') && w.includes('deprecated')));
  const [p] = problemsOf(() => parseCommandLine(['--proxy-mode=kernelspace']));
  assert.match(
    p!,
    /^invalid value for --proxy-mode: kernelspace is the Windows proxy mode.*\(value: "kernelspace"\)$/,
  );
});

test('invalid explicit flag values name the flag; invalid file values name the file and field', () => {
  assert.deepEqual(
    problemsOf(() => parseCommandLine(['--iptables-masquerade-bit=40'])),
    ['invalid value for --iptables-masquerade-bit: must be between 0 and 31 (value: 40)'],
  );
  assert.deepEqual(
    problemsOf(() => parseCommandLine(['--config=/c'], files({ '/c': `${HEAD}oomScoreAdj: 1001\n` }))),
    ['/c: KubeProxyConfiguration: oomScoreAdj: must be between -1000 and 1000 (value: 1001)'],
  );
  assert.deepEqual(parseCommandLine(['--config=/c'], files({ '/c': `${HEAD}nope: 1\n` })).warnings, [
    '/c: unknown field "nope" ignored (lenient decoding, as upstream)',
  ]);
  assert.match(
    problemsOf(() => parseCommandLine(['--service-node-port-range=abc']))[0]!,
    /--service-node-port-range/,
  );
  assert.match(
    problemsOf(() => parseCommandLine(['--hostname-override=  ']))[0]!,
    /--hostname-override: must not be only whitespace/,
  );
  assert.match(
    problemsOf(() => parseCommandLine(['--iptables-sync-period=1s', '--iptables-min-sync-period=2s']))[0]!,
    /--iptables-min-sync-period/,
  );
  assert.match(
    problemsOf(() => parseCommandLine(['--userspace-balancer=random']))[0]!,
    /--userspace-balancer: must be round-robin or least-connections/,
  );
});

test('an unreadable --config file is a ConfigError naming the path', () => {
  assert.match(
    problemsOf(() => parseCommandLine(['--config=/missing'], files({})))[0]!,
    /^--config: cannot read "\/missing": ENOENT/,
  );
});

test('commands: render, help, version, write-config, cleanup, init-only', () => {
  assert.equal(parseCommandLine(['render', '--manifests', '/m']).command, 'render');
  assert.equal(parseCommandLine(['--manifests', '/m', 'render']).command, 'render');
  assert.equal(parseCommandLine(['-h', '--config=/does-not-matter'], files({})).command, 'help');
  assert.equal(parseCommandLine(['--version']).command, 'version');
  assert.equal(parseCommandLine(['--version=false']).command, 'run');
  assert.equal(parseCommandLine(['--cleanup']).command, 'cleanup');
  assert.equal(parseCommandLine(['--init-only']).command, 'init-only');
  const w = parseCommandLine(['--write-config-to=/out.yaml', '--cleanup']);
  assert.equal(w.command, 'write-config');
  assert.equal(w.writeConfigTo, '/out.yaml');
});

test('unexpected positional arguments and unknown flags are FlagErrors', () => {
  assert.throws(
    () => parseCommandLine(['serve']),
    (e: Error) => e instanceof FlagError && e.message.includes('"serve"'),
  );
  assert.throws(() => parseCommandLine(['render', 'extra']), /"extra"/);
  assert.throws(() => parseCommandLine(['--masquerade-al']), /unknown flag: --masquerade-al/);
});

test('write-config output read back with --config gives the same config', () => {
  const r = parseCommandLine([
    '--write-config-to=/o',
    '--proxy-mode=nftables',
    '--cluster-cidr=10.244.0.0/16',
    '--conntrack-min=5',
    '--v=2',
  ]);
  const text = renderConfigFile(r.config);
  const back = parseCommandLine(['--config=/o'], files({ '/o': text }));
  assert.deepEqual(back.config, r.config);
});

test('a v1alpha2 file works through --config', () => {
  const r = parseCommandLine(
    ['--config=/c'],
    files({
      '/c': 'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\nlinux:\n  masqueradeAll: true\n',
    }),
  );
  assert.equal(r.config.iptables.masqueradeAll, true);
  assert.equal(r.config.iptables.localhostNodePorts, false);
});

test('helpText lists every flag with its default and deprecation', () => {
  const h = helpText();
  for (const f of FLAGS) assert.ok(h.includes(`--${f.name}`), f.name);
  assert.match(h, /-v, --v Level/);
  assert.match(h, /-h, --help/);
  assert.match(h, /--iptables-sync-period duration +.*\(default "30s"\)/);
  assert.match(h, /--healthz-port int32 .*DEPRECATED/);
  assert.match(h, /--iptables-localhost-nodeports .*\(default true\)/);
});

test('resolveNodeName: override when set, else hostname; trimmed and lowercased', () => {
  assert.equal(resolveNodeName({ hostnameOverride: '' }, ' My-Host\n'), 'my-host');
  assert.equal(resolveNodeName({ hostnameOverride: ' Node-1 ' }, 'ignored'), 'node-1');
  assert.equal(resolveNodeName({ hostnameOverride: '   ' }, 'HOST'), 'host');
});

test('priority services: default kube-system/kube-dns; from the kubeProxyTs extension field; the flag wins; bad entries are named', () => {
  assert.deepEqual(parseCommandLine([]).config.priorityServices, ['kube-system/kube-dns']);
  const file = `${HEAD}kubeProxyTs:\n  priorityServices: [kube-system/coredns, monitoring/prometheus]\n`;
  const r = parseCommandLine(['--config=/c.yaml'], files({ '/c.yaml': file }));
  assert.deepEqual(r.config.priorityServices, ['kube-system/coredns', 'monitoring/prometheus']);
  const f = parseCommandLine(['--config=/c.yaml', '--priority-services=a/b'], files({ '/c.yaml': file }));
  assert.deepEqual(f.config.priorityServices, ['a/b']);
  assert.throws(
    () =>
      parseCommandLine(
        ['--config=/c.yaml'],
        files({ '/c.yaml': `${HEAD}kubeProxyTs:\n  priorityServices: [nope]\n` }),
      ),
    (e: unknown) =>
      e instanceof ConfigError && /kubeProxyTs\.priorityServices: must be namespace\/name/.test(e.message),
  );
  assert.throws(
    () => parseCommandLine(['--priority-services=x']),
    /--priority-services: must be namespace\/name/,
  );
});

test('--ipvs-health-check: off by default; tcp with its options; bad values are named', () => {
  assert.equal(parseCommandLine([]).config.ipvsHealthCheck.mode, '');
  const r = parseCommandLine([
    '--ipvs-health-check=tcp',
    '--ipvs-health-check-interval=2s',
    '--ipvs-health-check-timeout=1s',
    '--ipvs-health-check-fall=3',
    '--ipvs-health-check-rise=2',
  ]);
  assert.deepEqual(r.config.ipvsHealthCheck, {
    mode: 'tcp',
    intervalMs: 2000,
    timeoutMs: 1000,
    fall: 3,
    rise: 2,
  });
  assert.throws(() => parseCommandLine(['--ipvs-health-check=http']), /must be "" \(off\) or tcp/);
  assert.throws(
    () => parseCommandLine(['--ipvs-health-check-timeout=10s']),
    /timeout must not exceed the interval/,
  );
});
