/** Applies upstream's startup kernel settings (oom_score_adj, conntrack sysctls). Best effort, logged. */
import { availableParallelism } from 'node:os';
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { conntrackSysctls } from '../proxy/linux-setup-plan.js';
import { ensureSysctl, sysctlName, writeOomScoreAdj } from '../exec/sysctl.js';

/**
 * For kernel modes (the caller decides): sets this process's oom_score_adj and the conntrack sysctls of the network
 * namespace it runs in. Failures (read-only /proc/sys in a container, a sysctl that is not per
 * namespace) are warnings, as upstream.
 */
export function applyLinuxSetup(config: ProxyConfig, logger: Logger): void {
  if (process.platform !== 'linux') return;
  try {
    writeOomScoreAdj(config.oomScoreAdj);
  } catch (err) {
    logger.warn({ err, value: config.oomScoreAdj }, 'cannot set oom_score_adj');
  }
  for (const w of conntrackSysctls(config, availableParallelism())) {
    try {
      const from = ensureSysctl(w.path, w.value, { onlyRaise: w.onlyRaise ?? false });
      if (from !== undefined) logger.info({ sysctl: sysctlName(w.path), from, to: w.value }, 'set sysctl');
    } catch (err) {
      logger.warn({ sysctl: sysctlName(w.path), value: w.value, err }, 'cannot set sysctl');
    }
  }
}
