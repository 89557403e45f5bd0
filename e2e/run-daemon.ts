/**
 * The daemon as the e2e tests start it. The shipped default log format is text (as upstream); the
 * tests read fields of pino's JSON lines, so JSON is the default here unless a test picks a format.
 */
import { main } from '../src/main.js';
const args = process.argv.slice(2);
const subcommand = args[0] !== undefined && !args[0].startsWith('-');
if (!subcommand && !args.some((a) => a.startsWith('--logging-format'))) args.push('--logging-format=json');
await main(args);
