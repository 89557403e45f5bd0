/**
 * Options and object sets shared by the iptables renderer tests (golden, upstream oracle, property).
 */
import type { IPFamily, KubeObject } from '../../../src/model/types.js';
import type { FamilyOptions, LocalDetector } from '../../../src/proxy/options.js';
import type { DesiredState } from '../../../src/proxy/types.js';
import { desiredStatesFromObjects } from '../../../src/proxy/state-from-objects.js';
import { familyOptions as baseFamilyOptions } from '../../fixtures/options.js';

export const NODE = 'node-1';

/** FamilyOptions with upstream defaults (mark bit 14, localhost NodePorts on IPv4, nodePortAddresses match-all). */
export function familyOptions(family: IPFamily, over: Partial<FamilyOptions> = {}): FamilyOptions {
  const detector: LocalDetector = { kind: 'cidr', cidrs: [family === 'IPv4' ? '10.0.0.0/8' : 'fd00:10::/64'] };
  return baseFamilyOptions({ family, localhostNodePorts: family === 'IPv4', localDetector: detector, ...over });
}

/** The single-family state for `objects` (node NODE). */
export function stateOf(objects: readonly KubeObject[], family: IPFamily = 'IPv4'): DesiredState {
  const [s] = desiredStatesFromObjects(objects, { families: [family], nodeName: NODE });
  return s!;
}
