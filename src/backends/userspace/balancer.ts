/**
 * Endpoint choice for the userspace relay (upstream pkg/proxy/userspace LoadBalancerRR, plus a
 * least-connections variant). Pure: the clock is injected, no I/O.
 *
 * One Balancer serves one endpoint set of one service port (the internal-policy set or the
 * external-policy set), so every listener that uses that set shares its rotation and its affinity map.
 */

/** What a balancer needs of an endpoint: its "ip:port" identity. */
export interface BalancerEndpoint {
  readonly ip: string;
  readonly port: number;
  /** "ip:port" or "[ip]:port": the identity used for affinity and connection counts. */
  readonly endpoint: string;
}

export type BalancerAlgorithm = 'round-robin' | 'least-connections';

export interface BalancerOptions {
  readonly algorithm: BalancerAlgorithm;
  /** ClientIP affinity timeout in seconds; 0 = no affinity. */
  readonly stickyMaxAgeSeconds: number;
  /** Milliseconds, monotonic enough for TTLs; defaults to Date.now. */
  readonly now?: () => number;
}

interface AffinityEntry {
  endpoint: string;
  lastUsed: number;
}

/**
 * Chooses endpoints for new connections or UDP sessions.
 * Contract:
 * - `next` only ever returns an endpoint of the latest `update` (or constructor) list;
 * - round robin: over k*n picks with an unchanged list of n endpoints and no affinity, each is chosen k times;
 * - an `update` keeps the rotation position (the endpoint that would have come next still comes next
 *   when it survives) and keeps affinity entries whose endpoint survives;
 * - ClientIP affinity: a client that picked endpoint E keeps getting E while E exists and the client
 *   was last seen less than stickyMaxAgeSeconds ago;
 * - least-connections: the endpoint with the fewest open connections (connectionOpened minus
 *   connectionClosed); ties go round robin.
 */
export class Balancer<E extends BalancerEndpoint = BalancerEndpoint> {
  private endpoints: readonly E[] = [];
  private byName = new Map<string, E>();
  /** Index into `endpoints` of the next round-robin candidate. */
  private index = 0;
  private readonly affinity = new Map<string, AffinityEntry>();
  private readonly active = new Map<string, number>();
  private readonly now: () => number;
  private algorithm: BalancerAlgorithm;
  private ttlMs: number;
  private lastSweep: number;

  constructor(endpoints: readonly E[], opts: BalancerOptions) {
    this.now = opts.now ?? Date.now;
    this.algorithm = opts.algorithm;
    this.ttlMs = Math.max(0, opts.stickyMaxAgeSeconds) * 1000;
    this.lastSweep = this.now();
    this.update(endpoints);
  }

  /** The current endpoint list (as given to the last update). */
  get list(): readonly E[] {
    return this.endpoints;
  }

  /** Whether ClientIP affinity is on. */
  get sticky(): boolean {
    return this.ttlMs > 0;
  }

  /** Changes algorithm or affinity timeout in place; turning affinity off forgets every entry. */
  configure(opts: Pick<BalancerOptions, 'algorithm' | 'stickyMaxAgeSeconds'>): void {
    this.algorithm = opts.algorithm;
    this.ttlMs = Math.max(0, opts.stickyMaxAgeSeconds) * 1000;
    if (this.ttlMs === 0) this.affinity.clear();
  }

  /**
   * Replaces the endpoint list. The next round-robin pick stays the same endpoint if it survives;
   * otherwise the position is kept modulo the new length. Affinity entries to vanished endpoints go.
   */
  update(endpoints: readonly E[]): void {
    const nextName =
      this.endpoints.length > 0 ? this.endpoints[this.index % this.endpoints.length]?.endpoint : undefined;
    this.endpoints = [...endpoints];
    this.byName = new Map(this.endpoints.map((e) => [e.endpoint, e]));
    const kept = nextName === undefined ? -1 : this.endpoints.findIndex((e) => e.endpoint === nextName);
    this.index = kept >= 0 ? kept : this.endpoints.length > 0 ? this.index % this.endpoints.length : 0;
    for (const [client, entry] of this.affinity)
      if (!this.byName.has(entry.endpoint)) this.affinity.delete(client);
  }

  /**
   * The endpoint for a new connection from `clientIP`, or undefined when none is usable.
   * `exclude` names endpoints already tried for this connection (connect retry): they are skipped,
   * and a sticky client whose endpoint is excluded is re-pinned to the new choice.
   */
  next(clientIP: string, exclude?: ReadonlySet<string>): E | undefined {
    if (this.endpoints.length === 0) return undefined;
    const now = this.now();
    if (this.ttlMs > 0) {
      this.sweep(now);
      const entry = this.affinity.get(clientIP);
      if (entry && now - entry.lastUsed < this.ttlMs && !exclude?.has(entry.endpoint)) {
        const ep = this.byName.get(entry.endpoint);
        if (ep) {
          entry.lastUsed = now;
          return ep;
        }
      }
    }
    const ep =
      this.algorithm === 'least-connections' ? this.pickLeast(exclude) : this.pickRoundRobin(exclude);
    if (ep && this.ttlMs > 0) this.affinity.set(clientIP, { endpoint: ep.endpoint, lastUsed: now });
    return ep;
  }

  /** Records a connection (or UDP session) opened to `endpoint` ("ip:port"). */
  connectionOpened(endpoint: string): void {
    this.active.set(endpoint, (this.active.get(endpoint) ?? 0) + 1);
  }

  /** Records a connection closed; never goes below zero. */
  connectionClosed(endpoint: string): void {
    const n = (this.active.get(endpoint) ?? 0) - 1;
    if (n > 0) this.active.set(endpoint, n);
    else this.active.delete(endpoint);
  }

  /** Open connections per endpoint (including endpoints no longer in the list that still have some). */
  activeConnections(): ReadonlyMap<string, number> {
    return this.active;
  }

  /** Number of live affinity entries (for tests and debugging). */
  affinityCount(): number {
    this.sweep(this.now(), true);
    return this.affinity.size;
  }

  private pickRoundRobin(exclude: ReadonlySet<string> | undefined): E | undefined {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const at = (this.index + i) % n;
      const ep = this.endpoints[at]!;
      if (exclude?.has(ep.endpoint)) continue;
      this.index = (at + 1) % n;
      return ep;
    }
    return undefined;
  }

  private pickLeast(exclude: ReadonlySet<string> | undefined): E | undefined {
    const n = this.endpoints.length;
    let best = -1;
    let bestCount = Infinity;
    // Scanning from the rotation position makes the first minimum the round-robin tie-break.
    for (let i = 0; i < n; i++) {
      const at = (this.index + i) % n;
      const ep = this.endpoints[at]!;
      if (exclude?.has(ep.endpoint)) continue;
      const c = this.active.get(ep.endpoint) ?? 0;
      if (c < bestCount) {
        best = at;
        bestCount = c;
      }
    }
    if (best < 0) return undefined;
    this.index = (best + 1) % n;
    return this.endpoints[best];
  }

  /** Drops expired affinity entries; at most once per TTL unless forced, so next() stays O(1) amortised. */
  private sweep(now: number, force = false): void {
    if (this.ttlMs === 0) return;
    if (!force && now - this.lastSweep < this.ttlMs) return;
    this.lastSweep = now;
    for (const [client, entry] of this.affinity)
      if (now - entry.lastUsed >= this.ttlMs) this.affinity.delete(client);
  }
}
