// Child processes for the e2e lab: one-shot commands inside a namespace, and long-lived
// processes (backends, agents, the daemon under test) whose output we keep and that we can kill.
import { spawn, type ChildProcess } from 'node:child_process';

/** Result of a finished command. */
export interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for {@link execIn}. */
export interface ExecOptions {
  /** Written to the command's stdin, which is then closed (e.g. an iptables-restore script). */
  readonly input?: string;
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  readonly timeoutMs?: number;
  /** When true a non-zero exit is returned instead of thrown. Default false. */
  readonly allowFail?: boolean;
}

/** Thrown by {@link execIn} when a command fails (non-zero exit, signal, timeout or spawn error). */
export class LabExecError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
    reason: string,
  ) {
    super(`lab: \`${command}\` ${reason}${result.stderr ? `: ${result.stderr.trim()}` : ''}`);
    this.name = 'LabExecError';
  }
}

/**
 * Runs `cmd args` inside network namespace `ns` (`ns === undefined` runs it in the current one)
 * and resolves with its output. Rejects with LabExecError on failure unless `allowFail`.
 */
export function execIn(
  ns: string | undefined,
  cmd: string,
  args: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const argv = ns === undefined ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
  const label = argv.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(
        new LabExecError(
          label,
          { code: null, signal: null, stdout, stderr },
          `could not start: ${err.message}`,
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (timedOut) reject(new LabExecError(label, result, `timed out after ${opts.timeoutMs ?? 30_000} ms`));
      else if (code !== 0 && !opts.allowFail)
        reject(new LabExecError(label, result, `exited with ${code ?? signal}`));
      else resolve(result);
    });
    // A command that exits without reading stdin makes the write fail with EPIPE; the exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** How a long-lived process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Output kept per stream; older output is dropped so a chatty daemon cannot exhaust memory. */
const MAX_KEPT = 4 * 1024 * 1024;

/**
 * A long-lived process started in a namespace. Output is captured; the process does not keep
 * the test process alive (it is unref'd) and is killed by the lab on destroy or process exit.
 */
export class LabProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private out = '';
  private err = '';
  private exit: ExitInfo | undefined;
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly ns: string,
    readonly command: string,
    private readonly child: ChildProcess,
  ) {
    // without a listener a spawn failure (ENOENT) would crash the test process
    child.on('error', (e) => (this.err += `\nlab: spawn error: ${e.message}\n`));
    if (child.pid === undefined) throw new Error(`lab: could not start \`${command}\` in ${ns}`);
    this.pid = child.pid;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.out = keepTail(this.out + d);
      this.notify();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.err = keepTail(this.err + d);
      this.notify();
    });
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
    this.setRef(false);
  }

  /** Everything written to stdout so far (tail only, if very large). */
  get stdout(): string {
    return this.out;
  }

  /** Everything written to stderr so far (tail only, if very large). */
  get stderr(): string {
    return this.err;
  }

  /** Exit status, or undefined while running. */
  get exitInfo(): ExitInfo | undefined {
    return this.exit;
  }

  /** The child's stdin (e.g. for an agent protocol); undefined if it was not piped. */
  get stdin(): NodeJS.WritableStream | undefined {
    return this.child.stdin ?? undefined;
  }

  /**
   * Resolves with the combined output once `pattern` matches stdout+stderr; rejects when the
   * process exits first or after `timeoutMs` (default 10 s), quoting the output seen.
   */
  waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = (this.out + '\n' + this.err).match(pattern);
        if (m) {
          finish();
          resolve(m);
          return true;
        }
        if (this.exit) {
          finish();
          reject(
            new Error(
              `lab: \`${this.command}\` exited (${this.exit.code ?? this.exit.signal}) before printing ${pattern}; output:\n${this.tail()}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `lab: \`${this.command}\` did not print ${pattern} within ${timeoutMs} ms; output:\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
      };
      const watcher = (): void => void check();
      this.watchers.add(watcher);
      check();
    });
  }

  /** Sends `signal` (default SIGTERM) if still running. */
  signal(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exit) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /**
   * Stops the process: SIGTERM, then SIGKILL if it is still running after `graceMs`
   * (default 2 s). Resolves when it has exited.
   */
  async stop(graceMs = 2000): Promise<ExitInfo> {
    if (this.exit) return this.exit;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>(
      (resolve) =>
        (timer = setTimeout(() => {
          resolve(undefined);
        }, graceMs)),
    );
    const first = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (first) return first;
    this.signal('SIGKILL');
    // The child and its pipes are unref'd: without a timer of ours nothing keeps the event loop
    // alive until its 'close' arrives, and a script awaiting stop() at top level would end with
    // exit code 13 (an unsettled await; seen in the IPVS VM, where the daemon outlived SIGTERM's
    // grace). The timer only keeps the loop alive; the wait ends with the exit.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      return await this.exited;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Whether the process (and its stdio pipes) keep the event loop alive. */
  setRef(ref: boolean): void {
    // stdio pipes are net.Sockets at runtime, but typed as plain streams without ref/unref.
    type Refable = { ref?: () => void; unref?: () => void } | null;
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr] as Refable[]) {
      if (ref) s?.ref?.();
      else s?.unref?.();
    }
    if (ref) this.child.ref();
    else this.child.unref();
  }

  /** Calls `listener` with every stdout chunk from now on (utf8 text, not split into lines). */
  onStdout(listener: (chunk: string) => void): void {
    this.child.stdout?.on('data', listener);
  }

  /** Last lines of output, for error messages. */
  tail(lines = 40): string {
    return (this.out + this.err).split('\n').slice(-lines).join('\n');
  }

  private notify(): void {
    for (const w of [...this.watchers]) w();
  }
}

function keepTail(s: string): string {
  return s.length > MAX_KEPT ? s.slice(s.length - MAX_KEPT) : s;
}

/** Starts `cmd args` in namespace `ns` with piped stdio (stdin stays open until the process is killed). */
export function spawnIn(
  ns: string,
  cmd: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): LabProcess {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: env ? { ...process.env, ...env } : process.env,
  });
  return new LabProcess(ns, `${cmd} ${args.join(' ')}`.trim(), child);
}
