/**
 * What the reflectors of one API connection share about its health: which fault each one is in,
 * one log line per kind of fault (not one per retry), and a wake-up for every waiting retry when one
 * request succeeds again, so that the whole source is steady within a round trip of the server's
 * recovery instead of after each reflector's own backoff.
 */
import type { Logger } from '../observability/logger.js';
import { ApiStatusError, ApiTransportError, sleep } from './client.js';

/** The kinds of fault an operator acts on differently. */
export type ApiFaultKind =
  | 'unauthorized'
  | 'forbidden'
  | 'throttled'
  | 'server-error'
  | 'unreachable'
  | 'hung'
  | 'bad-response'
  | 'other';

/** One fault kind with the line an operator reads and the level it is logged at. */
export interface ApiFaultClass {
  readonly kind: ApiFaultKind;
  readonly level: 'error' | 'warn';
  readonly message: string;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

/** Maps a request failure to its fault kind and operator message. Pure. */
export function classifyApiError(e: unknown): ApiFaultClass {
  if (e instanceof ApiStatusError) {
    const c = e.statusCode;
    if (c === 401)
      return {
        kind: 'unauthorized',
        level: 'error',
        message: "not authorized: check the kubeconfig's credentials",
      };
    if (c === 403)
      return {
        kind: 'forbidden',
        level: 'error',
        message: "forbidden: the kubeconfig's user may not list and watch what kube-proxy reads (RBAC)",
      };
    if (c === 429)
      return { kind: 'throttled', level: 'warn', message: 'the API server is throttling requests; retrying' };
    if (c >= 500)
      return { kind: 'server-error', level: 'warn', message: `the API server answers ${c}; retrying` };
    return { kind: 'other', level: 'warn', message: `the API server answers ${c}; retrying` };
  }
  if (e instanceof ApiTransportError) {
    if (e.idle)
      return {
        kind: 'hung',
        level: 'warn',
        message: 'the API server stopped answering; reconnecting and relisting',
      };
    const code = (e.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code))
      return { kind: 'unreachable', level: 'warn', message: 'cannot reach the API server; retrying' };
    return { kind: 'bad-response', level: 'warn', message: 'API request failed; retrying' };
  }
  return { kind: 'other', level: 'warn', message: 'API request failed; retrying' };
}

/** The connection's state as the app reports it (readiness, logs). */
export interface ApiHealthStatus {
  /** The fault of the longest-failing reflector, or undefined when every request path works. */
  readonly fault?: {
    readonly kind: ApiFaultKind;
    readonly message: string;
    readonly error: string;
    /** Epoch ms of the first failure of this episode. */
    readonly since: number;
  };
}

interface Failing {
  readonly cls: ApiFaultClass;
  readonly error: string;
  readonly since: number;
}

/** Shared by the reflectors of one connection; see the module comment. */
export class ApiHealth {
  private readonly failing = new Map<string, Failing>();
  /** Fault kinds logged in the current episode (from the first failure to full recovery). */
  private readonly reported = new Set<ApiFaultKind>();
  private episodeStart = 0;
  private wakers = new Set<() => void>();
  private hungListeners = new Set<(who: string) => void>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records that `who`'s request failed with `e` and will be retried in `retryInMs`. Logs the kind's
   * operator line the first time the kind appears in an episode; repeats go to debug.
   */
  failed(who: string, e: unknown, retryInMs: number, phase?: string): ApiFaultClass {
    const cls = classifyApiError(e);
    const error = e instanceof Error ? e.message : String(e);
    const t = this.now();
    if (this.failing.size === 0 && this.reported.size === 0) this.episodeStart = t;
    const prev = this.failing.get(who);
    this.failing.set(who, { cls, error, since: prev?.since ?? t });
    const fields = { reflector: who, ...(phase ? { phase } : {}), fault: cls.kind, err: error, retryInMs };
    if (this.reported.has(cls.kind)) {
      this.log.debug(fields, cls.message);
    } else {
      this.reported.add(cls.kind);
      this.log[cls.level](fields, cls.message);
      // The first hang of an episode: the other reflectors' requests go to the same server and are
      // most likely stuck too, each until its own watchdog fires (up to probeAfter + probeTimeout
      // later). Tell them now. Their own failures are then 'hung' again and tell no one.
      if (cls.kind === 'hung') for (const l of [...this.hungListeners]) l(who);
    }
    return cls;
  }

  /**
   * Calls `listener(who)` when `who`'s request is the first of an episode to find the server hung.
   * Returns the unsubscribe function.
   */
  onHung(listener: (who: string) => void): () => void {
    this.hungListeners.add(listener);
    return () => this.hungListeners.delete(listener);
  }

  /**
   * Records that `who`'s request reached a live server. When `who` was failing, every retry waiting in
   * {@link wait} wakes now; when nothing is failing any more, one line closes the episode.
   */
  succeeded(who: string): void {
    if (!this.failing.delete(who)) return;
    for (const w of this.wakers) w();
    this.wakers.clear();
    if (this.failing.size === 0 && this.reported.size > 0) {
      this.log.info(
        { faults: [...this.reported], afterMs: this.now() - this.episodeStart },
        'API server requests succeed again',
      );
      this.reported.clear();
    }
  }

  /**
   * Sleeps `ms`, or less: resolves early when a failing reflector recovers (unless `firm`, for a
   * server's Retry-After). Rejects with the signal's reason on abort.
   */
  async wait(ms: number, signal: AbortSignal, firm = false): Promise<void> {
    if (firm) return sleep(ms, signal);
    const inner = new AbortController();
    const onAbort = (): void => {
      inner.abort(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const wake = (): void => {
      inner.abort(WOKEN);
    };
    this.wakers.add(wake);
    try {
      await sleep(ms, inner.signal);
    } catch (e) {
      if (e !== WOKEN) throw e;
    } finally {
      this.wakers.delete(wake);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The current fault (the oldest failing reflector's), if any. */
  status(): ApiHealthStatus {
    let oldest: Failing | undefined;
    for (const f of this.failing.values()) if (!oldest || f.since < oldest.since) oldest = f;
    if (!oldest) return {};
    return {
      fault: { kind: oldest.cls.kind, message: oldest.cls.message, error: oldest.error, since: oldest.since },
    };
  }
}

const WOKEN = new Error('woken: another request succeeded');
