/**
 * A fake Kubernetes API server for tests, in-process on 127.0.0.1 (random port), speaking the real wire
 * protocol for the collections kube-proxy reads: List JSON with resourceVersion and limit/continue,
 * chunked watch streams (one JSON event per line), resourceVersion replay from a bounded history, 410
 * Gone, BOOKMARK events, label and field selectors. Fault hooks let a test drop, fail, stall and expire.
 *
 *   const api = await startFakeApiServer();
 *   api.create('services', svc);            // bumps the resourceVersion, notifies watchers
 *   ... connect a client to api.url ...
 *   await api.close();
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Obj = Record<string, unknown>;

/** A collection the fake serves. */
export interface ResourceInfo {
  readonly kind: string;
  readonly apiVersion: string;
  /** Collection path, e.g. /api/v1/services. */
  readonly path: string;
  readonly namespaced: boolean;
}

/** The resources served by default (add more with the `resources` option). */
export const DEFAULT_RESOURCES: Readonly<Record<string, ResourceInfo>> = {
  services: { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services', namespaced: true },
  endpointslices: {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    namespaced: true,
  },
  nodes: { kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes', namespaced: false },
  servicecidrs: {
    kind: 'ServiceCIDR',
    apiVersion: 'networking.k8s.io/v1',
    path: '/apis/networking.k8s.io/v1/servicecidrs',
    namespaced: false,
  },
};

export interface RecordedRequest {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly watch: boolean;
  readonly headers: http.IncomingHttpHeaders;
  /** Date.now() when the request arrived. */
  readonly at: number;
}

export interface FakeApiServerOptions {
  /** How many past events a watch can replay; older resourceVersions get 410. Default 1000. */
  readonly historySize?: number;
  /** How a too-old watch resourceVersion is refused: an ERROR event in a 200 stream (what the watch cache does) or HTTP 410. Default 'event'. */
  readonly goneMode?: 'event' | 'http';
  /** Send a BOOKMARK to bookmark-enabled watchers this often (ms); 0 = only when bookmark() is called. */
  readonly bookmarkIntervalMs?: number;
  readonly resources?: Readonly<Record<string, ResourceInfo>>;
  /** Required bearer token; requests without `Authorization: Bearer <token>` get 401. */
  readonly token?: string;
  /** Port to listen on; default 0 (random). A fixed port lets a test start the server after its client. */
  readonly port?: number;
  /** Address to listen on; default 127.0.0.1. */
  readonly host?: string;
}

interface HistoryEntry {
  readonly rv: number;
  readonly resource: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly old: Obj | undefined;
  readonly object: Obj;
}

interface Watcher {
  readonly resource: string;
  readonly res: ServerResponse;
  readonly label: Selector;
  readonly field: Selector;
  readonly bookmarks: boolean;
  stalled: boolean;
  timer?: NodeJS.Timeout;
}

interface Snapshot {
  readonly rv: number;
  readonly items: Obj[];
}

/** The fake server's handle: state mutation, fault injection, inspection. */
export interface FakeApiServer {
  /** Base URL, http://127.0.0.1:<port>. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Every Event POSTed to /apis/events.k8s.io/v1/namespaces/<ns>/events, in order (bodies as sent). */
  readonly events: Obj[];
  /** The current resourceVersion (the last one assigned). */
  currentResourceVersion(): number;
  /** Creates an object (fills namespace "default" for namespaced kinds, uid, resourceVersion); returns the stored copy. Throws if it exists. */
  create(resource: string, obj: Obj): Obj;
  /** Replaces an existing object (by metadata namespace/name); returns the stored copy. */
  update(resource: string, obj: Obj): Obj;
  /** create or update. */
  apply(resource: string, obj: Obj): Obj;
  /** Deletes an object; returns false if absent. */
  delete(resource: string, namespace: string, name: string): boolean;
  get(resource: string, namespace: string, name: string): Obj | undefined;
  /** Current objects of a resource, sorted by namespace/name (deep copies). */
  list(resource: string): Obj[];
  /** Sends a BOOKMARK with the current resourceVersion to every watcher that allowed bookmarks. */
  bookmark(): void;
  /** Destroys every open watch connection (the client sees a reset). */
  dropWatches(): void;
  /** Sends an ERROR 410 to every open watch and ends it cleanly. */
  expireWatches(): void;
  /** Open watches stop receiving anything (a half-open connection, from the client's view). */
  stallWatches(): void;
  /**
   * The next `n` requests (optionally only matching `filter`) get HTTP `code` with a Status body, and a
   * Retry-After header when `retryAfterSeconds` is given.
   */
  failNext(
    n: number,
    code?: number,
    filter?: (r: RecordedRequest) => boolean,
    retryAfterSeconds?: number,
  ): void;
  /** Every request gets HTTP `code` (with Retry-After when given) until failAll(undefined). */
  failAll(code: number | undefined, retryAfterSeconds?: number): void;
  /**
   * The process hangs (as under SIGSTOP): open watches get nothing more, new requests are accepted and
   * held. unhang() answers the held requests; the stalled watches stay silent (a client must notice).
   */
  hang(): void;
  unhang(): void;
  /** Changes the required bearer token (undefined: none required); a credentials fault and its fix. */
  setToken(token: string | undefined): void;
  /** The next `n` requests (optionally filtered) are accepted and never answered. */
  stallNext(n: number, filter?: (r: RecordedRequest) => boolean): void;
  /** Forgets all history: any watch from an older resourceVersion, and any continue token, gets 410. */
  compact(): void;
  /** Number of currently open watch streams. */
  openWatches(): number;
  /** Closes everything; resolves when the listening socket is closed. */
  close(): Promise<void>;
}

/** Starts a fake API server on 127.0.0.1 with a random port. */
export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const resources = options.resources ?? DEFAULT_RESOURCES;
  const historySize = options.historySize ?? 1000;
  const goneMode = options.goneMode ?? 'event';
  const byPath = new Map<string, string>();
  for (const [name, info] of Object.entries(resources)) byPath.set(info.path, name);

  const stores = new Map<string, Map<string, Obj>>();
  for (const name of Object.keys(resources)) stores.set(name, new Map());
  let rv = 1;
  let compactedRV = 1; // watches from an rv below this get 410
  const history: HistoryEntry[] = [];
  const watchers = new Set<Watcher>();
  const stalledResponses = new Set<ServerResponse>();
  const snapshots = new Map<string, Snapshot & { pos: number }>();
  let snapshotSeq = 0;
  const requests: RecordedRequest[] = [];
  const events: Obj[] = [];
  const failures: {
    code: number;
    filter?: ((r: RecordedRequest) => boolean) | undefined;
    retryAfter?: number | undefined;
  }[] = [];
  let failEvery: { code: number; retryAfter?: number | undefined } | undefined;
  let hanging = false;
  const held: { r: RecordedRequest; req: IncomingMessage; res: ServerResponse }[] = [];
  let token = options.token;
  const stalls: { filter?: ((r: RecordedRequest) => boolean) | undefined }[] = [];
  let uidSeq = 0;

  const info = (resource: string): ResourceInfo => {
    const i = resources[resource];
    if (!i) throw new Error(`fake apiserver: unknown resource ${resource}`);
    return i;
  };
  const store = (resource: string): Map<string, Obj> => {
    info(resource);
    return stores.get(resource)!;
  };
  const keyOf = (resource: string, o: Obj): string => {
    const md = (o.metadata ?? {}) as Obj;
    const ns = info(resource).namespaced ? ((md.namespace as string | undefined) ?? 'default') : '';
    return `${ns}/${String(md.name)}`;
  };

  const record = (resource: string, type: HistoryEntry['type'], old: Obj | undefined, object: Obj): void => {
    const e: HistoryEntry = { rv, resource, type, old, object };
    history.push(e);
    while (history.length > historySize) {
      const dropped = history.shift()!;
      compactedRV = Math.max(compactedRV, dropped.rv);
    }
    for (const w of watchers) if (w.resource === resource) sendEntry(w, e);
  };

  const stamp = (resource: string, o: Obj, prev: Obj | undefined): Obj => {
    const c = structuredClone(o);
    const i = info(resource);
    c.kind = i.kind;
    c.apiVersion = i.apiVersion;
    const md = { ...((c.metadata ?? {}) as Obj) };
    if (i.namespaced && (md.namespace === undefined || md.namespace === '')) md.namespace = 'default';
    if (!i.namespaced) delete md.namespace;
    rv++;
    md.resourceVersion = String(rv);
    md.uid = prev ? (prev.metadata as Obj).uid : `uid-${++uidSeq}`;
    md.creationTimestamp ??= new Date(0).toISOString();
    c.metadata = md;
    return c;
  };

  const api: FakeApiServer = {
    url: '',
    requests,
    events,
    currentResourceVersion: () => rv,
    create(resource, obj) {
      const s = store(resource);
      const k = keyOf(resource, obj);
      if (s.has(k)) throw new Error(`fake apiserver: ${resource} ${k} already exists`);
      const c = stamp(resource, obj, undefined);
      s.set(k, c);
      record(resource, 'ADDED', undefined, c);
      return structuredClone(c);
    },
    update(resource, obj) {
      const s = store(resource);
      const k = keyOf(resource, obj);
      const prev = s.get(k);
      if (!prev) throw new Error(`fake apiserver: ${resource} ${k} not found`);
      const c = stamp(resource, obj, prev);
      s.set(k, c);
      record(resource, 'MODIFIED', prev, c);
      return structuredClone(c);
    },
    apply(resource, obj) {
      return store(resource).has(keyOf(resource, obj))
        ? api.update(resource, obj)
        : api.create(resource, obj);
    },
    delete(resource, namespace, name) {
      const s = store(resource);
      const k = `${info(resource).namespaced ? namespace || 'default' : ''}/${name}`;
      const prev = s.get(k);
      if (!prev) return false;
      s.delete(k);
      rv++;
      // The DELETED event carries the object's final state at the deletion's resourceVersion.
      const c = structuredClone(prev);
      (c.metadata as Obj).resourceVersion = String(rv);
      record(resource, 'DELETED', prev, c);
      return true;
    },
    get(resource, namespace, name) {
      const o = store(resource).get(`${info(resource).namespaced ? namespace || 'default' : ''}/${name}`);
      return o ? structuredClone(o) : undefined;
    },
    list(resource) {
      return sortedItems(store(resource)).map((o) => structuredClone(o));
    },
    bookmark() {
      for (const w of watchers) sendBookmark(w);
    },
    dropWatches() {
      for (const w of [...watchers]) {
        closeWatcher(w);
        w.res.destroy();
      }
    },
    expireWatches() {
      for (const w of [...watchers]) {
        if (!w.stalled)
          writeLine(w.res, {
            type: 'ERROR',
            object: status(410, 'Expired', 'The resourceVersion for the provided watch is too old.'),
          });
        closeWatcher(w);
        w.res.end();
      }
    },
    stallWatches() {
      for (const w of watchers) w.stalled = true;
    },
    failNext(n, code = 500, filter, retryAfter) {
      for (let i = 0; i < n; i++) failures.push({ code, filter, retryAfter });
    },
    failAll(code, retryAfter) {
      failEvery = code === undefined ? undefined : { code, retryAfter };
    },
    hang() {
      hanging = true;
      for (const w of watchers) w.stalled = true;
    },
    unhang() {
      hanging = false;
      for (const h of held.splice(0)) if (!h.res.destroyed && !h.res.writableEnded) handle(h.req, h.res, h.r);
    },
    setToken(t) {
      token = t;
    },
    stallNext(n, filter) {
      for (let i = 0; i < n; i++) stalls.push({ filter });
    },
    compact() {
      history.length = 0;
      compactedRV = rv;
      snapshots.clear();
    },
    openWatches: () => watchers.size,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(bookmarkTimer);
        for (const w of [...watchers]) closeWatcher(w);
        held.length = 0;
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };

  function closeWatcher(w: Watcher): void {
    watchers.delete(w);
    if (w.timer) clearTimeout(w.timer);
  }

  function sendBookmark(w: Watcher): void {
    if (!w.bookmarks || w.stalled) return;
    const i = info(w.resource);
    writeLine(w.res, {
      type: 'BOOKMARK',
      object: { kind: i.kind, apiVersion: i.apiVersion, metadata: { resourceVersion: String(rv) } },
    });
  }

  function sendEntry(w: Watcher, e: HistoryEntry): void {
    if (w.stalled) return;
    const newMatch = matches(w, e.object);
    const oldMatch = e.old !== undefined && matches(w, e.old);
    let type: HistoryEntry['type'] | undefined;
    if (e.type === 'ADDED') type = newMatch ? 'ADDED' : undefined;
    else if (e.type === 'DELETED') type = oldMatch ? 'DELETED' : undefined;
    // An update moving an object into or out of the selection looks like an add or a delete to this watcher.
    else if (oldMatch && newMatch) type = 'MODIFIED';
    else if (newMatch) type = 'ADDED';
    else if (oldMatch) type = 'DELETED';
    if (type) writeLine(w.res, { type, object: e.object });
  }

  const bookmarkTimer = setInterval(
    () => {
      api.bookmark();
    },
    options.bookmarkIntervalMs && options.bookmarkIntervalMs > 0 ? options.bookmarkIntervalMs : 2 ** 30,
  );
  bookmarkTimer.unref();

  const server = http.createServer((req, res) => {
    handle(req, res);
  });

  function handle(req: IncomingMessage, res: ServerResponse, heldRequest?: RecordedRequest): void {
    const u = new URL(req.url ?? '/', 'http://x');
    if (heldRequest) {
      dispatch(heldRequest, u, req, res);
      return;
    }
    const r: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: u.searchParams,
      watch: u.searchParams.get('watch') === 'true' || u.searchParams.get('watch') === '1',
      headers: req.headers,
      at: Date.now(),
    };
    requests.push(r);
    if (hanging) {
      held.push({ r, req, res });
      return;
    }
    dispatch(r, u, req, res);
  }

  function dispatch(r: RecordedRequest, u: URL, req: IncomingMessage, res: ServerResponse): void {
    const fi = failures.findIndex((f) => !f.filter || f.filter(r));
    const f = fi >= 0 ? failures.splice(fi, 1)[0]! : failEvery;
    if (f) {
      if (f.retryAfter !== undefined) res.setHeader('Retry-After', String(f.retryAfter));
      const reason =
        f.code === 410
          ? 'Expired'
          : f.code === 429
            ? 'TooManyRequests'
            : f.code === 401
              ? 'Unauthorized'
              : 'InternalError';
      sendStatus(res, f.code, reason, `injected failure ${f.code}`);
      return;
    }
    const si = stalls.findIndex((s) => !s.filter || s.filter(r));
    if (si >= 0) {
      stalls.splice(si, 1);
      stalledResponses.add(res);
      res.on('close', () => stalledResponses.delete(res));
      return;
    }
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
      sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    // The one write kube-proxy makes: Events (events.k8s.io/v1), answered 201 with the object.
    if (r.method === 'POST' && /^\/apis\/events\.k8s\.io\/v1\/namespaces\/[^/]+\/events$/.test(u.pathname)) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const ev = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj;
          events.push(ev);
          sendJSON(res, 201, ev);
        } catch {
          sendStatus(res, 400, 'BadRequest', 'the body is not JSON');
        }
      });
      return;
    }
    if (r.method !== 'GET') {
      sendStatus(res, 405, 'MethodNotAllowed', `the fake serves GET and Event POSTs only (got ${r.method})`);
      return;
    }
    if (u.pathname === '/healthz' || u.pathname === '/readyz' || u.pathname === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (u.pathname === '/version') {
      sendJSON(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.0-fake', platform: 'linux/amd64' });
      return;
    }
    const route = routeOf(u.pathname);
    if (!route) {
      sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${u.pathname})`);
      return;
    }
    let label: Selector;
    let field: Selector;
    try {
      label = parseSelector(u.searchParams.get('labelSelector') ?? '', 'labelSelector');
      field = parseSelector(u.searchParams.get('fieldSelector') ?? '', 'fieldSelector');
    } catch (e) {
      sendStatus(res, 400, 'BadRequest', (e as Error).message);
      return;
    }
    if (route.namespace !== undefined)
      field = [...field, { key: 'metadata.namespace', op: '=', value: route.namespace }];
    if (route.name !== undefined) {
      const o = api.get(route.resource, route.namespace ?? '', route.name);
      if (!o) sendStatus(res, 404, 'NotFound', `${route.resource} "${route.name}" not found`);
      else sendJSON(res, 200, o);
      return;
    }
    if (r.watch) startWatch(route.resource, u.searchParams, label, field, res);
    else serveList(route.resource, u.searchParams, label, field, res);
  }

  function routeOf(pathname: string): { resource: string; namespace?: string; name?: string } | undefined {
    for (const [p, name] of byPath) {
      if (pathname === p) return { resource: name };
      if (pathname.startsWith(p + '/') && !info(name).namespaced) {
        const rest = pathname.slice(p.length + 1);
        if (rest && !rest.includes('/')) return { resource: name, name: rest };
      }
      if (info(name).namespaced) {
        // /api/v1/namespaces/{ns}/services[/{name}]
        const base = p.slice(0, p.lastIndexOf('/'));
        const plural = p.slice(p.lastIndexOf('/') + 1);
        const m = new RegExp(`^${escapeRe(base)}/namespaces/([^/]+)/${escapeRe(plural)}(?:/([^/]+))?$`).exec(
          pathname,
        );
        if (m) return { resource: name, namespace: m[1]!, ...(m[2] ? { name: m[2] } : {}) };
      }
    }
    return undefined;
  }

  function matches(w: { label: Selector; field: Selector; resource: string }, o: Obj): boolean {
    return selects(w.label, labelsOf(o)) && selects(w.field, fieldsOf(o));
  }

  function serveList(
    resource: string,
    q: URLSearchParams,
    label: Selector,
    field: Selector,
    res: ServerResponse,
  ): void {
    const i = info(resource);
    const limit = Number(q.get('limit') ?? '0');
    const cont = q.get('continue') ?? '';
    let snap: Snapshot & { pos: number };
    if (cont !== '') {
      const s = snapshots.get(cont);
      if (!s || s.rv < compactedRV) {
        sendStatus(
          res,
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
        return;
      }
      snapshots.delete(cont);
      snap = s;
    } else {
      const items = sortedItems(store(resource)).filter((o) => matches({ label, field, resource }, o));
      snap = { rv, items, pos: 0 };
    }
    const end = limit > 0 ? Math.min(snap.pos + limit, snap.items.length) : snap.items.length;
    const page = snap.items.slice(snap.pos, end).map((o) => {
      // Items of a typed List carry no kind/apiVersion on the wire; clients must not rely on them.
      const c = structuredClone(o);
      delete c.kind;
      delete c.apiVersion;
      return c;
    });
    const metadata: Obj = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      const token = `c${++snapshotSeq}-${snap.rv}`;
      snapshots.set(token, { rv: snap.rv, items: snap.items, pos: end });
      if (snapshots.size > 100) snapshots.delete(snapshots.keys().next().value!);
      metadata.continue = token;
      metadata.remainingItemCount = snap.items.length - end;
    }
    sendJSON(res, 200, { kind: `${i.kind}List`, apiVersion: i.apiVersion, metadata, items: page });
  }

  function startWatch(
    resource: string,
    q: URLSearchParams,
    label: Selector,
    field: Selector,
    res: ServerResponse,
  ): void {
    const rvParam = q.get('resourceVersion') ?? '';
    const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      sendStatus(res, 400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(rvParam)}`);
      return;
    }
    const tooOld = from !== undefined && from < compactedRV;
    if (tooOld && goneMode === 'http') {
      sendStatus(res, 410, 'Expired', `too old resource version: ${from} (${compactedRV})`);
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    if (tooOld) {
      writeLine(res, {
        type: 'ERROR',
        object: status(410, 'Expired', `too old resource version: ${from} (${compactedRV})`),
      });
      res.end();
      return;
    }
    const w: Watcher = {
      resource,
      res,
      label,
      field,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      stalled: false,
    };
    if (from === undefined) {
      // "Start at most recent" / "any": synthetic ADDED events for the current state first.
      for (const o of sortedItems(store(resource)))
        if (matches(w, o)) writeLine(res, { type: 'ADDED', object: o });
    } else {
      for (const e of history) if (e.resource === resource && e.rv > from) sendEntry(w, e);
    }
    watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      w.timer = setTimeout(() => {
        // Like the watch cache: a last bookmark just before the timeout, then a clean end.
        sendBookmark(w);
        closeWatcher(w);
        if (!w.stalled) res.end();
      }, timeout * 1000);
    }
    res.on('close', () => {
      closeWatcher(w);
    });
  }

  function sortedItems(s: Map<string, Obj>): Obj[] {
    return [...s.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  (api as { url: string }).url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return api;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJSON(res, code, status(code, reason, message));
}

function sendJSON(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
    .end(text);
}

function writeLine(res: ServerResponse, ev: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(ev) + '\n');
}

