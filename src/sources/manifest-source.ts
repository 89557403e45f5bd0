/**
 * The "manifests" source: where there is no API server, a folder of Kubernetes manifests is the cluster.
 *
 * Reads the *.yaml, *.yml and *.json files directly in `dir` (not subfolders; dot files and other
 * extensions are ignored), and watches it with fs.watch plus a periodic rescan (fs.watch can miss events
 * on some filesystems; the rescan only stats the files, and re-reads those whose inode, size, mtime or
 * ctime changed). Changes are debounced, then the object set is recomputed and diffed against what was
 * delivered: add/update/delete events, an update only when the content changed.
 *
 * A file with a syntax error gives one error (file:line) per change of that file and its last good objects
 * stay in force until it is fixed or deleted. Everything the API server would add is added here (see
 * manifest-objects.ts and manifest-allocate.ts): cluster IPs, node ports, Endpoints mirroring.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kind, KubeObject, Service } from '../model/types.js';
import type { Logger } from '../observability/logger.js';
import type { Source, SourceHandler, SourceScope } from './source.js';
import { isManifestFileName } from './manifest-parse.js';
import {
  composeManifestObjects,
  readManifestFile,
  readManifestFileJSON,
  reuseUnchanged,
  type ManifestFileResult,
  type ManifestEntry,
  type ManifestProblem,
} from './manifest-objects.js';
import { diffObjectSets } from './manifest-diff.js';
import { KpError } from '../errors.js';
import { flat } from '../model/flat-string.js';

export interface ManifestSourceOptions {
  readonly dir: string;
  readonly scope: SourceScope;
  readonly logger: Logger;
  /** Service CIDRs used to allocate cluster IPs (first range per family). */
  readonly serviceClusterIPRanges: readonly string[];
  /** Inclusive node port range used to allocate node ports. */
  readonly nodePortRange: { readonly min: number; readonly max: number };
  /** Refuse Services whose explicit cluster IP is outside serviceClusterIPRanges (the flag was set). */
  readonly enforceServiceClusterIPRange?: boolean;
  /** --manifests-max-file-size: a bigger file is skipped with an error naming it. Default 8 MiB. */
  readonly maxFileBytes?: number;
  /**
   * Files at least this big are parsed in a worker thread (default 256 KiB) unless they are JSON:
   * parsing megabytes of YAML takes seconds, which must not stall health checks and syncs.
   */
  readonly workerParseBytes?: number;
  /** Quiet time after a watch event before rescanning; default 100 ms. */
  readonly debounceMs?: number;
  /** Safety-net rescan period; default 2000 ms. 0 disables it. */
  readonly rescanIntervalMs?: number;
}

/** What reading one file found (see readOne). */
type FileOutcome =
  | { readonly type: 'absent' }
  | { readonly type: 'same' }
  | { readonly type: 'changing' }
  | { readonly type: 'too-big'; readonly sig: string; readonly size: number }
  | { readonly type: 'read-error'; readonly sig: string; readonly err: unknown }
  | { readonly type: 'read'; readonly sig: string; readonly result: ManifestFileResult };

/** Files stat'ed (and read, when changed) per event-loop turn during a scan. */
const FILES_PER_TURN = 200;

/**
 * A known file found empty is read only once it has not changed for this long: an in-place save
 * (`open(O_TRUNC)`, then `write`) leaves it empty for a moment, and reading that moment would delete
 * every object of the file until the next scan (seen in the lab: a Service's endpoints gone for ~80 ms,
 * connections refused). A file meant to be empty takes effect this much later.
 */
const EMPTY_SETTLE_MS = 1000;

interface FileState {
  /** inode/size/mtime/ctime of the version read. */
  readonly sig: string;
  /** Entries of the last version that parsed (kept while the file is broken). */
  readonly entries: readonly ManifestEntry[];
}

/**
 * Creates the manifests source. `start` does the initial load, delivers every object as 'add', then a
 * 'synced' event for Service, EndpointSlice, Node (and ServiceCIDR when scope.serviceCIDRs), and begins
 * watching; it rejects if `dir` cannot be read. `stop` closes the watcher and timers and waits for a scan
 * in progress; no event is delivered after it resolves.
 */
