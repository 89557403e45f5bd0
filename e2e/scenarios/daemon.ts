/**
 * The real daemon as the lab tests run it: e2e/run-daemon.ts in the lab's node namespace, on the
 * scenario's manifests folder, with the flags every lab test shares (node name, cluster CIDR, health
 * and metrics addresses, -v=2, JSON logs). A test adds only what it is about.
 */
import { fileURLToPath } from 'node:url';
import type { LabProcess } from '../lab/topology.js';
import { NODE_NAME, type ScenarioContext } from './index.js';

const DAEMON = fileURLToPath(new URL('../run-daemon.ts', import.meta.url));

/** The service address the scenarios' `web` answers on (TCP 80). */
export const WEB_IP = '172.30.0.10';

export interface ScenarioDaemonOptions {
  /** --proxy-mode. */
  readonly mode: 'iptables' | 'nftables' | 'userspace' | 'ipvs';
  /** KUBE_PROXY_IPTABLES_BACKEND, for iptables mode. */
  readonly backend?: 'legacy' | 'nft';
  /** --healthz-bind-address (default 127.0.0.1:10256; '' turns the server off). */
  readonly healthz?: string;
  /** More flags, after the shared ones (a repeated flag wins, as on the command line). */
  readonly args?: readonly string[];
  /** More environment. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts the daemon in the lab's node and points the context's failure diagnostics at its log tail. */
export function startScenarioDaemon(ctx: ScenarioContext, o: ScenarioDaemonOptions): LabProcess {
  const d = ctx.lab.spawnInNode(
    process.execPath,
    [
      '--import',
      'tsx',
      DAEMON,
      `--proxy-mode=${o.mode}`,
      `--manifests=${ctx.dir}`,
      `--hostname-override=${NODE_NAME}`,
      '--cluster-cidr=10.244.0.0/16',
      `--healthz-bind-address=${o.healthz ?? '127.0.0.1:10256'}`,
      '--metrics-bind-address=127.0.0.1:10249',
      '-v=2',
      ...(o.args ?? []),
    ],
    { ...(o.backend ? { KUBE_PROXY_IPTABLES_BACKEND: o.backend } : {}), ...o.env },
  );
  ctx.diagnostics = () => `daemon:\n${d.tail(30)}`;
  return d;
}

/** Waits for the daemon's first "sync done", then for `web` to answer from the client pod. */
export async function waitUntilServing(ctx: ScenarioContext, d: LabProcess): Promise<void> {
  await d.waitForOutput(/"msg":"sync done"/, 120_000);
  await ctx.until(
    'web answers',
    async () => (await ctx.lab.tcp('client', WEB_IP, 80, { timeoutMs: 1000 })).ok,
  );
}

/** The daemon's /metrics text, read from inside the node. */
export async function scrapeMetrics(ctx: ScenarioContext): Promise<string> {
  return (await ctx.lab.exec('node', 'curl', ['-s', '-m', '2', 'http://127.0.0.1:10249/metrics'])).stdout;
}
