/**
 * IPVS drift check (see backends/drift.ts): the kernel state the proxier knows it left after its
 * last sync against a fresh read of the same objects (readKernelState: `ipvsadm -Sn`, `ipset save`,
 * the addresses of kube-ipvs0). Only what we wrote is compared: virtual servers we did not create
 * (IPVS has no owner mark) and other owners' ipsets are never reported. Pure.
 */
import { listFindings, type DriftFinding } from '../drift.js';
import type { KernelState } from './diff.js';
import { DUMMY_DEVICE } from './names.js';

const vsName = (key: string): string => key.replace(/^(tcp|udp|sctp) /, '');

/** Every difference between what we left (`want`) and what the kernel holds (`have`). */
export function compareIPVS(want: KernelState, have: KernelState): DriftFinding[] {
  const out: DriftFinding[] = [];
  if (want.device && !have.device) out.push({ object: 'address', message: `${DUMMY_DEVICE} missing` });
  else {
    const lost = [...want.addresses].filter((a) => !have.addresses.has(a)).sort();
    if (lost.length > 0)
      out.push(
        ...listFindings(
          'address',
          lost,
          (a) => `address ${a} removed from ${DUMMY_DEVICE}`,
          'addresses removed',
        ),
      );
  }
  const deleted: string[] = [];
  const lostReals: string[] = [];
  for (const [key, vs] of want.vss) {
    const k = have.vss.get(key);
    if (!k) {
      deleted.push(key);
      continue;
    }
    let missing = 0;
    for (const rs of vs.reals.keys()) if (!k.reals.has(rs)) missing++;
    if (missing > 0) lostReals.push(`virtual server ${vsName(key)} lost ${missing} real servers`);
  }
  out.push(
    ...listFindings(
      'virtual_server',
      deleted.sort(),
      (k) => `virtual server ${vsName(k)} deleted`,
      'virtual servers deleted',
    ),
  );
  out.push(...listFindings('real_server', lostReals.sort(), (m) => m, 'virtual servers lost real servers'));
  for (const [name, set] of [...want.sets].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const k = have.sets.get(name);
    if (!k) {
      out.push({ object: 'ipset', message: `ipset ${name} missing` });
      continue;
    }
    let lost = 0;
    for (const e of set.entries) if (!k.entries.has(e)) lost++;
    const extra = k.entries.size - (set.entries.size - lost);
    if (lost > 0)
      out.push({ object: 'ipset', message: `ipset ${name} lost ${lost} of its ${set.entries.size} members` });
    if (extra > 0)
      out.push({ object: 'ipset', message: `ipset ${name} has ${extra} members we did not add` });
  }
  return out;
}
