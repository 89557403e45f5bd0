import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryLogger } from '../../observability/logger.js';
import type { LineWatch } from '../../exec/run.js';
import { monitorOutgrown, nftDriftWatch } from './drift-watch.js';

const MiB = 1024 * 1024;

test('monitorOutgrown: half its first size, and at least 64 MiB', () => {
  assert.equal(monitorOutgrown(100 * MiB, 150 * MiB), false);
  assert.equal(monitorOutgrown(100 * MiB, 165 * MiB), true, '100 MiB + 64 MiB');
  assert.equal(monitorOutgrown(200 * MiB, 299 * MiB), false);
  assert.equal(monitorOutgrown(200 * MiB, 301 * MiB), true, '200 MiB + 100 MiB');
});

test('a monitor that outgrows its first size is replaced at a drift check, which then reads the table back', () => {
  const started: { rss: number; stopped: boolean; exit: () => void }[] = [];
  const monitor = (
    _nft: string,
    _onLine: (l: string) => void,
    onExit: (code: number | null, stderr: string) => void,
  ): LineWatch => {
    const m = {
      rss: 100 * MiB,
      stopped: false,
      exit: () => {
        onExit(null, '');
      },
    };
    started.push(m);
    return {
      pid: started.length,
      stop: () => {
        m.stopped = true;
        m.exit();
      },
      rssBytes: () => (m.stopped ? undefined : m.rss),
    };
  };
  const logger = createMemoryLogger();
  const w = nftDriftWatch('nft', 'ip', logger, monitor);
  w.ensure();
  assert.equal(started.length, 1);
  assert.equal(w.gate.needsRead(), true, 'a new monitor: the first check reads');
  w.gate.readClean(w.gate.token());
  w.ensure(); // the first check after the start takes its size (100 MiB)
  started[0]!.rss = 160 * MiB;
  w.ensure();
  assert.equal(started.length, 1, 'grown by 60 MiB: kept');
  assert.equal(w.gate.needsRead(), false);
  started[0]!.rss = 170 * MiB;
  w.ensure();
  assert.equal(started.length, 2, 'grown by 70 MiB: replaced');
  assert.equal(started[0]!.stopped, true);
  assert.equal(w.gate.needsRead(), true, 'events between the two monitors are unknown: read back');
  assert.ok(logger.entries.some((e) => e.obj.firstMB === 100 && e.obj.nowMB === 170));
  assert.ok(
    !logger.entries.some((e) => e.msg.startsWith('nft monitor exited')),
    'the replaced monitor ending is not reported as an unexpected exit',
  );
  // The new monitor's own first size is taken afresh.
  w.gate.readClean(w.gate.token());
  started[1]!.rss = 300 * MiB;
  w.ensure();
  started[1]!.rss = 340 * MiB;
  w.ensure();
  assert.equal(started.length, 2);
  // An exit of its own is reported, and the next check starts another.
  started[1]!.exit();
  assert.ok(logger.entries.some((e) => e.msg.startsWith('nft monitor exited')));
  w.ensure();
  assert.equal(started.length, 3);
  w.stop();
  assert.equal(started[2]!.stopped, true);
});
