/**
 * The real-server health checker (--ipvs-health-check=tcp): probes the targets a proxier hands it
 * (proxy/health-check.ts keeps their fall/rise state and the once-per-interval schedule), logs each
 * change, keeps the kubeproxy_ipvs_real_server_health gauge, and asks for a sync when a target's
 * health flips so that the proxier re-weights it.
 */
import type { IPFamily } from '../model/types.js';
import type { Logger } from '../observability/logger.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import { type EndpointHealth, type HealthCheckOptions, HealthTable } from '../proxy/health-check.js';
import { splitHostPort } from '../net/ip.js';
import { tcpConnectProbe } from '../exec/tcp-probe.js';

export interface HealthCheckerDeps {
  readonly family: IPFamily;
  readonly options: HealthCheckOptions;
  readonly logger: Logger;
  readonly metrics?: Pick<ProxyMetrics, 'ipvsRealServerHealth'>;
  /** Called after a target's health flipped (the composition root asks the loop for a sync). */
  readonly onChange: () => void;
  /** Injected for tests; default a real TCP connect. */
  readonly probe?: (ip: string, port: number, timeoutMs: number) => Promise<boolean>;
  readonly now?: () => number;
  /** Tests: no timer; probes run only when runDue() is called. */
  readonly manual?: boolean;
}

function hostPort(t: string): { host: string; port: number } | undefined {
  try {
    return splitHostPort(t);
  } catch {
    return undefined;
  }
}

/** At most this many probes at once: a big node's first round must not open thousands of sockets. */
const MAX_CONCURRENT = 64;

/** Runs the probes on a timer until stop(). */
export class HealthChecker implements EndpointHealth {
  private readonly table: HealthTable;
  private readonly probe: (ip: string, port: number, timeoutMs: number) => Promise<boolean>;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running = 0;
  private queue: string[] = [];

  constructor(private readonly deps: HealthCheckerDeps) {
    this.table = new HealthTable(deps.options);
    this.probe = deps.probe ?? tcpConnectProbe;
    this.now = deps.now ?? Date.now;
  }

  setTargets(targets: Iterable<string>): void {
    this.table.setTargets(targets);
    this.updateGauge();
    // New targets are due at once: re-arm for the earliest.
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  isHealthy(target: string): boolean {
    return this.table.isHealthy(target);
  }

  unhealthy(): ReadonlySet<string> {
    return this.table.unhealthy();
  }

  /** Stops the timer; probes in flight finish and are ignored. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs every due probe now and resolves when they finished (tests; the timer calls it too). */
  async runDue(): Promise<void> {
    const due = this.table.due(this.now());
    this.queue.push(...due);
    const workers: Promise<void>[] = [];
    while (this.running < MAX_CONCURRENT && this.queue.length > 0) workers.push(this.worker());
    await Promise.all(workers);
  }

  private async worker(): Promise<void> {
    this.running++;
    try {
      for (let t = this.queue.shift(); t !== undefined; t = this.queue.shift()) {
        const hp = hostPort(t);
        const ok = hp ? await this.probe(hp.host, hp.port, this.deps.options.timeoutMs) : false;
        if (this.stopped) return;
        const change = this.table.record(t, ok);
        if (change) {
          this.deps.logger.warn(
            { family: this.deps.family, endpoint: t, healthy: change.healthy },
            change.healthy
              ? 'real server passed its health check again: weight restored'
              : 'real server failed its health check: weight 0 (draining)',
          );
          this.updateGauge();
          this.deps.onChange();
        }
      }
    } finally {
      this.running--;
    }
  }

  private updateGauge(): void {
    const c = this.table.counts();
    this.deps.metrics?.ipvsRealServerHealth.set({ ip_family: this.deps.family, state: 'healthy' }, c.healthy);
    this.deps.metrics?.ipvsRealServerHealth.set(
      { ip_family: this.deps.family, state: 'unhealthy' },
      c.unhealthy,
    );
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.deps.manual === true) return;
    const next = this.table.nextDue();
    if (next === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.runDue().finally(() => {
          this.schedule();
        });
      },
      Math.max(0, next - this.now()),
    );
    this.timer.unref();
  }
}
