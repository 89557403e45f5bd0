import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeKubeProxyConfiguration, parseKubeProxyConfiguration } from './decode.js';
import { defaultProxyConfig } from './defaults.js';
import { renderConfigFile } from './encode.js';
import { validateProxyConfig } from './validate.js';
import { ConfigError } from './errors.js';
import { kubeadmConfigConf } from '../../test/fixtures/kubeadm.js';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';
const HEAD2 = 'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n';

function problems(text: string): string[] {
  try {
    parseKubeProxyConfiguration(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return [...e.problems];
  }
  assert.fail('expected a ConfigError');
}

test('defaults match upstream v1alpha1 (upstream pkg/proxy/apis/config/v1alpha1/defaults.go)', () => {
  const c = parseKubeProxyConfiguration(HEAD).config;
  assert.equal(c.bindAddress, '0.0.0.0');
  assert.equal(c.healthzBindAddress, '0.0.0.0:10256');
  assert.equal(c.metricsBindAddress, '127.0.0.1:10249');
  assert.equal(c.bindAddressHardFail, false);
  assert.equal(c.enableProfiling, false);
  assert.equal(c.showHiddenMetricsForVersion, '');
  assert.deepEqual(c.clientConnection, {
    kubeconfig: '',
    acceptContentTypes: '',
    contentType: 'application/vnd.kubernetes.protobuf',
    qps: 5,
    burst: 10,
  });
  assert.equal(c.hostnameOverride, '');
  assert.deepEqual(c.featureGates, {});
  assert.equal(c.mode, 'iptables');
  assert.deepEqual(c.iptables, {
    masqueradeBit: 14,
    masqueradeAll: false,
    localhostNodePorts: true,
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 1_000,
  });
  assert.deepEqual(c.ipvs, {
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 0,
    scheduler: '',
    excludeCIDRs: [],
    strictARP: false,
    tcpTimeoutMs: 0,
    tcpFinTimeoutMs: 0,
    udpTimeoutMs: 0,
  });
  assert.deepEqual(c.nftables, {
    masqueradeBit: 14,
    masqueradeAll: false,
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 1_000,
  });
  assert.deepEqual(c.conntrack, {
    maxPerCore: 32_768,
    min: 131_072,
    tcpEstablishedTimeoutMs: 86_400_000,
    tcpCloseWaitTimeoutMs: 3_600_000,
    tcpBeLiberal: false,
    udpTimeoutMs: 0,
    udpStreamTimeoutMs: 0,
  });
  assert.equal(c.oomScoreAdj, -999);
  assert.equal(c.configSyncPeriodMs, 900_000);
  assert.equal(c.portRange, '');
  assert.deepEqual(c.clusterCIDRs, []);
  assert.equal(c.detectLocalMode, '');
  assert.deepEqual(c.detectLocal, { bridgeInterface: '', interfaceNamePrefix: '' });
  assert.deepEqual(c.nodePortAddresses, []);
  assert.equal(c.udpIdleTimeoutMs, 250);
  assert.deepEqual(c, defaultProxyConfig());
});

const KUBEADM = kubeadmConfigConf('/var/lib/kube-proxy/kubeconfig.conf');

test('a kubeadm-generated file equals the defaults except clusterCIDR and kubeconfig', () => {
  const c = parseKubeProxyConfiguration(KUBEADM).config;
  const want = defaultProxyConfig();
  want.clusterCIDRs = ['10.244.0.0/16'];
  want.clientConnection.kubeconfig = '/var/lib/kube-proxy/kubeconfig.conf';
  assert.deepEqual(c, want);
});

test('JSON files are accepted', () => {
  const c = parseKubeProxyConfiguration(
    JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'nftables',
    }),
  ).config;
  assert.equal(c.mode, 'nftables');
});

