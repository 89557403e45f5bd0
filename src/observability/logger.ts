/**
 * Logging: pino, with klog-style verbosity (-v=N). Level mapping: error/warn/info always;
 * v>=2 enables debug, v>=4 enables trace. Debug-level calls take a verbosity hint via `v(n)`.
 */
import { pino } from 'pino';
import { isKpError } from '../errors.js';

export interface Logger {
  error(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  trace(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

const MAX_STDERR = 2000;

/**
 * How an `err` field is logged. A catalogued error (KpError) gives its type, stable code, message, the
 * start of a tool's stderr when it has one, and its cause, without a stack (it is an expected failure);
 * anything else is a bug and keeps its stack. Non-errors are logged as text.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? err : String(err);
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  if (isKpError(err)) {
    out.code = err.code;
    const stderr = (err as { stderr?: unknown }).stderr;
    if (typeof stderr === 'string' && stderr !== '')
      out.stderr = stderr.length > MAX_STDERR ? `${stderr.slice(0, MAX_STDERR)}...` : stderr;
  } else {
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    // A Node system error (EACCES writing a sysctl, ECONNREFUSED) is the system answering, not a bug.
    if ((err as { syscall?: unknown }).syscall === undefined) out.stack = err.stack;
  }
  if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** Creates the process logger. `verbosity` is klog's -v; output goes to stderr as JSON lines. */
export function createLogger(verbosity = 0, destination: NodeJS.WritableStream = process.stderr): Logger {
  const level = verbosity >= 4 ? 'trace' : verbosity >= 2 ? 'debug' : 'info';
  return pino(
    {
      level,
      base: { component: 'kube-proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: (e: unknown) => serializeError(e) },
    },
    destination,
  );
}

/** A logger that records entries in memory: for tests. */
export function createMemoryLogger(): Logger & {
  entries: { level: string; msg: string; obj: Record<string, unknown> }[];
} {
  const entries: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: string) =>
      (obj: object | string, msg?: string): void => {
        if (typeof obj === 'string') entries.push({ level, msg: obj, obj: { ...bindings } });
        else
          entries.push({ level, msg: msg ?? '', obj: { ...bindings, ...(obj as Record<string, unknown>) } });
      };
    return {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      trace: at('trace'),
      child: (b) => make({ ...bindings, ...b }),
    };
  };
  return Object.assign(make({}), { entries });
}
