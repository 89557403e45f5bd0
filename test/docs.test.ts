/** Docs that are generated from code stay in step with it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FLAGS } from '../src/config/flags.js';
import { FLAG_STATUS, flagTable } from '../scripts/flag-table.js';

test('every flag has a documented status, and docs/operations.md embeds the current table', () => {
  for (const f of FLAGS) assert.ok(FLAG_STATUS[f.name], `--${f.name} has no status in scripts/flag-table.ts`);
  for (const name of Object.keys(FLAG_STATUS))
    assert.ok(
      FLAGS.some((f) => f.name === name),
      `status for unknown flag --${name}`,
    );
  const doc = readFileSync('docs/operations.md', 'utf8');
  const m = /<!-- FLAG-TABLE:BEGIN[^\n]*-->\n([\s\S]*?)<!-- FLAG-TABLE:END -->/.exec(doc);
  assert.ok(m, 'flag table markers');
  assert.equal(m[1], flagTable(), 'regenerate with: node --import tsx scripts/flag-table.ts');
});
