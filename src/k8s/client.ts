/**
 * The only code that speaks HTTP to a Kubernetes API server: connection settings (kubeconfig, --master,
 * in-cluster), a small token-bucket rate limiter, a JSON GET and a streaming watch.
 *
 * @kubernetes/client-node is used for one thing only: turning a kubeconfig (or the in-cluster service
 * account) into a server URL, TLS material and auth headers. Everything on the wire is ours, built on
 * node:http/node:https, so the reflector controls timeouts, aborts and errors exactly.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { IncomingMessage } from 'node:http';
import { KpError } from '../errors.js';

/** Where and how to reach the API server; produced by {@link loadConnectionSettings}. */
export interface ConnectionSettings {
  /** Base URL, e.g. https://10.96.0.1:443 (a path prefix is kept). */
  readonly server: URL;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** False only when the kubeconfig says insecure-skip-tls-verify. */
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
  /**
   * Headers to add to each request (Authorization, Impersonate-User). Called per request because
   * bound service-account tokens rotate on disk and exec/OIDC credentials expire.
   */
  readonly authHeaders: () => Promise<Readonly<Record<string, string>>>;
  /** Human-readable origin of the settings, for logs: "kubeconfig /x", "master", "in-cluster". */
  readonly origin: string;
}

/** The flags that pick the connection, named as upstream's clientConnection/--master. */
export interface ConnectionFlags {
  /** Path of a kubeconfig file; "" for none. */
  readonly kubeconfig: string;
  /** --master: API server URL; overrides the kubeconfig's server. "" for none. */
  readonly master: string;
  /** For tests: prefix of the service-account files (/var/run/secrets/kubernetes.io/serviceaccount/...). */
  readonly inClusterPathPrefix?: string;
}

/** Thrown when no usable connection can be derived from the flags and the environment. */
export class ConnectionConfigError extends KpError {
  declare readonly code: 'KP_ERR_CONNECTION_CONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super('KP_ERR_CONNECTION_CONFIG', message, options);
  }
}

/**
 * Resolves the connection as upstream kube-proxy does: with neither --kubeconfig nor --master, the
 * in-cluster config (KUBERNETES_SERVICE_HOST/PORT plus the service-account token and CA); otherwise the
 * kubeconfig file (current context) with --master overriding its server; with only --master, that URL
 * without credentials. Throws ConnectionConfigError naming the flag and value at fault.
 */
