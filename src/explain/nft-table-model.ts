/**
 * A small model of what the kernel does with the statements our scripts use, with the kernel's
 * reference checks (a chain must exist before a rule, element or jump names it; a chain with rules
 * or still referenced cannot be deleted; a set referenced by a rule cannot be deleted), and of the
 * proxier's read-back listing (listTable). Stricter than the kernel where our
 * scripts must not rely on the kernel's leniency: the kernel deletes a chain's rules with the chain,
 * and a newer kernel updates a set's timeout on `add set` with another definition (elements keep
 * their old timeout); the model refuses both. Pure: the nftables proxier tests use it as their
 * kernel, and the packet tracer (nft-trace.ts) reads the same model, so both share one
 * interpretation of the script.
 */
export interface TableModel {
  chains: Map<string, string[]>;
  /** Base chains: name -> `type … hook … priority … ;` (absent in models built by hand). */
  hooks?: Map<string, string>;
  sets: Map<string, { kind: 'set' | 'map'; spec: string; elements: Map<string, string> }>;
}

const HEAD = /^(add|delete|flush) (table|chain|rule|set|map|element) (ip6?) kube-proxy(?: (\S+))?(?: (.*))?$/;

function refs(text: string): { chains: string[]; sets: string[] } {
  const chains = [...text.matchAll(/(?:goto|jump) (\S+)/g)].map((m) => m[1]!);
  const sets = [...text.matchAll(/@(\S+)/g)].map((m) => m[1]!);
  return { chains, sets };
}

function splitItems(body: string): string[] {
  const inner = body.trim().replace(/^\{ /, '').replace(/ \}$/, '');
  return inner.split(', ');
}

/** Applies `script` to `m` atomically (a copy is changed; on error `m` is untouched and it throws). */
export function applyScript(m: TableModel | undefined, script: string): TableModel {
  let t: TableModel | undefined = m && {
    chains: new Map([...m.chains].map(([k, v]) => [k, [...v]])),
    hooks: new Map(m.hooks ?? []),
    sets: new Map(
      [...m.sets].map(([k, v]) => [k, { kind: v.kind, spec: v.spec, elements: new Map(v.elements) }]),
    ),
  };
  const need = (): TableModel => {
    if (!t) throw new Error('no table');
    return t;
  };
  for (const line of script.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const h = HEAD.exec(line);
    if (!h) throw new Error(`unparsed: ${line}`);
    const [, verb, obj, , name, rest] = h;
    if (obj === 'table') {
      if (verb === 'add') t ??= { chains: new Map(), hooks: new Map(), sets: new Map() };
      else if (verb === 'delete') {
        if (!t) throw new Error('delete of missing table');
        t = undefined;
      } else throw new Error(`unsupported: ${line}`);
      continue;
    }
    const tm = need();
    if (obj === 'chain') {
      if (verb === 'add') {
        if (!tm.chains.has(name!)) tm.chains.set(name!, []);
        const hook = /\{ (type .*hook .*;) \}$/.exec(rest ?? '');
        if (hook) (tm.hooks ??= new Map()).set(name!, hook[1]!);
      } else if (verb === 'flush') {
        if (!tm.chains.has(name!)) throw new Error(`flush of missing chain ${name}`);
        tm.chains.set(name!, []);
      } else {
        const c = tm.chains.get(name!);
        if (!c) throw new Error(`delete of missing chain ${name}`);
        if (c.length) throw new Error(`delete of non-empty chain ${name}`);
        for (const [cn, rules] of tm.chains)
          if (rules.some((r) => refs(r).chains.includes(name!)))
            throw new Error(`chain ${name} still jumped to from ${cn}`);
        for (const [sn, s] of tm.sets)
          for (const v of s.elements.values())
            if (refs(v).chains.includes(name!)) throw new Error(`chain ${name} still in ${sn}`);
        tm.chains.delete(name!);
        tm.hooks?.delete(name!);
      }
    } else if (obj === 'rule') {
      const c = tm.chains.get(name!);
      if (!c) throw new Error(`rule for missing chain ${name}`);
      const r = refs(rest!);
      for (const x of r.chains) if (!tm.chains.has(x)) throw new Error(`rule jumps to missing chain ${x}`);
      for (const x of r.sets) if (!tm.sets.has(x)) throw new Error(`rule uses missing set ${x}`);
      c.push(rest!);
    } else if (obj === 'set' || obj === 'map') {
      const have = tm.sets.get(name!);
      if (verb === 'add') {
        if (!have) tm.sets.set(name!, { kind: obj, spec: rest!, elements: new Map() });
        else if (have.kind !== obj || have.spec !== rest)
          throw new Error(`add ${obj} ${name}: exists with another definition`);
      } else if (verb === 'flush') throw new Error(`unsupported: ${line}`);
      else {
        if (!have) throw new Error(`delete of missing set ${name}`);
        if (have.kind !== obj) throw new Error(`delete ${obj} ${name}: it is a ${have.kind}`);
        for (const [cn, rules] of tm.chains)
          if (rules.some((r) => refs(r).sets.includes(name!)))
            throw new Error(`set ${name} still used by ${cn}`);
        tm.sets.delete(name!);
      }
    } else {
      const s = tm.sets.get(name!);
      if (!s) throw new Error(`element of missing set ${name}`);
      for (const it of splitItems(rest!)) {
        const [k, v = ''] = it.split(' : ');
        if (verb === 'add') {
          if (s.elements.has(k!)) throw new Error(`element ${k} exists in ${name}`);
          for (const x of refs(v).chains)
            if (!tm.chains.has(x)) throw new Error(`element jumps to missing chain ${x}`);
          s.elements.set(k!, v);
        } else {
          if (!s.elements.delete(k!)) throw new Error(`delete of missing element ${k} in ${name}`);
        }
      }
    }
  }
  if (!t) throw new Error('script left no table');
  return t;
}

