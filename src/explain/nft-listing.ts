/**
 * Reads `nft list table <family> kube-proxy` (nft's nested listing) into the table model the nft
 * tracer runs on: chains with their rules and base-chain hooks, sets and maps with their
 * properties and elements. Pure. Throws an Error naming the line it cannot place.
 */
import type { TableModel } from './nft-table-model.js';

/** Splits an `elements = { … }` body on top-level commas. */
function splitElements(body: string): string[] {
  // Most bodies hold no nested braces (concatenations and verdicts only): split them at once.
  if (!body.includes('{')) {
    const out: string[] = [];
    for (const e of body.split(',')) {
      const t = e.trim();
      if (t !== '') out.push(t);
    }
    return out;
  }
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of body) {
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

/** Parses the listing of one table. An empty text (no table) gives an empty model. */
export function parseTableListing(text: string): TableModel {
  const m: TableModel = { chains: new Map(), hooks: new Map(), sets: new Map() };
  const lines = text.split('\n').map((l) => l.trim());
  let i = 0;
  const bad = (why: string): never => {
    throw new Error(`nft listing line ${i + 1}: ${why}: ${lines[i] ?? ''}`);
  };
  while (i < lines.length && !/^table (ip6?|inet) \S+ \{$/.test(lines[i]!)) i++;
  if (i >= lines.length) return m;
  i++;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '' || l.startsWith('comment ') || l.startsWith('flags ')) continue;
    if (l === '}') break;
    const head = /^(set|map|chain) (\S+) \{$/.exec(l);
    if (!head) bad('expected a set, map or chain');
    const [, kind, name] = head!;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '}'; i++) {
      let x = lines[i]!;
      // An element list may span lines until its closing brace (joined once: a 50k-element map
      // lists 50k lines).
      if (x.startsWith('elements = {') && !x.endsWith('}')) {
        const parts = [x];
        while (!lines[i]!.endsWith('}') && i + 1 < lines.length) parts.push(lines[++i]!);
        x = parts.join(' ');
      }
      body.push(x);
    }
    if (kind === 'chain') {
      const rules: string[] = [];
      for (const x of body) {
        if (x === '') continue;
        const hook = /^type (\w+) hook (\w+) (?:device \S+ )?priority ([^;]+);/.exec(x);
        if (hook) {
          m.hooks!.set(name!, `type ${hook[1]} hook ${hook[2]} priority ${hook[3]!.trim()} ;`);
          continue;
        }
        rules.push(x.replace(/ # handle \d+$/, ''));
      }
      m.chains.set(name!, rules);
    } else {
      const props: string[] = [];
      const elements = new Map<string, string>();
      for (const x of body) {
        const el = /^elements = \{(.*)\}$/.exec(x);
        if (el) {
          for (const e of splitElements(el[1]!)) {
            // Dynamic sets list a client with its expiry: "10.0.0.1 timeout 3h expires 2h59m".
            const item =
              e.includes(' timeout ') || e.includes(' expires ')
                ? e.replace(/ (timeout|expires) \S+/g, '')
                : e;
            const sep = item.indexOf(' : ');
            if (sep < 0) elements.set(item, '');
            else elements.set(item.slice(0, sep), item.slice(sep + 3));
          }
        } else if (x !== '') props.push(x);
      }
      m.sets.set(name!, { kind: kind as 'set' | 'map', spec: props.join(' ; '), elements });
    }
  }
  return m;
}
