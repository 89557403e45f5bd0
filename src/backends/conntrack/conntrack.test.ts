import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode, makeService, makeSlice } from '../../../test/fixtures/objects.js';
import { desiredStatesFromObjects } from '../../proxy/state-from-objects.js';
import { createMemoryLogger } from '../../observability/logger.js';
import { createMetrics, renderMetrics } from '../../observability/metrics.js';
import type { RunResult } from '../../exec/run.js';
import { reconcileConntrack } from './conntrack.js';
import { filterArgs } from './plan.js';

const NODE = 'node-1';
const [state] = desiredStatesFromObjects(
  [
    makeNode(NODE, ['10.100.0.2']),
    makeService('ns', 'dns', {
      clusterIP: '172.30.0.10',
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    }),
    makeSlice(
      'ns',
      'dns',
      'dns-1',
      [{ ip: '10.244.0.11', nodeName: NODE }],
      [{ name: 'dns', port: 5353, protocol: 'UDP' }],
    ),
  ],
  { families: ['IPv4'], nodeName: NODE },
);
const LIST =
  'udp      17 29 src=10.244.0.10 dst=172.30.0.10 sport=40001 dport=53 [UNREPLIED] src=10.244.0.12 dst=10.244.0.10 sport=5353 dport=40001 mark=0 use=1\n';

/** A conntrack tool that lists `list` and reports one deleted flow per `-D`; `calls` records each run. */
function fakeConntrack(list: string): {
  calls: string[][];
  exec: (cmd: string, args: readonly string[]) => Promise<RunResult>;
} {
  const calls: string[][] = [];
  const exec = (cmd: string, args: readonly string[]): Promise<RunResult> => {
    calls.push([cmd, ...args]);
    const deleting = args[0] === '-D';
    return Promise.resolve({
      code: 0,
      durationMs: 0,
      stdout: deleting ? '' : list,
      stderr: deleting ? 'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n' : '',
    });
  };
  return { calls, exec };
}

test('reconcileConntrack deletes the stale flow and counts it in the reconciler metrics', async () => {
  const { calls, exec } = fakeConntrack(LIST);
  const metrics = createMetrics({ defaultMetrics: false });
  await reconcileConntrack(state!, { exec, logger: createMemoryLogger(), metrics });
  assert.deepEqual(calls[1], [
    'conntrack',
    '-D',
    '-f',
    'ipv4',
    '-p',
    'udp',
    '--orig-dst',
    '172.30.0.10',
    '--dport',
    '53',
    '--reply-src',
    '10.244.0.12',
  ]);
  const text = await renderMetrics(metrics.registry);
  assert.match(text, /^kubeproxy_conntrack_reconciler_deleted_entries_total\{ip_family="IPv4"\} 1$/m);
  assert.match(text, /^kubeproxy_conntrack_reconciler_sync_duration_seconds_count\{ip_family="IPv4"\} 1$/m);
});

test('reconcileConntrack logs a failing tool and does not throw (the sync stands)', async () => {
  const logger = createMemoryLogger();
  await reconcileConntrack(state!, {
    exec: () => Promise.reject(new Error('conntrack: not found')),
    logger,
  });
  assert.ok(
    logger.entries.some(
      (e) => e.msg === 'conntrack cleanup failed' && String(e.obj.err).includes('not found'),
    ),
  );
});

test('after a full sync, or one that added a TCP frontend: the un-NATed SYN_SENT flows of TCP frontends are listed and deleted', async () => {
  const [web] = desiredStatesFromObjects(
    [
      makeNode(NODE, ['10.100.0.2']),
      makeService('ns', 'web', { clusterIP: '172.30.0.20' }),
      makeSlice('ns', 'web', 'web-1', [{ ip: '10.244.0.11', nodeName: NODE }]),
    ],
    { families: ['IPv4'], nodeName: NODE },
  );
  const stuck =
    'tcp      6 110 SYN_SENT src=10.244.0.10 dst=172.30.0.20 sport=40000 dport=80 [UNREPLIED] src=172.30.0.20 dst=10.244.0.10 sport=80 dport=40000 mark=0 use=1\n';
  const run = async (full: boolean, tcpFrontendsAdded = false) => {
    const { calls, exec } = fakeConntrack(stuck);
    const metrics = createMetrics({ defaultMetrics: false });
    const logger = createMemoryLogger();
    const state = { ...web!, conntrack: { ...web!.conntrack, tcpFrontendsAdded } };
    await reconcileConntrack(state, { exec, logger, metrics }, full);
    return { calls, text: await renderMetrics(metrics.registry), logger };
  };
  const partial = await run(false);
  assert.deepEqual(partial.calls, [], 'a partial sync of a TCP-only state runs no conntrack at all');
  const gained = await run(false, true);
  assert.equal(gained.calls.length, 2, 'a partial sync that added a TCP frontend looks too');
  const full = await run(true);
  assert.deepEqual(full.calls, [
    ['conntrack', '-L', '-f', 'ipv4', '-p', 'tcp', '--state', 'SYN_SENT'],
    [
      'conntrack',
      '-D',
      '-f',
      'ipv4',
      ...filterArgs({
        protocol: 'tcp',
        origDst: '172.30.0.20',
        origDport: 80,
        replySrc: '172.30.0.20',
        state: 'SYN_SENT',
      }),
    ],
  ]);
  assert.match(full.text, /^kubeproxy_conntrack_reconciler_deleted_entries_total\{ip_family="IPv4"\} 1$/m);
  assert.ok(full.logger.entries.some((e) => e.obj.flows === 1 && e.obj.frontends === 1));
});
