/**
 * Kernel settings under /proc: sysctls of the network namespace the process runs in, and the process's
 * own oom_score_adj. Every mode writes them through here. A key is dotted (net.ipv4.conf.all.route_localnet)
 * or a path below /proc/sys (net/ipv4/conf/all/route_localnet); `root` lets tests point at a folder.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROC_SYS = '/proc/sys';

function pathOf(key: string, root: string): string {
  return join(root, key.includes('/') ? key : key.replaceAll('.', '/'));
}

/** The dotted name of a key, for logs. */
export function sysctlName(key: string): string {
  return key.replaceAll('/', '.');
}

/** Reads a sysctl (trimmed). Throws when it does not exist (a module not loaded) or cannot be read. */
export function readSysctl(key: string, root = PROC_SYS): string {
  return readFileSync(pathOf(key, root), 'utf8').trim();
}

/** Writes a sysctl. Throws when it cannot (read-only /proc/sys in a container, no such key). */
export function writeSysctl(key: string, value: string | number, root = PROC_SYS): void {
  writeFileSync(pathOf(key, root), String(value));
}

/**
 * Sets a numeric sysctl to `value` unless it already is (or, with onlyRaise, is already at least that).
 * Returns the value found when it wrote, undefined when nothing was written. Throws as read/write do.
 */
export function ensureSysctl(
  key: string,
  value: number,
  opts: { readonly onlyRaise?: boolean; readonly root?: string } = {},
): number | undefined {
  const root = opts.root ?? PROC_SYS;
  const cur = Number(readSysctl(key, root));
  if (cur === value || (opts.onlyRaise && cur >= value)) return undefined;
  writeSysctl(key, value, root);
  return cur;
}

/** Sets this process's oom_score_adj. Throws when the kernel refuses. */
export function writeOomScoreAdj(value: number): void {
  writeFileSync('/proc/self/oom_score_adj', String(value));
}

/** nf_conntrack's hash table size: a module parameter, global to the machine (not per namespace). */
export const CONNTRACK_HASHSIZE = '/sys/module/nf_conntrack/parameters/hashsize';

/**
 * Raises the integer in `file` (a module parameter under /sys) to `value` when it is lower. Returns the
 * value found when it wrote, undefined when nothing was written. Throws when it cannot read or write
 * (a read-only /sys in a container).
 */
export function raiseSysfsInt(file: string, value: number): number | undefined {
  const cur = Number(readFileSync(file, 'utf8').trim());
  if (cur >= value) return undefined;
  writeFileSync(file, String(value));
  return cur;
}

/** Whether this process runs in the machine's initial network namespace (the one PID 1 has). */
export function inInitialNetns(): boolean {
  try {
    return statSync('/proc/self/ns/net').ino === statSync('/proc/1/ns/net').ino;
  } catch {
    return false;
  }
}
