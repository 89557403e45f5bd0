import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createFakeClock } from './go-time.js';
import { ProxyHealthServer } from './proxy-health.js';
import { ReadinessTracker, readinessBody } from './readiness.js';

const T0 = Date.parse('2025-01-02T03:04:05Z');
const TIMEOUT = 60_000;

function tracker() {
  const clock = createFakeClock(T0);
  return { clock, r: new ReadinessTracker(TIMEOUT, clock) };
}

describe('ReadinessTracker', () => {
  it('is not ready before the families are known, and says why', () => {
    const { r } = tracker();
    const got = r.readiness();
    assert.equal(got.ready, false);
    assert.match(got.reason ?? '', /waiting for services/);
  });

  it('waits for the first full sync of every family; a partial sync is not enough', () => {
    const { r } = tracker();
    r.expect(['IPv4', 'IPv6']);
    assert.deepEqual(r.readiness().status.get('IPv4'), {
      ready: false,
      reason: 'waiting for the first sync',
    });
    r.synced('IPv4', false);
    assert.equal(r.readiness().status.get('IPv4')?.ready, false);
    r.synced('IPv4', true);
    assert.equal(r.readiness().status.get('IPv4')?.ready, true);
    assert.equal(r.readiness().ready, false, 'IPv6 has not synced');
    r.synced('IPv6', true);
    assert.equal(r.readiness().ready, true);
  });

  it('reports failures before the first sync with their count and the first line of the error', () => {
    const { r } = tracker();
    r.expect(['IPv4']);
    for (let i = 0; i < 3; i++) r.failed('IPv4', new Error('nft: exit 1\nline 2 of the dump'));
    assert.equal(r.readiness().status.get('IPv4')?.reason, 'last sync failed 3 times: nft: exit 1');
  });

  it('stays ready on a quiet node however long ago the last sync was', () => {
    const { r, clock } = tracker();
    r.expect(['IPv4']);
    r.synced('IPv4', true);
    clock.advance(10 * TIMEOUT);
    assert.equal(r.readiness().ready, true);
  });

  it('goes unready when a queued change waits longer than the timeout, and ready after the next sync', () => {
    const { r, clock } = tracker();
    r.expect(['IPv4']);
    r.synced('IPv4', true);
    r.queued('IPv4');
    clock.advance(TIMEOUT);
    assert.equal(r.readiness().ready, true, 'exactly at the timeout is still fresh');
    clock.advance(1);
    const s = r.readiness().status.get('IPv4');
    assert.equal(s?.ready, false);
    assert.equal(s?.reason, 'stale since 2025-01-02T03:04:05Z');
    r.synced('IPv4', false);
    assert.equal(r.readiness().ready, true);
  });

  it('goes unready when syncs keep failing past the timeout, naming the failures', () => {
    const { r, clock } = tracker();
    r.expect(['IPv4']);
    r.synced('IPv4', true);
    r.failed('IPv4', new Error('iptables-restore: line 3 failed'));
    assert.equal(r.readiness().ready, true, 'one failure inside the timeout is tolerated');
    clock.advance(TIMEOUT + 1);
    r.failed('IPv4', new Error('iptables-restore: line 3 failed'));
    assert.deepEqual(
      r.readiness().status.get('IPv4')?.reason,
      'last sync failed 2 times: iptables-restore: line 3 failed',
    );
    r.synced('IPv4', true);
    assert.equal(r.readiness().ready, true);
  });

  it('ignores families it was not told to expect', () => {
    const { r } = tracker();
    r.expect(['IPv4']);
    r.synced('IPv6', true);
    r.synced('IPv4', true);
    assert.deepEqual([...r.readiness().status.keys()], ['IPv4']);
  });

  it('renders a JSON body with a reason per family', () => {
    const { r } = tracker();
    r.expect(['IPv4', 'IPv6']);
    r.synced('IPv6', true);
    assert.deepEqual(JSON.parse(readinessBody(r.readiness())), {
      ready: false,
      status: {
        IPv4: { ready: false, reason: 'waiting for the first sync' },
        IPv6: { ready: true, lastSynced: '2025-01-02T03:04:05Z' },
      },
    });
  });
});

describe('/readyz on the healthz server', () => {
  const clock = createFakeClock(T0);
  const hs = new ProxyHealthServer({ healthTimeoutMs: TIMEOUT, clock });
  let base = '';
  before(async () => {
    base = `http://127.0.0.1:${(await hs.listen('127.0.0.1:0')).port}`;
  });
  after(() => hs.close());

  it('answers 503 until the first full sync, then 200; /healthz keeps its own rule', async () => {
    let r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(((await r.json()) as { ready: boolean }).ready, false);
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'upstream: healthy before any sync');
    hs.expectFamilies(['IPv4']);
    hs.updated('IPv4');
    r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), {
      ready: false,
      status: { IPv4: { ready: false, reason: 'waiting for the first sync' } },
    });
    hs.syncSucceeded('IPv4', true);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });
});
