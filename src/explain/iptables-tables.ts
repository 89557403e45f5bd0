/**
 * A model of netfilter's iptables tables as iptables-restore and iptables(8) change them: tables of
 * chains of rule strings (each rule as iptables-save prints it after `-A CHAIN `). Restores are
 * atomic per call and as strict as the kernel where our scripts must not rely on leniency (a jump to
 * a missing KUBE- chain, deleting a chain still in use or not empty, deleting a rule that is not
 * there all fail). Pure: the proxier tests drive it as their fake kernel, and the packet tracer
 * (iptables-trace.ts) reads the same tables, so both see one interpretation of the restore text.
 */

/** The built-in chains every table starts with (policy ACCEPT). */
export const BUILTIN_CHAINS: ReadonlySet<string> = new Set([
  'PREROUTING',
  'INPUT',
  'FORWARD',
  'OUTPUT',
  'POSTROUTING',
]);

/** table -> chain -> rules (without the `-A CHAIN ` head), in kernel order. */
export type Tables = Map<string, Map<string, string[]>>;

function emptyTable(): Map<string, string[]> {
  return new Map([...BUILTIN_CHAINS].map((c) => [c, [] as string[]]));
}

/** Splits `-X CHAIN rest` into [CHAIN, rest]. */
function splitOp(line: string): [string, string] {
  const rest = line.slice(3);
  const sp = rest.indexOf(' ');
  return sp < 0 ? [rest, ''] : [rest.slice(0, sp), rest.slice(sp + 1)];
}

/** The netfilter tables of one network namespace and family. */
export class IPTablesTables {
  tables: Tables = new Map();

  /** The chains of `name`, created (with the built-in chains) on first use, as the kernel does. */
  table(name: string): Map<string, string[]> {
    let t = this.tables.get(name);
    if (!t) this.tables.set(name, (t = emptyTable()));
    return t;
  }

  /**
   * Applies iptables-restore input (`--noflush` semantics: a `:CHAIN` line creates or flushes that
   * chain only) atomically: on any error the tables are unchanged and it throws an Error naming the line.
   */
  applyRestore(text: string): void {
    const next: Tables = new Map(
      [...this.tables].map(([n, t]) => [n, new Map([...t].map(([c, r]) => [c, [...r]]))]),
    );
    const take = (name: string): Map<string, string[]> => {
      let t = next.get(name);
      if (!t) next.set(name, (t = emptyTable()));
      return t;
    };
    let t: Map<string, string[]> | undefined;
    const need = (c: string): string[] => {
      const r = t?.get(c);
      if (!r) throw new Error(`chain ${c} does not exist`);
      return r;
    };
    const checkTarget = (rule: string): void => {
      const m = / -j (\S+)/.exec(` ${rule}`);
      if (m && m[1]!.startsWith('KUBE-')) need(m[1]!);
    };
    for (const line of text.split('\n')) {
      if (line === '' || line === 'COMMIT' || line.startsWith('#')) continue;
      if (line.startsWith('*')) t = take(line.slice(1));
      else if (!t) throw new Error(`restore: ${line} before any *table line`);
      else if (line.startsWith(':')) {
        const sp = line.indexOf(' ');
        t.set(sp < 0 ? line.slice(1) : line.slice(1, sp), []);
      } else if (line.startsWith('-A ')) {
        const [c, rule] = splitOp(line);
        checkTarget(rule);
        need(c).push(rule);
      } else if (line.startsWith('-I ')) {
        const [c, rest] = splitOp(line);
        // `-I CHAIN N rule` inserts at position N (1-based, at most one past the end, as iptables
        // enforces); `-I CHAIN rule` at the head.
        const num = /^(\d+) /.exec(rest);
        const rule = num ? rest.slice(num[0].length) : rest;
        const at = num ? Number(num[1]) : 1;
        checkTarget(rule);
        const rules = need(c);
        if (at < 1 || at > rules.length + 1) throw new Error(`-I ${c} ${at}: index of insertion too big`);
        rules.splice(at - 1, 0, rule);
      } else if (line.startsWith('-D ')) {
        const [c, rule] = splitOp(line);
        const rules = need(c);
        const i = rules.indexOf(rule);
        if (i < 0) throw new Error(`-D: no such rule in ${c}: ${rule}`);
        rules.splice(i, 1);
      } else if (line.startsWith('-X ')) {
        const c = line.slice(3);
        if (need(c).length > 0) throw new Error(`-X ${c}: chain not empty`);
        for (const [, rules] of t)
          if (rules.some((r) => r.endsWith(`-j ${c}`))) throw new Error(`-X ${c}: chain in use`);
        t.delete(c);
      } else throw new Error(`restore: cannot parse ${line}`);
    }
    this.tables = next;
  }

