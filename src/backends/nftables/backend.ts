/**
 * Registration of nftables mode: render (the nft script), create (probes that nft and the kernel can
 * run our layout, then one NFTablesProxier per family) and cleanup (our table in both families).
 */
import type { Backend } from '../backend.js';
import type { Logger } from '../../observability/logger.js';
import { defaultExec, which } from '../../exec/run.js';
import { findNft, nftCheck, nftFullReader, nftRunner, nftSessionRunner } from '../../exec/nft.js';
import { nftDriftWatch } from './drift-watch.js';
import { ModeUnavailableError } from '../../errors.js';
import { TABLE_NAME } from './render-layout.js';
import { renderNFTables } from './render.js';
import { NFTablesProxier, nftLister, nftTableExists } from './proxier.js';

/** Set to 0: every transaction is a fresh `nft -f -` (see create()). */
export const NFT_SESSION_ENV = 'KUBE_PROXY_NFT_SESSION';

/** Whether small transactions go through a kept `nft -i`: yes unless the environment says `0`. */
export function nftSessionWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[NFT_SESSION_ENV] !== '0';
}

const PROBE = `add table ip kube-proxy-probe
add chain ip kube-proxy-probe c { type nat hook prerouting priority dstnat ; }
add map ip kube-proxy-probe m { typeof numgen random mod 1 : ip daddr . tcp dport ; }
add set ip kube-proxy-probe s { type ipv4_addr . inet_proto . inet_service . ipv4_addr ; flags interval ; }
add rule ip kube-proxy-probe c meta l4proto tcp dnat ip to numgen random mod 2 offset 4 map @m
add rule ip kube-proxy-probe c ip daddr . meta l4proto . th dport . ip saddr != @s drop
`;

/** Cleans one family table without failing when it is absent. */
function deleteTableScript(family: 'ip' | 'ip6'): string {
  return `add table ${family} ${TABLE_NAME}\ndelete table ${family} ${TABLE_NAME}\n`;
}

/** `--cleanup`: deletes our table in both families; other tables are never touched. */
export async function cleanupNFTables(logger: Logger): Promise<void> {
  let nft: string;
  try {
    nft = findNft();
  } catch {
    logger.debug('nft not installed: nothing to clean up for nftables mode');
    return;
  }
  const apply = nftRunner(nft);
  for (const family of ['ip', 'ip6'] as const) {
    try {
      await apply(deleteTableScript(family));
      logger.info({ table: `${family} ${TABLE_NAME}` }, 'deleted nftables table');
    } catch (err) {
      logger.warn({ table: `${family} ${TABLE_NAME}`, err }, 'could not delete nftables table');
    }
  }
}

/** The nftables mode. */
export const nftablesBackend: Backend = {
  mode: 'nftables',
  kernel: true,
  watches: ['ServiceCIDR'],
  prerequisites: [
    'nft >= 1.0.1 (nftables)',
    'kernel >= 5.13',
    'conntrack (conntrack-tools), for UDP cleanup',
  ],
  syncPeriods: (config) => ({
    syncPeriodMs: config.nftables.syncPeriodMs,
    minSyncPeriodMs: config.nftables.minSyncPeriodMs,
  }),
  fromConfig: () => nftablesBackend,
  render: (states, options, whole) => renderNFTables(states, options, whole),
  create: async (deps) => {
    const nft = findNft();
    try {
      await nftCheck(nft, PROBE);
    } catch (err) {
      throw new ModeUnavailableError(
        `nftables mode is not usable on this system (nft >= 1.0.1 and kernel >= 5.13 needed): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const conntrack = which('conntrack') !== undefined;
    if (!conntrack)
      deps.logger.warn(
        'the `conntrack` tool is not on PATH: stale UDP flows will not be cleaned after endpoint changes',
      );
    const watch = nftDriftWatch(nft, deps.options.family === 'IPv6' ? 'ip6' : 'ip', deps.logger);
    const ownPid = (pid: number): void => {
      watch.gate.ownPid(pid);
    };
    // Transactions up to 64 KB (every partial sync in practice, a small table's full sync) go through
    // one kept `nft -i` (~1 ms instead of 15-25 ms each), larger ones to `nft -f -`; with
    // KUBE_PROXY_NFT_SESSION=0 every one is `nft -f -` (docs/nftables-layout.md).
    const fresh = nftRunner(nft, defaultExec, ownPid);
    const apply = nftSessionWanted() ? nftSessionRunner(nft, { fallback: fresh, onOwnPid: ownPid }) : fresh;
    return new NFTablesProxier(deps, apply, conntrack, nftLister(nft), nftTableExists(nft), {
      script: nftFullReader(nft),
      watch,
    });
  },
  cleanup: (logger) => cleanupNFTables(logger),
};
