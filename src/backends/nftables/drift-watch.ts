/**
 * The I/O half of the nftables drift gate (drift-gate.ts): one `nft monitor` per proxier, started on
 * the first drift check and restarted on the next check after it exits (every (re)start makes the
 * gate suspect, so that check reads the table back). nft 1.0.6's monitor keeps in its cache what it
 * reports and grows with every transaction (~11 MB a minute at 10,000 Services and 20 changes a
 * second: the children column of `bench/memory/bench.ts 10000 nftables 720 20`): a drift check that finds it grown past
 * {@link monitorOutgrown}'s bound replaces it, at the cost of one read-back.
 */
import { nftMonitor } from '../../exec/nft.js';
import type { LineWatch } from '../../exec/run.js';
import type { Logger } from '../../observability/logger.js';
import { NftDriftGate } from './drift-gate.js';
import { TABLE_NAME } from './render-layout.js';

/** The gate and the monitor that feeds it. */
export interface NftDriftWatch {
  readonly gate: NftDriftGate;
  /** Starts `nft monitor` unless it runs; replaces one that has outgrown its first size. */
  ensure(): void;
  /** Stops the monitor (the proxier's close). */
  stop(): void;
}

const MiB = 1024 * 1024;

/**
 * Whether a monitor whose resident set was `first` bytes at the first check after its start has
 * outgrown it at `now` bytes: by half its first size, and at least 64 MiB.
 */
export function monitorOutgrown(first: number, now: number): boolean {
  return now > first + Math.max(64 * MiB, first / 2);
}

/** A watch over our table of `family` with `nft monitor` (`monitor` is injectable for tests). */
export function nftDriftWatch(
  nft: string,
  family: 'ip' | 'ip6',
  logger: Logger,
  monitor: typeof nftMonitor = nftMonitor,
): NftDriftWatch {
  const gate = new NftDriftGate(family, TABLE_NAME);
  let watch: LineWatch | undefined;
  /** The running monitor's resident set at the first check after its start. */
  let firstRss: number | undefined;
  /** Monitors we ended ourselves: their exit is expected. */
  const retired = new WeakSet<LineWatch>();
  let stopped = false;
  let exits = 0;
  const start = (): void => {
    gate.suspect();
    firstRss = undefined;
    const w = monitor(
      nft,
      (l) => {
        gate.line(l);
      },
      (code, stderr) => {
        if (watch === w) watch = undefined;
        gate.suspect();
        // One line per exit is enough: the next check restarts it and reads the table anyway.
        if (!stopped && !retired.has(w) && exits++ < 5)
          logger.warn(
            { code, stderr: stderr.trim().slice(0, 500) },
            'nft monitor exited: the next drift check reads the table back and restarts it',
          );
      },
    );
    watch = w;
  };
  return {
    gate,
    ensure: () => {
      if (stopped) return;
      if (!watch) {
        start();
        return;
      }
      const rss = watch.rssBytes();
      if (rss === undefined) return;
      if (firstRss === undefined) {
        firstRss = rss;
        return;
      }
      if (!monitorOutgrown(firstRss, rss)) return;
      logger.info(
        { firstMB: Math.round(firstRss / MiB), nowMB: Math.round(rss / MiB) },
        'nft monitor outgrew its first size (it caches what it reports): replaced; this check reads the table back',
      );
      const old = watch;
      retired.add(old);
      watch = undefined;
      old.stop();
      start();
    },
    stop: () => {
      stopped = true;
      if (watch) retired.add(watch);
      watch?.stop();
      watch = undefined;
    },
  };
}