  /** `iptables-save -t name`: chain lines (built-ins with policy ACCEPT), then every rule. */
  save(name: string): string {
    const t = this.table(name);
    let out = `*${name}\n`;
    for (const c of t.keys()) out += `:${c} ${BUILTIN_CHAINS.has(c) ? 'ACCEPT' : '-'} [0:0]\n`;
    for (const [c, rules] of t) for (const r of rules) out += `-A ${c} ${r}\n`;
    return `${out}COMMIT\n`;
  }

  /** `iptables-save` of every table this model holds, sorted by table name. */
  saveAll(): string {
    return [...this.tables.keys()]
      .sort()
      .map((n) => this.save(n))
      .join('');
  }
}

/**
 * Loads restore or save text (several `*table` blocks; `#` lines ignored, e.g. `kube-proxy render`
 * output) into fresh tables, as feeding it to `iptables-restore --noflush` in an empty namespace would.
 * Throws an Error naming the first line the kernel would refuse.
 */
export function tablesFromText(text: string): IPTablesTables {
  const t = new IPTablesTables();
  t.applyRestore(text);
  return t;
}

/**
 * Reads iptables-save output (what the kernel holds, so consistent by construction) in one pass,
 * without the restore checks and copies of {@link tablesFromText}: `*table` blocks of `:CHAIN` and
 * `-A CHAIN rule` lines. Only the tables in `only` are kept when it is given (a whole
 * `iptables-save` also prints mangle, raw, ...). Throws an Error naming a line it cannot place.
 */
export function tablesFromSave(text: string, only?: ReadonlySet<string>): IPTablesTables {
  const out = new IPTablesTables();
  let t: Map<string, string[]> | undefined;
  let skip = false;
  // Rules of a chain come together: keep the last chain's `-A NAME ` head and list at hand, so a
  // rule line costs one slice (234k lines at 10k services).
  let head = '';
  let rules: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const lineStart = start;
    start = end + 1;
    if (head !== '' && text.startsWith(head, lineStart)) {
      rules.push(text.slice(lineStart + head.length, end));
      continue;
    }
    const line = text.slice(lineStart, end);
    if (line === '' || line === 'COMMIT' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const name = line.slice(1);
      skip = only !== undefined && !only.has(name);
      t = skip ? undefined : out.table(name);
      head = '';
      continue;
    }
    if (skip) continue;
    if (!t) throw new Error(`iptables-save: ${line} before any *table line`);
    if (line.startsWith(':')) {
      const sp = line.indexOf(' ');
      const name = sp < 0 ? line.slice(1) : line.slice(1, sp);
      if (!t.has(name)) t.set(name, []);
    } else if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const name = sp < 0 ? line.slice(3) : line.slice(3, sp);
      const r = t.get(name);
      if (!r) throw new Error(`iptables-save: rule for undeclared chain ${name}: ${line}`);
      rules = r;
      head = `-A ${name} `;
      rules.push(sp < 0 ? '' : line.slice(sp + 1));
    } else throw new Error(`iptables-save: cannot parse ${line}`);
  }
  return out;
}
