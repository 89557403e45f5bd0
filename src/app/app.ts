/**
 * The one-shot commands: render (what the daemon would program for the current input; explain reads
 * the same inputs through loadRenderInputs) and cleanup
 * (every mode removes what it created). The daemon itself is app/proxy-server.ts.
 */
import type { CommandLine } from '../config/types.js';
import { resolveNodeName } from '../config/load.js';
import { getBackend, registeredModes, type Backend } from '../backends/backend.js';
import type { Logger } from '../observability/logger.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState } from '../proxy/types.js';
import { StateTracker } from '../proxy/state-tracker.js';
import type { SourceScope } from '../sources/source.js';
import { osHostname, readInterfaceAddresses, readLocalAddresses } from './machine.js';
import type { LocalAddress } from '../backends/ipvs/render.js';
import {
  BASE_KINDS,
  backendFor,
  collectUntilSynced,
  createSource,
  detectFamilies,
  familyOptions,
} from './startup.js';

/** What `render` and `explain` read: the backend, one state and options per family, the node's addresses. */
export interface RenderInputs {
  readonly backend: Backend;
  readonly states: readonly DesiredState[];
  readonly options: readonly FamilyOptions[];
  readonly interfaceAddresses: readonly string[];
  /** The same with their interfaces (explain renders IPVS NodePorts on them, as the daemon does). */
  readonly localAddresses: readonly LocalAddress[];
}

/** Loads the state `render` (and `explain`) works on: every object from the source, once synced. */
export async function loadRenderInputs(cmd: CommandLine, logger: Logger): Promise<RenderInputs> {
  const config = cmd.config;
  const backend = backendFor(config);
  const nodeName = resolveNodeName(config, osHostname());
  const scope: SourceScope = { nodeName, serviceCIDRs: backend.watches.includes('ServiceCIDR') };
  const { source, close } = await createSource(config, scope, logger, {
    enforceServiceClusterIPRange: cmd.explicitFlags.has('service-cluster-ip-range'),
  });
  const { ready } = collectUntilSynced(
    source,
    scope.serviceCIDRs ? [...BASE_KINDS, 'ServiceCIDR'] : BASE_KINDS,
  );
  const events = await ready;
  await source.stop();
  close();
  const probe = new StateTracker({ families: ['IPv4', 'IPv6'], nodeName, bindAddress: config.bindAddress });
  for (const ev of events) probe.onEvent(ev);
  const families = detectFamilies(probe);
  const tracker = new StateTracker({ families, nodeName, bindAddress: config.bindAddress });
  for (const ev of events) tracker.onEvent(ev);
  const interfaceAddresses = readInterfaceAddresses();
  const states = families.map((f) => tracker.build(f));
  const options = families.map((f) => familyOptions(config, tracker, f, interfaceAddresses));
  return { backend, states, options, interfaceAddresses, localAddresses: readLocalAddresses() };
}

/** `kube-proxy render`: prints what the daemon would program for the current input, then stops. */
export async function runRender(cmd: CommandLine, logger: Logger, write: (s: string) => void): Promise<void> {
  const { backend, states, options } = await loadRenderInputs(cmd, logger);
  write(backend.render(states, options));
}

/**
 * `kube-proxy --cleanup`: every built mode removes what it created (upstream cleans all modes), each
 * before the modes its `cleanupBefore` names (IPVS before iptables: its rules use iptables-mode
 * chains). A node that ran several modes can hold references no order foresees (an old mode's leftovers
 * jumping into a chain another mode deletes): the modes that failed are retried once after the others
 * are gone. True when every mode succeeded; each final failure is one error line.
 */
export async function runCleanup(
  logger: Logger,
  backends: readonly Backend[] = registeredModes().map((m) => getBackend(m)!),
): Promise<boolean> {
  let pending = cleanupOrder(backends);
  let failures: { mode: string; err: unknown }[] = [];
  for (let pass = 1; pass <= 2 && pending.length > 0; pass++) {
    failures = [];
    for (const b of pending) {
      try {
        await b.cleanup(logger);
      } catch (err) {
        failures.push({ mode: b.mode, err });
      }
    }
    pending = pending.filter((b) => failures.some((f) => f.mode === b.mode));
    if (pass === 1 && pending.length > 0)
      logger.info(
        { modes: pending.map((b) => b.mode) },
        'cleanup: retrying the modes that failed, now that the others are gone',
      );
  }
  for (const f of failures) logger.error({ mode: f.mode, err: f.err }, 'cleanup failed');
  return failures.length === 0;
}

/** `backends` with each moved ahead of the modes its cleanupBefore names (stable otherwise). */
export function cleanupOrder(backends: readonly Backend[]): Backend[] {
  const order = [...backends];
  for (let round = 0; round < order.length; round++) {
    let moved = false;
    for (const b of [...order]) {
      const at = order.indexOf(b);
      const first = Math.min(
        ...(b.cleanupBefore ?? []).map((m) => order.findIndex((o) => o.mode === m)).filter((k) => k >= 0),
      );
      if (first < at) {
        order.splice(at, 1);
        order.splice(first, 0, b);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return order;
}