test('zero-value rules follow upstream defaulting: pointers keep 0, plain durations do not', () => {
  const c = parseKubeProxyConfiguration(
    `${HEAD}conntrack:\n  maxPerCore: 0\n  tcpEstablishedTimeout: 0s\niptables:\n  minSyncPeriod: 0s\nipvs:\n  minSyncPeriod: 0s\n`,
  ).config;
  assert.equal(c.conntrack.maxPerCore, 0);
  assert.equal(c.conntrack.tcpEstablishedTimeoutMs, 0);
  assert.equal(c.iptables.minSyncPeriodMs, 1_000);
  assert.equal(c.ipvs.minSyncPeriodMs, 0);
});

test('healthz/metrics addresses: a bare IP gets the port; IPv6 bindAddress moves the defaults to IPv6', () => {
  let c = parseKubeProxyConfiguration(
    `${HEAD}healthzBindAddress: 10.0.0.1\nmetricsBindAddress: "::1"\n`,
  ).config;
  assert.equal(c.healthzBindAddress, '10.0.0.1:10256');
  assert.equal(c.metricsBindAddress, '[::1]:10249');
  c = parseKubeProxyConfiguration(`${HEAD}bindAddress: "fd00::1"\n`).config;
  assert.equal(c.healthzBindAddress, '[::]:10256');
  assert.equal(c.metricsBindAddress, '[::1]:10249');
});

test('mode "" resolves to iptables; kernelspace and unknown modes are rejected with the field', () => {
  assert.equal(parseKubeProxyConfiguration(`${HEAD}mode: ""\n`).config.mode, 'iptables');
  assert.equal(parseKubeProxyConfiguration(`${HEAD}mode: userspace\n`).config.mode, 'userspace');
  const [k] = problems(`${HEAD}mode: kernelspace\n`);
  assert.match(
    k!,
    /^KubeProxyConfiguration: mode: kernelspace is the Windows proxy mode.*\(value: "kernelspace"\)$/,
  );
  assert.match(problems(`${HEAD}mode: turbo\n`)[0]!, /mode: must be one of/);
});

test('v1alpha1 unknown fields are warnings naming the full path; the rest of the file applies', () => {
  const d = decodeKubeProxyConfiguration(
    `${HEAD}bogus: 1\niptables:\n  masqueradeBits: 3\n  masqueradeAll: true\nlogging:\n  nope: {}\n`,
  );
  assert.deepEqual(d.warnings.filter((w) => w.startsWith('unknown field')).sort(), [
    'unknown field "bogus" ignored (lenient decoding, as upstream)',
    'unknown field "iptables.masqueradeBits" ignored (lenient decoding, as upstream)',
    'unknown field "logging.nope" ignored (lenient decoding, as upstream)',
  ]);
  assert.equal(d.config.iptables.masqueradeAll, true);
  // A mistyped known field is still an error.
  assert.match(problems(`${HEAD}bogus: 1\niptables:\n  masqueradeAll: 3\n`)[0]!, /iptables\.masqueradeAll/);
});

test('v1alpha2 unknown fields are errors naming the full path', () => {
  assert.deepEqual(problems(`${HEAD2}iptables:\n  masqueradeBits: 3\n`), [
    'KubeProxyConfiguration: unknown field "iptables.masqueradeBits"',
  ]);
});

test('wrong apiVersion, kind and types are errors naming the field', () => {
  assert.match(
    problems('apiVersion: v1\nkind: KubeProxyConfiguration\n')[0]!,
    /apiVersion: must be kubeproxy\.config\.k8s\.io\/v1alpha1/,
  );
  assert.match(
    problems('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: Pod\n')[0]!,
    /kind: must be "KubeProxyConfiguration" \(value: "Pod"\)/,
  );
  assert.match(
    problems(`${HEAD}iptables:\n  masqueradeBit: "x"\n`)[0]!,
    /iptables\.masqueradeBit: .*\(value: "x"\)/,
  );
  assert.match(problems(`${HEAD}configSyncPeriod: 15\n`)[0]!, /configSyncPeriod: expected a duration string/);
  assert.match(problems(`${HEAD}iptables:\n  syncPeriod: 30\n`)[0]!, /iptables\.syncPeriod/);
  assert.match(problems(`${HEAD}ipvs:\n  syncPeriod: 30x\n`)[0]!, /ipvs\.syncPeriod: invalid duration "30x"/);
  assert.match(problems('- a\n')[0]!, /must contain a mapping/);
  assert.match(problems(`${HEAD}mode: [\n`)[0]!, /cannot parse file/);
});

