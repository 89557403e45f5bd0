/**
 * `kube-proxy explain`: loads the state exactly as `render` does, renders the mode's rules for the
 * packet's family (only the service ports the packet can touch, see explain/scope.ts), and traces the
 * packet through them (src/explain). With --live it also traces the
 * kernel's rules in the current network namespace and reports where they differ.
 */
import type { CommandLine } from '../config/types.js';
import {
  ExplainInputError,
  explain,
  formatJSON,
  formatText,
  nodeLocalAddresses,
  parseExplainRequest,
  stateForFamily,
  type ExplainContext,
} from '../explain/explain.js';
import { compareLive, formatLiveLines } from '../explain/live.js';
import { scopeForPacket } from '../explain/scope.js';
import type { Logger } from '../observability/logger.js';
import { loadRenderInputs } from './app.js';
import { readLiveRules } from './explain-live-read.js';

/** Exit status when --live finds the kernel disagreeing with the desired state. */
export const EXIT_LIVE_DIFFERS = 3;

/**
 * Runs `kube-proxy explain`; returns the exit status (0, or 3 when --live differs; with -o json the
 * differences go to `writeErr`, one line each, and stdout holds the kernel's answer). Throws
 * ExplainInputError for bad input (the caller exits 2) and the load errors `render` throws.
 */
export async function runExplain(
  cmd: CommandLine,
  logger: Logger,
  write: (s: string) => void,
  writeErr: (s: string) => void,
): Promise<number> {
  const req = cmd.explain ?? {
    protocol: undefined,
    source: undefined,
    destination: undefined,
    output: 'text',
    live: false,
  };
  const output = req.output;
  if (output !== 'text' && output !== 'json')
    throw new ExplainInputError('--output', output, 'expected text or json');
  const packet = parseExplainRequest(req, (n) => `--${n}`);
  const inputs = await loadRenderInputs(cmd, logger);
  const contexts = inputs.states.map((state, i) => ({
    state,
    options: inputs.options.find((o) => o.family === state.family) ?? inputs.options[i]!,
  }));
  const { state, options } = stateForFamily(contexts, packet, '--destination');
  // One answer needs only the rules the packet can touch: render those (the whole state's rules at
  // 10k services cost seconds). --live too: the whole render is made only if the kernel's path
  // takes a rule outside that part (to tell our rules from foreign ones).
  // IPVS NodePorts on the machine's addresses, as the daemon programs them, when this is the node.
  const localAddresses = nodeLocalAddresses(inputs.localAddresses, state.nodeIPs);
  const machine = localAddresses ? { localAddresses } : {};
  const rules = inputs.backend.render([scopeForPacket(state, packet)], [options], [state], machine);
  const ctx: ExplainContext = {
    mode: cmd.config.mode,
    state,
    options,
    rules,
    interfaceAddresses: inputs.interfaceAddresses,
    ...(localAddresses ? { localAddresses } : {}),
  };
  const e = explain(ctx, packet);
  if (!req.live) {
    write(output === 'json' ? formatJSON(e) : formatText(e));
    return 0;
  }
  const cmp = compareLive(ctx, await readLiveRules(ctx.mode, state.family), packet, {
    whole: () => inputs.backend.render([state], [options], undefined, machine),
  });
  if (output === 'json') {
    write(formatJSON(cmp.live));
    for (const l of formatLiveLines(cmp)) writeErr(`${l}\n`);
  } else
    write(
      formatText(cmp.live) +
        formatLiveLines(cmp)
          .map((l) => `${l}\n`)
          .join(''),
    );
  return cmp.differences.length > 0 ? EXIT_LIVE_DIFFERS : 0;
}
