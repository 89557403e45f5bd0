/**
 * The feature gates kube-proxy-ts knows: the gates upstream kube-proxy v1.34's own code consults (and
 * the logging/z-pages gates of the component libraries it uses), each with its upstream stage and
 * default, and what setting it does here. Pure data and pure checks; main logs the findings.
 */

/** Upstream's maturity label of a gate, as --help prints it. */
export type GateStage = 'ALPHA' | 'BETA' | 'GA' | 'DEPRECATED';

export interface GateSpec {
  readonly name: string;
  readonly stage: GateStage;
  readonly default: boolean;
  /**
   * What the gate does here: `fixed` — the behaviour is built in at the upstream default, so setting
   * the gate to the other value is logged as unsupported; `none` — nothing in kube-proxy-ts reads it
   * (Windows-only, or a library knob with no counterpart), logged once as accepted with no effect;
   * `honoured` — both values work here as upstream.
   */
  readonly here: 'fixed' | 'none' | 'honoured';
  readonly note: string;
}

const g = (
  name: string,
  stage: GateStage,
  dflt: boolean,
  here: GateSpec['here'],
  note: string,
): GateSpec => ({
  name,
  stage,
  default: dflt,
  here,
  note,
});

/** Sorted by name, as upstream's help lists them. */
export const FEATURE_GATES: readonly GateSpec[] = [
  g('AllAlpha', 'ALPHA', false, 'none', 'no alpha behaviour is switchable here'),
  g('AllBeta', 'BETA', false, 'none', 'no beta behaviour is switchable here'),
  g('ComponentFlagz', 'ALPHA', false, 'honoured', '/flagz on the metrics server'),
  g('ComponentStatusz', 'ALPHA', false, 'honoured', '/statusz on the metrics server'),
  g('ContextualLogging', 'BETA', true, 'none', 'logging library knob'),
  g('KubeProxyDrainingTerminatingNodes', 'GA', true, 'fixed', '/healthz fails for a node being deleted'),
  g('LoadBalancerIPMode', 'GA', true, 'fixed', 'ipMode Proxy ingress IPs are not programmed'),
  g('LoggingAlphaOptions', 'ALPHA', false, 'none', 'the split-stream flags work without it'),
  g('LoggingBetaOptions', 'BETA', true, 'none', 'logging library knob'),
  g('MultiCIDRServiceAllocator', 'GA', true, 'fixed', 'ServiceCIDRs are watched'),
  g('NFTablesProxyMode', 'GA', true, 'fixed', 'the nftables mode is always available'),
  g('PreferSameTrafficDistribution', 'BETA', true, 'fixed', 'node hints (PreferSameNode) are honoured'),
  g('ServiceTrafficDistribution', 'GA', true, 'fixed', 'trafficDistribution hints are honoured'),
  g('TopologyAwareHints', 'GA', true, 'fixed', 'zone hints are honoured'),
  g('WinDSR', 'ALPHA', false, 'none', 'Windows only'),
  g('WinOverlay', 'BETA', true, 'none', 'Windows only'),
  g('WindowsHostNetwork', 'ALPHA', true, 'none', 'Windows only'),
];

const byName = new Map(FEATURE_GATES.map((s) => [s.name, s]));

/** The gate's spec, or undefined for a name kube-proxy-ts does not know. */
export function gateSpec(name: string): GateSpec | undefined {
  return byName.get(name);
}

/**
 * What to log about the gates an operator set: one line per gate that is unknown here, set against a
 * built-in behaviour, or read by nothing. A gate set to its default needs no line.
 */
export function reviewFeatureGates(gates: Readonly<Record<string, boolean>>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(gates).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = byName.get(name);
    if (!spec) {
      out.push(
        `feature gate ${name}=${value} is not one kube-proxy-ts knows (see --help); accepted, no effect`,
      );
    } else if (spec.here === 'honoured') {
      continue;
    } else if (spec.here === 'none') {
      if (value !== spec.default)
        out.push(`feature gate ${name}=${value} is accepted and has no effect here (${spec.note})`);
    } else if (value !== spec.default) {
      out.push(
        `feature gate ${name}=${value} is not supported: kube-proxy-ts always behaves as ${name}=${spec.default} (${spec.note})`,
      );
    }
  }
  return out;
}

/** The --help lines listing every known gate, upstream's way: `Name=true|false (STAGE - default=x)`. */
export function featureGateHelpLines(): string[] {
  return FEATURE_GATES.map((s) => `${s.name}=true|false (${s.stage} - default=${s.default})`);
}
