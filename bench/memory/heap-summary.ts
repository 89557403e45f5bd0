/**
 * What holds a V8 heap snapshot's memory: the dominator tree (each object's retained size, as DevTools
 * computes it) printed from the root down to the holders above a threshold, then the objects directly
 * under the root grouped by their property names (shared state, e.g. the desired state's service
 * ports, held by more than one owner). For the daemon's snapshots: `bench/memory/bench.ts` with
 * KPT_BENCH_NODE_FLAGS=--heapsnapshot-signal=SIGUSR2 KPT_BENCH_SNAPSHOT=1, or /debug/pprof/heap.
 *   node --max-old-space-size=8000 --import tsx bench/memory/heap-summary.ts FILE.heapsnapshot [thresholdMB=2]
 * Dominators: Lengauer-Tarjan over the strong edges (weak and shortcut edges do not retain).
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      edge_fields: string[];
      node_types: [string[]];
      edge_types: [string[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: heap-summary.ts FILE.heapsnapshot [thresholdMB]');
const threshold = Number(process.argv[3] ?? 2) * 1e6;
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const { meta } = snap.snapshot;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const { nodes, edges, strings } = snap;
const fType = meta.node_fields.indexOf('type');
const fName = meta.node_fields.indexOf('name');
const fSize = meta.node_fields.indexOf('self_size');
const fEdges = meta.node_fields.indexOf('edge_count');
const eType = meta.edge_fields.indexOf('type');
const eName = meta.edge_fields.indexOf('name_or_index');
const eTo = meta.edge_fields.indexOf('to_node');
const N = nodes.length / NF;
const weak = edgeTypes.indexOf('weak');
const shortcut = edgeTypes.indexOf('shortcut');

/** Index of each node's first edge; first[N] is the edge count. */
const first = new Uint32Array(N + 1);
for (let i = 0, e = 0; i < N; i++) {
  first[i] = e;
  e += nodes[i * NF + fEdges]!;
}
first[N] = edges.length / EF;
const strong = (k: number): boolean => {
  const t = edges[k * EF + eType];
  return t !== weak && t !== shortcut;
};
const target = (k: number): number => edges[k * EF + eTo]! / NF;

// Depth-first numbering from the root (node 0), iteratively.
const semi = new Int32Array(N).fill(-1);
const vertex = new Int32Array(N);
const parent = new Int32Array(N);
const label = new Int32Array(N);
const ancestor = new Int32Array(N).fill(-1);
const idom = new Int32Array(N).fill(-1);
const next = new Uint32Array(N);
let count = 0;
{
  const stack = [0];
  semi[0] = count;
  vertex[count++] = 0;
  next[0] = first[0]!;
  while (stack.length > 0) {
    const v = stack[stack.length - 1]!;
    let pushed = false;
    while (next[v]! < first[v + 1]!) {
      const k = next[v]!++;
      if (!strong(k)) continue;
      const w = target(k);
      if (semi[w] !== -1) continue;
      semi[w] = count;
      vertex[count++] = w;
      parent[w] = v;
      label[w] = w;
      next[w] = first[w]!;
      stack.push(w);
      pushed = true;
      break;
    }
    if (!pushed) stack.pop();
  }
}
for (let i = 0; i < N; i++) label[i] = i;

// Predecessors over strong edges of reached nodes.
const predStart = new Uint32Array(N + 1);
for (let v = 0; v < N; v++)
  if (semi[v]! >= 0)
    for (let k = first[v]!; k < first[v + 1]!; k++)
      if (strong(k)) {
        const t = target(k) + 1;
        predStart[t] = predStart[t]! + 1;
      }
for (let i = 0; i < N; i++) predStart[i + 1] = predStart[i + 1]! + predStart[i]!;
const preds = new Int32Array(predStart[N]!);
{
  const fill = predStart.slice();
  for (let v = 0; v < N; v++)
    if (semi[v]! >= 0)
      for (let k = first[v]!; k < first[v + 1]!; k++) if (strong(k)) preds[fill[target(k)]!++] = v;
}

