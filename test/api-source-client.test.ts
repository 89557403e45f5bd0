// The HTTP client and the fake API server against each other: the wire details the reflector relies on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, ApiStatusError, ApiTransportError } from '../src/k8s/client.js';
import type { ConnectionSettings, WatchEvent } from '../src/k8s/client.js';
import { parseSelector, startFakeApiServer } from './fake-apiserver.js';
import type { FakeApiServer } from './fake-apiserver.js';

let api: FakeApiServer;
let client: ApiClient;
const settings = (url: string, token: string): ConnectionSettings => ({
  server: new URL(url),
  rejectUnauthorized: true,
  authHeaders: () => Promise.resolve({ Authorization: `Bearer ${token}` }),
  origin: 'test',
});

before(async () => {
  api = await startFakeApiServer({ token: 's3cret', goneMode: 'http', historySize: 3 });
  client = new ApiClient({ settings: settings(api.url, 's3cret'), qps: 0 });
});
after(async () => {
  client.close();
  await api.close();
});

test('sends the bearer token and asks for JSON; a wrong token gives ApiStatusError 401', async () => {
  const body = (await client.getJSON('/api/v1/nodes', {})) as { kind: string; items: unknown[] };
  assert.equal(body.kind, 'NodeList');
  const last = api.requests.at(-1)!;
  assert.equal(last.headers.authorization, 'Bearer s3cret');
  assert.equal(last.headers.accept, 'application/json');
  const bad = new ApiClient({ settings: settings(api.url, 'wrong'), qps: 0 });
  try {
    await assert.rejects(
      bad.getJSON('/api/v1/nodes', {}),
      (e: unknown) => e instanceof ApiStatusError && e.statusCode === 401 && e.reason === 'Unauthorized',
    );
  } finally {
    bad.close();
  }
});

test('list items carry no kind (like the real server) and pages share one resourceVersion', async () => {
  for (const n of ['a', 'b', 'c']) api.create('nodes', { metadata: { name: n } });
  const p1 = (await client.getJSON('/api/v1/nodes', { limit: '2' })) as {
    items: Record<string, unknown>[];
    metadata: Record<string, unknown>;
  };
  assert.equal(p1.items.length, 2);
  assert.equal(p1.items[0]!.kind, undefined);
  assert.equal(typeof p1.metadata.continue, 'string');
  api.create('nodes', { metadata: { name: 'd' } });
  const p2 = (await client.getJSON('/api/v1/nodes', {
    limit: '2',
    continue: p1.metadata.continue as string,
  })) as typeof p1;
  assert.deepEqual(
    p2.items.map((o) => (o.metadata as { name: string }).name),
    ['c'],
  );
  assert.equal(p2.metadata.resourceVersion, p1.metadata.resourceVersion);
});

test('watch streams typed events in order and resolves when the server ends it', async () => {
  const rv = String(api.currentResourceVersion());
  const got: WatchEvent[] = [];
  const done = client.watch(
    '/api/v1/nodes',
    { resourceVersion: rv, timeoutSeconds: '1', allowWatchBookmarks: 'true' },
    (ev) => got.push(ev),
  );
  await new Promise((r) => setTimeout(r, 50));
  api.create('nodes', { metadata: { name: 'e' } });
  api.delete('nodes', '', 'e');
  await done;
  assert.deepEqual(got.map((e) => e.type).slice(0, 2), ['ADDED', 'DELETED']);
  assert.equal(got.at(-1)!.type, 'BOOKMARK');
  assert.equal(got[0]!.object.kind, 'Node');
});

test('a too-old resourceVersion gets HTTP 410 in http gone mode', async () => {
  for (const n of ['f', 'g', 'h', 'i']) api.create('nodes', { metadata: { name: n } });
  await assert.rejects(
    client.watch('/api/v1/nodes', { resourceVersion: '1' }, () => undefined),
    (e: unknown) => e instanceof ApiStatusError && e.statusCode === 410,
  );
});

test('a stalled request is aborted by the idle timeout and flagged idle', async () => {
  api.stallNext(1);
  await assert.rejects(
    client.getJSON('/api/v1/nodes', {}, { idleTimeoutMs: 100 }),
    (e: unknown) => e instanceof ApiTransportError && e.idle,
  );
});

test('a dropped watch rejects with a transport error (not idle)', async () => {
  const done = client.watch(
    '/api/v1/nodes',
    { resourceVersion: String(api.currentResourceVersion()) },
    () => undefined,
  );
  while (api.openWatches() === 0) await new Promise((r) => setTimeout(r, 10));
  api.dropWatches();
  await assert.rejects(done, (e: unknown) => e instanceof ApiTransportError && !e.idle);
});

test('fake server selector parser: the forms we send, and set-based forms refused', () => {
  assert.deepEqual(parseSelector('!a/b,!c', 'l'), [
    { key: 'a/b', op: '!exists' },
    { key: 'c', op: '!exists' },
  ]);
  assert.deepEqual(parseSelector('metadata.name=n1', 'f'), [{ key: 'metadata.name', op: '=', value: 'n1' }]);
  assert.throws(() => parseSelector('env in (a,b)', 'l'), /unable to parse/);
});
