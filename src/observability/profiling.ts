/**
 * --profiling: on-demand profiles of this process on the metrics server, where upstream serves Go's
 * /debug/pprof. Node.js has no pprof, so the formats are V8's, which Chrome DevTools (and speedscope)
 * open: `/debug/pprof/profile?seconds=N` records a CPU profile for N seconds (default 30, at most
 * 300) and returns it as a .cpuprofile; `/debug/pprof/heap` returns a .heapsnapshot. One profile at a
 * time; a second request meanwhile gets 409.
 */
import { Session } from 'node:inspector';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reply } from './http-util.js';

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' } as const;
let busy = false;

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => {
      if (err) reject(err);
      else resolve(result as T);
    });
  });
}

/** Records a CPU profile of this process for `ms` milliseconds; resolves with its JSON. */
export async function cpuProfile(ms: number): Promise<string> {
  const session = new Session();
  session.connect();
  try {
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.start');
    await new Promise((r) => setTimeout(r, ms));
    const { profile } = await post<{ profile: unknown }>(session, 'Profiler.stop');
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
  }
}

/** Takes a V8 heap snapshot of this process; resolves with its JSON text. */
export async function heapSnapshot(): Promise<string> {
  const session = new Session();
  session.connect();
  const chunks: string[] = [];
  session.on('HeapProfiler.addHeapSnapshotChunk', (m) => {
    chunks.push(m.params.chunk);
  });
  try {
    await post(session, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    return chunks.join('');
  } finally {
    session.disconnect();
  }
}

const INDEX = [
  'kube-proxy-ts profiles (V8 formats; open them in Chrome DevTools):',
  '  /debug/pprof/profile?seconds=N  CPU profile over N seconds (default 30), .cpuprofile',
  '  /debug/pprof/heap               heap snapshot, .heapsnapshot',
  '',
].join('\n');

/**
 * Serves `path` (under /debug/pprof) for `req`; returns false when the path is not a profiling one.
 */
export function handleProfiling(path: string, req: IncomingMessage, res: ServerResponse): boolean {
  if (path !== '/debug/pprof' && !path.startsWith('/debug/pprof/')) return false;
  const sub = path.slice('/debug/pprof'.length).replace(/^\/+/, '');
  if (sub === '') {
    reply(res, 200, TEXT, INDEX);
    return true;
  }
  if (sub !== 'profile' && sub !== 'heap') {
    reply(res, 404, TEXT, `unknown profile ${JSON.stringify(sub)}\n${INDEX}`);
    return true;
  }
  if (busy) {
    reply(res, 409, TEXT, 'another profile is being taken\n');
    return true;
  }
  let job: Promise<string>;
  let file: string;
  if (sub === 'profile') {
    const raw = new URL(req.url ?? '/', 'http://x').searchParams.get('seconds');
    const seconds = raw === null ? 30 : Number(raw);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 300) {
      reply(res, 400, TEXT, `seconds must be a number in (0, 300] (value: ${JSON.stringify(raw)})\n`);
      return true;
    }
    job = cpuProfile(seconds * 1000);
    file = 'kube-proxy.cpuprofile';
  } else {
    job = heapSnapshot();
    file = 'kube-proxy.heapsnapshot';
  }
  busy = true;
  job.then(
    (body) => {
      busy = false;
      reply(
        res,
        200,
        { 'Content-Type': 'application/json', 'Content-Disposition': `attachment; filename="${file}"` },
        body,
      );
    },
    (err: unknown) => {
      busy = false;
      reply(res, 500, TEXT, `profiling failed: ${String(err)}\n`);
    },
  );
  return true;
}
