/**
 * Turning two snapshots of the manifest objects into source events. Pure.
 */
import type { Kind, KubeObject } from '../model/types.js';
import type { SourceEvent } from './source.js';
import { flat } from '../model/flat-string.js';

/** "Kind/namespace/name" ("Kind//name" for cluster-scoped kinds): identity of an object across reads. */
export function objectKey(o: {
  readonly kind: string;
  readonly meta: { readonly namespace: string; readonly name: string };
}): string {
  return flat(`${o.kind}/${o.meta.namespace}/${o.meta.name}`);
}

/** JSON with object keys sorted, so that reordering keys in a file is not a change. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableStringify(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** True when two objects have the same content (key order ignored). */
export function sameContent(a: KubeObject, b: KubeObject): boolean {
  return stableStringify(a) === stableStringify(b);
}

/** Order in which adds/updates are delivered: things others refer to first (a Service before its slices). */
const ADD_ORDER: readonly Kind[] = ['Node', 'ServiceCIDR', 'Service', 'EndpointSlice'];

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The keys of `m`, per kind in ADD_ORDER's order, each list sorted (one pass, no entry pairs). */
function keysByKind(m: ReadonlyMap<string, KubeObject>): string[][] {
  const lists: string[][] = ADD_ORDER.map(() => []);
  m.forEach((o, k) => lists[ADD_ORDER.indexOf(o.kind)]?.push(k));
  for (const l of lists) l.sort(compareKeys);
  return lists;
}

/**
 * The events that turn `prev` into `next` (both keyed by objectKey): deletes first (slices before their
 * Services, the reverse of ADD_ORDER), then adds and updates in ADD_ORDER; sorted by key within a kind.
 * An update is emitted only when the content differs. The same object in both (a file that was not
 * re-read) is unchanged without comparing: at 10,000 Services a change of one file used to
 * stringify all 20,000 objects twice.
 */
export function diffObjectSets(
  prev: ReadonlyMap<string, KubeObject>,
  next: ReadonlyMap<string, KubeObject>,
): SourceEvent[] {
  const events: SourceEvent[] = [];
  const gone = prev.size === 0 ? [] : keysByKind(prev).reverse();
  for (const keys of gone) {
    for (const k of keys) if (!next.has(k)) events.push({ type: 'delete', object: prev.get(k)! });
  }
  for (const keys of keysByKind(next)) {
    for (const k of keys) {
      const o = next.get(k)!;
      const old = prev.get(k);
      if (old === undefined) events.push({ type: 'add', object: o });
      else if (old !== o && !sameContent(old, o)) events.push({ type: 'update', old, object: o });
    }
  }
  return events;
}
