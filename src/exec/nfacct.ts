/**
 * The nfacct tool (Debian package `nfacct`): the extended accounting objects upstream's iptables mode
 * counts two kinds of packets in (`-m nfacct --nfacct-name NAME`). Objects belong to the network
 * namespace; creating one that exists is not an error.
 */
import type { Exec } from './run.js';

const TIMEOUT_MS = 10_000;
/** `{ pkts = 00000000000000000012, bytes = 00000000000000000840 } = name;` */
const COUNTER_RE = /pkts\s*=\s*(\d+)\s*,\s*bytes\s*=\s*(\d+)\s*\}\s*=\s*(\S+?);/;

/** Parses one `nfacct get` / `nfacct list` line for `name`: its packet count, or undefined. */
export function parseNfacctPackets(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = COUNTER_RE.exec(line);
    if (m && m[3] === name) return Number(m[1]);
  }
  return undefined;
}

/**
 * Makes sure the object `name` exists: `nfacct get`, then `nfacct add` when it is missing. Throws the
 * ExecError of the add (tool missing, kernel without nfnetlink_acct) when it cannot.
 */
export async function nfacctEnsure(exec: Exec, name: string, command = 'nfacct'): Promise<void> {
  const r = await exec(command, ['get', name], { okCodes: [0, 1], timeoutMs: TIMEOUT_MS });
  if (r.code === 0 && parseNfacctPackets(r.stdout, name) !== undefined) return;
  await exec(command, ['add', name], { timeoutMs: TIMEOUT_MS });
}

/** The packet count of object `name` (`nfacct get`); throws when it cannot be read. */
export async function nfacctPackets(exec: Exec, name: string, command = 'nfacct'): Promise<number> {
  const r = await exec(command, ['get', name], { timeoutMs: TIMEOUT_MS });
  const n = parseNfacctPackets(r.stdout, name);
  if (n === undefined) throw new Error(`nfacct get ${name}: no counter in its output`);
  return n;
}
