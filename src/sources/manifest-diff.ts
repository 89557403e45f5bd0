/**
 * Turning two snapshots of the manifest objects into source events. Pure.
 */
import type { Kind, KubeObject } from '../model/types.js';
import type { SourceEvent } from './source.js';

/** "Kind/namespace/name" ("Kind//name" for cluster-scoped kinds): identity of an object across reads. */
export function objectKey(o: {
  readonly kind: string;
  readonly meta: { readonly namespace: string; readonly name: string };
}): string {
  return `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
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

function byKey(a: [string, KubeObject], b: [string, KubeObject]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * The events that turn `prev` into `next` (both keyed by objectKey): deletes first (slices before their
 * Services, the reverse of ADD_ORDER), then adds and updates in ADD_ORDER; sorted by key within a kind.
 * An update is emitted only when the content differs.
 */
export function diffObjectSets(
  prev: ReadonlyMap<string, KubeObject>,
  next: ReadonlyMap<string, KubeObject>,
): SourceEvent[] {
  const deletes: SourceEvent[] = [];
  const upserts: SourceEvent[] = [];
  for (const kind of [...ADD_ORDER].reverse()) {
    for (const [k, o] of [...prev].filter(([, x]) => x.kind === kind).sort(byKey)) {
      if (!next.has(k)) deletes.push({ type: 'delete', object: o });
    }
  }
  for (const kind of ADD_ORDER) {
    for (const [k, o] of [...next].filter(([, x]) => x.kind === kind).sort(byKey)) {
      const old = prev.get(k);
      if (old === undefined) upserts.push({ type: 'add', object: o });
      else if (!sameContent(old, o)) upserts.push({ type: 'update', old, object: o });
    }
  }
  return [...deletes, ...upserts];
}
