/**
 * One TCP connect probe (keepalived's TCP_CHECK): connect, then close at once. The health checker's
 * only door to the network.
 */
import { Socket } from 'node:net';

/**
 * Resolves true when a TCP connection to ip:port is established within `timeoutMs`, false on any
 * error (refused, unreachable) or timeout. Never rejects; the socket is always destroyed.
 */
export function tcpConnectProbe(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => {
      finish(false);
    }, timeoutMs);
    timer.unref();
    s.once('connect', () => {
      finish(true);
    });
    s.once('error', () => {
      finish(false);
    });
    s.connect({ host: ip, port });
  });
}
