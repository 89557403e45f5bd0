/**
 * Reads what the kernel holds for `kube-proxy explain --live`, in the current network namespace:
 * iptables-save of the filter and nat tables (the backend in use, detected as the proxier does), or
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
    return (
      (await iptablesSave(defaultExec, tools, 'filter', TIMEOUT_MS)) +
      (await iptablesSave(defaultExec, tools, 'nat', TIMEOUT_MS))
    );
  }
  // No table: the kernel holds nothing of ours, and the comparison reports what is missing.
  if (mode === 'nftables') return nftListTable(family === 'IPv6' ? 'ip6' : 'ip', 'kube-proxy');
  throw new ExplainInputError('--proxy-mode', mode, '--live supports iptables and nftables');
}