export async function loadConnectionSettings(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ConnectionSettings> {
  if (flags.kubeconfig === '' && flags.master !== '') {
    return {
      server: parseServer(flags.master, '--master'),
      rejectUnauthorized: true,
      authHeaders: () => Promise.resolve({}),
      origin: 'master',
    };
  }
  // Loaded lazily: the package costs ~0.4 s to import, which --master-only runs and tests never need.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  let origin: string;
  let tokenFile: string | undefined;
  if (flags.kubeconfig === '') {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new ConnectionConfigError(
        'neither --kubeconfig nor --master was given, and this is not a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset)',
      );
    }
    // client-node reads process.env itself; a test may pass its own env.
    const saved = { h: process.env.KUBERNETES_SERVICE_HOST, p: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = env.KUBERNETES_SERVICE_HOST;
    process.env.KUBERNETES_SERVICE_PORT = env.KUBERNETES_SERVICE_PORT;
    try {
      kc.loadFromCluster(flags.inClusterPathPrefix ?? '');
    } finally {
      restoreEnv('KUBERNETES_SERVICE_HOST', saved.h);
      restoreEnv('KUBERNETES_SERVICE_PORT', saved.p);
    }
    origin = 'in-cluster';
  } else {
    try {
      kc.loadFromFile(flags.kubeconfig);
    } catch (e) {
      throw new ConnectionConfigError(
        `--kubeconfig ${JSON.stringify(flags.kubeconfig)}: cannot load: ${errorText(e)}`,
        { cause: e },
      );
    }
    origin = `kubeconfig ${flags.kubeconfig}`;
    tokenFile = kubeconfigTokenFile(flags.kubeconfig, kc.getCurrentUser()?.name);
  }
  const cluster = kc.getCurrentCluster();
  const serverText = flags.master !== '' ? flags.master : (cluster?.server ?? '');
  if (serverText === '') {
    throw new ConnectionConfigError(
      `--kubeconfig ${JSON.stringify(flags.kubeconfig)}: the current context has no cluster server`,
    );
  }
  const server = parseServer(serverText, flags.master !== '' ? '--master' : 'kubeconfig cluster.server');

  // client-node refuses to build an agent for an http:// server unless TLS verification is off; the
  // agent is thrown away anyway, so hand it a copy that says so and keep only the TLS bits and headers.
  let authKc = kc;
  if (server.protocol === 'http:' && cluster) {
    authKc = new KubeConfig();
    authKc.loadFromOptions({
      clusters: kc
        .getClusters()
        .map((c) => (c.name === cluster.name ? { ...c, server: server.href, skipTLSVerify: true } : c)),
      contexts: kc.getContexts(),
      users: kc.getUsers(),
      currentContext: kc.getCurrentContext(),
    });
  }
  const apply = async (): Promise<https.RequestOptions> => {
    const opts: https.RequestOptions = { headers: {} };
    try {
      await authKc.applyToHTTPSOptions(opts);
    } catch (e) {
      throw new ConnectionConfigError(`${origin}: cannot build credentials: ${errorText(e)}`, { cause: e });
    }
    return opts;
  };
  const first = await apply();
  const authHeaders = async (): Promise<Record<string, string>> => {
    const o = await apply();
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) {
      if (typeof v === 'string' || typeof v === 'number') h[k] = String(v);
      else if (Array.isArray(v)) h[k] = v.join(', ');
    }
    if (typeof o.auth === 'string' && o.auth !== '')
      h.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
    if (h.Authorization === undefined && tokenFile !== undefined) {
      // kubeadm's kubeconfig names the service-account token by file; it rotates, so read it each time.
      try {
        h.Authorization = `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`;
      } catch (e) {
        throw new ConnectionConfigError(
          `${origin}: users[].user.tokenFile ${JSON.stringify(tokenFile)}: ${errorText(e)}`,
          { cause: e },
        );
      }
    }
    return h;
  };
  return {
    server,
    ...(Buffer.isBuffer(first.ca) ? { ca: first.ca } : {}),
    ...(Buffer.isBuffer(first.cert) ? { cert: first.cert } : {}),
    ...(Buffer.isBuffer(first.key) ? { key: first.key } : {}),
    rejectUnauthorized: first.rejectUnauthorized !== false,
    ...(typeof first.servername === 'string' && first.servername !== ''
      ? { servername: first.servername }
      : {}),
    authHeaders,
    origin,
  };
}

function restoreEnv(k: string, v: string | undefined): void {
  if (v === undefined) Reflect.deleteProperty(process.env, k);
  else process.env[k] = v;
}

