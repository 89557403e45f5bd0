/**
 * The conntrack tool (conntrack-tools): list a family's flows of one protocol, delete the flows a
 * filter matches. Used by the conntrack cleanup every kernel mode runs after a sync.
 */
import type { Exec } from './run.js';

const TIMEOUT_MS = 60_000;
const DELETED_RE = /(\d+) flow entries have been deleted/;

export type ConntrackFamily = 'ipv4' | 'ipv6';

/**
 * `conntrack -L -f FAMILY -p PROTO [FILTER...]`: the flow table's text (exit 1, an empty table, is not
 * an error); `filter` narrows it, e.g. `--state SYN_SENT`.
 */
export async function conntrackList(
  exec: Exec,
  family: ConntrackFamily,
  protocol: 'udp' | 'tcp' | 'sctp',
  command = 'conntrack',
  filter: readonly string[] = [],
): Promise<string> {
  return (
    await exec(command, ['-L', '-f', family, '-p', protocol, ...filter], {
      okCodes: [0, 1],
      timeoutMs: TIMEOUT_MS,
    })
  ).stdout;
}

/**
 * `conntrack -D -f FAMILY FILTER...`: deletes the matching flows and returns how many conntrack reported
 * deleted (exit 1, nothing matched, is 0).
 */
export async function conntrackDelete(
  exec: Exec,
  family: ConntrackFamily,
  filter: readonly string[],
  command = 'conntrack',
): Promise<number> {
  const r = await exec(command, ['-D', '-f', family, ...filter], { okCodes: [0, 1], timeoutMs: TIMEOUT_MS });
  return Number(DELETED_RE.exec(r.stderr)?.[1] ?? 0);
}
