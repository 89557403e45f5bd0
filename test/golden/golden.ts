/**
 * Golden-file comparison shared by every renderer's tests. `assertGolden('iptables/basic', text)`
 * compares `text` with test/golden/iptables/basic.golden; with UPDATE_GOLDEN=1 in the environment it
 * (re)writes the file instead, so a reviewer sees the change as a diff.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const GOLDEN_DIR = dirname(fileURLToPath(import.meta.url));

/** Path of the golden file for `name` ("mode/scenario", no extension). */
export function goldenPath(name: string): string {
  if (!/^[a-z0-9][a-z0-9/_-]*$/.test(name) || name.includes('..')) throw new RangeError(`golden name ${JSON.stringify(name)} must be kebab-case path segments`);
  return join(GOLDEN_DIR, `${name}.golden`);
}

/**
 * Asserts `text` equals the golden file `name` byte for byte. With UPDATE_GOLDEN=1 the file is written
 * and the assertion is skipped. A missing file fails with a hint to regenerate.
 */
export function assertGolden(name: string, text: string): void {
  const path = goldenPath(name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  let want: string;
  try {
    want = readFileSync(path, 'utf8');
  } catch {
    assert.fail(`golden file ${path} is missing: run the test with UPDATE_GOLDEN=1 and review the new file`);
  }
  assert.equal(text, want, `output differs from ${path} (UPDATE_GOLDEN=1 regenerates it; review the diff)`);
}
