/** CPU accounting from /proc for the benchmarks (Linux). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU ms of the waited-for children of this process (cutime + cstime). */
export function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): cutime is field 16, cstime field 17.
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/**
 * CPU ms of this process's main thread alone (/proc/self/task/<pid>/schedstat, in nanoseconds): the
 * part of a synchronous stretch's wall time spent on a CPU. On a shared machine the wall time also
 * holds the waits for a CPU; this leaves them out (and the GC's helper threads, which
 * process.cpuUsage() counts). NaN where the file is missing.
 */
export function mainThreadCpuMs(): number {
  try {
    const s = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
    return Number(s.split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}
