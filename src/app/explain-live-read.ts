/**
 * Reads what the kernel holds for `kube-proxy explain --live`, in the current network namespace:
 * one iptables-save of every table (the backend in use, detected as the proxier does; the comparison
 * reads filter and nat), or
 * `nft list table <family> kube-proxy`. Read-only; every command goes through exec/.
 */
import type { ProxyMode } from '../model/proxy-mode.js';
import type { IPFamily } from '../model/types.js';
import { defaultExec } from '../exec/run.js';
import { detectBackend, iptablesSave, toolsFor } from '../exec/iptables.js';
import { nftListTable } from '../exec/nft.js';
import { ExplainInputError } from '../explain/explain.js';

const TIMEOUT_MS = 30_000;

/** The kernel's rules of `mode` for `family`, as text the live comparison reads. */
export async function readLiveRules(mode: ProxyMode, family: IPFamily): Promise<string> {
  if (mode === 'iptables') {
    const { backend } = await detectBackend(defaultExec);
    const tools = toolsFor(backend, family);
    // One iptables-save of every table: iptables-nft-save reads the whole ruleset for each call
    // (≈ 2 s at 10k services), so `-t filter` then `-t nat` cost twice that. The comparison keeps
    // filter and nat.
    return iptablesSave(defaultExec, tools, undefined, TIMEOUT_MS);
  }
  // No table: the kernel holds nothing of ours, and the comparison reports what is missing.
  if (mode === 'nftables') return nftListTable(family === 'IPv6' ? 'ip6' : 'ip', 'kube-proxy');
  throw new ExplainInputError('--proxy-mode', mode, '--live supports iptables and nftables');
}
