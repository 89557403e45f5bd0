import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, rename, unlink, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createManifestSource } from './manifest-source.js';
import type { Source, SourceEvent } from './source.js';
import { createMemoryLogger } from '../observability/logger.js';

let dir: string;
let source: Source | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-manifests-'));
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Polls until `pred` holds; the bound only exists so that a broken watcher fails the test instead of hanging it. */
async function waitFor(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function describe(e: SourceEvent): string {
  if (e.type === 'synced') return `synced ${e.kind}`;
  return `${e.type} ${e.object.kind} ${e.object.meta.namespace}/${e.object.meta.name}`;
}

const service = (name: string, port: number, extra = ''): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  clusterIP: 10.96.0.${(port % 200) + 10}
  ports:
  - port: ${port}${extra}
`;

async function startSource(
  scope = { nodeName: 'demo-node', serviceCIDRs: false },
  extra: { maxFileBytes?: number; workerParseBytes?: number } = {},
) {
  const logger = createMemoryLogger();
  const events: SourceEvent[] = [];
  source = createManifestSource({
    dir,
    scope,
    logger,
    serviceClusterIPRanges: ['10.96.0.0/12'],
    nodePortRange: { min: 30000, max: 32767 },
    debounceMs: 50,
    rescanIntervalMs: 200,
    ...extra,
  });
  await source.start((e) => events.push(e));
  const names = () => events.map(describe);
  return { logger, events, names };
}

test('initial load: adds, then synced for every kind', async () => {
  await writeFile(
    join(dir, 'a.yaml'),
    service('a', 80) +
      '---\napiVersion: v1\nkind: Node\nmetadata: {name: demo-node}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: other}\n',
  );
  await writeFile(
    join(dir, 'b.json'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        JSON.parse(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'b' },
            spec: { ports: [{ port: 81 }] },
          }),
        ),
      ],
    }),
  );
  const { names, logger } = await startSource({ nodeName: 'demo-node', serviceCIDRs: true });
  assert.deepEqual(names(), [
    'add Node /demo-node',
    'add Service default/a',
    'add Service default/b',
    'synced Service',
    'synced EndpointSlice',
    'synced Node',
    'synced ServiceCIDR',
  ]);
  // b had no clusterIP: allocated and logged at info with the IP.
  assert.ok(
    logger.entries.some(
      (e) => e.level === 'info' && /allocated clusterIP 10\.\d+\.\d+\.\d+ for Service default\/b/.test(e.msg),
    ),
  );
});

test('edit, add and delete files produce update, add and delete', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  const { events, names } = await startSource();
  events.length = 0;
  await writeFile(join(dir, 'a.yaml'), service('a', 8080));
  await waitFor(() => events.length >= 1, 'update');
  await writeFile(join(dir, 'b.yml'), service('b', 81));
  await waitFor(() => events.length >= 2, 'add');
  await unlink(join(dir, 'a.yaml'));
  await waitFor(() => events.length >= 3, 'delete');
  assert.deepEqual(names(), [
    'update Service default/a',
    'add Service default/b',
    'delete Service default/a',
  ]);
  const upd = events[0]!;
  assert.ok(
    upd.type === 'update' &&
      upd.old.kind === 'Service' &&
      upd.object.kind === 'Service' &&
      upd.old.ports[0]!.port === 80 &&
      upd.object.ports[0]!.port === 8080,
  );
});

test('atomic write (temp file then rename over) gives one update; temp and dot files are ignored', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  const { events, names } = await startSource();
  events.length = 0;
  await writeFile(join(dir, '.a.yaml.swp'), service('swap', 1));
  await writeFile(join(dir, 'a.yaml.tmp'), service('a', 90));
  await rename(join(dir, 'a.yaml.tmp'), join(dir, 'a.yaml'));
  await waitFor(() => events.length >= 1, 'update');
  // A later, distinct change proves nothing else was queued before it.
  await writeFile(join(dir, 'z.yaml'), service('z', 99));
  await waitFor(() => events.length >= 2, 'marker add');
  assert.deepEqual(names(), ['update Service default/a', 'add Service default/z']);
});

test('an in-place save seen empty (truncated, not yet written) deletes nothing; a file left empty does, once settled', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  await writeFile(join(dir, 'b.yaml'), service('b', 81));
  const { events, names } = await startSource();
  events.length = 0;
  // The moment between open(O_TRUNC) and write(), stretched over several debounces and rescans.
  await truncate(join(dir, 'a.yaml'));
  await new Promise((r) => setTimeout(r, 400));
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  // A later, distinct change proves the source has looked at the folder since.
  await writeFile(join(dir, 'z.yaml'), service('z', 99));
  await waitFor(() => events.length >= 1, 'marker add');
  assert.deepEqual(names(), ['add Service default/z']);
  // Emptied for good: the delete comes once the file has been empty for a while.
  await truncate(join(dir, 'b.yaml'));
  await waitFor(() => events.length >= 2, 'delete');
  assert.deepEqual(names(), ['add Service default/z', 'delete Service default/b']);
});

test('broken YAML: one error with file and line, last good objects kept; fixing it updates', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  await writeFile(join(dir, 'b.yaml'), service('b', 81));
  const { events, names, logger } = await startSource();
  events.length = 0;
  await writeFile(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n');
  await waitFor(() => logger.entries.some((e) => e.level === 'error'), 'parse error');
  // Later scans (the marker's, the periodic one) must not log the broken file again.
  await writeFile(join(dir, 'm1.yaml'), service('m1', 101));
  await waitFor(() => events.length >= 1, 'marker');
  const errors = logger.entries.filter((e) => e.level === 'error');
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.obj.file, 'a.yaml');
  assert.equal(typeof errors[0]!.obj.line, 'number');
  assert.match(errors[0]!.msg, /^a\.yaml:\d+:\d+: cannot parse: .*keeping its last good objects/);
  await writeFile(join(dir, 'a.yaml'), service('a', 82));
  await waitFor(() => events.length >= 2, 'update after fix');
  assert.deepEqual(names(), ['add Service default/m1', 'update Service default/a']);
});

test('invalid object skipped and logged with the field; the rest of the file still counts', async () => {
  await writeFile(
    join(dir, 'a.yaml'),
    service('good', 80) + '---\n' + service('bad', 80).replace('port: 80', 'port: -1'),
  );
  const { names, logger } = await startSource();
  assert.deepEqual(
    names().filter((n) => !n.startsWith('synced')),
    ['add Service default/good'],
  );
  const err = logger.entries.find((e) => e.level === 'error');
  assert.ok(err);
  assert.equal(err.obj.field, 'spec.ports[0].port');
  assert.equal(err.obj.value, -1);
  assert.equal(err.obj.file, 'a.yaml');
  assert.equal(err.obj.name, 'bad');
});

test('Endpoints in a file are mirrored into EndpointSlices and follow edits', async () => {
  const ep = (ip: string) =>
    `apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy}\nsubsets:\n- addresses: [{ip: ${ip}}]\n  ports: [{port: 80}]\n`;
  await writeFile(join(dir, 'legacy.yaml'), ep('10.0.0.1'));
  const { events, names } = await startSource();
  assert.deepEqual(names()[0], 'add EndpointSlice default/legacy-1');
  events.length = 0;
  await writeFile(join(dir, 'legacy.yaml'), ep('10.0.0.2'));
  await waitFor(() => events.length >= 1, 'slice update');
  const e = events[0]!;
  assert.ok(
    e.type === 'update' &&
      e.object.kind === 'EndpointSlice' &&
      e.object.endpoints[0]!.addresses[0] === '10.0.0.2',
  );
});

test('a missing directory makes start reject with the path', async () => {
  source = createManifestSource({
    dir: join(dir, 'nope'),
    scope: { nodeName: 'n', serviceCIDRs: false },
    logger: createMemoryLogger(),
    serviceClusterIPRanges: ['10.96.0.0/12'],
    nodePortRange: { min: 30000, max: 32767 },
  });
  await assert.rejects(
    source.start(() => undefined),
    /nope/,
  );
});

test('stop() closes the watcher and timers: the process can exit', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  const mod = fileURLToPath(new URL('./manifest-source.ts', import.meta.url));
  const logmod = fileURLToPath(new URL('../observability/logger.ts', import.meta.url));
  const script = `
    import { createManifestSource } from ${JSON.stringify(mod)};
    import { createMemoryLogger } from ${JSON.stringify(logmod)};
    const s = createManifestSource({ dir: ${JSON.stringify(dir)}, scope: { nodeName: 'n', serviceCIDRs: false }, logger: createMemoryLogger(),
      serviceClusterIPRanges: ['10.96.0.0/12'], nodePortRange: { min: 30000, max: 32767 } });
    let n = 0;
    await s.start(() => { n++; });
    await s.stop();
    console.log('events=' + n);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // Bounded: a leaked watcher would keep the child alive forever.
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) =>
    child.on('exit', (c) => {
      r(c);
    }),
  );
  clearTimeout(killer);
  assert.equal(code, 0, 'child exited by itself');
  assert.match(out, /events=4/);
});

