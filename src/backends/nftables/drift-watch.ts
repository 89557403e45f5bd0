/**
 * The I/O half of the nftables drift gate (drift-gate.ts): one `nft monitor` per proxier, started on
 * the first drift check and restarted on the next check after it exits (every (re)start makes the
 * gate suspect, so that check reads the table back).
 */
import { nftMonitor } from '../../exec/nft.js';
import type { LineWatch } from '../../exec/run.js';
import type { Logger } from '../../observability/logger.js';
import { NftDriftGate } from './drift-gate.js';
import { TABLE_NAME } from './render-layout.js';

/** The gate and the monitor that feeds it. */
export interface NftDriftWatch {
  readonly gate: NftDriftGate;
  /** Starts `nft monitor` unless it runs. */
  ensure(): void;
  /** Stops the monitor (the proxier's close). */
  stop(): void;
}

/** A watch over our table of `family` with `nft monitor`. */
export function nftDriftWatch(nft: string, family: 'ip' | 'ip6', logger: Logger): NftDriftWatch {
  const gate = new NftDriftGate(family, TABLE_NAME);
  let watch: LineWatch | undefined;
  let stopped = false;
  let exits = 0;
  return {
    gate,
    ensure: () => {
      if (watch || stopped) return;
      gate.suspect();
      const w = nftMonitor(
        nft,
        (l) => {
          gate.line(l);
        },
        (code, stderr) => {
          if (watch === w) watch = undefined;
          gate.suspect();
          // One line per exit is enough: the next check restarts it and reads the table anyway.
          if (!stopped && exits++ < 5)
            logger.warn(
              { code, stderr: stderr.trim().slice(0, 500) },
              'nft monitor exited: the next drift check reads the table back and restarts it',
            );
        },
      );
      watch = w;
    },
    stop: () => {
      stopped = true;
      watch?.stop();
      watch = undefined;
    },
  };
}
