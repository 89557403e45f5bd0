/**
 * The one fake executor for unit tests: an Exec that spawns nothing, records every call, and answers
 * from a handler. It honours okCodes as run() does, so code paths that depend on exit codes (iptables
 * -C, ip addr show of a missing device) behave as with the real tools.
 */
import { ExecError, type Exec, type RunOptions, type RunResult } from './run.js';

/** One recorded call. `input` is present when the caller fed stdin. */
export interface ExecCall {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly input?: string;
}

/** What the fake tool does: exit code (default 0) and output. */
export interface FakeAnswer {
  readonly code?: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

/** Answers a call; throwing (or rejecting) makes the exec reject with that error, as a missing tool would. */
export type FakeHandler = (call: ExecCall) => FakeAnswer | Promise<FakeAnswer>;

export interface FakeExec {
  readonly exec: Exec;
  /** Every call so far, in order. */
  readonly calls: ExecCall[];
  /** The same calls as `cmd arg arg...` lines (kept in step with calls). */
  readonly lines: string[];
}

/** A fake Exec answering with `handler` (default: exit 0, no output). */
export function fakeExec(handler: FakeHandler = () => ({})): FakeExec {
  const calls: ExecCall[] = [];
  const lines: string[] = [];
  const exec: Exec = async (cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> => {
    const input = opts?.inputChunks ? [...opts.inputChunks].join('') : opts?.input;
    const call: ExecCall = { cmd, args, ...(input !== undefined ? { input } : {}) };
    calls.push(call);
    lines.push([cmd, ...args].join(' '));
    const a = await handler(call);
    const code = a.code ?? 0;
    const stdout = a.stdout ?? '';
    const stderr = a.stderr ?? '';
    if (!(opts?.okCodes ?? [0]).includes(code))
      throw new ExecError('KP_ERR_EXEC_FAILED', cmd, args, code, stderr || 'fake failure', stdout);
    // As run() does with onStdout: the output goes to it, not into the result.
    if (opts?.onStdout) {
      if (stdout !== '') opts.onStdout(stdout);
      return { code, stdout: '', stderr, durationMs: 0 };
    }
    return { code, stdout, stderr, durationMs: 0 };
  };
  return { exec, calls, lines };
}
