// Runs the userspace relay for the benchmark in its own process (optionally as N cluster workers
// sharing the listening sockets), so its CPU time can be read from /proc.
// argv[2]: JSON { httpPorts: number[], bulkPort: number, address: string, port: number, bulkPortFront: number,
//                 highWaterMark?: number, readBufferBytes?: number, workers?: number }
// Prints "ready <pid> <pid>..." (every process that relays) once listening.
import cluster from 'node:cluster';
import { makeNode, makeService, makeSlice } from '../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../src/proxy/state-from-objects.js';
import { createLogger } from '../../src/observability/logger.js';
import type { FamilyOptions } from '../../src/proxy/options.js';
import { UserspaceProxier } from '../../src/backends/userspace/relay.js';
import { familyOptions } from '../../test/fixtures/options.js';

interface Args {
  httpPorts: number[];
  bulkPort: number;
  address: string;
  port: number;
  bulkPortFront: number;
  highWaterMark?: number;
  readBufferBytes?: number;
  workers?: number;
}
const args = JSON.parse(process.argv[2] ?? '{}') as Args;

const OPTS: FamilyOptions = familyOptions({ randomFully: false });

async function runRelay(): Promise<void> {
  const objects = [
    makeNode('bench', ['127.0.0.2']),
    makeService('bench', 'http', {
      clusterIP: args.address,
      ports: [{ name: 'p', port: args.port, protocol: 'TCP' }],
    }),
    ...args.httpPorts.map((port, i) =>
      makeSlice(
        'bench',
        'http',
        `http-${i}`,
        [{ ip: '127.0.0.1', nodeName: 'bench' }],
        [{ name: 'p', port, protocol: 'TCP' }],
      ),
    ),
    makeService('bench', 'bulk', {
      clusterIP: args.address,
      ports: [{ name: 'p', port: args.bulkPortFront, protocol: 'TCP' }],
    }),
    makeSlice(
      'bench',
      'bulk',
      'bulk-0',
      [{ ip: '127.0.0.1', nodeName: 'bench' }],
      [{ name: 'p', port: args.bulkPort, protocol: 'TCP' }],
    ),
  ];
  const state = desiredStatesFromObjects(objects, { families: ['IPv4'], nodeName: 'bench' })[0]!;
  const p = new UserspaceProxier(
    { logger: createLogger(0, process.stderr), options: OPTS },
    {
      ...(args.highWaterMark ? { highWaterMark: args.highWaterMark } : {}),
      ...(args.readBufferBytes ? { readBufferBytes: args.readBufferBytes } : {}),
    },
  );
  await p.sync(state);
}

// Exit normally on a signal so `--cpu-prof` can write its profile.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));

const workers = args.workers ?? 1;
if (workers <= 1) {
  await runRelay();
  process.stdout.write(`ready ${process.pid}\n`);
} else if (cluster.isPrimary) {
  // SCHED_NONE: workers accept from the shared socket themselves (the kernel spreads connections),
  // instead of the primary accepting and passing every handle.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const pids: number[] = [];
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    w.on('message', (m: unknown) => {
      if (m === 'ready') {
        pids.push(w.process.pid!);
        if (pids.length === workers) process.stdout.write(`ready ${pids.join(' ')}\n`);
      }
    });
  }
} else {
  await runRelay();
  process.send?.('ready');
}
