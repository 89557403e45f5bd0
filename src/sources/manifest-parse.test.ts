import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isManifestFileName, parseManifestText, parseYAMLText } from './manifest-parse.js';

test('file names: yaml/yml/json only, dot files ignored', () => {
  assert.equal(isManifestFileName('a.yaml'), true);
  assert.equal(isManifestFileName('a.YML'), true);
  assert.equal(isManifestFileName('a.json'), true);
  assert.equal(isManifestFileName('.a.yaml'), false);
  assert.equal(isManifestFileName('.a.yaml.swp'), false);
  assert.equal(isManifestFileName('a.yaml.tmp'), false);
  assert.equal(isManifestFileName('a.yaml~'), false);
  assert.equal(isManifestFileName('README.md'), false);
  assert.equal(isManifestFileName('.yaml'), false);
});

test('multi-document YAML: empty documents dropped, line numbers kept', () => {
  const r = parseManifestText('x.yaml', '# comment\n---\nkind: A\n---\n---\nkind: B\n---\n');
  assert.ok(r.ok);
  assert.deepEqual(
    r.docs.map((d) => (d.raw as { kind: string }).kind),
    ['A', 'B'],
  );
  assert.deepEqual(
    r.docs.map((d) => d.line),
    [3, 6],
  );
});

test('YAML syntax error: one error with line', () => {
  const r = parseManifestText('x.yaml', 'kind: A\n---\nkind: B\nmetadata:\n  name: [unclosed\n');
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.ok(r.error.line >= 5, `line ${r.error.line}`);
    assert.ok(r.error.message.length > 0);
  }
});

test('bad indentation is a syntax error', () => {
  const r = parseManifestText('x.yaml', 'kind: Service\nmetadata:\n  name: a\n name: b\n');
  assert.equal(r.ok, false);
});

test('JSON: parsed as one document; syntax error gives the line', () => {
  const ok = parseManifestText('x.json', '{"kind": "Service", "metadata": {"name": "a"}}');
  assert.ok(ok.ok);
  assert.equal(ok.docs.length, 1);
  const bad = parseManifestText('x.json', '{\n  "kind": "Service"\n  "metadata": {}\n}\n');
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.error.line, 3);
  // Messages without a position (Node 20 for some tokens) still give a line, located by the YAML parser.
  const odd = parseManifestText('x.json', '{\n  "kind": "Service",\n  "metadata": }\n');
  assert.equal(odd.ok, false);
  if (!odd.ok) assert.ok(odd.error.line >= 3);
});

test('List and typed lists are expanded, nested too', () => {
  const r = parseManifestText(
    'x.yaml',
    'apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ServiceList\n  items:\n  - metadata: {name: b}\n',
  );
  assert.ok(r.ok);
  assert.deepEqual(
    r.docs.map((d) => [
      (d.raw as { kind: string }).kind,
      (d.raw as { metadata: { name: string } }).metadata.name,
      (d.raw as { apiVersion?: string }).apiVersion,
    ]),
    [
      ['Service', 'a', undefined],
      ['Service', 'b', 'v1'],
    ],
  );
  assert.equal(r.docs[1]!.where, 'doc 1 items[1] items[0]');
});

test('alias bombs are refused, not expanded', () => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 12; i++)
    lines.push(
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
        .fill('*' + String.fromCharCode(97 + i))
        .join(', ')}]`,
    );
  const r = parseManifestText('bomb.yaml', lines.join('\n') + '\n');
  assert.equal(r.ok, false);
});

// The JSON fast path (parseManifestText on a .yaml file holding JSON) must give what the YAML parser
// gives: the same values, lines and `where`, on fuzzed JSON texts in the layouts kubectl and people
// write (compact, indented, CRLF, several documents joined by `---` lines, blank documents).
test('JSON in a .yaml file: the fast path equals the YAML parser (fuzzed)', () => {
  const doc = fc.oneof(
    fc.dictionary(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }),
      {
        maxKeys: 6,
      },
    ),
    fc.array(fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }), { maxLength: 5 }),
  );
  const layout = fc.record({
    indent: fc.constantFrom(0, 1, 2, 4, '\t'),
    crlf: fc.boolean(),
    lead: fc.constantFrom('', '\n', '  \n', '\n\n'),
    sep: fc.constantFrom('\n---\n', '\n---\n\n', '\n---   \n', '\n---\n---\n', '\n\n---\n  '),
    trail: fc.constantFrom('', '\n', '\n---\n', '\n---'),
  });
  fc.assert(
    fc.property(fc.array(doc, { minLength: 1, maxLength: 4 }), layout, (docs, l) => {
      let text = l.lead + docs.map((d) => JSON.stringify(d, null, l.indent)).join(l.sep) + l.trail;
      if (l.crlf) text = text.replace(/\n/g, '\r\n');
      const fast = parseManifestText('f.yaml', text);
      const slow = parseYAMLText(text);
      assert.deepStrictEqual(fast, slow);
      assert.ok(fast.ok, 'valid JSON must parse');
    }),
    { numRuns: 300 },
  );
});

test('JSON fast path: List items and lines match the YAML parser; broken JSON gets the YAML error', () => {
  const list = JSON.stringify(
    { apiVersion: 'v1', kind: 'ServiceList', items: [{ metadata: { name: 'a' } }] },
    null,
    2,
  );
  const text = `\n${list}\n---\n{"kind": "Node", "metadata": {"name": "n"}}\n`;
  const fast = parseManifestText('x.yaml', text);
  assert.deepStrictEqual(fast, parseYAMLText(text));
  assert.ok(fast.ok);
  assert.deepEqual(
    fast.docs.map((d) => [d.line, d.where]),
    [
      [2, 'doc 1 items[0]'],
      [14, 'doc 2'],
    ],
  );
  // Not JSON (a comment, an unquoted key, a trailing comma): the YAML parser decides, errors included.
  for (const t of [
    '{"a": 1} # c\n',
    '{a: 1}\n',
    '{"a": [1,]}\n',
    '{"a": 1\n---\n{"b": 2}\n',
    '{"a": "x\ty"}',
  ]) {
    assert.deepStrictEqual(parseManifestText('x.yaml', t), parseYAMLText(t), t);
  }
  const broken = parseManifestText('x.yaml', '{"kind": "Service",\n "metadata": {"name": "a"\n');
  assert.equal(broken.ok, false);
});

test('JSON fast path: a repeated key keeps the last value (as in a .json file); YAML refuses it', () => {
  const text = '{"kind": "Service", "kind": "Node"}\n';
  const fast = parseManifestText('x.yaml', text);
  assert.ok(fast.ok);
  assert.equal((fast.docs[0]?.raw as { kind: string }).kind, 'Node');
  assert.deepStrictEqual(fast, parseManifestText('x.json', text));
  assert.equal(parseYAMLText(text).ok, false);
});
