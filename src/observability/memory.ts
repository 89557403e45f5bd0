/**
 * Gives the garbage of a full sync back at once. A full sync at 10,000 Services allocates tens of MB
 * that are garbage as soon as it ends (rendered text, split rules, restore input); V8 collects its
 * old generation only when that reaches a limit set from the last collection, so without help the
 * daemon sat ~80 MB above its live heap until the next one (docs/benchmarks.md, "Daemon memory").
 * One full collection after each full sync (seldom: at start, after a flush, once an hour) costs
 * tens of milliseconds at that size. It goes through the inspector protocol's
 * HeapProfiler.collectGarbage, so no `--expose-gc` flag is needed.
 */
import { Session } from 'node:inspector';

let session: Session | undefined;

/** One full garbage collection of this process; never throws (false when the inspector is unavailable). */
export function collectGarbage(): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      if (!session) {
        session = new Session();
        session.connect();
      }
      session.post('HeapProfiler.collectGarbage', (err) => {
        resolve(err === null || err === undefined);
      });
    } catch {
      resolve(false);
    }
  });
}