export function createManifestSource(opts: ManifestSourceOptions): Source {
  const log = opts.logger.child({ source: 'manifests', dir: opts.dir });
  const debounceMs = opts.debounceMs ?? 100;
  const rescanMs = opts.rescanIntervalMs ?? 2000;
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const workerParseBytes = opts.workerParseBytes ?? 256 * 1024;

  let handler: SourceHandler | undefined;
  let stopped = false;
  let watcher: FSWatcher | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let rescanTimer: NodeJS.Timeout | undefined;
  let scanning: Promise<void> | undefined;
  let rescanWanted = false;
  let dirErrorLogged = false;

  const files = new Map<string, FileState>();
  // Big files are parsed in worker threads, each with its own heap of up to WORKER_HEAP_MB: two at once.
  const workerSlots = createLimiter(2);
  let delivered: ReadonlyMap<string, KubeObject> = new Map<string, KubeObject>();
  let allocations: ReadonlyMap<string, string | number> = new Map();
  let filled: ReadonlyMap<Service, Service> = new Map();
  let reportedComposeProblems = new Set<string>();

  const emitProblem = (p: ManifestProblem): void => {
    log[p.level](p.fields, p.msg);
  };

  /**
   * One file's stat and, when its signature changed, its read and parse (a promise only when a worker
   * parses it). No logging and no state change here: the outcomes are applied in name order afterwards.
   * Synchronous fs calls on purpose: per small file they cost well under half the CPU of fs/promises (a
   * thread-pool round trip and promise per call), which dominated a load of 10,000 files; the caller
   * yields to the event loop between batches so health checks are not held up.
   */
  function readOne(name: string): FileOutcome | Promise<FileOutcome> {
    const path = join(opts.dir, name);
    let sig: string;
    let size: bigint;
    let mtimeNs: bigint;
    try {
      const st = statSync(path, { bigint: true });
      if (!st.isFile()) return { type: 'absent' };
      // Kept per file: flat, not a rope of seven parts (240 bytes where the text takes 72).
      sig = flat(`${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
      size = st.size;
      mtimeNs = st.mtimeNs;
    } catch {
      return { type: 'absent' }; // Removed between readdir and stat: the next scan sees it gone.
    }
    const known = files.get(name);
    if (known?.sig === sig) return { type: 'same' };
    // A known file changed within half the debounce (a periodic rescan landing inside a save; a scan
    // the watcher asked for comes a whole debounce after the last event), or found empty within
    // EMPTY_SETTLE_MS of its change, may be half-written: read it once it settles.
    if (known) {
      const age = Date.now() - Number(mtimeNs / 1_000_000n);
      if (age >= 0 && age < (size === 0n ? Math.max(EMPTY_SETTLE_MS, debounceMs) : debounceMs / 2))
        return { type: 'changing' };
    }
    // Checked before reading: a huge file costs memory to read and seconds to parse.
    if (size > BigInt(maxFileBytes)) return { type: 'too-big', sig, size: Number(size) };
    let text: string;
    try {
      const buf = readFileSync(path);
      // Written to while we read it (an in-place editor save): read it again once it settles.
      if (BigInt(buf.length) !== size) return { type: 'changing' };
      text = buf.toString('utf8');
    } catch (e) {
      return { type: 'read-error', sig, err: e };
    }
    if (text.length < workerParseBytes) return { type: 'read', sig, result: readManifestFile(name, text) };
    // JSON of a big file stays here: JSON.parse is fast and bounded by the size cap, while a worker costs
    // its start-up and a copy of every object back (twice the CPU and ~80 MB more peak at 10,000 Services).
    const json = readManifestFileJSON(name, text);
    if (json) return { type: 'read', sig, result: json };
    return workerSlots.run(async () => ({ type: 'read', sig, result: await readInWorker(name, text) }));
  }

  /** Re-reads changed files; returns whether anything changed (files added, removed, or re-read). */
  async function refreshFiles(): Promise<boolean> {
    let names: string[];
    try {
      names = (await readdir(opts.dir)).filter(isManifestFileName).sort();
      dirErrorLogged = false;
    } catch (e) {
      // A vanished or unreadable folder keeps the last state: dropping every Service because a mount
      // blinked would be worse than serving stale rules for a while.
      if (!dirErrorLogged)
        log.error(
          { err: e },
          `cannot read manifests directory ${opts.dir}: ${errText(e)}; keeping the last state`,
        );
      dirErrorLogged = true;
      return false;
    }
    const outcomes: FileOutcome[] = [];
    const inWorkers: Promise<void>[] = [];
    for (const [i, name] of names.entries()) {
      if (i > 0 && i % FILES_PER_TURN === 0) {
        await new Promise<void>((r) => setImmediate(r));
        if (stopped) return false;
      }
      const out = readOne(name);
      if (out instanceof Promise) {
        outcomes.push({ type: 'absent' }); // replaced when the worker answers
        inWorkers.push(
          out.then((o) => {
            outcomes[i] = o;
          }),
        );
      } else outcomes.push(out);
    }
    await Promise.all(inWorkers);
    if (stopped) return false;
    let changed = false;
    const present = new Set<string>();
    for (const [i, name] of names.entries()) {
      const out = outcomes[i]!;
      if (out.type === 'absent') continue;
      present.add(name);
      const old = files.get(name);
      switch (out.type) {
        case 'same':
          continue;
        case 'changing':
          onWatchEvent();
          continue;
        case 'too-big':
          log.error(
            { file: name, size: out.size, limit: maxFileBytes },
            `${name}: ${out.size} bytes is over --manifests-max-file-size (${maxFileBytes}); ${old ? 'keeping its last good objects' : 'no objects read from it'}`,
          );
          files.set(name, { sig: out.sig, entries: old?.entries ?? [] });
          continue;
        case 'read-error':
          if (!old) continue;
          log.error(
            { file: name, err: out.err },
            `cannot read ${name}: ${errText(out.err)}; keeping its last good objects`,
          );
          files.set(name, { sig: out.sig, entries: old.entries });
          continue;
        case 'read': {
          const parsed = out.result;
          if (!parsed.ok) {
            const { line, column, message } = parsed.error;
            log.error(
              { file: name, line, column, err: message },
              `${name}:${line}:${column}: cannot parse: ${message}; ${old ? 'keeping its last good objects' : 'no objects read from it'} until it is fixed`,
            );
            files.set(name, { sig: out.sig, entries: old?.entries ?? [] });
            continue;
          }
          const { entries, problems } = parsed;
          problems.forEach(emitProblem);
          log.debug({ file: name, objects: entries.length }, `read ${name}`);
          files.set(name, { sig: out.sig, entries: old ? reuseUnchanged(old.entries, entries) : entries });
          changed = true;
        }
      }
    }
    for (const name of [...files.keys()]) {
      if (!present.has(name)) {
        files.delete(name);
        log.debug({ file: name }, `${name} removed`);
        changed = true;
      }
    }
    return changed;
  }

  function compose(): ReadonlyMap<string, KubeObject> {
    const result = composeManifestObjects(
      [...files].map(([file, st]) => ({ file, entries: st.entries })),
      {
        scope: opts.scope,
        serviceClusterIPRanges: opts.serviceClusterIPRanges,
        nodePortRange: opts.nodePortRange,
        previousAllocations: allocations,
        previousFilled: filled,
        ...(opts.enforceServiceClusterIPRange ? { enforceServiceClusterIPRange: true } : {}),
        servicesInForce: new Set([...delivered.keys()].filter((k) => k.startsWith('Service/'))),
      },
    );
    // Cross-file problems are recomputed on every change; log each only while it is new.
    const now = new Set<string>();
    for (const p of result.problems) {
      now.add(p.msg);
      if (!reportedComposeProblems.has(p.msg)) emitProblem(p);
    }
    reportedComposeProblems = now;
    for (const a of result.allocations) {
      if (allocations.get(a.key) !== a.value) {
        const port = a.port !== '' ? ` port ${a.port}` : '';
        log.info(
          { service: a.service, field: a.what, port: a.port, value: a.value },
          `allocated ${a.what} ${a.value} for Service ${a.service}${port}`,
        );
      }
    }
    allocations = result.nextAllocations;
    filled = result.filled;
    // A map built for this call alone: no copy needed.
    return result.objects;
  }

  function deliver(next: ReadonlyMap<string, KubeObject>): void {
    const events = diffObjectSets(delivered, next);
    delivered = next;
    for (const ev of events) {
      if (stopped || !handler) return;
      handler(ev);
    }
  }

  async function scanOnce(): Promise<void> {
    if (await refreshFiles()) {
      if (stopped) return;
      deliver(compose());
    }
  }

  /** Serialises scans: a request during a scan runs one more scan afterwards. */
  function requestScan(): void {
    if (stopped) return;
    if (scanning) {
      rescanWanted = true;
      return;
    }
    scanning = (async () => {
      try {
        do {
          rescanWanted = false;
          await scanOnce();
        } while (rescanWanted && !stopped);
      } catch (e) {
        log.error({ err: e }, `manifest rescan failed: ${errText(e)}`);
      } finally {
        scanning = undefined;
      }
    })();
  }

  function onWatchEvent(): void {
    if (stopped) return;
    if (debounceTimer) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      requestScan();
    }, debounceMs);
  }

  function ensureWatcher(): void {
    if (watcher || stopped) return;
    try {
      const w = watch(opts.dir, { persistent: true }, onWatchEvent);
      w.on('error', (e) => {
        log.warn({ err: e }, `watch on ${opts.dir} failed: ${errText(e)}; relying on the periodic rescan`);
        w.close();
        if (watcher === w) watcher = undefined;
      });
      watcher = w;
    } catch (e) {
      log.warn({ err: e }, `cannot watch ${opts.dir}: ${errText(e)}; relying on the periodic rescan`);
    }
  }

  return {
    async start(h: SourceHandler): Promise<void> {
      if (handler) throw new KpError('KP_ERR_INVALID_ARGUMENT', 'manifest source already started');
      handler = h;
      try {
        const st = await stat(opts.dir);
        if (!st.isDirectory()) throw new KpError('KP_ERR_SOURCE', 'not a directory');
      } catch (e) {
        throw new KpError('KP_ERR_SOURCE', `manifests directory ${opts.dir}: ${errText(e)}`, { cause: e });
      }
      // Watch before the first read so an edit made during the initial load is not missed.
      ensureWatcher();
      await refreshFiles();
      if (stopped) return;
      deliver(compose());
      const kinds: Kind[] = [
        'Service',
        'EndpointSlice',
        'Node',
        ...(opts.scope.serviceCIDRs ? (['ServiceCIDR'] as const) : []),
      ];
      for (const kind of kinds) if (!stopped) h({ type: 'synced', kind });
      log.info(
        { files: files.size, objects: delivered.size },
        `loaded ${delivered.size} objects from ${files.size} manifest files in ${opts.dir}`,
      );
      if (rescanMs > 0) {
        rescanTimer = setInterval(() => {
          ensureWatcher();
          requestScan();
        }, rescanMs);
        // The watcher keeps the process alive while the source runs; the safety-net timer need not.
        rescanTimer.unref();
      }
    },
    async stop(): Promise<void> {
      stopped = true;
      if (debounceTimer) clearTimeout(debounceTimer);
      if (rescanTimer) clearInterval(rescanTimer);
      debounceTimer = undefined;
      rescanTimer = undefined;
      watcher?.close();
      watcher = undefined;
      if (scanning) await scanning;
    },
  };
}

/** The default of --manifests-max-file-size: 8 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024;

/**
 * How to start the worker: built, its .js entry beside this module; run from source through tsx (tests,
 * e2e), a worker does not inherit tsx's loader, so a small script registers it there first and then
 * imports the .ts entry.
 */
function startWorker(workerData: unknown, resourceLimits: ResourceLimits): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./manifest-parse-worker.js', import.meta.url), { workerData, resourceLimits });
  const entry = new URL('./manifest-parse-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const script = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(script, { eval: true, workerData, resourceLimits });
}

/** Heap cap of a parse worker: a YAML alias or nesting bomb fails that file, not the proxy. */
const WORKER_HEAP_MB = 1024;

/**
 * readManifestFile in a worker thread. A worker that dies (out of memory, say) fails the file like a
 * syntax error would, with the reason.
 */
function readInWorker(name: string, text: string): Promise<ManifestFileResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ManifestFileResult): void => {
      if (done) return;
      done = true;
      resolve(r);
    };
    const fail = (message: string): void => {
      finish({ ok: false, error: { line: 1, column: 1, message } });
    };
    let w: Worker;
    try {
      w = startWorker({ name, text }, { maxOldGenerationSizeMb: WORKER_HEAP_MB });
    } catch (e) {
      fail(`cannot start a parser thread: ${errText(e)}`);
      return;
    }
    w.once('message', (r: ManifestFileResult) => {
      finish(r);
      void w.terminate();
    });
    w.once('error', (e) => {
      fail(
        (e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `parsing needs more than ${WORKER_HEAP_MB} MB of memory`
          : errText(e),
      );
    });
    w.once('exit', (code) => {
      fail(`the parser thread exited with code ${code}`);
    });
  });
}

/** A counting semaphore: `run` waits for a free slot. */
function createLimiter(slots: number): { run<R>(fn: () => Promise<R>): Promise<R> } {
  let free = slots;
  const waiting: (() => void)[] = [];
  return {
    async run<R>(fn: () => Promise<R>): Promise<R> {
      if (free > 0) free--;
      else await new Promise<void>((r) => waiting.push(r));
      try {
        return await fn();
      } finally {
        const wake = waiting.shift();
        if (wake) wake();
        else free++;
      }
    },
  };
}

function errText(e: unknown): string {
  if (e instanceof Error)
    return (e as NodeJS.ErrnoException).code
      ? `${(e as NodeJS.ErrnoException).code}: ${e.message}`
      : e.message;
  return String(e);
}
