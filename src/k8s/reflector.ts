/**
 * Our own reflector (list + watch) for one resource. Written instead of client-node's informer, which
 * stops for good on any non-410 error, never asks for bookmarks and reports "started" before its first
 * list succeeded.
 *
 * Lifecycle: LIST (paged) → replace the store, emitting only the difference → WATCH from the list's
 * resourceVersion (bookmarks on, server timeout randomised 5–10 min like client-go) → on a clean end,
 * re-watch from the last resourceVersion seen → on 410 Gone, relist → on any other failure, back off
 * with jitter (or as long as the server's Retry-After says) and retry, forever, until stop().
 *
 * Faults are reported through an {@link ApiHealth} shared by the connection's reflectors: one line
 * per kind of fault, and a recovery of one reflector wakes the others' retries. The backoff is capped
 * low (2 s) so that the proxy is steady within about 2 s of the server's recovery; a server that wants
 * fewer requests says so with Retry-After, which is honoured.
 */
import type { Kind, KubeObject } from '../model/types.js';
import { KNOWN_KINDS, ValidationError } from '../model/validate.js';
import type { Logger } from '../observability/logger.js';
import type { ApiClient, WatchEvent } from './client.js';
import { ApiStatusError, ApiTransportError } from './client.js';
import { KpError } from '../errors.js';
import { ApiHealth } from './api-health.js';

/** What a reflector tells its consumer. `synced` comes once, after the first complete list. */
export type ReflectorEvent =
  | { readonly type: 'add'; readonly object: KubeObject }
  | { readonly type: 'update'; readonly old: KubeObject; readonly object: KubeObject }
  | { readonly type: 'delete'; readonly object: KubeObject }
  | { readonly type: 'synced'; readonly kind: Kind };

/** Timings; all injectable so tests run in milliseconds. */
export interface ReflectorTiming {
  /** First retry delay after a failure (jittered down by up to half). Default 500 ms. */
  readonly backoffInitialMs: number;
  /**
   * Cap of the doubling backoff. Default 2 s: the proxy must be steady within about that long after
   * the server recovers; a server under load asks for more with Retry-After.
   */
  readonly backoffMaxMs: number;
  /** Longest Retry-After honoured. Default 60 s. */
  readonly retryAfterMaxMs: number;
  /**
   * Liveness probe: after this long without a byte, ask the server whether it is alive (upstream's
   * client pings every 30 s). Default 30 s.
   */
  readonly probeAfterMs: number;
  /** The probe's answer deadline (upstream's ping timeout). Default 15 s. */
  readonly probeTimeoutMs: number;
  /** Watch timeoutSeconds is drawn uniformly in [min, 2*min]. Default 300 s (client-go: 5–10 min). */
  readonly minWatchTimeoutSeconds: number;
  /**
   * Abort a request when no byte (not even a bookmark) arrives for this long, even if the server answers
   * probes. The API server sends bookmarks about once a minute to watchers that ask, so a longer
   * silence means this one connection is half-open; a false alarm only costs a re-watch from the last
   * resourceVersion. Default 3 min.
   */
  readonly idleTimeoutMs: number;
  /** A watch that ends cleanly sooner than this without any event counts as a failure. Default 1 s. */
  readonly shortWatchMs: number;
}

export const DEFAULT_REFLECTOR_TIMING: ReflectorTiming = {
  backoffInitialMs: 500,
  backoffMaxMs: 2_000,
  retryAfterMaxMs: 60_000,
  probeAfterMs: 30_000,
  probeTimeoutMs: 15_000,
  minWatchTimeoutSeconds: 300,
  idleTimeoutMs: 180_000,
  shortWatchMs: 1_000,
};

