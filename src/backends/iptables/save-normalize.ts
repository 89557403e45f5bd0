/**
 * What `iptables-save` prints for a rule the renderer writes, so that after a restart the executor
 * can recognise chains that already hold exactly our rules and leave them alone instead of
 * rewriting every chain once (at 10k services on iptables-nft that rewrite took ~13 s).
 *
 * iptables-save does not echo the restore text: it prints the address/interface/protocol options
 * first (`-s -d -i -o -p`, addresses with their prefix length), then each match in rule order with
 * its options in the extension's own order and format (quoted comments, `recent` options reordered
 * with the default mask, probabilities quantised to 31 bits and printed with 11 decimals, marks
 * in short hex), then the target with its options (MARK as `--set-xmark`, REJECT with its default
 * `--reject-with`). This module reproduces that for the vocabulary the renderer uses and returns
 * undefined for anything else, so an unknown form can only cause a rewrite, never a wrong "equal".
 * `e2e/iptables-save-normalize.test.ts` checks every golden rule against real iptables-save output
 * of both iptables-legacy and iptables-nft (1.8.9). Pure.
 */
import type { IPFamily } from '../../model/types.js';
import { ChainDigest } from './chain-diff.js';

const BASE = ['-s', '-d', '-i', '-o', '-p'] as const;
type BaseOpt = (typeof BASE)[number];

/** Splits a rule line into words; double quotes group (the renderer never escapes inside them). */
function words(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) return undefined;
      const word = line.slice(i + 1, end);
      if (word.includes('\\')) return undefined;
      out.push(word);
      i = end + 1;
      if (i < line.length && line[i] !== ' ') return undefined;
      continue;
    }
    let end = line.indexOf(' ', i);
    if (end < 0) end = line.length;
    const word = line.slice(i, end);
    if (word.includes('"')) return undefined;
    out.push(word);
    i = end;
  }
  return out;
}