test('invalid values name the field path and the value', () => {
  const cases: [string, string][] = [
    [
      'iptables:\n  masqueradeBit: 40\n',
      'KubeProxyConfiguration: iptables.masqueradeBit: must be between 0 and 31 (value: 40)',
    ],
    [
      'nftables:\n  masqueradeBit: -1\n',
      'KubeProxyConfiguration: nftables.masqueradeBit: must be between 0 and 31 (value: -1)',
    ],
    [
      'oomScoreAdj: 1001\n',
      'KubeProxyConfiguration: oomScoreAdj: must be between -1000 and 1000 (value: 1001)',
    ],
    [
      'bindAddress: 1.2.3\n',
      'KubeProxyConfiguration: bindAddress: must be a valid IP address (value: "1.2.3")',
    ],
    [
      'healthzBindAddress: "nohost:10256"\n',
      'KubeProxyConfiguration: healthzBindAddress: must be IP:port with a valid IP (value: "nohost:10256")',
    ],
    [
      'metricsBindAddress: "127.0.0.1:70000"\n',
      'KubeProxyConfiguration: metricsBindAddress: must be IP:port (IPv6 as [IP]:port) (value: "127.0.0.1:70000")',
    ],
    [
      'clusterCIDR: 10.0.0.0/8,10.1.0.0/16\n',
      'KubeProxyConfiguration: clusterCIDR: may hold at most one CIDR per IP family (value: "10.0.0.0/8,10.1.0.0/16")',
    ],
    [
      'clusterCIDR: 10.0.0.0/33\n',
      'KubeProxyConfiguration: clusterCIDR: must be a valid CIDR (value: "10.0.0.0/33")',
    ],
    [
      'detectLocalMode: Magic\n',
      'KubeProxyConfiguration: detectLocalMode: must be one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix or "" (value: "Magic")',
    ],
    [
      'detectLocalMode: BridgeInterface\n',
      'KubeProxyConfiguration: detectLocal.bridgeInterface: must be set when detectLocalMode is BridgeInterface (value: "")',
    ],
    [
      'nodePortAddresses: [primary, 10.0.0.0/8]\n',
      'KubeProxyConfiguration: nodePortAddresses: "primary" must be the only value (value: ["primary","10.0.0.0/8"])',
    ],
    [
      'nodePortAddresses: [10.0.0.1]\n',
      'KubeProxyConfiguration: nodePortAddresses: must be a valid CIDR (value: "10.0.0.1")',
    ],
    [
      'ipvs:\n  scheduler: fastest\n',
      'KubeProxyConfiguration: ipvs.scheduler: must be one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh or "" (value: "fastest")',
    ],
    [
      'ipvs:\n  syncPeriod: 10s\n  minSyncPeriod: 20s\n',
      'KubeProxyConfiguration: ipvs.minSyncPeriod: must be less than or equal to ipvs.syncPeriod (10s) (value: "20s")',
    ],
    [
      'iptables:\n  syncPeriod: -1s\n',
      'KubeProxyConfiguration: iptables.syncPeriod: must be greater than 0 (value: "-1s")',
    ],
    [
      'clientConnection:\n  qps: -1\n',
      'KubeProxyConfiguration: clientConnection.qps: must be greater than or equal to 0 (value: -1)',
    ],
    [
      'clientConnection:\n  burst: -3\n',
      'KubeProxyConfiguration: clientConnection.burst: must be an integer greater than or equal to 0 (value: -3)',
    ],
    [
      'conntrack:\n  min: -1\n',
      'KubeProxyConfiguration: conntrack.min: must be greater than or equal to 0 (value: -1)',
    ],
    [
      'conntrack:\n  udpTimeout: -5s\n',
      'KubeProxyConfiguration: conntrack.udpTimeout: must be greater than or equal to 0 (value: "-5s")',
    ],
  ];
  for (const [body, want] of cases) assert.deepEqual(problems(HEAD + body), [want], body);
});

