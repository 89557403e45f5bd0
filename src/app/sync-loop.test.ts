import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncLoop } from './sync-loop.js';
import { StateTracker } from '../proxy/state-tracker.js';
import { createMemoryLogger } from '../observability/logger.js';
import type { Proxier } from '../backends/backend.js';
import type { DesiredState } from '../proxy/types.js';
import { makeService, makeSlice } from '../../test/fixtures/objects.js';

function recordingProxier(failTimes = 0) {
  const calls: { full: boolean; changed: string[]; size: number }[] = [];
  let fails = failTimes;
  const p: Proxier = {
    sync: (s: DesiredState, full: boolean) => {
      calls.push({ full, changed: [...s.changedServices].sort(), size: s.services.size });
      if (fails-- > 0) return Promise.reject(new Error('restore failed'));
      return Promise.resolve({});
    },
    close: () => Promise.resolve(),
  };
  return { p, calls };
}

async function settle(loop: SyncLoop) {
  await new Promise((r) => setTimeout(r, 5));
  await loop.idle();
}

test('nothing is programmed until services and slices have synced; then one full sync', async () => {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  const { p, calls } = recordingProxier();
  const loop = new SyncLoop(
    tracker,
    new Map([['IPv4', p]]),
    { minSyncPeriodMs: 0, syncPeriodMs: 50 },
    {},
    createMemoryLogger(),
  );
  loop.start();
  loop.handleEvent({ type: 'add', object: makeService('ns', 'a') });
  loop.handleEvent({ type: 'synced', kind: 'Service' });
  await settle(loop);
  assert.equal(calls.length, 0);
  loop.handleEvent({ type: 'synced', kind: 'EndpointSlice' });
  await settle(loop);
  assert.deepEqual(calls, [{ full: true, changed: ['ns/a'], size: 1 }]);
  loop.handleEvent({ type: 'add', object: makeSlice('ns', 'a', 's', [{ ip: '10.0.0.1' }]) });
  await settle(loop);
  assert.deepEqual(calls[1], { full: false, changed: ['ns/a'], size: 1 });
  await loop.stop();
});

test('a failed sync is retried as a full sync that still carries the change', async () => {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  const { p, calls } = recordingProxier(0);
  const failed: boolean[] = [];
  const loop = new SyncLoop(
    tracker,
    new Map([['IPv4', p]]),
    { minSyncPeriodMs: 0, syncPeriodMs: 20 },
    { failed: (_f, full) => failed.push(full) },
    createMemoryLogger(),
  );
  loop.start();
  loop.handleEvent({ type: 'synced', kind: 'Service' });
  loop.handleEvent({ type: 'synced', kind: 'EndpointSlice' });
  await settle(loop);
  // now make the next sync fail once
  let failOnce = true;
  p.sync = (s, full) => {
    calls.push({ full, changed: [...s.changedServices], size: s.services.size });
    if (failOnce) {
      failOnce = false;
      return Promise.reject(new Error('boom'));
    }
    return Promise.resolve({});
  };
  loop.handleEvent({ type: 'add', object: makeService('ns', 'b') });
  await settle(loop);
  for (let i = 0; i < 50 && calls.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(calls.slice(1), [
    { full: false, changed: ['ns/b'], size: 1 },
    { full: true, changed: ['ns/b'], size: 1 },
  ]);
  assert.deepEqual(failed, [false]);
  await loop.stop();
});

function startedLoop(
  proxier: Proxier,
  priority: ReadonlySet<string>,
  hooks: ConstructorParameters<typeof SyncLoop>[3] = {},
) {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  const loop = new SyncLoop(
    tracker,
    new Map([['IPv4', proxier]]),
    { minSyncPeriodMs: 0, syncPeriodMs: 50, priorityServices: priority },
    hooks,
    createMemoryLogger(),
  );
  loop.start();
  for (const [ns, name, ip] of [
    ['default', 'kubernetes', '172.30.0.1'],
    ['kube-system', 'kube-dns', '172.30.0.10'],
    ['ns', 'a', '172.30.0.41'],
    ['ns', 'b', '172.30.0.42'],
  ] as const)
    loop.handleEvent({ type: 'add', object: makeService(ns, name, { clusterIP: ip }) });
  loop.handleEvent({ type: 'synced', kind: 'Service' });
  loop.handleEvent({ type: 'synced', kind: 'EndpointSlice' });
  return loop;
}

test('the first sync programs the priority services alone first, then everything; later syncs do not repeat it', async () => {
  const { p, calls } = recordingProxier();
  const seen: string[][] = [];
  const loop = startedLoop(p, new Set(['default/kubernetes', 'kube-system/kube-dns', 'x/absent']), {
    prioritySynced: (_f, services) => seen.push([...services]),
  });
  await settle(loop);
  assert.deepEqual(calls, [
    { full: true, changed: ['default/kubernetes', 'kube-system/kube-dns'], size: 2 },
    { full: true, changed: ['default/kubernetes', 'kube-system/kube-dns', 'ns/a', 'ns/b'], size: 4 },
  ]);
  assert.deepEqual(seen, [['default/kubernetes', 'kube-system/kube-dns']]);
  loop.forceFullSync();
  await settle(loop);
  assert.equal(calls.length, 3);
  assert.equal(calls[2]?.size, 4);
  await loop.stop();
});

test('no priority sync when the proxier finds rules of an earlier run, or when none of the services exists', async () => {
  const restarted = recordingProxier();
  const p: Proxier = { ...restarted.p, hasProgrammedRules: () => Promise.resolve(true) };
  const loop = startedLoop(p, new Set(['default/kubernetes']));
  await settle(loop);
  assert.deepEqual(
    restarted.calls.map((c) => c.size),
    [4],
  );
  await loop.stop();
  const fresh = recordingProxier();
  const loop2 = startedLoop(fresh.p, new Set(['x/absent']));
  await settle(loop2);
  assert.deepEqual(
    fresh.calls.map((c) => c.size),
    [4],
  );
  await loop2.stop();
});

test('a failed priority sync does not fail the first sync', async () => {
  const { p, calls } = recordingProxier(1);
  const loop = startedLoop(p, new Set(['default/kubernetes']));
  await settle(loop);
  assert.deepEqual(
    calls.map((c) => [c.full, c.size]),
    [
      [true, 1],
      [true, 4],
    ],
  );
  await loop.stop();
});

test('periodicSyncMs: with nothing queued the runner still syncs that often (IPVS), and not as a full sync', async () => {
  const tracker = new StateTracker({ families: ['IPv4'], nodeName: 'n' });
  const { p, calls } = recordingProxier();
  const loop = new SyncLoop(
    tracker,
    new Map([['IPv4', p]]),
    { minSyncPeriodMs: 0, syncPeriodMs: 1000, periodicSyncMs: 40 },
    {},
    createMemoryLogger(),
  );
  loop.start();
  loop.handleEvent({ type: 'synced', kind: 'Service' });
  loop.handleEvent({ type: 'synced', kind: 'EndpointSlice' });
  for (let i = 0; i < 100 && calls.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  await loop.stop();
  assert.ok(calls.length >= 3, `syncs: ${JSON.stringify(calls)}`);
  assert.equal(calls[0]!.full, true);
  assert.ok(
    calls.slice(1).every((c) => !c.full && c.changed.length === 0),
    JSON.stringify(calls),
  );
});
