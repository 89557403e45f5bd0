#!/usr/bin/env node
// Collects test files (Node 20's --test has no glob) and runs them with node:test through tsx.
//   unit: src/**/*.test.ts and test/**/*.test.ts (no root needed)
//   e2e:  e2e/**/*.test.ts (root; real packets in network namespaces they create)
//   all:  both
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const tier = process.argv[2] ?? 'all';
const extra = process.argv.slice(3);
const roots = { unit: ['src', 'test'], e2e: ['e2e'], all: ['src', 'test', 'e2e'] }[tier];
if (!roots) {
  console.error(`unknown tier ${tier}: use unit, e2e or all`);
  process.exit(2);
}
function walk(dir, out) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (n.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const files = roots.flatMap((r) => walk(r, []));
const filter = extra.filter((a) => !a.startsWith('-'));
const selected = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error('no test files selected');
  process.exit(1);
}
// e2e tests share network namespaces and ports: run them one file at a time.
const conc = tier === 'unit' ? [] : ['--test-concurrency=1'];
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', ...conc, ...extra.filter((a) => a.startsWith('-')), ...selected],
  {
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
