/**
 * Stable numbering of endpoint slots. Every service-port chain that load-balances owns a block of
 * consecutive integers in the shared `endpoint-targets` / `endpoint-chains` maps and picks one with
 * `numgen random mod N offset BASE`. A block keeps its base while the endpoint count fits, so an
 * endpoint change rewrites map elements only; a block grows by moving to a fresh, larger one.
 */

/** Smallest block handed out: 4 slots, so the common 1→3 endpoint churn never moves a block. */
const MIN_BLOCK = 4;

function blockSize(n: number): number {
  let c = MIN_BLOCK;
  while (c < n) c *= 2;
  return c;
}

/** One owner's slots: keys base .. base+size-1 of the slot maps. */
export interface SlotBlock {
  readonly base: number;
  readonly size: number;
}

/**
 * Allocates slot blocks per owner (a chain name). Use: begin(), get() for every owner of this
 * build, end(); blocks of owners not seen since begin() are freed at end() (never during a build,
 * so a key is never reused inside one transaction). Deterministic: the same sequence of calls on a
 * fresh allocator gives the same bases.
 */
export class SlotAllocator {
  private readonly blocks = new Map<string, SlotBlock>();
  private readonly free = new Map<number, number[]>();
  private readonly seen = new Set<string>();
  private readonly pendingFree: SlotBlock[] = [];
  private next = 0;

  /** Starts a build. */
  begin(): void {
    this.seen.clear();
  }

  /** The block of `owner` for `n` (>= 1) endpoints. */
  get(owner: string, n: number): SlotBlock {
    this.seen.add(owner);
    const have = this.blocks.get(owner);
    if (have && have.size >= n) return have;
    if (have) this.pendingFree.push(have);
    const size = blockSize(n);
    const reuse = this.free.get(size)?.pop();
    let base: number;
    if (reuse !== undefined) base = reuse;
    else {
      base = this.next;
      this.next += size;
      if (this.next > 0xffffffff) throw new RangeError(`nftables slot space exhausted (${this.next} slots)`);
    }
    const b = { base, size };
    this.blocks.set(owner, b);
    return b;
  }

  /** Ends a build: frees the blocks of owners not seen and blocks replaced by larger ones. */
  end(): void {
    for (const [owner, b] of this.blocks) {
      if (!this.seen.has(owner)) {
        this.blocks.delete(owner);
        this.pendingFree.push(b);
      }
    }
    this.commit();
  }

  /** Partial builds: `owner` no longer needs its block; it is freed at the next commit(). */
  release(owner: string): void {
    const b = this.blocks.get(owner);
    if (!b) return;
    this.blocks.delete(owner);
    this.pendingFree.push(b);
  }

  /** Makes released and replaced blocks reusable (never inside the build that freed them). */
  commit(): void {
    for (const b of this.pendingFree) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b.base);
    }
    this.pendingFree.length = 0;
  }

  /** Number of owners holding a block (for tests and metrics). */
  get owners(): number {
    return this.blocks.size;
  }
}
