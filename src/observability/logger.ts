/**
 * Logging: pino, with klog-style verbosity (-v=N). Level mapping: error/warn/info always;
 * v>=2 enables debug, v>=4 enables trace. Debug-level calls take a verbosity hint via `v(n)`.
 */
import { pino } from 'pino';

export interface Logger {
  error(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  trace(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Creates the process logger. `verbosity` is klog's -v; output goes to stderr as JSON lines. */
export function createLogger(verbosity = 0, destination: NodeJS.WritableStream = process.stderr): Logger {
  const level = verbosity >= 4 ? 'trace' : verbosity >= 2 ? 'debug' : 'info';
  return pino(
    { level, base: { component: 'kube-proxy' }, timestamp: pino.stdTimeFunctions.isoTime },
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