/** libxtables' xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with \ escapes. */
function saveString(s: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(s)) return s;
  return `"${s.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function parseU32(s: string): number | undefined {
  const n = /^0x[0-9a-fA-F]{1,8}$/.test(s)
    ? Number.parseInt(s.slice(2), 16)
    : /^\d{1,10}$/.test(s)
      ? Number(s)
      : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : undefined;
}

/** An address or CIDR as iptables prints it: with the prefix length (/32, /128 when none was given). */
function address(s: string, family: IPFamily): string | undefined {
  const v6 = family === 'IPv6';
  if (v6 ? !/^[0-9a-f:.]+(\/\d{1,3})?$/.test(s) : !/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(s))
    return undefined;
  return s.includes('/') ? s : `${s}/${v6 ? 128 : 32}`;
}

/** One match's options, printed as the extension's save function does; undefined if not understood. */
function matchText(name: string, opts: string[], family: IPFamily): string | undefined {
  switch (name) {
    case 'comment':
      return opts.length === 2 && opts[0] === '--comment' ? `--comment ${saveString(opts[1]!)}` : undefined;
    case 'tcp':
    case 'udp':
    case 'sctp': {
      // The renderer writes at most --dport/--sport with a plain port number, which prints as written.
      for (let i = 0; i < opts.length; i += 2) {
        if ((opts[i] !== '--dport' && opts[i] !== '--sport') || !/^\d{1,5}$/.test(opts[i + 1] ?? ''))
          return undefined;
      }
      return opts.join(' ');
    }
    case 'nfacct':
      // iptables 1.8.9 prints two spaces after --nfacct-name (legacy and nft alike; seen in e2e/nfacct).
      return opts.length === 2 && opts[0] === '--nfacct-name' && /^[A-Za-z0-9_-]+$/.test(opts[1]!)
        ? `--nfacct-name  ${opts[1]!}`
        : undefined;
    case 'recent': {
      const flags = new Set<string>();
      let seconds: string | undefined;
      let hitcount: string | undefined;
      let rname = 'DEFAULT';
      let mask = family === 'IPv6' ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255';
      let side = '--rsource';
      for (let i = 0; i < opts.length; i++) {
        const o = opts[i]!;
        if (['--set', '--rcheck', '--update', '--remove', '--reap', '--rttl'].includes(o)) flags.add(o);
        else if (o === '--rsource' || o === '--rdest') side = o;
        else if (o === '--seconds' && /^\d+$/.test(opts[i + 1] ?? '')) seconds = opts[++i];
        else if (o === '--hitcount' && /^\d+$/.test(opts[i + 1] ?? '')) hitcount = opts[++i];
        else if (o === '--name' && /^[A-Za-z0-9_-]+$/.test(opts[i + 1] ?? '')) rname = opts[++i]!;
        else if (o === '--mask' && opts[i + 1] !== undefined) mask = opts[++i]!;
        else return undefined;
      }
      const out: string[] = [];
      for (const f of ['--set', '--rcheck', '--update', '--remove']) if (flags.has(f)) out.push(f);
      if (seconds !== undefined) out.push('--seconds', String(Number(seconds)));
      if (flags.has('--reap')) out.push('--reap');
      if (hitcount !== undefined) out.push('--hitcount', String(Number(hitcount)));
      if (flags.has('--rttl')) out.push('--rttl');
      out.push('--name', rname, '--mask', mask, side);
      return out.join(' ');
    }
    case 'statistic': {
      if (opts.length !== 4 || opts[0] !== '--mode' || opts[1] !== 'random' || opts[2] !== '--probability')
        return undefined;
      const p = Number(opts[3]);
      if (!Number.isFinite(p) || p < 0 || p > 1) return undefined;
      // The kernel keeps the probability in 31 bits (lround(p * 2^31)); save prints that with %.11f.
      const q = Math.round(p * 0x80000000) / 0x80000000;
      return `--mode random --probability ${q.toFixed(11)}`;
    }
    case 'addrtype': {
      const out: string[] = [];
      for (let i = 0; i < opts.length; i++) {
        const neg = opts[i] === '!';
        if (neg) i++;
        const o = opts[i];
        const v = opts[i + 1];
        if ((o !== '--src-type' && o !== '--dst-type') || v === undefined || !/^[A-Z]+$/.test(v))
          return undefined;
        out.push(...(neg ? ['!'] : []), o, v);
        i++;
      }
      return out.length > 0 ? out.join(' ') : undefined;
    }
    case 'conntrack': {
      // Only a single --ctstate whose states are already in the order the extension prints them.
      const neg = opts[0] === '!';
      const rest = neg ? opts.slice(1) : opts;
      if (rest.length !== 2 || rest[0] !== '--ctstate') return undefined;
      const order = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
      const states = rest[1]!.split(',');
      const idx = states.map((s) => order.indexOf(s));
      if (idx.some((x, k) => x < 0 || (k > 0 && x <= idx[k - 1]!))) return undefined;
      return `${neg ? '! ' : ''}--ctstate ${states.join(',')}`;
    }
    case 'mark': {
      const neg = opts[0] === '!';
      const rest = neg ? opts.slice(1) : opts;
      if (rest.length !== 2 || rest[0] !== '--mark') return undefined;
      const [v, m] = rest[1]!.split('/');
      const value = parseU32(v ?? '');
      const maskN = m === undefined ? 0xffffffff : parseU32(m);
      if (value === undefined || maskN === undefined) return undefined;
      return `${neg ? '! ' : ''}--mark ${hex(value)}${maskN === 0xffffffff ? '' : `/${hex(maskN)}`}`;
    }
    default:
      return undefined;
  }
}

/** A target's options as its save function prints them; undefined if not understood. */
function targetText(name: string, opts: string[], family: IPFamily): string | undefined {
  switch (name) {
    case 'DNAT':
      return opts.length === 2 && opts[0] === '--to-destination' && /^[0-9a-f.:[\]]+$/.test(opts[1]!)
        ? ` --to-destination ${opts[1]}`
        : undefined;
    case 'MARK': {
      if (opts.length !== 2) return undefined;
      const v = parseU32(opts[1]!);
      if (v === undefined) return undefined;
      if (opts[0] === '--or-mark') return ` --set-xmark ${hex(v)}/${hex(v)}`;
      if (opts[0] === '--xor-mark') return ` --set-xmark ${hex(v)}/0x0`;
      if (opts[0] === '--set-mark') return ` --set-xmark ${hex(v)}/0xffffffff`;
      return undefined;
    }
    case 'REJECT':
      if (opts.length === 0)
        return ` --reject-with ${family === 'IPv6' ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'}`;
      return opts.length === 2 && opts[0] === '--reject-with' && /^[a-z0-9-]+$/.test(opts[1]!)
        ? ` --reject-with ${opts[1]}`
        : undefined;
    case 'MASQUERADE':
      if (opts.length === 0) return '';
      return opts.length === 1 && opts[0] === '--random-fully' ? ' --random-fully' : undefined;
    default:
      // Jumps to chains and the plain verdicts take no options.
      return opts.length === 0 && /^[A-Z][A-Z0-9_-]*$/.test(name) ? '' : undefined;
  }
}