function parseServer(text: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConnectionConfigError(`${what}: not a URL (value: ${JSON.stringify(text)})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConnectionConfigError(`${what}: scheme must be http or https (value: ${JSON.stringify(text)})`);
  }
  return u;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A wire watch event, as the API server streams it (one JSON object per line). */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

/**
 * The server answered with a non-2xx status; `status` is its Status object when it sent one, and
 * `retryAfterMs` its Retry-After header (429 and 503 carry one when the server sheds load).
 */
export class ApiStatusError extends KpError {
  declare readonly code: 'KP_ERR_API_STATUS';
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly status?: Record<string, unknown>,
    readonly retryAfterMs?: number,
  ) {
    super('KP_ERR_API_STATUS', message);
  }
}

/** The connection failed, stalled (no byte for the idle timeout), closed early or sent unparsable data. */
export class ApiTransportError extends KpError {
  declare readonly code: 'KP_ERR_API_TRANSPORT';
  constructor(
    message: string,
    /** True when the idle watchdog fired: the connection may be half-open. */
    readonly idle = false,
    options?: ErrorOptions,
  ) {
    super('KP_ERR_API_TRANSPORT', message, options);
  }
}

/**
 * A token bucket: `burst` requests at once, refilled at `qps` per second. qps <= 0 means unlimited.
 * Loose on purpose (upstream's client-side limiter is a courtesy to the API server, not a contract).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = Math.max(1, burst);
    this.last = now();
  }
  /** Resolves when a token is available (consuming it); rejects when `signal` aborts first. */
  async take(signal?: AbortSignal): Promise<void> {
    if (this.qps <= 0) return;
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(Math.max(1, this.burst), this.tokens + ((t - this.last) / 1000) * this.qps);
      this.last = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.qps) * 1000), signal);
    }
  }
}

/** Sleeps `ms`; rejects with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface ApiClientOptions {
  readonly settings: ConnectionSettings;
  /** clientConnection.qps; <= 0 disables limiting. */
  readonly qps?: number;
  /** clientConnection.burst. */
  readonly burst?: number;
  readonly userAgent?: string;
  /**
   * clientConnection.contentType / acceptContentTypes are accepted for compatibility, but we always
   * ask for JSON: we only read, the objects are small, and a protobuf decoder would be a large
   * dependency for no measurable gain at kube-proxy's request rate.
   */
  readonly contentType?: string;
}

/** Per-request knobs. */
export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Abort when no byte arrives for this long (half-open connections, stalled servers). */
  readonly idleTimeoutMs?: number;
  /**
   * Liveness check, our stand-in for the HTTP/2 ping upstream's client sends: when no byte has
   * arrived for `afterMs`, ask the server something cheap on another request; no answer within
   * `timeoutMs` means the server hangs, and this request fails as idle. An answer (any status) means
   * the server is alive and merely quiet, and the request goes on.
   */
  readonly probe?: { readonly afterMs: number; readonly timeoutMs: number };
  /** Called once when the server answers 2xx (before the body): the request reached a live server. */
  readonly onResponse?: () => void;
}

/** A client for list and watch, plus the one write kube-proxy makes (Events). One instance per connection; close() frees its sockets. */
export class ApiClient {
  private readonly agent: http.Agent;
  private readonly limiter: TokenBucket;
  private readonly userAgent: string;
  private closed = false;

  constructor(private readonly opts: ApiClientOptions) {
    const s = opts.settings;
    this.agent =
      s.server.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            keepAliveMsecs: 30_000,
            ...(s.ca ? { ca: s.ca } : {}),
            ...(s.cert ? { cert: s.cert } : {}),
            ...(s.key ? { key: s.key } : {}),
            ...(s.servername ? { servername: s.servername } : {}),
            rejectUnauthorized: s.rejectUnauthorized,
          })
        : new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 });
    this.limiter = new TokenBucket(opts.qps ?? 5, opts.burst ?? 10);
    this.userAgent = opts.userAgent ?? 'kube-proxy-ts';
  }

  /** The server base URL (for logs). */
  get server(): string {
    return this.opts.settings.server.href;
  }

  /** GETs `path?query` and returns the parsed JSON body. Throws ApiStatusError / ApiTransportError / the abort reason. */
  async getJSON(
    path: string,
    query: Readonly<Record<string, string>>,
    ro: RequestOptions = {},
  ): Promise<unknown> {
    const { res, idle, touch } = await this.open(path, query, ro);
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) {
        touch();
        chunks.push(c as Buffer);
      }
    } catch (e) {
      throw this.transportError(e, ro.signal, `GET ${path}: response interrupted`, idle());
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ApiTransportError(`GET ${path}: response is not JSON (${text.slice(0, 80)})`);
    }
  }

  /**
   * POSTs `body` as JSON to `path` (kube-proxy writes only Events) and returns the parsed answer.
   * Throws ApiStatusError for a non-2xx answer and ApiTransportError when the request fails.
   */
  async postJSON(path: string, body: unknown, ro: RequestOptions = {}): Promise<unknown> {
    const { res, idle } = await this.open(path, {}, ro, JSON.stringify(body));
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (e) {
      throw this.transportError(e, ro.signal, `POST ${path}: response interrupted`, idle());
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }

  /**
   * Opens a watch and calls `onEvent` for each event, synchronously and in order. Resolves when the
   * server ends the stream cleanly (its timeoutSeconds); rejects on a non-2xx answer, a broken or
   * stalled connection, or a malformed line. An exception thrown by `onEvent` aborts the watch and
   * rejects with it.
   */
  async watch(
    path: string,
    query: Readonly<Record<string, string>>,
    onEvent: (ev: WatchEvent) => void,
    ro: RequestOptions = {},
  ): Promise<void> {
    const { res, idle, touch } = await this.open(path, { ...query, watch: 'true' }, ro);
    res.setEncoding('utf8');
    let buf = '';
    const handlerFailure: { e?: unknown } = {};
    const deliver = (line: string): void => {
      const ev = parseWatchLine(line, path);
      try {
        onEvent(ev);
      } catch (e) {
        handlerFailure.e = e;
        throw e;
      }
    };
    try {
      for await (const chunk of res) {
        touch();
        buf += chunk as string;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== '') deliver(line);
        }
      }
    } catch (e) {
      res.destroy();
      if ('e' in handlerFailure || e instanceof ApiTransportError) throw e;
      throw this.transportError(e, ro.signal, `watch ${path}: stream broken`, idle());
    }
    const rest = buf.trim();
    if (rest !== '') deliver(rest);
  }

  /** Frees pooled sockets. In-flight requests must be aborted by their signals. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private async open(
    path: string,
    query: Readonly<Record<string, string>>,
    ro: RequestOptions,
    body?: string,
  ): Promise<{ res: IncomingMessage; idle: () => boolean; touch: () => void }> {
    const method = body === undefined ? 'GET' : 'POST';
    if (this.closed) throw new ApiTransportError('client is closed');
    await this.limiter.take(ro.signal);
    const headers = await this.opts.settings.authHeaders();
    const url = new URL(this.opts.settings.server.href);
    url.pathname = url.pathname.replace(/\/$/, '') + path;
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const mod = url.protocol === 'https:' ? https : http;
    let idleFired = false;
    const idle = (): boolean => idleFired;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method,
        agent: this.agent,
        headers: {
          ...headers,
          Accept: 'application/json',
          'User-Agent': this.userAgent,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(ro.signal ? { signal: ro.signal } : {}),
      });
      const touch = this.livenessProbe(req, path, ro, () => {
        idleFired = true;
      });
      if (ro.idleTimeoutMs !== undefined && ro.idleTimeoutMs > 0) {
        // Socket inactivity in either direction, also while the body streams: this is the watchdog.
        req.setTimeout(ro.idleTimeoutMs, () => {
          idleFired = true;
          req.destroy(new ApiTransportError(`${method} ${path}: no data for ${ro.idleTimeoutMs} ms`, true));
        });
      }
      req.on('error', (e) => {
        reject(this.transportError(e, ro.signal, `${method} ${path}: request failed`, idleFired));
      });
      req.on('response', (res) => {
        const code = res.statusCode ?? 0;
        touch();
        if (code >= 200 && code < 300) {
          ro.onResponse?.();
          resolve({ res, idle, touch });
          return;
        }
        const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
        readStatus(res).then(
          (st) => {
            const reason =
              typeof st?.reason === 'string' ? st.reason : (http.STATUS_CODES[code] ?? 'Unknown');
            const msg = typeof st?.message === 'string' ? st.message : `HTTP ${code}`;
            reject(
              new ApiStatusError(
                code,
                reason,
                `${method} ${path}: ${code} ${reason}: ${msg}`,
                st,
                retryAfterMs,
              ),
            );
          },
          (e: unknown) => {
            reject(this.transportError(e, ro.signal, `${method} ${path}: error body interrupted`, idleFired));
          },
        );
      });
      req.end(body);
    });
  }

  /**
   * Arms the liveness probe of {@link RequestOptions.probe} on `req` and returns the function that
   * tells it a byte arrived. Without a probe option it returns a no-op.
   */
  private livenessProbe(
    req: http.ClientRequest,
    path: string,
    ro: RequestOptions,
    markIdle: () => void,
  ): () => void {
    const p = ro.probe;
    if (!p || p.afterMs <= 0) return () => {};
    let finished = false;
    const fire = (): void => {
      void this.ping(p.timeoutMs).then((alive) => {
        if (finished) return;
        if (alive) {
          // A quiet but live server (a watch with no changes): wait another period before asking again.
          timer.refresh();
          return;
        }
        markIdle();
        req.destroy(
          new ApiTransportError(
            `GET ${path}: no data for ${p.afterMs} ms and no answer to a probe within ${p.timeoutMs} ms`,
            true,
          ),
        );
      });
    };
    const timer = setTimeout(fire, p.afterMs);
    const finish = (): void => {
      finished = true;
      clearTimeout(timer);
    };
    req.on('close', finish);
    req.on('response', (res) => res.on('close', finish));
    return () => {
      if (!finished) timer.refresh();
    };
  }

  /**
   * True when the server answers GET /version (any HTTP status) within `timeoutMs`: the process is
   * alive and serving. Not rate-limited, like the HTTP/2 pings it stands in for.
   */
  async ping(timeoutMs: number): Promise<boolean> {
    if (this.closed) return false;
    let headers: Readonly<Record<string, string>> = {};
    try {
      headers = await this.opts.settings.authHeaders();
    } catch {
      // An answer without credentials (401) still proves the server is alive.
    }
    const url = new URL(this.opts.settings.server.href);
    url.pathname = url.pathname.replace(/\/$/, '') + '/version';
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const req = mod.request(url, {
        method: 'GET',
        agent: this.agent,
        headers: { ...headers, Accept: 'application/json', 'User-Agent': this.userAgent },
      });
      const t = setTimeout(() => {
        req.destroy();
        resolve(false);
      }, timeoutMs);
      req.on('response', (res) => {
        clearTimeout(t);
        res.resume();
        resolve(true);
      });
      req.on('error', () => {
        clearTimeout(t);
        resolve(false);
      });
      req.end();
    });
  }

  private transportError(e: unknown, signal: AbortSignal | undefined, what: string, idle: boolean): Error {
    if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (e instanceof ApiTransportError) return e;
    if (idle)
      return new ApiTransportError(`${what}: no data for the idle timeout (half-open connection?)`, true, {
        cause: e,
      });
    return new ApiTransportError(`${what}: ${errorText(e)}`, false, { cause: e });
  }
}

function parseWatchLine(line: string, path: string): WatchEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new ApiTransportError(`watch ${path}: event is not JSON (${line.slice(0, 80)})`);
  }
  if (typeof v !== 'object' || v === null)
    throw new ApiTransportError(`watch ${path}: event is not an object`);
  const { type, object } = v as { type?: unknown; object?: unknown };
  if (
    type !== 'ADDED' &&
    type !== 'MODIFIED' &&
    type !== 'DELETED' &&
    type !== 'BOOKMARK' &&
    type !== 'ERROR'
  ) {
    throw new ApiTransportError(`watch ${path}: unknown event type (value: ${JSON.stringify(type)})`);
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw new ApiTransportError(`watch ${path}: ${type} event without an object`);
  }
  return { type, object: object as Record<string, unknown> };
}

/**
 * Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when
 * absent or unparsable.
 */
export function parseRetryAfter(
  v: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(v) ? v[0] : v)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

async function readStatus(res: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The current user's `tokenFile` from a kubeconfig (client-node ignores that field; kubeadm's
 * kube-proxy kubeconfig uses it). Relative paths are relative to the kubeconfig's folder.
 */
export function kubeconfigTokenFile(
  kubeconfigPath: string,
  userName: string | undefined,
): string | undefined {
  if (userName === undefined) return undefined;
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(kubeconfigPath, 'utf8'));
  } catch {
    return undefined;
  }
  const users = (doc as { users?: { name?: unknown; user?: { tokenFile?: unknown } }[] } | null)?.users;
  const entry = Array.isArray(users) ? users.find((u) => u.name === userName) : undefined;
  const tf = entry?.user?.tokenFile;
  if (typeof tf !== 'string' || tf === '') return undefined;
  return isAbsolute(tf) ? tf : join(dirname(kubeconfigPath), tf);
}