test('every problem is reported, not just the first', () => {
  assert.equal(problems(`${HEAD}oomScoreAdj: 5000\niptables:\n  masqueradeBit: 99\n`).length, 2);
});

test('valid values pass: dual-stack clusterCIDR, primary, IPv6 host:port, every scheduler', () => {
  const c = parseKubeProxyConfiguration(
    `${HEAD}clusterCIDR: "10.244.0.0/16, fd00:10:244::/56"\nnodePortAddresses: [primary]\nmetricsBindAddress: "[::1]:9999"\nipvs:\n  scheduler: mh\n`,
  ).config;
  assert.deepEqual(c.clusterCIDRs, ['10.244.0.0/16', 'fd00:10:244::/56']);
  assert.deepEqual(c.nodePortAddresses, ['primary']);
  assert.equal(c.metricsBindAddress, '[::1]:9999');
});

test('nodePortAddresses keywords localhost and all expand to CIDRs', () => {
  const c = parseKubeProxyConfiguration(`${HEAD}nodePortAddresses: [localhost, all]\n`).config;
  assert.deepEqual(c.nodePortAddresses, ['127.0.0.0/8', '::1/128', '0.0.0.0/0', '::/0']);
});

test('v1alpha2: an empty file gets v1alpha2 defaults (localhostNodePorts false, detectLocalMode ClusterCIDR)', () => {
  const c = parseKubeProxyConfiguration(HEAD2).config;
  const want = defaultProxyConfig();
  want.iptables.localhostNodePorts = false;
  want.detectLocalMode = 'ClusterCIDR';
  want.ipvs.minSyncPeriodMs = 1_000; // one top-level minSyncPeriod (1s) for every mode
  assert.deepEqual(c, want);
});

test('v1alpha2 fields map onto the v1alpha1 shape', () => {
  const { config: c } = parseKubeProxyConfiguration(`${HEAD2}syncPeriod: 1m
minSyncPeriod: 2s
linux:
  masqueradeAll: true
  oomScoreAdj: -500
  conntrack:
    maxPerCore: 0
    tcpEstablishedTimeout: 2h
healthzBindAddresses: ["::/0"]
healthzBindPort: 1234
metricsBindAddresses: [10.1.2.3/32]
metricsBindPort: 9100
nodeIPOverride: [10.1.2.3]
iptables:
  localhostNodePorts: true
  masqueradeBit: 12
nftables:
  masqueradeBit: 13
detectLocal:
  clusterCIDRs: [10.244.0.0/16]
configHardFail: true
windows:
  runAsService: false
`);
  assert.equal(c.iptables.syncPeriodMs, 60_000);
  assert.equal(c.nftables.syncPeriodMs, 60_000);
  assert.equal(c.ipvs.syncPeriodMs, 60_000);
  assert.equal(c.iptables.minSyncPeriodMs, 2_000);
  assert.equal(c.iptables.masqueradeAll, true);
  assert.equal(c.nftables.masqueradeAll, true);
  assert.equal(c.oomScoreAdj, -500);
  assert.equal(c.conntrack.maxPerCore, 0);
  assert.equal(c.conntrack.min, 131_072);
  assert.equal(c.conntrack.tcpEstablishedTimeoutMs, 7_200_000);
  assert.equal(c.healthzBindAddress, '[::]:1234');
  assert.equal(c.metricsBindAddress, '10.1.2.3:9100');
  assert.equal(c.bindAddress, '10.1.2.3');
  assert.equal(c.iptables.localhostNodePorts, true);
  assert.equal(c.iptables.masqueradeBit, 12);
  assert.equal(c.nftables.masqueradeBit, 13);
  assert.deepEqual(c.clusterCIDRs, ['10.244.0.0/16']);
});

