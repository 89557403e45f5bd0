/**
 * The only place that spawns processes. Every data-plane tool (iptables-restore, nft, ipset, ipvsadm,
 * conntrack, ip, sysctl) goes through run(), which feeds stdin, enforces a timeout, captures output,
 * and fails with one typed error naming the command and its stderr.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KpError } from '../errors.js';

export interface RunOptions {
  /** Text fed to stdin (then closed). */
  readonly input?: string;
  /**
   * Instead of `input`: stdin as chunks, each taken from the iterable only when the pipe has room
   * for it (then stdin is closed), so a big input is never held whole as one string or Buffer.
   */
  readonly inputChunks?: Iterable<string>;
  /** Kill the process (SIGKILL) after this many ms; default 60 s. */
  readonly timeoutMs?: number;
  /** Exit codes that count as success; default [0]. */
  readonly okCodes?: readonly number[];
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Called with the child's pid as soon as it is spawned, before it can read its input: lets the
   * nftables drift gate tell our own transactions from others' in `nft monitor`'s output.
   */
  readonly onSpawn?: (pid: number) => void;
  /**
   * Send stdout to a temporary file (read back, then removed) instead of a pipe: for a tool that
   * flushes each token (nft prints a 10k-service table with 860k writes; through a pipe every one
   * wakes this process, and reading took twice as long on a loaded machine).
   */
  readonly stdoutToFile?: boolean;
  /**
   * Stdout is handed to this as it arrives (decoded text, chunks of any size) instead of being
   * collected: RunResult.stdout is then ''. For outputs too big to hold whole (iptables-save at
   * 50,000 Services). An exception it throws fails the run (the child is killed).
   */
  readonly onStdout?: (chunk: string) => void;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

/** A command failed: not found, timed out, or exited with a code not in okCodes. */
export class ExecError extends KpError {
  declare readonly code: 'KP_ERR_EXEC_NOT_FOUND' | 'KP_ERR_EXEC_TIMEOUT' | 'KP_ERR_EXEC_FAILED';
  constructor(
    code: ExecError['code'],
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout = '',
  ) {
    const why =
      code === 'KP_ERR_EXEC_NOT_FOUND'
        ? 'command not found'
        : code === 'KP_ERR_EXEC_TIMEOUT'
          ? 'timed out'
          : `exit code ${exitCode}`;
    // The message quotes the start of stderr only (ipvsadm -R can print hundreds of kB); the whole
    // text stays on the error's stderr field.
    let err = stderr.trim().split('\n').slice(0, 8).join(' | ');
    if (err.length > 2000) err = `${err.slice(0, 2000)}... (${stderr.length} bytes of stderr)`;
    super(code, `${command} ${args.join(' ')}: ${why}${err ? `: ${err}` : ''}`);
  }
}

/** Runs `command args`, resolving with its output or rejecting with ExecError. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const dir = opts.stdoutToFile ? mkdtempSync(join(tmpdir(), 'kube-proxy-out-')) : undefined;
    const outFile = dir === undefined ? undefined : join(dir, 'stdout');
    const fd = outFile === undefined ? undefined : openSync(outFile, 'w', 0o600);
    const child = spawn(command, args, {
      stdio: ['pipe', fd ?? 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    if (fd !== undefined) closeSync(fd);
    const fileOut = (): string => {
      if (dir === undefined) return '';
      try {
        return readFileSync(outFile!, 'utf8');
      } catch {
        return ''; // a spawn error removed it already
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    // Decoded as they arrive and joined once: no Buffer.concat copy of a save's tens of MB on top of
    // the chunks and the string (that copy set the daemon's peak memory in a full iptables sync).
    const out: string[] = [];
    const err: string[] = [];
    let timedOut = false;
    let sinkError: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const sink = opts.onStdout;
    child.stdout?.setEncoding('utf8').on(
      'data',
      sink
        ? (s: string) => {
            if (sinkError !== undefined) return;
            try {
              sink(s);
            } catch (e) {
              sinkError = e instanceof Error ? e : new Error(`onStdout threw ${JSON.stringify(e)}`);
              child.kill('SIGKILL');
            }
          }
        : (s: string) => out.push(s),
    );
    child.stderr?.setEncoding('utf8').on('data', (s: string) => err.push(s));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      reject(
        new ExecError(
          e.code === 'ENOENT' ? 'KP_ERR_EXEC_NOT_FOUND' : 'KP_ERR_EXEC_FAILED',
          command,
          args,
          null,
          e.message,
        ),
      );
    });
    child.stdin?.on('error', () => {
      /* the process may exit before reading all input; its exit code tells */
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = dir === undefined ? out.join('') : fileOut();
      const stderr = err.join('');
      if (sinkError !== undefined) {
        reject(sinkError);
        return;
      }
      if (timedOut) {
        reject(new ExecError('KP_ERR_EXEC_TIMEOUT', command, args, code, stderr, stdout));
        return;
      }
      const c = code ?? -1;
      if (!(opts.okCodes ?? [0]).includes(c)) {
        reject(new ExecError('KP_ERR_EXEC_FAILED', command, args, c, stderr, stdout));
        return;
      }
      resolve({ code: c, stdout, stderr, durationMs: performance.now() - started });
    });
    if (opts.inputChunks && child.stdin) writeChunks(child.stdin, opts.inputChunks);
    else child.stdin?.end(opts.input ?? '');
  });
}

