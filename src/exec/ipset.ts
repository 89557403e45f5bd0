/** The ipset tool: save, restore, and list the names of the sets. */
import type { Exec } from './run.js';

const TIMEOUT_MS = 120_000;

/** `ipset save`: every set with its members, in restore syntax. */
export async function ipsetSave(exec: Exec): Promise<string> {
  return (await exec('ipset', ['save'], { timeoutMs: TIMEOUT_MS })).stdout;
}

/** `ipset -exist restore`: creates and fills sets; an existing set or member is not an error. */
export async function ipsetRestore(exec: Exec, script: string): Promise<void> {
  await exec('ipset', ['-exist', 'restore'], { input: script, timeoutMs: TIMEOUT_MS });
}

/** `ipset list -n`: the names of the sets that exist. */
export async function ipsetNames(exec: Exec): Promise<string[]> {
  return (await exec('ipset', ['list', '-n'], { timeoutMs: TIMEOUT_MS })).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}
