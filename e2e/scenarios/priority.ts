/**
 * The priority-services scenario, shared by e2e/priority.test.ts (which checks the order) and
 * bench/priority/bench.ts (which prints the times): a fresh lab node, a manifests folder with
 * `default/kubernetes` (443 -> pod b1:8080, a real listener) plus N bulk Services × 5 endpoints,
 * and the real daemon. A client pod connects to the kubernetes Service over and over from the
 * moment the daemon starts; the times come from the daemon's own log lines (pino's `time`, same
 * clock as the test) and the test's clock at the first answered connection.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab, type LabProcess } from '../lab/topology.js';
import { pollUntil } from '../lab/poll.js';
import { NODE_NAME, type Obj, slice, svc } from './index.js';

const DAEMON = fileURLToPath(new URL('../run-daemon.ts', import.meta.url));
export const KUBERNETES_IP = '172.30.0.1';

export type PriorityMode = 'iptables-legacy' | 'iptables-nft' | 'nftables';

export interface PriorityTimes {
  readonly mode: PriorityMode;
  readonly services: number;
  /** Daemon log: services and slices synced ("programming the data plane") -> priority sync done. */
  readonly stateToPriorityMs: number;
  /** Daemon log -> test clock: state synced -> the first connection to the kubernetes Service answered. */
  readonly stateToAnswerMs: number;
  /** Daemon log: state synced -> the first full sync done. */
  readonly stateToFullMs: number;
  /** The first full sync's own duration (the daemon's `sync done` ms). */
  readonly fullSyncMs: number;
}

/** The cluster: Node, ServiceCIDR, default/kubernetes on b1, and `n` bulk Services × 5 unreachable endpoints. */
export function priorityManifests(lab: Lab, n: number): Obj[] {
  const objs: Obj[] = [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: NODE_NAME },
      spec: { podCIDRs: ['10.244.0.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: lab.node.ip }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'kubernetes' },
      spec: { cidrs: ['172.30.0.0/16'] },
    },
    svc('kubernetes', { clusterIP: KUBERNETES_IP, ports: [{ name: 'https', port: 443, protocol: 'TCP' }] }),
    slice('kubernetes', [{ ip: lab.pod('b1').ip }], [{ name: 'https', port: 8080, protocol: 'TCP' }]),
  ];
  for (let i = 0; i < n; i++) {
    const ip = `172.30.${1 + (i >> 8)}.${i & 255}`;
    const eps = [0, 1, 2, 3, 4].map((j) => {
      const k = i * 5 + j;
      return { ip: `10.250.${k >> 8}.${k & 255}` };
    });
    objs.push(svc(`bulk-${i}`, { clusterIP: ip }), slice(`bulk-${i}`, eps));
  }
  return objs;
}

const logTime = (d: LabProcess, re: RegExp): number | undefined => {
  for (const line of d.stderr.split('\n')) {
    if (!re.test(line)) continue;
    try {
      // ISO-8601 (the logger's timestamp format) or epoch ms.
      const t = (JSON.parse(line) as { time: string | number }).time;
      return typeof t === 'number' ? t : Date.parse(t);
    } catch {
      /* a partial line */
    }
  }
  return undefined;
};

/**
 * Runs the scenario once on a fresh lab: starts the daemon in `mode` with `n` bulk Services, measures,
 * stops everything. Throws (with the daemon's log tail) when something never happens.
 */
export async function runPriorityScenario(mode: PriorityMode, n: number): Promise<PriorityTimes> {
  const lab = await createLab({ pods: ['client', 'b1'] });
  const dir = mkdtempSync(join(tmpdir(), 'kpt-priority-'));
  let daemon: LabProcess | undefined;
  const diagnostics = (): string => (daemon ? `daemon:\n${daemon.tail(20)}` : '');
  try {
    await lab.startBackend('b1', { tcpPorts: [8080] });
    writeFileSync(
      join(dir, 'cluster.yaml'),
      priorityManifests(lab, n)
        .map((o) => JSON.stringify(o))
        .join('\n---\n') + '\n',
    );
    const iptablesBackend = mode === 'iptables-legacy' ? 'legacy' : 'nft';
    daemon = lab.spawnInNode(
      process.execPath,
      [
        '--import',
        'tsx',
        DAEMON,
        `--proxy-mode=${mode === 'nftables' ? 'nftables' : 'iptables'}`,
        `--manifests=${dir}`,
        // One file holds the whole state (10 MB at 10k Services), over the 8 MiB default cap.
        '--manifests-max-file-size=268435456',
        `--hostname-override=${NODE_NAME}`,
        '--cluster-cidr=10.244.0.0/16',
        '--healthz-bind-address=',
        '--metrics-bind-address=',
        '-v=2',
      ],
      { KUBE_PROXY_IPTABLES_BACKEND: iptablesBackend },
    );
    const d = daemon;
    let exited = false;
    void d.exited.then(() => {
      exited = true;
    });
    // Connect from the start; each try is a new connection (a new conntrack flow).
    let answeredAt: number | undefined;
    const prober = (async () => {
      const end = Date.now() + 300_000;
      while (answeredAt === undefined && Date.now() < end && !exited) {
        const r = await lab.tcp('client', KUBERNETES_IP, 443, { timeoutMs: 100 });
        if (r.ok) answeredAt = Date.now();
      }
    })();
    const fullDoneAt = await pollUntil(
      'the first full sync',
      () => Promise.resolve(logTime(d, /"msg":"sync done".*"full":true|"full":true.*"msg":"sync done"/)),
      { timeoutMs: 300_000, intervalMs: 250, diagnostics },
    );
    await prober;
    const stateAt = logTime(d, /programming the data plane/);
    const priorityAt = logTime(d, /priority services programmed/);
    if (answeredAt === undefined || stateAt === undefined || priorityAt === undefined)
      throw new Error(
        `missing a time: answered ${String(answeredAt)} state ${String(stateAt)} priority ${String(priorityAt)}\n${diagnostics()}`,
      );
    const fullLine = d.stderr.split('\n').find((l) => /"msg":"sync done"/.test(l) && /"full":true/.test(l));
    const fullSyncMs = fullLine ? (JSON.parse(fullLine) as { ms: number }).ms : NaN;
    return {
      mode,
      services: n,
      stateToPriorityMs: priorityAt - stateAt,
      stateToAnswerMs: answeredAt - stateAt,
      stateToFullMs: fullDoneAt - stateAt,
      fullSyncMs,
    };
  } finally {
    await daemon?.stop(30_000);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