/** Writes `chunks` to `stdin` as it drains, then ends it; stops at the first write error (the child's exit code tells why). */
function writeChunks(stdin: NodeJS.WritableStream, chunks: Iterable<string>): void {
  const it = chunks[Symbol.iterator]();
  let failed = false;
  stdin.once('error', () => (failed = true));
  const pump = (): void => {
    for (;;) {
      if (failed) return;
      const next = it.next();
      if (next.done) {
        stdin.end();
        return;
      }
      if (!stdin.write(next.value)) {
        stdin.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

/** A long-running child whose stdout is read line by line (see {@link watchLines}). */
export interface LineWatch {
  readonly pid: number | undefined;
  /** Ends the child (SIGTERM); onExit still fires once. */
  stop(): void;
  /** The child's resident set (VmRSS from /proc), or undefined once it is gone. */
  rssBytes(): number | undefined;
}

/** VmRSS of process `pid` in bytes (from /proc/PID/status), or undefined when it cannot be read. */
export function processRssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Spawns `command args` and calls `onLine` for every stdout line until the child exits, then `onExit`
 * once with its exit code (null: killed, or it could not be spawned) and the start of its stderr.
 * For monitors (`nft monitor`) that run as long as the daemon; stdin is closed at once.
 */
export function watchLines(
  command: string,
  args: readonly string[],
  onLine: (line: string) => void,
  onExit: (code: number | null, stderr: string) => void,
): LineWatch {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let rest = '';
  let err = '';
  let done = false;
  const finish = (code: number | null): void => {
    if (done) return;
    done = true;
    if (rest !== '') onLine(rest);
    onExit(code, err.slice(0, 2000));
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (err.length < 2000) err += chunk;
  });
  child.on('error', (e) => {
    err += e.message;
    finish(null);
  });
  child.on('close', (code) => {
    finish(code);
  });
  return {
    pid: child.pid,
    stop: () => {
      if (!done) child.kill('SIGTERM');
    },
    rssBytes: () => (done ? undefined : processRssBytes(child.pid)),
  };
}

/** Spawns a command: run() in production, a fake (exec/fake-exec.ts) in unit tests. */
export type Exec = (command: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/** The default Exec. */
export const defaultExec: Exec = run;

/** The full path of an executable on PATH (plus the sbin dirs, which root's PATH may lack), or undefined. */
export function which(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, command);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** A long-running child fed through stdin (see {@link spawnInteractive}). */
export interface Interactive {
  readonly pid: number | undefined;
  /** Writes text to the child's stdin; false once the child has exited. */
  write(text: string): boolean;
  /** Ends the child (SIGKILL); onExit still fires once. */
  kill(): void;
}

/**
 * Spawns `command args` with stdin kept open: `onStdout` / `onStderr` get the output as it arrives,
 * `onExit` fires once when the child is gone (code null: killed, or it could not be spawned). For
 * `nft -i`, which keeps one netlink socket across many transactions (exec/nft.ts nftSession).
 */
export function spawnInteractive(
  command: string,
  args: readonly string[],
  handlers: {
    readonly onStdout?: (chunk: string) => void;
    readonly onStderr: (chunk: string) => void;
    readonly onExit: (code: number | null, error?: string) => void;
  },
  env: NodeJS.ProcessEnv = process.env,
): Interactive {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let done = false;
  const finish = (code: number | null, error?: string): void => {
    if (done) return;
    done = true;
    handlers.onExit(code, error);
  };
  child.stdout.setEncoding('utf8').on('data', (s: string) => handlers.onStdout?.(s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    handlers.onStderr(s);
  });
  child.stdin.on('error', () => {
    /* the child exited: onExit tells */
  });
  child.on('error', (e) => {
    finish(null, e.message);
  });
  child.on('close', (code) => {
    finish(code);
  });
  return {
    pid: child.pid,
    write: (text) => {
      if (done) return false;
      child.stdin.write(text);
      return true;
    },
    kill: () => {
      if (!done) child.kill('SIGKILL');
    },
  };
}
