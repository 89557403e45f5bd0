import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiHealth, classifyApiError } from './api-health.js';
import { ApiStatusError, ApiTransportError, parseRetryAfter } from './client.js';
import { createMemoryLogger } from '../observability/logger.js';

test('classifyApiError: 401, 403, 429, 5xx, idle and refused connections are told apart', () => {
  const st = (c: number): ApiStatusError => new ApiStatusError(c, 'x', 'x');
  assert.equal(classifyApiError(st(401)).message, "not authorized: check the kubeconfig's credentials");
  assert.equal(classifyApiError(st(401)).level, 'error');
  assert.equal(classifyApiError(st(403)).kind, 'forbidden');
  assert.equal(classifyApiError(st(429)).kind, 'throttled');
  assert.equal(classifyApiError(st(503)).kind, 'server-error');
  assert.equal(classifyApiError(new ApiTransportError('x', true)).kind, 'hung');
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  assert.equal(classifyApiError(new ApiTransportError('x', false, { cause: refused })).kind, 'unreachable');
});

test('ApiHealth: one line per fault kind per episode, one line at recovery, status follows', () => {
  const log = createMemoryLogger();
  let now = 1000;
  const h = new ApiHealth(log, () => now);
  for (let i = 0; i < 5; i++) {
    h.failed('Service', new ApiStatusError(500, 'x', 'x'), 10);
    h.failed('Node', new ApiStatusError(500, 'x', 'x'), 10);
  }
  h.failed('Node', new ApiStatusError(401, 'x', 'x'), 10);
  assert.deepEqual(
    log.entries.filter((e) => e.level !== 'debug').map((e) => e.obj.fault),
    ['server-error', 'unauthorized'],
  );
  assert.equal(h.status().fault?.kind, 'server-error', 'the oldest failure is reported');
  assert.equal(h.status().fault?.since, 1000);
  now = 3000;
  h.succeeded('Service');
  assert.equal(h.status().fault?.kind, 'unauthorized');
  h.succeeded('Node');
  assert.equal(h.status().fault, undefined);
  const last = log.entries.at(-1)!;
  assert.equal(last.msg, 'API server requests succeed again');
  assert.equal(last.obj.afterMs, 2000);
  // A new episode logs its kinds again.
  h.failed('Node', new ApiStatusError(500, 'x', 'x'), 10);
  assert.equal(log.entries.filter((e) => e.level === 'warn').length, 2);
});

test('ApiHealth.wait: a recovering reflector wakes the others; a firm (Retry-After) wait is not woken', async () => {
  const h = new ApiHealth(createMemoryLogger());
  const ac = new AbortController();
  h.failed('Service', new ApiStatusError(500, 'x', 'x'), 60_000);
  let woke = false;
  let firmWoke = false;
  const w = h.wait(60_000, ac.signal).then(() => (woke = true));
  const firm = h.wait(60_000, ac.signal, true).then(
    () => (firmWoke = true),
    () => undefined,
  );
  // A success of a reflector that was not failing changes nothing.
  h.succeeded('Node');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(woke, false);
  h.succeeded('Service');
  await w;
  assert.equal(woke, true);
  ac.abort(new Error('stop'));
  await firm;
  assert.equal(firmWoke, false);
});

test('parseRetryAfter: seconds, an HTTP date, garbage', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

test('ApiHealth.onHung: the first hang of an episode is told to the others once; later hangs and other faults are not', () => {
  const h = new ApiHealth(createMemoryLogger());
  const told: string[] = [];
  const off = h.onHung((who) => told.push(who));
  h.failed('Service', new ApiStatusError(500, 'InternalError', 'x'), 100);
  assert.deepEqual(told, [], 'a 500 is not a hang');
  h.failed('Node', new ApiTransportError('idle', true), 100);
  h.failed('Service', new ApiTransportError('idle', true), 100);
  assert.deepEqual(told, ['Node'], 'once per episode, naming the first');
  h.succeeded('Node');
  h.succeeded('Service');
  h.failed('EndpointSlice', new ApiTransportError('idle', true), 100);
  assert.deepEqual(told, ['Node', 'EndpointSlice'], 'a new episode tells again');
  off();
  h.succeeded('EndpointSlice');
  h.failed('Node', new ApiTransportError('idle', true), 100);
  assert.deepEqual(told, ['Node', 'EndpointSlice'], 'unsubscribed');
});