function compress(v: number): void {
  const path: number[] = [];
  while (ancestor[ancestor[v]!] !== -1) {
    path.push(v);
    v = ancestor[v]!;
  }
  while (path.length > 0) {
    const x = path.pop()!;
    const a = ancestor[x]!;
    if (semi[label[a]!]! < semi[label[x]!]!) label[x] = label[a]!;
    ancestor[x] = ancestor[a]!;
  }
}
function evaluate(v: number): number {
  if (ancestor[v] === -1) return v;
  compress(v);
  return label[v]!;
}
const bucketHead = new Int32Array(N).fill(-1);
const bucketNext = new Int32Array(N).fill(-1);
for (let i = count - 1; i > 0; i--) {
  const w = vertex[i]!;
  for (let k = predStart[w]!; k < predStart[w + 1]!; k++) {
    const v = preds[k]!;
    if (semi[v]! < 0) continue;
    const u = evaluate(v);
    if (semi[u]! < semi[w]!) semi[w] = semi[u]!;
  }
  const s = vertex[semi[w]!]!;
  bucketNext[w] = bucketHead[s]!;
  bucketHead[s] = w;
  const p = parent[w]!;
  ancestor[w] = p;
  for (let v = bucketHead[p]!; v !== -1; v = bucketNext[v]!) {
    const u = evaluate(v);
    idom[v] = semi[u]! < semi[v]! ? u : p;
  }
  bucketHead[p] = -1;
}
for (let i = 1; i < count; i++) {
  const w = vertex[i]!;
  if (idom[w] !== vertex[semi[w]!]) idom[w] = idom[idom[w]!]!;
}

const retained = new Float64Array(N);
for (let i = 0; i < N; i++) retained[i] = nodes[i * NF + fSize]!;
for (let i = count - 1; i > 0; i--) {
  const w = vertex[i]!;
  retained[idom[w]!] = retained[idom[w]!]! + retained[w]!;
}
const children = new Map<number, number[]>();
for (let i = 1; i < count; i++) {
  const w = vertex[i]!;
  const d = idom[w]!;
  const list = children.get(d);
  if (list) list.push(w);
  else children.set(d, [w]);
}

const typeOf = (w: number): string => nodeTypes[nodes[w * NF + fType]!]!;
const describe = (w: number): string => {
  const t = typeOf(w);
  const name = strings[nodes[w * NF + fName]!]!;
  return t.includes('string') ? t : `${t} ${name.slice(0, 50)}`;
};
/** The name of the edge from `from` to `to` (a property name or [index]). */
function via(from: number, to: number): string {
  for (let k = first[from]!; k < first[from + 1]!; k++)
    if (target(k) === to) {
      const t = edgeTypes[edges[k * EF + eType]!];
      return t === 'element' || t === 'hidden'
        ? `[${edges[k * EF + eName]}]`
        : strings[edges[k * EF + eName]!]!;
    }
  return '?';
}
const mb = (b: number): string => `${(b / 1e6).toFixed(2)} MB`;

console.log(`heap ${mb(retained[0]!)} in ${N} objects; holders retaining >= ${mb(threshold)}:`);
function show(v: number, depth: number): void {
  const list = (children.get(v) ?? []).sort((a, b) => retained[b]! - retained[a]!);
  let rest = 0;
  let restCount = 0;
  let shown = 0;
  for (const w of list) {
    if (retained[w]! >= threshold && shown < 12 && depth < 12) {
      shown++;
      const kids = children.get(w)?.length ?? 0;
      console.log(`${'  '.repeat(depth)}${mb(retained[w]!)}  .${via(v, w)} -> ${describe(w)} (${kids} held)`);
      show(w, depth + 1);
    } else {
      rest += retained[w]!;
      restCount++;
    }
  }
  if (rest >= threshold) console.log(`${'  '.repeat(depth)}${mb(rest)}  (${restCount} smaller holders)`);
}
show(0, 0);

// Shared objects (held from more than one owner, so dominated by the root): by property names.
const shapes = new Map<string, [number, number]>();
for (const w of children.get(0) ?? []) {
  if (typeOf(w) !== 'object') continue;
  const props: string[] = [];
  for (let k = first[w]!; k < first[w + 1]!; k++)
    if (edgeTypes[edges[k * EF + eType]!] === 'property' && props.length < 8)
      props.push(strings[edges[k * EF + eName]!]!);
  const key = `${strings[nodes[w * NF + fName]!]} {${props.join(',')}}`;
  const a = shapes.get(key) ?? [0, 0];
  a[0]++;
  a[1] += retained[w]!;
  shapes.set(key, a);
}
console.log('\nobjects held from several places (directly under the root), by shape:');
for (const [key, [n, bytes]] of [...shapes].sort((a, b) => b[1][1] - a[1][1]).slice(0, 15))
  console.log(`${mb(bytes).padStart(10)} ${String(n).padStart(8)}  ${key.slice(0, 150)}`);
