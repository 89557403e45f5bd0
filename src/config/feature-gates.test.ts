import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEATURE_GATES, featureGateHelpLines, reviewFeatureGates } from './feature-gates.js';
import { helpText, parseCommandLine } from './load.js';

test('gates at their default need no line; others are named once with what happens here', () => {
  assert.deepEqual(reviewFeatureGates({ NFTablesProxyMode: true, TopologyAwareHints: true }), []);
  const lines = reviewFeatureGates({ Bogus: true, TopologyAwareHints: false, WinDSR: true });
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^feature gate Bogus=true is not one kube-proxy-ts knows/);
  assert.match(
    lines[1]!,
    /^feature gate TopologyAwareHints=false is not supported: .* always behaves as TopologyAwareHints=true/,
  );
  assert.match(lines[2]!, /^feature gate WinDSR=true is accepted and has no effect here \(Windows only\)/);
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