export interface ReflectorOptions {
  readonly client: ApiClient;
  readonly kind: Kind;
  /** Cluster-wide collection path, e.g. /api/v1/services. */
  readonly path: string;
  /**
   * Older API versions of the same collection, tried in order when the server answers a LIST with
   * 404 (e.g. networking.k8s.io/v1beta1 ServiceCIDRs on a 1.31/1.32 cluster).
   */
  readonly fallbackPaths?: readonly string[];
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** LIST page size (limit); 0 disables paging. Default 500 (client-go's). */
  readonly pageSize?: number;
  readonly logger: Logger;
  /** Shared with the connection's other reflectors; a private one when absent. */
  readonly health?: ApiHealth;
  /** Called synchronously, in order; never after stop() resolved. */
  readonly onEvent: (ev: ReflectorEvent) => void;
  readonly timing?: Partial<ReflectorTiming>;
  /** Injectable randomness for jitter and watch timeouts. */
  readonly random?: () => number;
}

interface Entry {
  readonly object: KubeObject;
}

/** The watch's resourceVersion is too old (410 Gone in the stream): the reflector relists. */
export class GoneError extends KpError {
  declare readonly code: 'KP_ERR_API_GONE';
  constructor(message: string) {
    super('KP_ERR_API_GONE', message);
  }
}

/** Keeps one resource's objects in sync with the API server; see the module comment for the lifecycle. */
export class Reflector {
  private readonly timing: ReflectorTiming;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly store = new Map<string, Entry>();
  /** key → resourceVersion last reported invalid: each bad version is logged once. */
  private readonly reportedInvalid = new Map<string, string>();
  private resourceVersion = '';
  private synced = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private syncWaiters: ((ok: boolean) => void)[] = [];
  private backoffMs: number;
  private pathIndex = 0;
  private readonly paths: readonly string[];
  private readonly health: ApiHealth;

  /** Aborts the request in flight only (another reflector found the server hung). */
  private current: AbortController | undefined;
  private unsubscribeHung: (() => void) | undefined;

  constructor(private readonly opts: ReflectorOptions) {
    this.timing = { ...DEFAULT_REFLECTOR_TIMING, ...opts.timing };
    this.random = opts.random ?? Math.random;
    this.log = opts.logger.child({ reflector: opts.kind });
    this.health = opts.health ?? new ApiHealth(opts.logger);
    this.unsubscribeHung = this.health.onHung((who) => {
      if (who === this.opts.kind) return;
      this.current?.abort(
        new ApiTransportError(
          `${this.opts.kind}: the ${who} request found the API server hung; relisting`,
          true,
        ),
      );
    });
    this.backoffMs = this.timing.backoffInitialMs;
    this.paths = [opts.path, ...(opts.fallbackPaths ?? [])];
  }

  /** The collection path in use (changes only when a 404 moves to a fallback path). */
  get path(): string {
    return this.paths[this.pathIndex]!;
  }

