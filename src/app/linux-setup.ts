/** Applies upstream's startup kernel settings (oom_score_adj, conntrack sysctls). Best effort, logged. */
import { availableParallelism } from 'node:os';
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { conntrackSysctls, modeSysctls, type SysctlWrite } from '../proxy/linux-setup-plan.js';
import {
  CONNTRACK_HASHSIZE,
  ensureSysctl,
  inInitialNetns,
  PROC_SYS,
  raiseSysfsInt,
  sysctlName,
  writeOomScoreAdj,
} from '../exec/sysctl.js';

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
      if (from !== undefined) {
        logger.info({ sysctl: sysctlName(w.path), from, to: w.value }, 'set sysctl');
        if (w.path === CONNTRACK_MAX) raiseConntrackHashsize(w.value, logger);
      }
    } catch (err) {
      logger.warn({ sysctl: sysctlName(w.path), value: w.value, err }, 'cannot set sysctl');
    }
  }
}

const CONNTRACK_MAX = 'net/netfilter/nf_conntrack_max';

/** Where {@link raiseConntrackHashsize} reads and writes; tests point it at a fake tree. */
export interface HashsizeOptions {
  readonly file?: string;
  readonly inInitialNetns?: () => boolean;
}

/**
 * After nf_conntrack_max was raised to `max`, raises the conntrack hash table to max/4 buckets as
 * upstream does, when it is smaller. The hash size is a module parameter, global to the machine, so it
 * is left alone unless the proxy runs in the initial network namespace (a hostNetwork pod does): a
 * proxy in another namespace must not resize the machine's table. Returns whether it wrote; failures
 * (a read-only /sys in a container) are warnings.
 */
export function raiseConntrackHashsize(max: number, logger: Logger, opts: HashsizeOptions = {}): boolean {
  const file = opts.file ?? CONNTRACK_HASHSIZE;
  const want = Math.floor(max / 4);
  if (!(opts.inInitialNetns ?? inInitialNetns)()) {
    logger.debug({ file }, 'conntrack hashsize left alone: it is global and this is not the initial netns');
    return false;
  }
  try {
    const from = raiseSysfsInt(file, want);
    if (from === undefined) return false;
    logger.info({ file, from, to: want }, 'set conntrack hashsize');
    return true;
  } catch (err) {
    logger.warn({ file, value: want, err }, 'cannot set conntrack hashsize (is /sys mounted read-only?)');
    return false;
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
      if (from !== undefined && w.path === CONNTRACK_MAX && procSys === PROC_SYS)
        raiseConntrackHashsize(w.value, logger);
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