test('examples/: loads without errors or warnings, as demo-node', async () => {
  const logger = createMemoryLogger();
  const events: SourceEvent[] = [];
  const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
  source = createManifestSource({
    dir: examples,
    scope: { nodeName: 'demo-node', serviceCIDRs: false },
    logger,
    serviceClusterIPRanges: ['10.96.0.0/12'],
    nodePortRange: { min: 30000, max: 32767 },
  });
  await source.start((e) => events.push(e));
  assert.deepEqual(
    logger.entries.filter((e) => e.level === 'error' || e.level === 'warn'),
    [],
  );
  const adds = events.flatMap((e) => (e.type === 'add' ? [e.object] : []));
  assert.deepEqual(
    adds
      .filter((o) => o.kind === 'Service')
      .map((o) => o.meta.name)
      .sort(),
    ['echo-udp', 'legacy', 'sticky', 'web', 'web-nodeport'],
  );
  assert.ok(adds.some((o) => o.kind === 'Node' && o.meta.name === 'demo-node'));
  const np = adds.find((o) => o.kind === 'Service' && o.meta.name === 'web-nodeport');
  assert.ok(
    np?.kind === 'Service' &&
      np.clusterIP.startsWith('10.') &&
      np.ports[0]!.nodePort >= 30000 &&
      np.ports[0]!.nodePort <= 32767,
  );
  const legacy = adds.filter(
    (o) => o.kind === 'EndpointSlice' && o.meta.labels['kubernetes.io/service-name'] === 'legacy',
  );
  assert.equal(legacy.length, 2);
  assert.ok(adds.filter((o) => o.kind === 'EndpointSlice').length >= 9);
});

