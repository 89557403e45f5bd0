/**
 * Manifest file parsing: file-name rules, YAML (multi-document) and JSON text to raw documents, and
 * `kind: List` expansion. Pure (no fs): the manifest source reads the bytes and hands them here.
 */
import { LineCounter, parseAllDocuments } from 'yaml';

/** Extensions the manifest source reads; anything else in the folder is ignored. */
export const MANIFEST_EXTENSIONS: readonly string[] = ['.yaml', '.yml', '.json'];

/**
 * True when a directory entry name is a manifest file: it ends in .yaml, .yml or .json and does not
 * start with a dot. Dot files are skipped because editors (".x.yaml.swp") and atomic writers
 * (".x.yaml.tmp", then rename) create them next to the real file; reading them would double the objects.
 */
export function isManifestFileName(name: string): boolean {
  if (name.startsWith('.')) return false;
  const lower = name.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext) && lower.length > ext.length);
}

/** One raw object found in a file, with where it starts (1-based line) for error messages. */
export interface ManifestDoc {
  readonly raw: unknown;
  readonly line: number;
  /** "doc 2", "doc 1 items[3]": which part of the file, for messages. */
  readonly where: string;
}

/** A file-level syntax failure: the whole file is unusable. */
export interface ManifestParseError {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export type ManifestParseResult =
  | { readonly ok: true; readonly docs: readonly ManifestDoc[] }
  | { readonly ok: false; readonly error: ManifestParseError };

/**
 * Parses a manifest file's text. `.json` files are read as one JSON value; everything else as YAML with
 * `---` separated documents. Empty documents (a trailing `---`, a comment-only file) are dropped.
 * Lists (`kind: List` or `kind: FooList` with `items`) are expanded into their items. Any syntax error
 * fails the whole file with the first error's position, so the caller can keep the file's last good
 * objects rather than act on half a file.
 *
 * A YAML file whose documents are all JSON objects or arrays (`kubectl get -o json` output, several
 * joined by `---` lines) is read with JSON.parse, many times faster than the YAML parser and giving the
 * same values, with one difference: a key repeated in one object is a YAML error but JSON keeps the last
 * value, as it does in a `.json` file. Anything else, including JSON the YAML parser would read
 * differently or not at all, takes the YAML path, errors included.
 */
export function parseManifestText(fileName: string, text: string): ManifestParseResult {
  return parseManifestJSON(fileName, text) ?? parseYAMLText(text);
}

/**
 * The JSON part of parseManifestText: the result for a `.json` file (an error too) or for a YAML file
 * that is JSON documents; undefined when only the YAML parser can read the text. JSON.parse is bounded
 * by the text's size (no aliases to expand), so callers may run this where a YAML parse would be too slow.
 */
export function parseManifestJSON(fileName: string, text: string): ManifestParseResult | undefined {
  if (!fileName.toLowerCase().endsWith('.json')) {
    const fast = parseJSONDocuments(text);
    return fast ? { ok: true, docs: fast.flatMap(expandList) } : undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    return { ok: false, error: jsonErrorPosition(text, e instanceof Error ? e.message : String(e)) };
  }
  if (value === null || value === undefined) return { ok: true, docs: [] };
  return { ok: true, docs: expandList({ raw: value, line: 1, where: 'doc 1' }) };
}

/**
 * The YAML path of parseManifestText on its own, for any text (exported so that tests can hold the JSON
 * fast path to it).
 */
export function parseYAMLText(text: string): ManifestParseResult {
  const docs: ManifestDoc[] = [];
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: true });
  const all = Array.isArray(parsed) ? parsed : [];
  for (const doc of all) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0] ?? lineCounter.linePos(err.pos[0]);
      return { ok: false, error: { line: pos.line, column: pos.col, message: firstLine(err.message) } };
    }
  }
  for (const [i, doc] of all.entries()) {
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      // maxAliasCount bounds alias expansion so a hostile file cannot blow up memory (YAML "billion laughs").
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      const start = doc.contents.range[0];
      const pos = lineCounter.linePos(start);
      return {
        ok: false,
        error: {
          line: pos.line,
          column: pos.col,
          message: e instanceof Error ? firstLine(e.message) : String(e),
        },
      };
    }
    if (value === null || value === undefined) continue;
    docs.push({ raw: value, line: lineCounter.linePos(doc.contents.range[0]).line, where: `doc ${i + 1}` });
  }
  return { ok: true, docs: docs.flatMap(expandList) };
}

