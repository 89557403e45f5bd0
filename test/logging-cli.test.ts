/**
 * The logging flags on the real CLI (no root): text (klog lines) by default, JSON with
 * --logging-format=json, split streams with --log-text-split-stream / --log-json-split-stream, and
 * the flags with no effect here accepted and named once in the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../e2e/run-daemon.ts', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../examples', import.meta.url));

/** `kube-proxy render` on the examples (logs a few info lines) with `flags`. */
function render(flags: string[]): { out: string; err: string; code: number | null } {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      RUN,
      'render',
      '--proxy-mode=state',
      `--manifests=${EXAMPLES}`,
      '--hostname-override=n1',
      ...flags,
    ],
    { encoding: 'utf8' },
  );
  return { out: r.stdout, err: r.stderr, code: r.status };
}

const KLOG = /^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ \S+\] "/;

test('default: klog text lines on stderr', () => {
  const r = render([]);
  assert.equal(r.code, 0, r.err);
  const lines = r.err.trim().split('\n');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, KLOG);
  assert.ok(
    lines.some((l) => /^I.*\] "loaded \d+ objects/.test(l)),
    r.err,
  );
});

test('--logging-format=json: one JSON object per line', () => {
  const r = render(['--logging-format=json']);
  assert.equal(r.code, 0, r.err);
  for (const l of r.err.trim().split('\n'))
    assert.equal(typeof (JSON.parse(l) as { msg: unknown }).msg, 'string');
  assert.notEqual(render(['--logging-format=yaml']).code, 0);
});

test('--log-text-split-stream and --log-json-split-stream: info on stdout, warnings on stderr', () => {
  for (const [flags, shape] of [
    [['--log-text-split-stream'], KLOG],
    [['--logging-format=json', '--log-json-split-stream'], /^\{"level":/],
  ] as const) {
    // --log-flush-frequency has no effect: its warning shows where warnings go.
    const r = render([...flags, '--log-flush-frequency=1s']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /--log-flush-frequency is accepted and has no effect here/);
    assert.doesNotMatch(r.err, /loaded \d+ objects/, 'info lines left stderr');
    const info = r.out.split('\n').filter((l) => l.includes('loaded '));
    assert.equal(info.length, 1, r.out);
    assert.match(info[0]!, shape);
  }
});

test('flags with no effect here are accepted and named once: --vmodule, the buffer sizes', () => {
  const r = render([
    '--vmodule=proxier=4',
    '--log-text-info-buffer-size=1Mi',
    '--log-json-info-buffer-size=0',
  ]);
  assert.equal(r.code, 0, r.err);
  for (const f of ['vmodule', 'log-text-info-buffer-size', 'log-json-info-buffer-size'])
    assert.equal(r.err.split(`--${f} is accepted and has no effect here`).length - 1, 1, f);
});