test('a file over --manifests-max-file-size is skipped with one error naming it; the others load', async () => {
  await writeFile(join(dir, 'a.yaml'), service('a', 80));
  await writeFile(join(dir, 'big.yaml'), service('big', 81) + '#'.repeat(2000) + '\n');
  const { logger, names } = await startSource(undefined, { maxFileBytes: 1000 });
  assert.ok(names().includes('add Service default/a'));
  assert.ok(!names().includes('add Service default/big'));
  const errs = logger.entries.filter((e) => e.level === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.obj.file, 'big.yaml');
  assert.equal(errs[0]!.obj.limit, 1000);
  assert.match(errs[0]!.msg, /^big\.yaml: \d+ bytes is over --manifests-max-file-size \(1000\)/);
  // Rescans do not repeat it while the file is unchanged.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(logger.entries.filter((e) => e.level === 'error').length, 1);
});

test('a big file is parsed in a worker thread: same objects and problems, the event loop keeps turning', async () => {
  let text = '';
  for (let i = 0; i < 1500; i++)
    text += service(`s${i}`, 1000 + i).replace(/ *clusterIP: .*\n/, '') + '---\n';
  text += 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 70000}]}\n';
  await writeFile(join(dir, 'a.yaml'), text);
  // Ticks during start(): with the parse on the main thread, none could run while it lasted.
  let maxGap = 0;
  let last = Date.now();
  const t = setInterval(() => {
    const now = Date.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const t0 = Date.now();
  const { logger, names } = await startSource(undefined, { workerParseBytes: 1 });
  const total = Date.now() - t0;
  clearInterval(t);
  maxGap = Math.max(maxGap, Date.now() - last);
  assert.equal(
    names().filter((n) => n.startsWith('add Service')).length,
    1500,
    JSON.stringify(logger.entries.filter((e) => e.level !== 'info')).slice(0, 2000),
  );
  const errs = logger.entries.filter((e) => e.level === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.obj.field, 'spec.ports[0].port');
  // Relative, not a time budget: the longest stall is a fraction of the whole load, which the parse dominates.
  assert.ok(maxGap < total / 2, `longest event-loop stall ${maxGap} ms of a ${total} ms load`);
});

test('JSON documents in .yaml and .json files: same objects as block YAML; errors name file, object and field', async () => {
  const svcObj = (name: string, port: number) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { clusterIP: `10.96.0.${(port % 200) + 10}`, ports: [{ port }] },
  });
  // A .yaml file of JSON documents (the fast path), a .json List, and the same Service as block YAML
  // in a second folder: the delivered objects must be equal.
  await writeFile(
    join(dir, 'a.yaml'),
    `${JSON.stringify(svcObj('a', 80), null, 2)}\n---\n${JSON.stringify(svcObj('bad', 70000))}\n`,
  );
  await writeFile(
    join(dir, 'b.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svcObj('b', 81)] }),
  );
  // workerParseBytes 1: every file counts as big; JSON still parses on the main thread.
  const { logger, events } = await startSource(undefined, { workerParseBytes: 1 });
  const adds = events.flatMap((e) => (e.type === 'add' ? [e.object] : []));
  assert.deepEqual(adds.map((o) => o.meta.name).sort(), ['a', 'b']);
  const errs = logger.entries.filter((e) => e.level === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.obj.file, 'a.yaml');
  assert.equal(errs[0]!.obj.name, 'bad');
  assert.equal(errs[0]!.obj.field, 'spec.ports[0].port');
  assert.match(errs[0]!.msg, /^a\.yaml:17: .*spec\.ports\[0\]\.port/);
  await source?.stop();
  source = undefined;

  await rm(dir, { recursive: true, force: true });
  dir = await mkdtemp(join(tmpdir(), 'kpt-manifests-'));
  await writeFile(join(dir, 'a.yaml'), service('a', 80) + '---\n' + service('b', 81));
  const yaml = await startSource();
  const yamlAdds = yaml.events.flatMap((e) => (e.type === 'add' ? [e.object] : []));
  assert.deepStrictEqual(
    yamlAdds.sort((x, y) => x.meta.name.localeCompare(y.meta.name)),
    adds.sort((x, y) => x.meta.name.localeCompare(y.meta.name)),
  );
});