  /** Starts the list/watch loop in the background. Idempotent. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.loop();
  }

  /** True once the first complete LIST has been delivered. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves true when the first list has been delivered, false if stop() comes first. */
  waitForSync(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The last resourceVersion seen (list, event or bookmark); "" before the first list. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /** The objects currently in force (the last valid version of each). */
  items(): KubeObject[] {
    return [...this.store.values()].map((e) => e.object);
  }

  /** Aborts the in-flight request and all timers; no event is emitted after it resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribeHung?.();
    this.unsubscribeHung = undefined;
    this.abort.abort(new Error('reflector stopped'));
    for (const w of this.syncWaiters) w(false);
    this.syncWaiters = [];
    await this.running;
  }

  private emit(ev: ReflectorEvent): void {
    if (this.stopped) return;
    try {
      this.opts.onEvent(ev);
    } catch (e) {
      // A consumer bug must not wedge the reflector; the event is still recorded in our store.
      this.log.error({ err: e, event: ev.type }, 'event handler threw');
    }
  }

  private async loop(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      const phase = needList ? 'list' : 'watch';
      try {
        if (needList) {
          await this.listAndReplace();
          needList = false;
          this.reachedServer();
        }
        await this.watchOnce();
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof GoneError || (e instanceof ApiStatusError && e.statusCode === 410)) {
          // Our resourceVersion is older than the server's history: only a fresh list can catch up.
          this.log.info({ phase, err: e }, 'resourceVersion too old, relisting');
          needList = true;
          continue;
        }
        if (
          phase === 'list' &&
          e instanceof ApiStatusError &&
          e.statusCode === 404 &&
          this.paths.length > 1
        ) {
          const from = this.path;
          this.pathIndex = (this.pathIndex + 1) % this.paths.length;
          this.log.warn({ from, to: this.path }, 'collection not served, trying another API version');
        }
        // After a hang the server may have restarted or compacted: relist rather than trust a re-watch
        // (upstream's reflector relists after a watch that ended in an error, too).
        if (e instanceof ApiTransportError && e.idle) needList = true;
        const retryAfter = e instanceof ApiStatusError ? e.retryAfterMs : undefined;
        const delay =
          retryAfter !== undefined ? Math.min(retryAfter, this.timing.retryAfterMaxMs) : this.nextBackoff();
        this.health.failed(this.opts.kind, e, delay, phase);
        try {
          await this.health.wait(delay, this.abort.signal, retryAfter !== undefined);
        } catch {
          break;
        }
      }
    }
  }

  /** Jittered downwards (50–100% of the step) so that the cap is a true bound on the retry interval. */
  private nextBackoff(): number {
    const base = Math.min(this.backoffMs, this.timing.backoffMaxMs);
    this.backoffMs = Math.min(this.backoffMs * 2, this.timing.backoffMaxMs);
    return Math.round(base * (0.5 + 0.5 * this.random()));
  }

  /** A request got a 2xx: the backoff starts over and the shared health hears of it. */
  private reachedServer(): void {
    this.backoffMs = this.timing.backoffInitialMs;
    this.health.succeeded(this.opts.kind);
  }

  private requestOptions(): {
    signal: AbortSignal;
    idleTimeoutMs: number;
    probe: { afterMs: number; timeoutMs: number };
  } {
    this.current = new AbortController();
    return {
      signal: AbortSignal.any([this.abort.signal, this.current.signal]),
      idleTimeoutMs: this.timing.idleTimeoutMs,
      probe: { afterMs: this.timing.probeAfterMs, timeoutMs: this.timing.probeTimeoutMs },
    };
  }

  private async listAndReplace(): Promise<void> {
    const items: unknown[] = [];
    let cont = '';
    let rv = '';
    const pageSize = this.opts.pageSize ?? 500;
    do {
      const q: Record<string, string> = {};
      if (this.opts.labelSelector) q.labelSelector = this.opts.labelSelector;
      if (this.opts.fieldSelector) q.fieldSelector = this.opts.fieldSelector;
      if (pageSize > 0) q.limit = String(pageSize);
      if (cont) q.continue = cont;
      // No resourceVersion: a consistent read. "0" (watch cache) is cheaper but may be older than what
      // we already delivered, and replaying an older state would move the proxy backwards in time.
      const body = await this.opts.client.getJSON(this.path, q, this.requestOptions());
      if (!isRec(body) || !Array.isArray(body.items) || !isRec(body.metadata)) {
        throw new ApiTransportError(`list ${this.path}: not a List object`);
      }
      items.push(...(body.items as unknown[]));
      rv = typeof body.metadata.resourceVersion === 'string' ? body.metadata.resourceVersion : '';
      cont = typeof body.metadata.continue === 'string' ? body.metadata.continue : '';
    } while (cont !== '');
    if (this.stopped) return;
    this.replace(items);
    this.resourceVersion = rv;
    this.log.debug({ count: this.store.size, resourceVersion: rv }, 'listed');
    if (!this.synced) {
      this.synced = true;
      this.emit({ type: 'synced', kind: this.opts.kind });
      for (const w of this.syncWaiters) w(true);
      this.syncWaiters = [];
    }
  }

  /** Makes the store equal the listed items, emitting adds, changed updates and deletes only. */
  private replace(items: unknown[]): void {
    const seen = new Set<string>();
    for (const raw of items) {
      const key = rawKey(raw);
      seen.add(key);
      const obj = this.validate(raw, key);
      if (obj) this.upsert(key, obj);
    }
    for (const [key, e] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.reportedInvalid.delete(key);
        this.emit({ type: 'delete', object: e.object });
      }
    }
    for (const key of this.reportedInvalid.keys()) if (!seen.has(key)) this.reportedInvalid.delete(key);
  }

  private upsert(key: string, obj: KubeObject): void {
    const prev = this.store.get(key);
    this.store.set(key, { object: obj });
    if (!prev) this.emit({ type: 'add', object: obj });
    // Same resourceVersion means the same object: a relist must not repeat what was delivered.
    else if (
      prev.object.meta.resourceVersion !== obj.meta.resourceVersion ||
      prev.object.meta.uid !== obj.meta.uid
    ) {
      this.emit({ type: 'update', old: prev.object, object: obj });
    }
  }

