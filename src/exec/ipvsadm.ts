/** The ipvsadm tool: read the IPVS table, apply a restore script, set the connection timeouts. */
import type { Exec } from './run.js';

const TIMEOUT_MS = 120_000;

/** `ipvsadm -Sn`: every virtual and real server, in restore syntax, numeric. */
export async function ipvsadmSave(exec: Exec): Promise<string> {
  return (await exec('ipvsadm', ['-Sn'], { timeoutMs: TIMEOUT_MS })).stdout;
}

/** `ipvsadm -Ln`: the table with connection counts (for draining real servers). */
export async function ipvsadmList(exec: Exec): Promise<string> {
  return (await exec('ipvsadm', ['-Ln'], { timeoutMs: TIMEOUT_MS })).stdout;
}

/** `ipvsadm -R`: applies add/edit/delete lines. */
export async function ipvsadmRestore(exec: Exec, script: string): Promise<void> {
  await exec('ipvsadm', ['-R'], { input: script, timeoutMs: TIMEOUT_MS });
}

/** `ipvsadm --set TCP TCPFIN UDP`: `args` as ipvs/proxier.ts ipvsTimeoutArgs builds them. */
export async function ipvsadmSetTimeouts(exec: Exec, args: readonly string[]): Promise<void> {
  await exec('ipvsadm', args, { timeoutMs: 30_000 });
}