/** One requirement of a label or field selector. */
interface Requirement {
  readonly key: string;
  readonly op: '=' | '!=' | 'exists' | '!exists';
  readonly value?: string;
}
type Selector = readonly Requirement[];

/**
 * Parses the equality-based selector subset clients send: `k`, `!k`, `k=v`, `k==v`, `k!=v`, joined by
 * commas (AND). Set-based forms (`in`, `notin`) are refused with 400, so a test notices if we start
 * sending them.
 */
export function parseSelector(s: string, what: string): Selector {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const p = part.trim();
    let m: RegExpExecArray | null;
    if ((m = /^!([A-Za-z0-9_./-]+)$/.exec(p))) return { key: m[1]!, op: '!exists' };
    if ((m = /^([A-Za-z0-9_./-]+)!=(.*)$/.exec(p))) return { key: m[1]!, op: '!=', value: m[2]! };
    if ((m = /^([A-Za-z0-9_./-]+)==?(.*)$/.exec(p))) return { key: m[1]!, op: '=', value: m[2]! };
    if ((m = /^([A-Za-z0-9_./-]+)$/.exec(p))) return { key: m[1]!, op: 'exists' };
    throw new Error(`unable to parse requirement ${JSON.stringify(p)} in ${what}`);
  });
}

function selects(sel: Selector, values: Readonly<Record<string, string>>): boolean {
  return sel.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(values, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case '=':
        return has && values[r.key] === r.value;
      case '!=':
        return !has || values[r.key] !== r.value;
    }
  });
}

function labelsOf(o: Obj): Record<string, string> {
  const md = (o.metadata ?? {}) as Obj;
  return (md.labels ?? {}) as Record<string, string>;
}

function fieldsOf(o: Obj): Record<string, string> {
  const md = (o.metadata ?? {}) as Obj;
  const f: Record<string, string> = { 'metadata.name': typeof md.name === 'string' ? md.name : '' };
  f['metadata.namespace'] = typeof md.namespace === 'string' ? md.namespace : '';
  return f;
}
