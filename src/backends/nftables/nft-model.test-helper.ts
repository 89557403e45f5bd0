/**
 * A small model of what the kernel does with the statements our scripts use, with the kernel's
 * reference checks (a chain must exist before a rule, element or jump names it; a chain with rules
 * or still referenced cannot be deleted; a set referenced by a rule cannot be deleted). Test-only.
 */
export interface TableModel {
  chains: Map<string, string[]>;
  sets: Map<string, { spec: string; elements: Map<string, string> }>;
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
    sets: new Map([...m.sets].map(([k, v]) => [k, { spec: v.spec, elements: new Map(v.elements) }])),
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
      if (verb === 'add') t ??= { chains: new Map(), sets: new Map() };
      else if (verb === 'delete') t = undefined;
      continue;
    }
    const tm = need();
    if (obj === 'chain') {
      if (verb === 'add') {
        if (!tm.chains.has(name!)) tm.chains.set(name!, []);
      } else if (verb === 'flush') {
        if (!tm.chains.has(name!)) throw new Error(`flush of missing chain ${name}`);
        tm.chains.set(name!, []);
      } else {
        const c = tm.chains.get(name!);
        if (!c) throw new Error(`delete of missing chain ${name}`);
        if (c.length) throw new Error(`delete of non-empty chain ${name}`);
        for (const [cn, rules] of tm.chains) if (rules.some((r) => refs(r).chains.includes(name!))) throw new Error(`chain ${name} still jumped to from ${cn}`);
        for (const [sn, s] of tm.sets) for (const v of s.elements.values()) if (refs(v).chains.includes(name!)) throw new Error(`chain ${name} still in ${sn}`);
        tm.chains.delete(name!);
      }
    } else if (obj === 'rule') {
      const c = tm.chains.get(name!);
      if (!c) throw new Error(`rule for missing chain ${name}`);
      const r = refs(rest!);
      for (const x of r.chains) if (!tm.chains.has(x)) throw new Error(`rule jumps to missing chain ${x}`);
      for (const x of r.sets) if (!tm.sets.has(x)) throw new Error(`rule uses missing set ${x}`);
      c.push(rest!);
    } else if (obj === 'set' || obj === 'map') {
      if (verb === 'add') {
        if (!tm.sets.has(name!)) tm.sets.set(name!, { spec: rest!, elements: new Map() });
      } else {
        if (!tm.sets.has(name!)) throw new Error(`delete of missing set ${name}`);
        for (const [cn, rules] of tm.chains) if (rules.some((r) => refs(r).sets.includes(name!))) throw new Error(`set ${name} still used by ${cn}`);
        tm.sets.delete(name!);
      }
    } else {
      const s = tm.sets.get(name!);
      if (!s) throw new Error(`element of missing set ${name}`);
      for (const it of splitItems(rest!)) {
        const [k, v = ''] = it.split(' : ');
        if (verb === 'add') {
          if (s.elements.has(k!)) throw new Error(`element ${k} exists in ${name}`);
          for (const x of refs(v).chains) if (!tm.chains.has(x)) throw new Error(`element jumps to missing chain ${x}`);
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
