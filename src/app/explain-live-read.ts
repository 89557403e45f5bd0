/**
 * Reads what the kernel holds for `kube-proxy explain --live`, in the current network namespace:
 * iptables-save of the nat and filter tables (the backend in use, as the proxier detects it), or
 * `nft list table <family> kube-proxy`. Read-only.
 */
import type { ProxyMode } from '../backends/backend.js';
import { defaultExec, detectBackend, toolsFor } from '../backends/iptables/tools.js';
import type { IPFamily } from '../model/types.js';
import { run } from '../exec/run.js';
import { ExplainInputError } from '../explain/explain.js';

const TIMEOUT_MS = 30_000;

/** The kernel's rules of `mode` for `family`, as text the live comparison reads. */
export async function readLiveRules(mode: ProxyMode, family: IPFamily): Promise<string> {
  if (mode === 'iptables') {
    const { backend } = await detectBackend(defaultExec);
    const tools = toolsFor(backend, family);
    let out = '';
    for (const table of ['filter', 'nat'])
      out += (await run(tools.save, ['-t', table], { timeoutMs: TIMEOUT_MS })).stdout;
    return out;
  }
  if (mode === 'nftables') {
    const fam = family === 'IPv6' ? 'ip6' : 'ip';
    const r = await run('nft', ['list', 'table', fam, 'kube-proxy'], {
      timeoutMs: TIMEOUT_MS,
      okCodes: [0, 1],
    });
    // No table: the kernel holds nothing of ours; the comparison reports every missing rule.
    return r.code === 0 ? r.stdout : '';
  }
  throw new ExplainInputError('--proxy-mode', mode, '--live supports iptables and nftables');
}