/**
 * The line `iptables-save` prints for the rule `line` (`-A CHAIN ...`, as the renderer writes it)
 * of `family`, or undefined when the rule uses anything this module does not reproduce.
 */
export function savedForm(line: string, family: IPFamily): string | undefined {
  const w = words(line);
  if (!w || w.length < 2 || w[0] !== '-A') return undefined;
  const chain = w[1]!;
  const base = new Map<BaseOpt, string>();
  // Match options may follow base options (upstream writes `-m tcp -p tcp -d IP --dport 80`):
  // iptables gives an option to the last match loaded, so collect them per match first.
  const matches: { name: string; opts: string[] }[] = [];
  let target = '';
  let i = 2;
  while (i < w.length) {
    const t = w[i]!;
    const afterNeg = t === '!' ? w[i + 1] : undefined;
    if (t.startsWith('--') || afterNeg?.startsWith('--')) {
      // An option of the last match, with its values (words not starting with '-').
      const last = matches[matches.length - 1];
      if (!last) return undefined;
      if (t === '!') last.opts.push(w[i++]!);
      last.opts.push(w[i++]!);
      while (i < w.length && !w[i]!.startsWith('-') && w[i] !== '!') last.opts.push(w[i++]!);
      continue;
    }
    let neg = false;
    if (t === '!') {
      neg = true;
      i++;
    }
    const o = w[i];
    if (o === undefined) return undefined;
    if ((BASE as readonly string[]).includes(o)) {
      const v = w[i + 1];
      if (v === undefined || base.has(o as BaseOpt)) return undefined;
      let printed: string | undefined = v;
      if (o === '-s' || o === '-d') printed = address(v, family);
      else if (o === '-p')
        printed = ['tcp', 'udp', 'sctp', 'icmp', 'ipv6-icmp'].includes(v.toLowerCase())
          ? v.toLowerCase()
          : undefined;
      else if (!/^[A-Za-z0-9_.+-]+$/.test(v)) printed = undefined;
      if (printed === undefined) return undefined;
      base.set(o as BaseOpt, `${neg ? '! ' : ''}${o} ${printed}`);
      i += 2;
      continue;
    }
    if (neg) return undefined;
    if (o === '-m') {
      const name = w[i + 1];
      if (name === undefined) return undefined;
      matches.push({ name, opts: [] });
      i += 2;
      continue;
    }
    if (o === '-j') {
      const name = w[i + 1];
      if (name === undefined) return undefined;
      const text = targetText(name, w.slice(i + 2), family);
      if (text === undefined) return undefined;
      target = `-j ${name}${text}`;
      break;
    }
    return undefined;
  }
  const matchTexts: string[] = [];
  for (const m of matches) {
    const text = matchText(m.name, m.opts, family);
    if (text === undefined) return undefined;
    matchTexts.push(`-m ${m.name}${text === '' ? '' : ` ${text}`}`);
  }
  const parts = [`-A ${chain}`];
  for (const b of BASE) {
    const v = base.get(b);
    if (v !== undefined) parts.push(v);
  }
  parts.push(...matchTexts);
  if (target !== '') parts.push(target);
  return parts.join(' ');
}

/**
 * The digest (chain-diff.ts ChainDigest) of the lines iptables-save prints for a chain holding
 * `content` (renderer rules joined by '\n'), to compare with SaveReader's digest of the kernel's
 * chain: equal when the kernel holds exactly these rules, in order. Or the first rule this module
 * cannot predict (then the chain is rewritten, never taken as equal).
 */
export function savedDigest(
  content: string,
  family: IPFamily,
): { readonly digest: string } | { readonly unpredictable: string } {
  const d = new ChainDigest();
  for (let from = 0; from < content.length;) {
    let nl = content.indexOf('\n', from);
    if (nl < 0) nl = content.length;
    const rule = content.slice(from, nl);
    from = nl + 1;
    const line = savedForm(rule, family);
    if (line === undefined) return { unpredictable: rule };
    d.add(line);
  }
  return { digest: d.value() };
}
