/**
 * save-normalize.ts against the real tools (root only): every iptables golden is loaded into a fresh
 * lab namespace with iptables-legacy and with iptables-nft (ip6tables for IPv6 parts), and for every
 * rule the line savedForm() predicts must be exactly the line iptables-save prints — or undefined
 * (a form it does not claim to know, which only costs a rewrite). Every rule of the per-service chains
 * must be predicted, since those are the chains a restarted daemon adopts instead of rewriting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, labSkipReason, type Lab } from './lab/topology.js';
import { contentRules, parseSave } from '../src/backends/iptables/chain-diff.js';
import { savedForm } from '../src/backends/iptables/save-normalize.js';
import type { IPFamily } from '../src/model/types.js';

const GOLDEN = fileURLToPath(new URL('../test/golden/iptables/', import.meta.url));
// partial-sync is a partial document by design (it jumps to chains it does not declare).
const SKIP = new Set(['partial-sync.golden']);

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of ['legacy', 'nft']) {
    for (const tool of [
      `iptables-${b}-restore`,
      `iptables-${b}-save`,
      `ip6tables-${b}-restore`,
      `ip6tables-${b}-save`,
    ]) {
      if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
    }
  }
  return labSkipReason();
}

/** The golden's restore documents per family (`# family:` parts; else `defaultFamily`): `*filter … COMMIT` and `*nat … COMMIT`, without `-X` lines. */
function documents(
  text: string,
  defaultFamily: IPFamily,
): { family: IPFamily; tables: Map<string, string> }[] {
  const parts: { family: IPFamily; tables: Map<string, string> }[] = [];
  let family = defaultFamily;
  let cur = { family, tables: new Map<string, string>() };
  let table: string | undefined;
  let lines: string[] = [];
  for (const line of text.split('\n')) {
    const fam = /^# family: ipv([46])$/.exec(line);
    if (fam) {
      if (cur.tables.size > 0) parts.push(cur);
      family = fam[1] === '6' ? 'IPv6' : 'IPv4';
      cur = { family, tables: new Map() };
      continue;
    }
    if (line.startsWith('*')) {
      table = line.slice(1);
      lines = [line];
    } else if (table !== undefined) {
      if (!line.startsWith('-X ')) lines.push(line);
      if (line === 'COMMIT') {
        cur.tables.set(table, `${lines.join('\n')}\n`);
        table = undefined;
      }
    }
  }
  if (cur.tables.size > 0) parts.push(cur);
  return parts;
}

const SERVICE_CHAIN = /^-A KUBE-(SVC|SEP|EXT|SVL|FW)-/;

describe(
  'iptables-save forms predicted by save-normalize.ts, for every golden rule',
  { skip: skipReason() },
  () => {
    let lab: Lab;
    before(async () => {
      lab = await createLab({ pods: 0, ipv6: true });
    });
    after(async () => {
      await lab?.destroy();
    });

    for (const backend of ['legacy', 'nft'] as const) {
      test(`iptables-${backend}`, async (t) => {
        let predicted = 0;
        let unknown = 0;
        const files = readdirSync(GOLDEN).filter((f) => f.endsWith('.golden') && !SKIP.has(f));
        assert.ok(files.length >= 15, 'the goldens are there');
        for (const file of files) {
          for (const { family, tables } of documents(
            readFileSync(GOLDEN + file, 'utf8'),
            file.startsWith('ipv6') ? 'IPv6' : 'IPv4',
          )) {
            const cmd = family === 'IPv6' ? 'ip6tables' : 'iptables';
            for (const [table, doc] of tables) {
              await lab.exec('node', `${cmd}-${backend}-restore`, ['-w', '--noflush'], { input: doc });
              const saved = parseSave(
                (await lab.exec('node', `${cmd}-${backend}-save`, ['-t', table])).stdout,
              );
              const rendered = parseSave(doc);
              for (const [chain, content] of rendered) {
                const rules = contentRules(content);
                const have = contentRules(saved.get(chain) ?? '');
                assert.equal(have.length, rules.length, `${file} ${family} ${table} ${chain}: rule count`);
                rules.forEach((r, i) => {
                  const f = savedForm(r, family);
                  if (f === undefined) {
                    unknown++;
                    assert.doesNotMatch(
                      r,
                      SERVICE_CHAIN,
                      `${file} ${family}: a service-chain rule is not predicted:\n${r}`,
                    );
                    return;
                  }
                  predicted++;
                  assert.equal(f, have[i], `${file} ${family} ${table}: predicted form differs for\n${r}`);
                });
              }
              // Empty the namespace for the next document.
              await lab.exec('node', `${cmd}-${backend}`, ['-w', '-t', table, '-F']);
              await lab.exec('node', `${cmd}-${backend}`, ['-w', '-t', table, '-X']);
            }
          }
        }
        t.diagnostic(`predicted ${predicted} rules; ${unknown} not claimed`);
        assert.ok(predicted > 200, `predicted ${predicted} rules, ${unknown} not`);
      });
    }
  },
);
