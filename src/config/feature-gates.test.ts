import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEATURE_GATES,
  OTHER_UPSTREAM_GATES,
  featureGateErrors,
  featureGateHelpLines,
  reviewFeatureGates,
} from './feature-gates.js';
import { ConfigError } from './errors.js';
import { helpText, parseCommandLine } from './load.js';

test('gates at their default need no line; others are named once with what happens here', () => {
  assert.deepEqual(reviewFeatureGates({ NFTablesProxyMode: true, TopologyAwareHints: true }), []);
  const lines = reviewFeatureGates({
    InPlacePodVerticalScaling: true,
    MultiCIDRServiceAllocator: false,
    WinDSR: false,
    WindowsHostNetwork: false,
  });
  assert.deepEqual(lines, [
    'feature gate InPlacePodVerticalScaling=true is accepted and has no effect: kube-proxy does not read it',
    'feature gate MultiCIDRServiceAllocator=false is not supported: kube-proxy-ts always behaves as MultiCIDRServiceAllocator=true (ServiceCIDRs are watched)',
    'feature gate WinDSR=false is accepted and has no effect here (Windows only)',
    'feature gate WindowsHostNetwork=false is deprecated upstream and will be removed in a future release',
  ]);
});

test('as upstream: an unknown gate and a locked gate set against its lock are errors', () => {
  assert.deepEqual(
    featureGateErrors({ NFTablesProxyMode: true, WatchListClient: false, AllAlpha: true }),
    [],
  );
  assert.deepEqual(
    featureGateErrors({ Bogus: true, NFTablesProxyMode: false, KubeProxyDrainingTerminatingNodes: true }),
    [
      'featureGates: unrecognized feature gate: Bogus',
      'featureGates: unrecognized feature gate: KubeProxyDrainingTerminatingNodes',
      'featureGates: cannot set feature gate NFTablesProxyMode to false, feature is locked to true',
    ],
  );
  // The command line and the file both stop there, naming the gate.
  assert.throws(
    () => parseCommandLine(['--feature-gates=Bogus=true']),
    (e: unknown) => e instanceof ConfigError && /unrecognized feature gate: Bogus/.test(e.message),
  );
  assert.throws(() => parseCommandLine(['--feature-gates=TopologyAwareHints=false']), /locked to true/);
});

test('the two lists do not overlap and hold no duplicates', () => {
  const ours = new Set(FEATURE_GATES.map((s) => s.name));
  assert.equal(ours.size, FEATURE_GATES.length);
  assert.equal(new Set(OTHER_UPSTREAM_GATES).size, OTHER_UPSTREAM_GATES.length);
  for (const n of OTHER_UPSTREAM_GATES) assert.ok(!ours.has(n), n);
});

test("--feature-gates and the file's featureGates both reach the review; bad syntax is a flag error", () => {
  const cmd = parseCommandLine(['--feature-gates=WinOverlay=false,AllAlpha=false']);
  assert.deepEqual(cmd.config.featureGates, { WinOverlay: false, AllAlpha: false });
  assert.equal(cmd.warnings.filter((w) => w.startsWith('feature gate')).length, 1);
  assert.throws(() => parseCommandLine(['--feature-gates=NFTablesProxyMode']), /missing "="/);
  assert.throws(
    () => parseCommandLine(['--feature-gates=NFTablesProxyMode=maybe']),
    /expected true or false/,
  );
});

test('--help lists every known gate with its stage and default, sorted', () => {
  const help = helpText();
  for (const line of featureGateHelpLines()) assert.ok(help.includes(line), line);
  const names = FEATURE_GATES.map((s) => s.name);
  assert.deepEqual(names, [...names].sort());
});
