/** One-shot desired state from a fixed set of objects: what `render` and golden tests use. Pure. */
import type { Kind, KubeObject } from '../model/types.js';
import type { DesiredState } from './types.js';
import { StateTracker, type StateTrackerOptions } from './state-tracker.js';

const KINDS: readonly Kind[] = ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'];

/** Feeds `objects` to a fresh tracker, marks every kind synced, and builds each family's state. */
export function desiredStatesFromObjects(
  objects: readonly KubeObject[],
  opts: StateTrackerOptions,
): DesiredState[] {
  const t = new StateTracker(opts);
  for (const object of objects) t.onEvent({ type: 'add', object });
  for (const kind of KINDS) t.onEvent({ type: 'synced', kind });
  return opts.families.map((f) => t.build(f));
}
