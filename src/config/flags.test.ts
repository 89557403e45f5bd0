import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLAGS, parseArgs } from './flags.js';
import { FlagError } from './errors.js';

const get = (argv: string[], name: string): unknown => parseArgs(argv).values.get(name);

test('boolean flags: bare, =true, =false and Go spellings', () => {
  assert.equal(get(['--masquerade-all'], 'masquerade-all'), true);
  assert.equal(get(['--masquerade-all=true'], 'masquerade-all'), true);
  assert.equal(get(['--masquerade-all=false'], 'masquerade-all'), false);
  assert.equal(get(['--masquerade-all=F'], 'masquerade-all'), false);
  assert.equal(get(['--masquerade-all=1'], 'masquerade-all'), true);
  assert.throws(
    () => parseArgs(['--masquerade-all=yes']),
    (e: Error) => e instanceof FlagError && e.message.includes('--masquerade-all'),
  );
});

test('a bare boolean does not swallow the next argument', () => {
  const r = parseArgs(['--cleanup', 'render']);
  assert.equal(r.values.get('cleanup'), true);
  assert.deepEqual(r.positionals, ['render']);
});

test('value flags: --x=value and --x value, even when the value starts with a dash', () => {
  assert.equal(get(['--hostname-override=node-1'], 'hostname-override'), 'node-1');
  assert.equal(get(['--hostname-override', 'node-1'], 'hostname-override'), 'node-1');
  assert.equal(get(['--oom-score-adj', '-999'], 'oom-score-adj'), -999);
  assert.equal(get(['--config='], 'config'), '');
});

test('verbosity: -v=4, -v 4, -v4, --v=4, --v 4', () => {
  for (const argv of [['-v=4'], ['-v', '4'], ['-v4'], ['--v=4'], ['--v', '4']])
    assert.equal(get(argv, 'v'), 4, argv.join(' '));
});

test('-h and --help', () => {
  assert.equal(get(['-h'], 'help'), true);
  assert.equal(get(['--help'], 'help'), true);
});

test('--version takes an optional value', () => {
  assert.equal(get(['--version'], 'version'), 'true');
  assert.equal(get(['--version=raw'], 'version'), 'raw');
  assert.equal(get(['--version=false'], 'version'), 'false');
});

test('int32 flags: decimal, hex, range and junk', () => {
  assert.equal(get(['--iptables-masquerade-bit=14'], 'iptables-masquerade-bit'), 14);
  assert.equal(get(['--conntrack-min=0x10'], 'conntrack-min'), 16);
  assert.throws(() => parseArgs(['--conntrack-min=3000000000']), /out of range for int32/);
  assert.throws(() => parseArgs(['--conntrack-min=1.5']), /"--conntrack-min".*integer/);
});

test('float flags', () => {
  assert.equal(get(['--kube-api-qps=2.5'], 'kube-api-qps'), 2.5);
  assert.equal(get(['--kube-api-qps', '10'], 'kube-api-qps'), 10);
  assert.throws(() => parseArgs(['--kube-api-qps=fast']), /--kube-api-qps/);
});

test('duration flags are milliseconds', () => {
  assert.equal(get(['--iptables-sync-period=1m30s'], 'iptables-sync-period'), 90_000);
  assert.equal(get(['--ipvs-min-sync-period', '0'], 'ipvs-min-sync-period'), 0);
  assert.equal(get(['--udp-timeout=250ms'], 'udp-timeout'), 250);
  assert.throws(() => parseArgs(['--config-sync-period=15']), /"--config-sync-period".*missing unit/);
});

test('string slices split on commas and accumulate across repeats', () => {
  assert.deepEqual(get(['--nodeport-addresses=10.0.0.0/8,192.168.0.0/16'], 'nodeport-addresses'), [
    '10.0.0.0/8',
    '192.168.0.0/16',
  ]);
  assert.deepEqual(
    get(['--ipvs-exclude-cidrs', '10.0.0.0/8', '--ipvs-exclude-cidrs=fd00::/8'], 'ipvs-exclude-cidrs'),
    ['10.0.0.0/8', 'fd00::/8'],
  );
  assert.deepEqual(get(['--nodeport-addresses='], 'nodeport-addresses'), []);
});

