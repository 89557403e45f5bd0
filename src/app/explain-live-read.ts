/**
 * Reads what the kernel holds for `kube-proxy explain --live`, in the current network namespace:
 * one iptables-save of every table (the backend in use, detected as the proxier does; the comparison
 * reads filter and nat), `nft list table <family> kube-proxy` (through a file: see exec/nft.ts), or
 * IPVS mode's state (`ipvsadm -Sn`, `ipset save`, kube-ipvs0's addresses) with iptables-save.
 * Read-only; every command goes through exec/.
 */
import type { ProxyMode } from '../model/proxy-mode.js';
import type { IPFamily } from '../model/types.js';
import { defaultExec } from '../exec/run.js';
import { detectBackend, iptablesSave, toolsFor } from '../exec/iptables.js';
import { nftListTable } from '../exec/nft.js';
import { ExplainInputError } from '../explain/explain.js';
import type { LiveRules } from '../explain/live.js';
import { readKernelState } from '../backends/ipvs/proxier.js';

const TIMEOUT_MS = 30_000;

/** iptables-save of every table, with the backend in use (legacy or nft, detected as the proxier does). */
async function saveAll(family: IPFamily): Promise<string> {
  const { backend } = await detectBackend(defaultExec);
  // One iptables-save of every table: iptables-nft-save reads the whole ruleset for each call
  // (≈ 2 s at 10k services), so `-t filter` then `-t nat` cost twice that. The comparison keeps
  // filter and nat.
  return iptablesSave(defaultExec, toolsFor(backend, family), undefined, TIMEOUT_MS);
}

/** What the kernel holds for `mode` and `family`, as the live comparison reads it. */
export async function readLiveRules(mode: ProxyMode, family: IPFamily): Promise<LiveRules> {
  if (mode === 'iptables') return saveAll(family);
  // IPVS: the virtual servers, our ipsets and kube-ipvs0's addresses as the proxier reads them
  // (`ipvsadm -Sn`, `ipset save`, `ip addr show`), and the iptables glue.
  if (mode === 'ipvs')
    return { kernel: await readKernelState(defaultExec, family), iptables: await saveAll(family) };
  // No table: the kernel holds nothing of ours, and the comparison reports what is missing.
  if (mode === 'nftables') return nftListTable(family === 'IPv6' ? 'ip6' : 'ip', 'kube-proxy');
  throw new ExplainInputError('--proxy-mode', mode, '--live supports iptables, nftables and ipvs');
}
