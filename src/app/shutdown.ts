/**
 * How long the daemon waits for a clean stop on SIGTERM/SIGINT. ProxyServer.stop() waits for a sync
 * or drift check in progress, and a full sync at 50,000 Services runs for a minute or more (an
 * emulated IPVS sync for minutes): past the kubelet's 30 s grace the pod would be SIGKILLed anyway.
 * Upstream kube-proxy does not wait at all: the signal ends it. Leaving mid-sync is safe: each
 * restore or transaction commits whole or not at all, and the next start's full sync repairs the rest.
 */
export const SHUTDOWN_WAIT_MS = 10_000;

/**
 * Runs `stop` and resolves 'stopped' when it finishes, or 'timeout' after `waitMs` if it has not
 * (its failure rejects). The timer does not hold the process.
 */
export function stopWithin(
  stop: () => Promise<void>,
  waitMs = SHUTDOWN_WAIT_MS,
): Promise<'stopped' | 'timeout'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      resolve('timeout');
    }, waitMs);
    timer.unref();
    stop().then(
      () => {
        clearTimeout(timer);
        resolve('stopped');
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
