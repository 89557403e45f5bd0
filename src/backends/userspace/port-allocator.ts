/**
 * Proxy-port allocation for userspace portal sockets (--proxy-port-range). Pure bookkeeping: it never
 * binds; the relay binds the port it is given and reports back (release on failure or close).
 *
 * Ports are handed out round-robin per protocol (TCP and UDP have separate port spaces), so a port just
 * released is not reused at once, and a reservation is taken synchronously because sockets open
 * concurrently.
 */

/** An inclusive port range, as --proxy-port-range gives it. */
export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/** Hands out ports of one range per protocol; tracks which are held or being bound. */
export class PortAllocator {
  readonly range: PortRange;
  /** Next offset into the range, per protocol. */
  private readonly next = new Map<string, number>();
  /** "TCP/40000" keys held or being bound. */
  private readonly reserved = new Set<string>();

  constructor(range: PortRange) {
    this.range = range;
  }

  /**
   * The next port of the range for `protocol` that is neither reserved nor in `skip`, now reserved;
   * undefined when every port of the range is reserved or skipped.
   */
  reserve(protocol: string, skip: ReadonlySet<number> = new Set()): number | undefined {
    const { min, max } = this.range;
    const size = max - min + 1;
    const start = this.next.get(protocol) ?? 0;
    for (let i = 0; i < size; i++) {
      const port = min + ((start + i) % size);
      const key = portKey(protocol, port);
      if (this.reserved.has(key) || skip.has(port)) continue;
      this.reserved.add(key);
      this.next.set(protocol, port - min + 1);
      return port;
    }
    return undefined;
  }

  /** Frees `port` for `protocol` (a no-op when it is not reserved or not in the range). */
  release(protocol: string, port: number): void {
    this.reserved.delete(portKey(protocol, port));
  }

  /** Whether `port` is reserved for `protocol`. */
  isReserved(protocol: string, port: number): boolean {
    return this.reserved.has(portKey(protocol, port));
  }

  /** One line naming the range, for the "exhausted" error. */
  describe(): string {
    return `proxy port range ${this.range.min}-${this.range.max}`;
  }
}

function portKey(protocol: string, port: number): string {
  return `${protocol}/${port}`;
}
