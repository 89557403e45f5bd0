/**
 * Every flag `kube-proxy --help` shows either is marked "accepted, no effect" (docs/operations.md's
 * table, from scripts/flag-table.ts) or is used by some test that proves what it does: a test file
 * (unit, integration or e2e) passes it on a command line as `--<name>` (or `-<shorthand>`). A new flag
 * with neither makes this test fail, naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { helpText } from '../src/config/load.js';
import { FLAGS } from '../src/config/flags.js';
import { FLAG_STATUS } from '../scripts/flag-table.js';

/**
 * Flags proven through another door than a test's command line: the file named holds the proof and
 * must mention `mentions`.
 */
const PROVEN_ELSEWHERE: Readonly<Record<string, { file: string; mentions: string }>> = {
  // relay.test.ts drives both values of the config field the flag sets; the demo (test/demo.test.ts)
  // runs the CLI with --userspace-portals=false.
  'userspace-portals': { file: 'src/backends/userspace/relay.test.ts', mentions: 'userspacePortals: false' },
};

/** Test sources: *.test.ts anywhere, plus the e2e scenario and VM suites they run. */
function testSources(): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.test\.ts$|\.vm\.ts$|^index\.ts$/.test(n) && !p.endsWith('flags-proven.test.ts'))
        out.push(p);
    }
  };
  for (const root of ['src', 'test', 'e2e']) walk(root);
  return out.map((p) => readFileSync(p, 'utf8')).join('\n');
}

test('every flag in --help is proven by a test or marked "accepted, no effect"', () => {
  const help = helpText();
  const shown = [...help.matchAll(/^\s+(?:-(\w), )?--([a-z][a-z0-9-]*)/gm)].map((m) => ({
    short: m[1],
    name: m[2]!,
  }));
  assert.equal(shown.length, FLAGS.length, 'every flag of the table appears in --help');
  const sources = testSources();
  const unproven: string[] = [];
  for (const { short, name } of shown) {
    const status = FLAG_STATUS[name]?.[0];
    if (status === 'accepted, no effect') continue;
    const elsewhere = PROVEN_ELSEWHERE[name];
    if (elsewhere && readFileSync(elsewhere.file, 'utf8').includes(elsewhere.mentions)) continue;
    const used =
      new RegExp(`['"\`\\s]--${name}(?:[='"\`\\s]|$)`, 'm').test(sources) ||
      (short !== undefined && new RegExp(`['"\`\\s]-${short}(?:[='"\`\\s]|$)`, 'm').test(sources));
    if (!used) unproven.push(`--${name} (${status ?? 'no status'})`);
  }
  assert.deepEqual(unproven, [], 'flags with no test passing them and no "accepted, no effect" mark');
});
