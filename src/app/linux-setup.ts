/** Applies upstream's startup kernel settings (oom_score_adj, conntrack sysctls). Best effort, logged. */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { conntrackSysctls, isKernelMode } from '../proxy/linux-setup-plan.js';

/**
 * In kernel modes: sets this process's oom_score_adj and the conntrack sysctls of the network
 * namespace it runs in. Failures (read-only /proc/sys in a container, a sysctl that is not per
 * namespace) are warnings, as upstream.
 */
export function applyLinuxSetup(config: ProxyConfig, logger: Logger): void {
  if (!isKernelMode(config.mode) || process.platform !== 'linux') return;
  try {
    writeFileSync('/proc/self/oom_score_adj', String(config.oomScoreAdj));
  } catch (err) {
    logger.warn({ err, value: config.oomScoreAdj }, 'cannot set oom_score_adj');
  }
  for (const w of conntrackSysctls(config, availableParallelism())) {
    const file = `/proc/sys/${w.path}`;
    try {
      const cur = Number(readFileSync(file, 'utf8').trim());
      if (cur === w.value || (w.onlyRaise && cur >= w.value)) continue;
      writeFileSync(file, String(w.value));
      logger.info({ sysctl: w.path.replaceAll('/', '.'), from: cur, to: w.value }, 'set sysctl');
    } catch (err) {
      logger.warn({ sysctl: w.path.replaceAll('/', '.'), value: w.value, err }, 'cannot set sysctl');
    }
  }
}