  /**
   * Validates one wire object. An invalid one is logged once per (key, resourceVersion) and yields
   * undefined. We deliberately keep the last valid version in force rather than deleting it: a bad
   * update (say, a typo in one port name) should not take a working Service off the node; it is the
   * same choice the API server's own validation makes by rejecting the update. Deletion still removes it.
   */
  private validate(raw: unknown, key: string): KubeObject | undefined {
    try {
      const obj = KNOWN_KINDS[this.opts.kind]!.validate(raw);
      this.reportedInvalid.delete(key);
      return obj;
    } catch (e) {
      const rv = rawResourceVersion(raw);
      if (this.reportedInvalid.get(key) !== rv) {
        this.reportedInvalid.set(key, rv);
        const ve = e instanceof ValidationError ? e : undefined;
        this.log.error(
          {
            kind: this.opts.kind,
            namespace: ve?.namespace ?? '',
            name: ve?.objectName ?? key,
            field: ve?.field ?? '',
            value: ve?.value,
            resourceVersion: rv,
            keptPreviousVersion: this.store.has(key),
          },
          `ignoring invalid ${this.opts.kind}: ${errText(e)}`,
        );
      }
      return undefined;
    }
  }

  private async watchOnce(): Promise<void> {
    const q: Record<string, string> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(Math.floor(this.timing.minWatchTimeoutSeconds * (1 + this.random()))),
    };
    if (this.opts.labelSelector) q.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector) q.fieldSelector = this.opts.fieldSelector;
    const started = Date.now();
    let events = 0;
    // A 200 that stays open for shortWatchMs, or any event, proves the server and our credentials work:
    // reset then, not at the first event, which may be a minute away on a quiet cluster. Not at the 200
    // itself, or a server that closes every watch at once would reset the backoff into a busy loop.
    let proven = false;
    let proveTimer: NodeJS.Timeout | undefined;
    const prove = (): void => {
      if (proven) return;
      proven = true;
      clearTimeout(proveTimer);
      this.reachedServer();
    };
    try {
      await this.opts.client.watch(
        this.path,
        q,
        (ev) => {
          events++;
          this.handleWatchEvent(ev);
          if (ev.type !== 'ERROR') prove();
        },
        {
          ...this.requestOptions(),
          onResponse: () => {
            proveTimer = setTimeout(prove, this.timing.shortWatchMs);
          },
        },
      );
    } finally {
      clearTimeout(proveTimer);
    }
    if (events === 0 && Date.now() - started < this.timing.shortWatchMs) {
      throw new ApiTransportError(`watch ${this.path}: closed immediately with no event`);
    }
  }

  private handleWatchEvent(ev: WatchEvent): void {
    if (this.stopped) return;
    if (ev.type === 'ERROR') {
      const code = typeof ev.object.code === 'number' ? ev.object.code : 0;
      const msg = typeof ev.object.message === 'string' ? ev.object.message : JSON.stringify(ev.object);
      if (code === 410) throw new GoneError(`watch ${this.path}: ${msg}`);
      const reason = typeof ev.object.reason === 'string' ? ev.object.reason : 'Unknown';
      throw new ApiStatusError(code, reason, `watch ${this.path}: ERROR event: ${msg}`, ev.object);
    }
    const rv = rawResourceVersion(ev.object);
    if (ev.type === 'BOOKMARK') {
      if (rv !== '') this.resourceVersion = rv;
      return;
    }
    const key = rawKey(ev.object);
    if (ev.type === 'DELETED') {
      const prev = this.store.get(key);
      this.reportedInvalid.delete(key);
      if (prev) {
        this.store.delete(key);
        // The final state when it is valid (upstream hands the deleted object over), else our last good one.
        let obj: KubeObject = prev.object;
        try {
          obj = KNOWN_KINDS[this.opts.kind]!.validate(ev.object);
        } catch {
          /* keep the last good version */
        }
        this.emit({ type: 'delete', object: obj });
      }
    } else {
      const obj = this.validate(ev.object, key);
      if (obj) this.upsert(key, obj);
    }
    if (rv !== '') this.resourceVersion = rv;
  }
}

type Rec = Record<string, unknown>;
function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rawMeta(raw: unknown): Rec {
  return isRec(raw) && isRec(raw.metadata) ? raw.metadata : {};
}

/** ns/name as the wire object says it (validation has not run yet; an unnamed object gets a stable key). */
function rawKey(raw: unknown): string {
  const md = rawMeta(raw);
  const ns = typeof md.namespace === 'string' ? md.namespace : '';
  const name = typeof md.name === 'string' ? md.name : '';
  return `${ns}/${name}`;
}

function rawResourceVersion(raw: unknown): string {
  const rv = rawMeta(raw).resourceVersion;
  return typeof rv === 'string' ? rv : '';
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