/** nft's way of printing a duration given in seconds ("5m", "3h", "6m40s", "1d"). */
function nftDuration(seconds: number): string {
  const parts: [number, string][] = [
    [Math.floor(seconds / 86400), 'd'],
    [Math.floor(seconds / 3600) % 24, 'h'],
    [Math.floor(seconds / 60) % 60, 'm'],
    [seconds % 60, 's'],
  ];
  const text = parts
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join('');
  return text === '' ? '0s' : text;
}

/**
 * What the proxier's read-back (`nft -t -f -` with listScript: list sets, maps, chains) prints for
 * the model, in nft's layout: one block per list, no elements (terse), chains without their rules;
 * set properties one per line, durations in nft's form, `size 65535` added to dynamic sets as nft
 * does. Throws like nft when there is no table.
 */
export function listTable(m: TableModel | undefined, family: 'ip' | 'ip6'): string {
  if (!m) throw new Error(`Error: No such file or directory\nlist sets table ${family} kube-proxy`);
  const block = (lines: string[]) => [`table ${family} kube-proxy {`, ...lines, '}'];
  const setLines = (kind: 'set' | 'map') =>
    [...m.sets].flatMap(([name, s]) => {
      if (s.kind !== kind) return [];
      const props = s.spec
        .replace(/^\{ | \}$/g, '')
        .split(';')
        .map((p) => p.trim())
        .filter((p) => p !== '')
        .map((p) => p.replace(/^timeout (\d+)s$/, (_, n: string) => `timeout ${nftDuration(Number(n))}`));
      const dynamic = props.some((p) => /^flags .*\bdynamic\b/.test(p));
      if (dynamic && !props.some((p) => p.startsWith('size '))) props.splice(1, 0, 'size 65535');
      return [`\t${kind} ${name} {`, ...props.map((p) => `\t\t${p}`), '\t}'];
    });
  const chainLines = [...m.chains.keys()].flatMap((name) => [`\tchain ${name} {`, '\t}']);
  return [...block(setLines('set')), ...block(setLines('map')), ...block(chainLines)].join('\n') + '\n';
}
