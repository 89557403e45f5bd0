/** The ip tool (iproute2) for links and addresses: run a batch, show a device's addresses. */
import type { Exec } from './run.js';

const TIMEOUT_MS = 120_000;

/** `ip -batch -`: one ip command per line (link add, addr add/del, ...). */
export async function ipBatch(exec: Exec, script: string): Promise<void> {
  await exec('ip', ['-batch', '-'], { input: script, timeoutMs: TIMEOUT_MS });
}

/**
 * `ip -o addr show dev DEVICE`: the device's address lines, or undefined when the device does not
 * exist.
 */
export async function deviceAddresses(exec: Exec, device: string): Promise<string | undefined> {
  const r = await exec('ip', ['-o', 'addr', 'show', 'dev', device], {
    okCodes: [0, 1, 255],
    timeoutMs: 30_000,
  });
  return r.code === 0 ? r.stdout : undefined;
}
