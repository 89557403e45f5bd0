/**
 * Whether the nftables drift check needs to read our table back at all. At 10,000 services × 5
 * endpoints one read costs about 4 s of CPU (bench/drift: the kernel dump and nft's printing of
 * ~100k set elements), far over the 2 % of a core a check may cost every 30 s. So the daemon runs
 * `nft monitor` (drift-watch.ts), which prints every committed change of its network namespace and a
 * `# new generation N by process P (comm)` line after each transaction, and feeds the lines here.
 * A transaction of another process that touched our table makes the gate suspect; so does a monitor
 * that (re)started or failed, since it may have missed events. The check reads only while suspect,
 * and a read that found nothing clears the suspicion it began under. Pure.
 */

/** `# new generation 12 by process 345 (nft)` */
const GENERATION = /^# new generation (\d+) by process (\d+)/;

/** How many of our own transaction pids are remembered (a sync runs one or two). */
const OWN_PIDS = 64;

export class NftDriftGate {
  private readonly ours: RegExp;
  private readonly own: number[] = [];
  /** The current transaction (lines since the last generation line) touched our table. */
  private touching = false;
  /** Bumped on every suspicion; `clean` is the value the last clean read began under. */
  private suspicion = 1;
  private clean = 0;

  /** `table` is our table's name; only its `family` is ours (one proxier per family). */
  constructor(family: 'ip' | 'ip6', table: string) {
    this.ours = new RegExp(`(^|\\s)${family} ${table}(\\s|$)`);
  }

  /** A transaction we run ourselves (its `nft` pid): its events are not drift. */
  ownPid(pid: number): void {
    this.own.push(pid);
    if (this.own.length > OWN_PIDS) this.own.shift();
  }

  /** One line of `nft monitor`. */
  line(text: string): void {
    const g = GENERATION.exec(text);
    if (g) {
      if (this.touching && !this.own.includes(Number(g[2]))) this.suspect();
      this.touching = false;
      return;
    }
    if (!this.touching && this.ours.test(text)) this.touching = true;
  }

  /** Something may have changed unseen (the monitor started, stopped or reported an error). */
  suspect(): void {
    this.suspicion++;
  }

  /** Whether a read is needed: a suspicion arrived since the last clean read began. */
  needsRead(): boolean {
    return this.clean !== this.suspicion;
  }

  /** Taken before a read; hand it to {@link readClean} when that read found no drift. */
  token(): number {
    return this.suspicion;
  }

  /** The read begun at `token` found no drift: no read until the next suspicion. */
  readClean(token: number): void {
    this.clean = token;
  }
}