test('feature gates parse key=bool pairs and merge across repeats', () => {
  assert.deepEqual(get(['--feature-gates=A=true, B=false', '--feature-gates', 'C=t'], 'feature-gates'), {
    A: true,
    B: false,
    C: true,
  });
  assert.throws(() => parseArgs(['--feature-gates=A']), /missing "="/);
  assert.throws(() => parseArgs(['--feature-gates=A=maybe']), /"A"/);
});

test('a repeated scalar flag keeps the last value', () => {
  assert.equal(get(['--proxy-mode=ipvs', '--proxy-mode', 'nftables'], 'proxy-mode'), 'nftables');
});

test('underscores in names are read as dashes', () => {
  assert.equal(get(['--iptables_sync_period=5s'], 'iptables-sync-period'), 5_000);
});

test('unknown flags are errors naming the flag', () => {
  assert.throws(
    () => parseArgs(['--no-such-flag=1']),
    (e: Error) => e instanceof FlagError && e.message === 'unknown flag: --no-such-flag',
  );
  assert.throws(() => parseArgs(['-x']), /unknown shorthand flag: 'x' in -x/);
});

test('a value flag at the end without a value is an error', () => {
  assert.throws(() => parseArgs(['--kubeconfig']), /flag needs an argument: --kubeconfig/);
  assert.throws(() => parseArgs(['-v']), /flag needs an argument/);
});

test('-- ends flag parsing; positionals are kept in order', () => {
  const r = parseArgs(['render', '--v=2', '--', '--not-a-flag']);
  assert.deepEqual(r.positionals, ['render', '--not-a-flag']);
  assert.equal(r.values.get('v'), 2);
});

test('only explicit flags are reported', () => {
  const r = parseArgs(['--profiling']);
  assert.deepEqual([...r.values.keys()], ['profiling']);
});

test('the table holds every upstream flag (cmd/kube-proxy/app/options.go) and ours, each once', () => {
  const names = FLAGS.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  const required = [
    'config',
    'write-config-to',
    'cleanup',
    'init-only',
    'kubeconfig',
    'master',
    'kube-api-content-type',
    'kube-api-qps',
    'kube-api-burst',
    'hostname-override',
    'bind-address',
    'bind-address-hard-fail',
    'healthz-bind-address',
    'metrics-bind-address',
    'healthz-port',
    'metrics-port',
    'profiling',
    'show-hidden-metrics-for-version',
    'proxy-mode',
    'feature-gates',
    'iptables-masquerade-bit',
    'masquerade-all',
    'iptables-localhost-nodeports',
    'iptables-sync-period',
    'iptables-min-sync-period',
    'ipvs-sync-period',
    'ipvs-min-sync-period',
    'ipvs-scheduler',
    'ipvs-exclude-cidrs',
    'ipvs-strict-arp',
    'ipvs-tcp-timeout',
    'ipvs-tcpfin-timeout',
    'ipvs-udp-timeout',
    'cluster-cidr',
    'detect-local-mode',
    'pod-bridge-interface',
    'pod-interface-name-prefix',
    'nodeport-addresses',
    'oom-score-adj',
    'conntrack-max-per-core',
    'conntrack-min',
    'conntrack-tcp-timeout-established',
    'conntrack-tcp-timeout-close-wait',
    'conntrack-tcp-be-liberal',
    'conntrack-udp-timeout',
    'conntrack-udp-timeout-stream',
    'config-sync-period',
    'proxy-port-range',
    'udp-timeout',
    'v',
    'logging-format',
    'version',
    'help',
    'manifests',
    'service-cluster-ip-range',
    'service-node-port-range',
    'userspace-balancer',
  ];
  for (const r of required) assert.ok(names.includes(r), r);
  for (const dep of ['healthz-port', 'metrics-port', 'proxy-port-range', 'udp-timeout']) {
    assert.ok(FLAGS.find((f) => f.name === dep)?.deprecated, dep);
  }
});
