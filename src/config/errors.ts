/**
 * The two ways configuration can be wrong, each with a stable code (undici style), so main.ts can
 * print the message and exit 1 without a stack trace, and tests can match on `code`.
 */
import { KpError } from '../errors.js';

/** A command-line problem: unknown flag, missing or malformed value, unexpected argument. */
export class FlagError extends KpError {
  declare readonly code: 'KP_ERR_FLAG';
  constructor(message: string) {
    super('KP_ERR_FLAG', message);
  }
}

/**
 * A configuration problem (file or flags): unreadable or malformed file, unknown field, or one or
 * more invalid values. `problems` holds one line per problem; `message` joins them.
 */
export class ConfigError extends KpError {
  declare readonly code: 'KP_ERR_CONFIG';
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: ErrorOptions) {
    super('KP_ERR_CONFIG', problems.join('\n'), options);
    this.problems = problems;
  }
}
