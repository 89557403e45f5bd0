/**
 * What a packet can touch: the part of a desired state whose rules can match one NEW connection, so
 * the CLI renders (and loads into a tracer) a handful of service ports instead of all of them. A
 * rule of one service port matches only packets addressed to one of its frontends, to its node port
 * or health check node port, or (hairpin masquerade) sent by one of its endpoints; the rules that
 * do not depend on service ports are rendered whatever the part. The unit test checks that every
 * mode's answer on the part equals its answer on the whole. Pure.
 */
import type { DesiredState, ServicePortState } from '../proxy/types.js';
import type { Packet } from './packet.js';

/** Whether a rule of `sp` can match `p` (see the file comment). */
function touches(sp: ServicePortState, p: Packet): boolean {
  const i = sp.info;
  if (i.clusterIP === p.dst || i.externalIPs.includes(p.dst) || i.loadBalancerVIPs.includes(p.dst))
    return true;
  if (i.nodePort === p.dstPort || i.healthCheckNodePort === p.dstPort) return true;
  return sp.endpoints.some((e) => e.ip === p.src);
}

/**
 * `state` restricted to the service ports `p` can touch (see the file comment); the other fields are
 * the whole state's. Render it with `whole` = [state] so whole-state choices stay the same.
 */
export function scopeForPacket(state: DesiredState, p: Packet): DesiredState {
  const services = new Map<string, ServicePortState>();
  const sortedKeys: string[] = [];
  for (const key of state.sortedKeys) {
    const sp = state.services.get(key);
    if (sp && touches(sp, p)) {
      services.set(key, sp);
      sortedKeys.push(key);
    }
  }
  return { ...state, services, sortedKeys };
}
