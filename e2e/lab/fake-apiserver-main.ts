/**
 * The fake API server (test/fake-apiserver.ts) as a process, so it can run inside a lab namespace
 * and be reached there on 127.0.0.1 by a daemon started with a kubeconfig.
 *
 *   node --import tsx e2e/lab/fake-apiserver-main.ts [--token=T] [--port=P]
 *
 * stdout: `fake-apiserver listening <url>` once bound; `request <METHOD> <path>?<query> auth=<ok|none|bad>`
 * for every request; `done <seq>` after each command. stdin: one JSON command per line,
 * `{"seq":1,"op":"apply","resource":"services","obj":{...}}` or
 * `{"seq":2,"op":"delete","resource":"services","namespace":"default","name":"web"}`; faults:
 * `{"op":"hang"}`, `{"op":"unhang"}`, `{"op":"failAll","code":500,"retryAfter":1}` (code null clears),
 * `{"op":"setToken","token":"T"}`, `{"op":"drop"}` (cut every watch), `{"op":"expire"}` (410 them).
 * A malformed command prints `error <seq> <message>` and is skipped. Exits on SIGTERM or stdin EOF.
 */
import { createInterface } from 'node:readline';
import { startFakeApiServer } from '../../test/fake-apiserver.js';

const tokenArg = process.argv.slice(2).find((a) => a.startsWith('--token='));
let token = tokenArg?.slice('--token='.length);
const portArg = process.argv.slice(2).find((a) => a.startsWith('--port='));
const api = await startFakeApiServer({
  ...(token === undefined ? {} : { token }),
  ...(portArg ? { port: Number(portArg.slice('--port='.length)) } : {}),
});

let seen = 0;
const report = setInterval(() => {
  for (; seen < api.requests.length; seen++) {
    const r = api.requests[seen]!;
    const auth = r.headers.authorization;
    const state =
      auth === undefined ? 'none' : token === undefined || auth === `Bearer ${token}` ? 'ok' : 'bad';
    process.stdout.write(`request ${r.method} ${r.path}?${r.query.toString()} auth=${state}\n`);
  }
}, 20);

interface Command {
  readonly seq?: number;
  readonly op?: string;
  readonly resource?: string;
  readonly obj?: Record<string, unknown>;
  readonly namespace?: string;
  readonly name?: string;
  readonly code?: number | null;
  readonly retryAfter?: number;
  readonly token?: string;
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let seq: unknown = '?';
  try {
    const c = JSON.parse(line) as Command;
    seq = c.seq ?? '?';
    if (c.op === 'hang') api.hang();
    else if (c.op === 'unhang') api.unhang();
    else if (c.op === 'failAll') api.failAll(c.code ?? undefined, c.retryAfter);
    else if (c.op === 'setToken') {
      token = c.token;
      api.setToken(c.token);
    } else if (c.op === 'drop') api.dropWatches();
    else if (c.op === 'expire') api.expireWatches();
    else if (typeof c.resource !== 'string') throw new Error('resource missing');
    else if (c.op === 'apply' && c.obj) api.apply(c.resource, c.obj);
    else if (c.op === 'delete' && typeof c.name === 'string')
      api.delete(c.resource, c.namespace ?? '', c.name);
    else throw new Error(`unknown op ${String(c.op)}`);
    process.stdout.write(`done ${String(seq)}\n`);
  } catch (err) {
    process.stdout.write(`error ${String(seq)} ${err instanceof Error ? err.message : String(err)}\n`);
  }
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  clearInterval(report);
  lines.close();
  void api.close().then(() => process.exit(0));
};
lines.on('close', stop);
process.on('SIGTERM', stop);
process.stdout.write(`fake-apiserver listening ${api.url}\n`);
