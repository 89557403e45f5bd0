/**
 * --ipvs-health-check: how health shows in the IPVS layout. A real server whose TCP probe failed
 * its fall count keeps its place with weight 0 (no new connections; established ones drain) until
 * it passes its rise count. Only real servers the desired state already has are touched, so health
 * never overrides readiness. Pure.
 */
import { joinHostPort } from '../../net/ip.js';
import type { PartialDesired } from './diff.js';
import type { IPVSFragment, IPVSLayout, VirtualServer } from './render.js';

/** The probe targets ("ip:port") of these fragments: the real servers of TCP virtual servers, once each. */
export function healthTargets(frags: Iterable<IPVSFragment>): Set<string> {
  const out = new Set<string>();
  for (const f of frags)
    for (const vs of f.vss) {
      if (vs.protocol !== 'TCP') continue;
      for (const rs of vs.realServers) out.add(joinHostPort(rs.ip, rs.port));
    }
  return out;
}

/** `vs` with weight 0 for its unhealthy TCP real servers; `vs` itself when none is. */
export function weighVirtualServer(vs: VirtualServer, unhealthy: ReadonlySet<string>): VirtualServer {
  if (unhealthy.size === 0 || vs.protocol !== 'TCP') return vs;
  if (!vs.realServers.some((rs) => rs.weight !== 0 && unhealthy.has(joinHostPort(rs.ip, rs.port)))) return vs;
  return {
    ...vs,
    realServers: vs.realServers.map((rs) =>
      unhealthy.has(joinHostPort(rs.ip, rs.port)) ? { ...rs, weight: 0 } : rs,
    ),
  };
}

/** A full layout with unhealthy real servers at weight 0 (the layout itself when none is). */
export function weighLayout(layout: IPVSLayout, unhealthy: ReadonlySet<string>): IPVSLayout {
  if (unhealthy.size === 0) return layout;
  const vss = new Map<string, VirtualServer>();
  for (const [k, vs] of layout.virtualServers) vss.set(k, weighVirtualServer(vs, unhealthy));
  return { ...layout, virtualServers: vss };
}

/** A partial sync's touched virtual servers with unhealthy real servers at weight 0. */
export function weighPartial(desired: PartialDesired, unhealthy: ReadonlySet<string>): PartialDesired {
  if (unhealthy.size === 0) return desired;
  const vss = new Map<string, VirtualServer | undefined>();
  for (const [k, vs] of desired.vss) vss.set(k, vs && weighVirtualServer(vs, unhealthy));
  return { ...desired, vss };
}