test('v1alpha2: ipvs.masqueradeBit drives the mark in ipvs mode', () => {
  const c = parseKubeProxyConfiguration(`${HEAD2}mode: ipvs\nipvs:\n  masqueradeBit: 7\n`).config;
  assert.equal(c.iptables.masqueradeBit, 7);
});

test('v1alpha2: v1alpha1-only fields are unknown, and errors use v1alpha2 paths', () => {
  assert.deepEqual(problems(`${HEAD2}clusterCIDR: 10.0.0.0/8\n`), [
    'KubeProxyConfiguration: unknown field "clusterCIDR"',
  ]);
  assert.deepEqual(problems(`${HEAD2}linux:\n  oomScoreAdj: 2000\n`), [
    'KubeProxyConfiguration: linux.oomScoreAdj: must be between -1000 and 1000 (value: 2000)',
  ]);
  assert.deepEqual(problems(`${HEAD2}syncPeriod: 1s\nminSyncPeriod: 5s\n`).length, 3); // one per mode's periods
});

test('decode reports warnings for ignored settings', () => {
  const d = decodeKubeProxyConfiguration(`${HEAD}iptables:\n  snatNodeInternalIP: true\n`);
  assert.equal(d.warnings.length, 1);
  assert.match(d.warnings[0]!, /snatNodeInternalIP/);
});

test('renderConfigFile output parses back to the same config', () => {
  const c = defaultProxyConfig();
  assert.deepEqual(parseKubeProxyConfiguration(renderConfigFile(c)).config, c);
  const k = parseKubeProxyConfiguration(KUBEADM).config;
  assert.deepEqual(parseKubeProxyConfiguration(renderConfigFile(k)).config, k);
});

test('renderConfigFile round-trips arbitrary representable values', () => {
  const ms = fc.integer({ min: 1, max: 10 * 86_400_000 });
  fc.assert(
    fc.property(
      fc.record({
        mode: fc.constantFrom<'iptables' | 'ipvs' | 'nftables' | 'userspace'>(
          'iptables',
          'ipvs',
          'nftables',
          'userspace',
        ),
        bit: fc.integer({ min: 0, max: 31 }),
        sync: ms,
        masq: fc.boolean(),
        maxPerCore: fc.integer({ min: 0, max: 1 << 20 }),
        oom: fc.integer({ min: -1000, max: 1000 }),
        udpIdle: ms,
        gates: fc.dictionary(fc.constantFrom('A', 'B', 'C'), fc.boolean()),
        host: fc.constantFrom('', 'node-a'),
        cidrs: fc.constantFrom([], ['10.244.0.0/16'], ['10.244.0.0/16', 'fd00::/56']),
        npa: fc.constantFrom([], ['primary'], ['10.0.0.0/8', '::1/128']),
      }),
      (v) => {
        const c = defaultProxyConfig();
        c.mode = v.mode;
        c.iptables.masqueradeBit = v.bit;
        c.iptables.syncPeriodMs = v.sync;
        c.iptables.minSyncPeriodMs = Math.max(1, Math.floor(v.sync / 2));
        c.nftables.masqueradeAll = v.masq;
        c.conntrack.maxPerCore = v.maxPerCore;
        c.oomScoreAdj = v.oom;
        c.udpIdleTimeoutMs = v.udpIdle;
        c.featureGates = { ...v.gates };
        c.hostnameOverride = v.host;
        c.clusterCIDRs = [...v.cidrs];
        c.nodePortAddresses = [...v.npa];
        assert.deepEqual(validateProxyConfig(c), []);
        assert.deepEqual(parseKubeProxyConfiguration(renderConfigFile(c)).config, c);
      },
    ),
    { numRuns: 200 },
  );
});
