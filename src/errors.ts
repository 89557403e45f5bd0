/**
 * The error catalogue: every failure kube-proxy-ts reports has a class that extends KpError and a stable
 * code from ERROR_CODES (as undici does). Callers match on `code`, never on message text; main.ts prints a
 * KpError as one line without a stack; logs pass the error object so code, cause and extra fields (an
 * ExecError's stderr, say) reach the log.
 *
 * Pure: no imports, so every layer (the pure core included) may throw these.
 */

/** Every stable code, with what it means. A code is never renamed or reused once released. */
export const ERROR_CODES = {
  KP_ERR_FLAG: 'a command-line flag is unknown, lacks its value, or has a malformed value',
  KP_ERR_CONFIG: 'the configuration (file or flags) is unreadable, malformed or has invalid values',
  KP_ERR_CONNECTION_CONFIG:
    'no usable API server connection follows from the kubeconfig, --master or the pod',
  KP_ERR_INVALID_OBJECT: 'a Kubernetes object failed validation; it is skipped',
  KP_ERR_API_STATUS: 'the API server answered with a non-2xx status',
  KP_ERR_API_TRANSPORT: 'the API server connection failed, stalled or sent unparsable data',
  KP_ERR_API_GONE: 'the watch resourceVersion is too old (410 Gone); the reflector relists',
  KP_ERR_EXEC_NOT_FOUND: 'a system tool is not on PATH',
  KP_ERR_EXEC_TIMEOUT: 'a system tool did not finish in time and was killed',
  KP_ERR_EXEC_FAILED: 'a system tool exited with a failure code',
  KP_ERR_MODE_UNAVAILABLE: 'the proxy mode is not built in, or this system cannot run it',
  KP_ERR_LISTEN: 'a server cannot listen on its configured address',
  KP_ERR_BAD_ADDRESS: 'a host:port address is malformed',
  KP_ERR_SOURCE: 'the state source (manifests folder, API) cannot be started',
  KP_ERR_CLEANUP: 'a cleanup did not remove everything it should',
  KP_ERR_CLOSED: 'an object was used after close()',
  KP_ERR_INVALID_ARGUMENT: 'a programming error: an argument outside its contract',
  KP_ERR_EXPLAIN_INPUT: 'a kube-proxy explain request has a malformed or missing parameter (exit status 2)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The base of every error kube-proxy-ts throws on purpose. */
export class KpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A proxy mode that is not built in, or that this system cannot run (a missing tool or kernel feature). */
export class ModeUnavailableError extends KpError {
  constructor(message: string, options?: ErrorOptions) {
    super('KP_ERR_MODE_UNAVAILABLE', message, options);
  }
}

/** True for errors of the catalogue (whatever their subclass). */
export function isKpError(err: unknown): err is KpError {
  return err instanceof KpError;
}

/**
 * The one line main.ts prints for a failure: the message of a KpError (its cause's message appended
 * when the message does not already include it); for anything else, which is a bug, the stack.
 */
export function describeFailure(err: unknown): string {
  if (isKpError(err)) {
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    return cause && !err.message.includes(cause) ? `${err.message}: ${cause}` : err.message;
  }
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}
