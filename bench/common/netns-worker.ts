/**
 * Runs this benchmark's worker (`node --import tsx SCRIPT --worker ARGS...`) inside a network
 * namespace made for it and deleted afterwards, and reads the JSON on its `RESULT ` line.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export type WorkerOutcome<T> =
  | { readonly ok: true; readonly result: T; readonly stderr: string }
  | { readonly ok: false; readonly error: string; readonly stderr: string };

export function runWorkerInNetns<T>(
  ns: string,
  script: string,
  args: readonly string[],
  opts: { readonly timeoutMs: number; readonly maxBuffer: number },
): WorkerOutcome<T> {
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script, '--worker', ...args],
      { encoding: 'utf8', timeout: opts.timeoutMs, maxBuffer: opts.maxBuffer },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) {
      const error = (r.error?.message ?? r.stderr).split('\n').slice(0, 3).join(' ');
      return { ok: false, error, stderr: r.stderr };
    }
    return { ok: true, result: JSON.parse(line.slice(7)) as T, stderr: r.stderr };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
