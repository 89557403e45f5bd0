/**
 * Registration of IPVS mode: render (ipset, ipvsadm and iptables text), create (checks the tools and
 * the kernel's IPVS, loads the modules, sets the connection timeouts, then one IPVSProxier per family)
 * and cleanup.
 */
import type { Backend } from '../backend.js';
import { defaultExec, run, which } from '../../exec/run.js';
import { detectBackend, toolsFor } from '../../exec/iptables.js';
import { ipvsadmSetTimeouts } from '../../exec/ipvsadm.js';
import { ModeUnavailableError } from '../../errors.js';

import { assertScheduler, renderIPVSText } from './render.js';
import {
  IPVSProxier,
  cleanupIPVS,
  gracefulFromEnv,
  ipvsTimeoutArgs,
  readLocalAddresses,
  type WithTimeouts,
} from './proxier.js';

/** Kernel modules IPVS mode uses (loaded best effort; the probe below decides). */
const MODULES = ['ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_sh', 'nf_conntrack'];

/** The IPVS mode. */
export const ipvsBackend: Backend = {
  mode: 'ipvs',
  kernel: true,
  watches: [],
  prerequisites: [
    'kernel IPVS (ip_vs and the scheduler module)',
    'ipvsadm, ipset and ip (iproute2)',
    'iptables (legacy or nft) with iptables-restore',
    'conntrack (conntrack-tools), for UDP cleanup',
  ],
  syncPeriods: (config) => ({
    syncPeriodMs: config.ipvs.syncPeriodMs,
    minSyncPeriodMs: config.ipvs.minSyncPeriodMs,
    periodicSyncMs: config.ipvs.syncPeriodMs,
  }),
  fromConfig: () => ipvsBackend,
  render: (states, options, _whole, machine) => renderIPVSText(states, options, machine?.localAddresses),
  create: async (deps) => {
    for (const tool of ['ipvsadm', 'ipset', 'ip'])
      if (!which(tool))
        throw new ModeUnavailableError(
          `ipvs mode needs \`${tool}\` on PATH (Debian: apt-get install ipvsadm ipset iproute2)`,
        );
    const scheduler = deps.options.ipvsScheduler || 'rr';
    assertScheduler(scheduler);
    if (which('modprobe'))
      for (const m of [...MODULES, `ip_vs_${scheduler}`])
        await run('modprobe', [m], { okCodes: [0, 1], timeoutMs: 30_000 }).catch(() => undefined);
    try {
      await run('ipvsadm', ['-Ln'], { timeoutMs: 30_000 });
    } catch (err) {
      throw new ModeUnavailableError(
        `ipvs mode is not usable: the kernel has no IPVS (CONFIG_IP_VS) or the module cannot be loaded: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const o: WithTimeouts = deps.options;
    const timeouts = ipvsTimeoutArgs({
      tcpMs: o.ipvsTcpTimeoutMs ?? 0,
      tcpFinMs: o.ipvsTcpFinTimeoutMs ?? 0,
      udpMs: o.ipvsUdpTimeoutMs ?? 0,
    });
    if (timeouts) {
      // As upstream: a failure here is logged, the mode still runs with the kernel's timeouts.
      await ipvsadmSetTimeouts(defaultExec, timeouts).catch((err: unknown) => {
        deps.logger.error({ args: timeouts, err }, 'cannot set ipvs timeouts');
      });
    }
    const { backend, reason } = await detectBackend(defaultExec);
    const iptables = toolsFor(backend, deps.options.family);
    if (!which(iptables.restore))
      throw new ModeUnavailableError(
        `ipvs mode needs ${iptables.restore} on PATH (Debian: apt-get install iptables)`,
      );
    deps.logger.info({ backend, reason, scheduler }, 'ipvs mode: using iptables backend');
    return new IPVSProxier({
      ...deps,
      iptables,
      graceful: gracefulFromEnv(),
      localAddresses: readLocalAddresses,
    });
  },
  cleanup: (logger) => cleanupIPVS(logger),
  cleanupBefore: ['iptables'],
};
