/** Applies upstream's startup kernel settings (oom_score_adj, conntrack sysctls). Best effort, logged. */
import { availableParallelism } from 'node:os';
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { conntrackSysctls, modeSysctls, type SysctlWrite } from '../proxy/linux-setup-plan.js';
import { ensureSysctl, PROC_SYS, sysctlName, writeOomScoreAdj } from '../exec/sysctl.js';

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

/**
 * `kube-proxy --init-only`, for a privileged init container: sets the sysctls the configured mode needs
 * (see modeSysctls) and, for a kernel mode (`kernel`, from the mode's registration), the conntrack
 * sysctls, then returns, so the proxy container itself can run with CAP_NET_ADMIN alone. A mode sysctl
 * that cannot be set is an error (the mode would not work: false is returned, and main exits non-zero);
 * a conntrack sysctl that cannot be set is a warning, as at daemon start. `procSys` is the sysctl tree
 * (the running network namespace's /proc/sys by default).
 */
export function runInitOnly(
  config: ProxyConfig,
  kernel: boolean,
  logger: Logger,
  procSys = PROC_SYS,
): boolean {
  let ok = true;
  const apply = (w: SysctlWrite, required: boolean): void => {
    const name = sysctlName(w.path);
    try {
      const from = ensureSysctl(w.path, w.value, { onlyRaise: w.onlyRaise ?? false, root: procSys });
      if (from !== undefined) logger.info({ sysctl: name, from, to: w.value }, 'set sysctl');
    } catch (err) {
      if (required) {
        ok = false;
        logger.error(
          { sysctl: name, value: w.value, err, mode: config.mode },
          'cannot set sysctl the mode needs',
        );
      } else {
        logger.warn({ sysctl: name, value: w.value, err }, 'cannot set sysctl');
      }
    }
  };
  for (const w of modeSysctls(config)) apply(w, true);
  if (kernel) for (const w of conntrackSysctls(config, availableParallelism())) apply(w, false);
  logger.info({ mode: config.mode, ok }, 'init-only: system initialised; exiting');
  return ok;
}
