/**
 * Logging: pino, with klog-style verbosity (-v=N). Level mapping: error/warn/info always;
 * v>=2 enables debug, v>=4 enables trace. Two output formats, as upstream's --logging-format: `text`
 * (klog's line shape: `I1202 11:53:14.123456       1 kube-proxy] "msg" key="value"`) and `json` (pino's
 * JSON lines). The daemon's default is text, as upstream; library callers and tests get JSON.
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

/** Output options of {@link createLogger}. */
export interface LogOutput {
  /** `json` (default here) or `text` (klog lines; the daemon's default). */
  readonly format?: 'json' | 'text';
  /** --log-*-split-stream: info and below go to `infoDestination`, warnings and errors to the destination. */
  readonly splitStream?: boolean;
  /** Where split info lines go; process.stdout by default. */
  readonly infoDestination?: NodeJS.WritableStream;
}

const KLOG_SEVERITY: Readonly<Record<number, string>> = {
  10: 'I',
  20: 'I',
  30: 'I',
  40: 'W',
  50: 'E',
  60: 'F',
};
/** Fields of a pino record that the klog header already carries (or that klog does not print). */
const HEADER_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'component', 'msg']);

/** A klog text value: strings quoted, numbers and booleans bare, anything else as JSON. */
function klogValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v) ?? 'null';
}

/**
 * One pino record as one klog text line (no trailing newline): severity letter and UTC date
 * `IMMDD hh:mm:ss.uuuuuu`, the pid right-aligned in 7 columns, the component where klog has `file:line`,
 * then `] "message"` and the remaining fields as `key=value`. An error field prints as `err="message"`
 * (plus its code, or its stack for an uncatalogued error, quoted so the record stays on one line).
 */
export function formatKlogLine(rec: Readonly<Record<string, unknown>>, pid: number): string {
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const t = new Date(typeof rec.time === 'string' || typeof rec.time === 'number' ? rec.time : Date.now());
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const stamp =
    `${p2(t.getUTCMonth() + 1)}${p2(t.getUTCDate())} ${p2(t.getUTCHours())}:${p2(t.getUTCMinutes())}:` +
    `${p2(t.getUTCSeconds())}.${String(t.getUTCMilliseconds() * 1000).padStart(6, '0')}`;
  const source = typeof rec.component === 'string' ? rec.component : 'kube-proxy';
  let line = `${KLOG_SEVERITY[level] ?? 'I'}${stamp} ${String(pid).padStart(7, ' ')} ${source}] ${JSON.stringify(
    typeof rec.msg === 'string' ? rec.msg : '',
  )}`;
  for (const [k, v] of Object.entries(rec)) {
    if (HEADER_FIELDS.has(k) || v === undefined) continue;
    if (k === 'err' && typeof v === 'object' && v !== null && 'message' in v) {
      const e = v as { message?: unknown; code?: unknown; stack?: unknown };
      line += ` err=${klogValue(String(e.message))}`;
      if (e.code !== undefined) line += ` errCode=${klogValue(e.code)}`;
      if (typeof e.stack === 'string') line += ` stacktrace=${klogValue(e.stack)}`;
      continue;
    }
    line += ` ${k}=${klogValue(v)}`;
  }
  return line;
}

/** A pino destination that rewrites each JSON record (one per write) into `format` and routes it by level. */
function destinationFor(
  destination: NodeJS.WritableStream,
  out: LogOutput,
): NodeJS.WritableStream | { write(s: string): void } {
  if (out.format !== 'text' && out.splitStream !== true) return destination;
  const info = out.infoDestination ?? process.stdout;
  return {
    write(chunk: string): void {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(chunk) as Record<string, unknown>;
      } catch {
        destination.write(chunk);
        return;
      }
      const target = out.splitStream === true && Number(rec.level) < 40 ? info : destination;
      target.write(out.format === 'text' ? `${formatKlogLine(rec, process.pid)}\n` : chunk);
    },
  };
}

/**
 * Creates the process logger. `verbosity` is klog's -v; output goes to `destination` (stderr) in
 * `output.format` (JSON lines unless told otherwise), or split by level with `output.splitStream`.
 */
export function createLogger(
  verbosity = 0,
  destination: NodeJS.WritableStream = process.stderr,
  output: LogOutput = {},
): Logger {
  const level = verbosity >= 4 ? 'trace' : verbosity >= 2 ? 'debug' : 'info';
  return pino(
    {
      level,
      base: { component: 'kube-proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: (e: unknown) => serializeError(e) },
    },
    destinationFor(destination, output) as NodeJS.WritableStream,
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