/** A document separator line: `---` alone (trailing blanks allowed). JSON strings cannot hold one. */
const SEPARATOR = /^---[ \t]*\r?$/gm;

/**
 * The JSON fast path: `text` split at `---` lines, each part a JSON object or array. Returns the
 * documents as the YAML path would (same `line` and `where`), or undefined when any part is something
 * else (a comment, YAML syntax, a scalar, invalid JSON): then only the YAML parser can say what it is.
 */
function parseJSONDocuments(text: string): ManifestDoc[] | undefined {
  const first = /[^ \t\r\n]/.exec(text);
  // Cheap refusal of ordinary YAML, which starts with a key, a comment or a `---` line.
  if (!first || (text[first.index] !== '{' && text[first.index] !== '[')) return undefined;
  const parts: { start: number; end: number }[] = [];
  let from = 0;
  SEPARATOR.lastIndex = 0;
  for (let m = SEPARATOR.exec(text); m; m = SEPARATOR.exec(text)) {
    parts.push({ start: from, end: m.index });
    from = m.index + m[0].length;
  }
  parts.push({ start: from, end: text.length });
  const docs: ManifestDoc[] = [];
  let line = 1;
  let counted = 0;
  for (const [i, p] of parts.entries()) {
    const chunk = text.slice(p.start, p.end);
    const at = /[^ \t\r\n]/.exec(chunk);
    // Blank: an empty document, which YAML counts (for `where`) and drops.
    if (!at) continue;
    const c = chunk[at.index];
    if (c !== '{' && c !== '[') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(chunk) as unknown;
    } catch {
      return undefined;
    }
    const pos = p.start + at.index;
    line += countNewlines(text, counted, pos);
    counted = pos;
    docs.push({ raw: value, line, where: `doc ${i + 1}` });
  }
  return docs;
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i >= 0 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl < 0 ? s : s.slice(0, nl);
}

/** Node 20 reports "... at position N" (newer: "(line L column C)"); turn either into a line/column. */
function jsonErrorPosition(text: string, message: string): ManifestParseError {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return { line: Number(lc[1]), column: Number(lc[2]), message };
  const m = /position (\d+)/.exec(message);
  if (!m) {
    // Node 20 often gives no position at all; JSON is YAML flow syntax, so the YAML parser can locate it.
    const lineCounter = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter })) {
      const err = doc.errors[0];
      if (err) {
        const pos = lineCounter.linePos(err.pos[0]);
        return { line: pos.line, column: pos.col, message };
      }
    }
    // "Unexpected end of JSON input": the problem is at the end.
    const lines = text.split('\n');
    return { line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1, message };
  }
  const pos = Number(m[1]);
  const before = text.slice(0, pos).split('\n');
  return { line: before.length, column: (before[before.length - 1] ?? '').length + 1, message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * An item of a List: its `where` ("doc 1 items[3]") is text only when a message asks for it, not for
 * each of the 10,000 items of a big List.
 */
class ListItemDoc implements ManifestDoc {
  constructor(
    readonly raw: unknown,
    readonly line: number,
    private readonly list: string,
    private readonly index: number,
  ) {}
  get where(): string {
    return `${this.list} items[${this.index}]`;
  }
}

/**
 * Expands a v1 List (or a typed list such as ServiceList) into its items. Items of a typed list may omit
 * kind/apiVersion (the API server's list responses do); they are filled from the list.
 */
function expandList(doc: ManifestDoc): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  expandInto(doc, out);
  return out;
}

function expandInto(doc: ManifestDoc, out: ManifestDoc[]): void {
  const raw = doc.raw;
  if (
    !isRecord(raw) ||
    typeof raw.kind !== 'string' ||
    !raw.kind.endsWith('List') ||
    !Array.isArray(raw.items)
  ) {
    out.push(doc);
    return;
  }
  const itemKind = raw.kind === 'List' ? undefined : raw.kind.slice(0, -'List'.length);
  const items: unknown[] = raw.items;
  const where = doc.where;
  for (let i = 0; i < items.length; i++) {
    if (!(i in items)) continue; // a hole (never in parsed text), as flatMap would skip it
    const item = items[i];
    let value = item;
    if (isRecord(item) && itemKind !== undefined) {
      value = {
        ...(typeof raw.apiVersion === 'string' ? { apiVersion: raw.apiVersion } : {}),
        kind: itemKind,
        ...item,
      };
    }
    expandInto(new ListItemDoc(value, doc.line, where, i), out);
  }
}
