/**
 * What the packet tracers take and give: one NEW connection's first packet, the node facts a rule can
 * ask about, and the tracer's answer. Shared by the iptables, nftables, IPVS and userspace tracers. Pure.
 */
import type { Protocol } from '../model/types.js';

/** The first packet of a NEW connection, as it reaches this node (addresses canonical). */
export interface Packet {
  readonly protocol: Protocol;
  readonly src: string;
  /** 0 when the caller did not give one (no rule of ours matches on it). */
  readonly srcPort: number;
  readonly dst: string;
  readonly dstPort: number;
}

/** Where a connection comes from, which decides the hooks it passes. */
export type SourceKind = 'node' | 'pod' | 'outside';

/** The node facts the rules ask about. */
export interface TraceEnv {
  /** addrtype LOCAL / fib type local: the node's own addresses (and loopback where the mode counts it). */
  readonly isLocal: (ip: string) => boolean;
  /** Where the packet comes from: the node itself takes the output path, the others the prerouting path. */
  readonly source: SourceKind;
  /**
   * The input interface of a packet from a local pod (what `-i` / `iifname` see), chosen to satisfy
   * the interface-based local-traffic detectors; undefined for the node and for outside traffic.
   */
  readonly podInterface?: string;
}

export type Verdict = 'DNAT' | 'REJECT' | 'DROP' | 'ACCEPT' | 'NONE';

/** One rule the packet matched, quoted as `kube-proxy render` prints it. */
export interface TraceStep {
  /** iptables: "nat" / "filter"; nftables: "ip kube-proxy" / "ip6 kube-proxy"; "ipvs"; "userspace". */
  readonly table: string;
  readonly chain: string;
  readonly rule: string;
}

/** A tracer's answer for one packet. */
export interface TraceResult {
  /** DNAT exactly when `endpoints` is non-empty. */
  readonly verdict: Verdict;
  /** Every endpoint ("ip:port", "[ip6]:port") the connection can reach, in rule order. */
  readonly endpoints: readonly string[];
  /** True iff the packet was marked for masquerading anywhere on its path. */
  readonly masquerade: boolean;
  readonly steps: readonly TraceStep[];
  /** Rules the tracer could not read (someone else's syntax); they are treated as never matching. */
  readonly unreadable: readonly string[];
}

/** The loopback test iptables mode uses for addrtype LOCAL (all of 127.0.0.0/8 and ::1 are local there). */
export function isLoopbackAddress(ip: string): boolean {
  return ip === '::1' || /^127\./.test(ip);
}

/**
 * Combines the branches of a probabilistic choice into one answer: endpoints in branch order
 * (deduplicated), masquerade if any branch marked, verdict DNAT when any branch reached an endpoint,
 * otherwise the first branch's filter verdict, otherwise NONE.
 */
export function combineBranches(
  branches: readonly { endpoint?: string; verdict?: Exclude<Verdict, 'DNAT' | 'NONE'>; marked: boolean }[],
): { verdict: Verdict; endpoints: string[]; masquerade: boolean } {
  const endpoints: string[] = [];
  let masquerade = false;
  for (const b of branches) {
    if (b.marked) masquerade = true;
    if (b.endpoint !== undefined && (b.verdict === undefined || b.verdict === 'ACCEPT'))
      if (!endpoints.includes(b.endpoint)) endpoints.push(b.endpoint);
  }
  if (endpoints.length > 0) return { verdict: 'DNAT', endpoints, masquerade };
  const v = branches.find((b) => b.verdict !== undefined)?.verdict;
  return { verdict: v ?? 'NONE', endpoints, masquerade };
}

/** Merges the steps of branches: by hook phase, then in the order the branches first met them. */
export function mergeSteps(
  branches: readonly (readonly { phase: number; step: TraceStep }[])[],
): TraceStep[] {
  const seen = new Map<string, { phase: number; order: number; step: TraceStep }>();
  let order = 0;
  for (const b of branches)
    for (const s of b) {
      const k = `${s.step.table}\u0000${s.step.chain}\u0000${s.step.rule}`;
      if (!seen.has(k)) seen.set(k, { phase: s.phase, order: order++, step: s.step });
    }
  return [...seen.values()].sort((a, b) => a.phase - b.phase || a.order - b.order).map((x) => x.step);
}
