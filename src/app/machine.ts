/** Facts read from the machine (interfaces, hostname): the I/O that option resolution needs. */
import { hostname, networkInterfaces } from 'node:os';
import { canonicalIP } from '../net/ip.js';

/** Every address on the machine's interfaces, with the interface's name (as IPVS mode reads them). */
export { readLocalAddresses } from '../backends/ipvs/proxier.js';

/** Every address on the machine's interfaces, canonical (zone ids dropped). */
export function readInterfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const c = canonicalIP(a.address.split('%')[0] ?? '');
      if (c) out.push(c);
    }
  }
  return [...new Set(out)].sort();
}

export function osHostname(): string {
  return hostname();
}
