/**
 * Kubernetes Events, as upstream kube-proxy records them: through events.k8s.io/v1, reported by the
 * controller "kube-proxy" from instance "kube-proxy-<node>". Recording is fire-and-forget: a failed
 * POST is logged (once per reason) and never disturbs the proxy.
 */
import { randomBytes } from 'node:crypto';
import type { ApiClient } from './client.js';
import type { Logger } from '../observability/logger.js';

/** The object an Event is about (events.k8s.io/v1 `regarding`). */
export interface EventSubject {
  readonly kind: 'Node' | 'Service';
  readonly name: string;
  /** Namespaced objects only. */
  readonly namespace?: string;
  readonly uid?: string;
  readonly apiVersion?: string;
}

export interface EventSpec {
  readonly regarding: EventSubject;
  readonly type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. "FailedToStartServiceHealthcheck". */
  readonly reason: string;
  /** CamelCase action, e.g. "Listen". */
  readonly action: string;
  readonly note: string;
}

/** RFC 3339 with microseconds, the MicroTime shape the API server expects for eventTime. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * The events.k8s.io/v1 Event object for `spec`, reported by `kube-proxy-<host>`; cluster-scoped
 * subjects (Node) get their Event in the "default" namespace, as client-go's recorder does.
 */
export function buildEvent(
  spec: EventSpec,
  host: string,
  now: Date,
  suffix: string,
): Record<string, unknown> {
  const namespace = spec.regarding.namespace ?? 'default';
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${spec.regarding.name}.${suffix}`, namespace },
    eventTime: microTime(now),
    reportingController: 'kube-proxy',
    reportingInstance: `kube-proxy-${host}`,
    action: spec.action,
    reason: spec.reason,
    type: spec.type,
    note: spec.note.slice(0, 1024),
    regarding: {
      kind: spec.regarding.kind,
      name: spec.regarding.name,
      apiVersion: spec.regarding.apiVersion ?? 'v1',
      ...(spec.regarding.namespace !== undefined ? { namespace: spec.regarding.namespace } : {}),
      ...(spec.regarding.uid !== undefined ? { uid: spec.regarding.uid } : {}),
    },
  };
}

/** Posts Events for one node's proxy. */
export class EventRecorder {
  private readonly failedReasons = new Set<string>();

  constructor(
    private readonly client: Pick<ApiClient, 'postJSON'>,
    private readonly host: string,
    private readonly logger: Logger,
  ) {}

  /** Records `spec` in the background; resolves when the POST is done or has failed (never rejects). */
  record(spec: EventSpec): Promise<void> {
    const event = buildEvent(spec, this.host, new Date(), randomBytes(8).toString('hex'));
    const ns = (event.metadata as { namespace: string }).namespace;
    return this.client
      .postJSON(`/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`, event)
      .then(
        () => {
          this.logger.debug({ reason: spec.reason, regarding: spec.regarding.name }, 'recorded event');
        },
        (err: unknown) => {
          if (this.failedReasons.has(spec.reason)) return;
          this.failedReasons.add(spec.reason);
          this.logger.warn(
            { err, reason: spec.reason },
            'cannot record a Kubernetes Event (logged once per reason)',
          );
        },
      );
  }
}

/**
 * The Events the daemon records when it starts, regarding its Node (upstream's NodeRef: kind Node,
 * name and uid the node name): "Starting" always; in ipvs mode also the "IPVSDeprecation" warning
 * that upstream records once it has chosen the ipvs proxier (added with KEP-5495). Pure.
 */
export function startupEvents(mode: string, nodeName: string): EventSpec[] {
  const node: EventSubject = { kind: 'Node', name: nodeName, uid: nodeName };
  const out: EventSpec[] = [
    { regarding: node, type: 'Normal', reason: 'Starting', action: 'StartKubeProxy', note: '' },
  ];
  if (mode === 'ipvs')
    out.push({
      regarding: node,
      type: 'Warning',
      reason: 'IPVSDeprecation',
      action: 'StartKubeProxy',
      note: 'ipvs proxy mode is deprecated upstream (KEP-5495) and may be removed in a later release; nftables mode is its replacement',
    });
  return out;
}

/**
 * The Event for a health check node port that could not be bound, regarding the Service (upstream
 * puts "namespace/name" in the reference's uid, having no real one at hand). Pure.
 */
export function healthCheckListenEvent(service: string, note: string): EventSpec {
  const [namespace = '', name = ''] = service.split('/');
  return {
    regarding: { kind: 'Service', namespace, name, uid: service },
    type: 'Warning',
    reason: 'FailedToStartServiceHealthcheck',
    action: 'Listen',
    note,
  };
}
