/**
 * core/v1 Endpoints to EndpointSlices, as the API server's endpointslice-mirroring controller does it,
 * so a manifest folder may describe backends in the older format. Pure.
 *
 * Shape of the output (matching the controller's): one slice per Endpoints subset and address family;
 * `addresses` become ready endpoints and `notReadyAddresses` not-ready ones; the subset's ports are
 * copied; nodeName is kept. The slice carries the Endpoints' labels plus kubernetes.io/service-name and
 * the mirroring controller's managed-by label. Upstream picks a random name suffix; here slices are named
 * `<endpoints-name>-<n>` (n from 1) so a re-read gives the same names and no spurious delete/add.
 * Differences: upstream mirrors only when a selector-less Service of that name exists; a manifest folder
 * has no endpoints controller, so every Endpoints object is mirrored unless it has the
 * endpointslice.kubernetes.io/skip-mirror=true label.
 */
import { parseIPSloppy, ipFamily } from '../net/ip.js';
import { ValidationError, isDNS1035Label, isDNS1123Label, isDNS1123Subdomain } from '../model/validate.js';
import { LABEL_SERVICE_NAME } from '../model/types.js';

export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const MIRRORING_CONTROLLER_NAME = 'endpointslicemirroring-controller.k8s.io';
export const LABEL_SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';

/** Annotations the mirroring controller does not copy onto slices. */
const SKIPPED_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  'control-plane.alpha.kubernetes.io/leader',
]);

type Rec = Record<string, unknown>;
function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Turns a raw core/v1 Endpoints object into raw discovery.k8s.io/v1 EndpointSlice objects (wire JSON,
 * to be passed through validateEndpointSlice). Returns [] when the object asks not to be mirrored.
 * Throws ValidationError (kind "Endpoints", with the field path and value) on a malformed object; the
 * whole Endpoints is then refused, as a partial mirror would silently drop backends.
 */
export function mirrorEndpoints(raw: unknown): Rec[] {
  if (!isRec(raw)) throw new ValidationError('Endpoints', '', '', '', raw, 'must be an object');
  const md = isRec(raw.metadata) ? raw.metadata : {};
  const name = typeof md.name === 'string' ? md.name : '';
  const namespace = typeof md.namespace === 'string' && md.namespace !== '' ? md.namespace : 'default';
  const fail = (field: string, value: unknown, reason: string): never => {
    throw new ValidationError('Endpoints', namespace, name, field, value, reason);
  };
  if (!isRec(raw.metadata)) fail('metadata', raw.metadata, 'required');
  // The Endpoints name is the Service name, so it follows the Service rule.
  if (!isDNS1035Label(name)) fail('metadata.name', name, 'must be a valid DNS-1035 label (a Service name)');
  if (!isDNS1123Label(namespace)) fail('metadata.namespace', namespace, 'must be a valid DNS-1123 label');
  const labels = stringMap(md.labels, 'metadata.labels', fail);
  const annotations = stringMap(md.annotations, 'metadata.annotations', fail);
  if (labels[LABEL_SKIP_MIRROR] === 'true') return [];

  const sliceLabels: Record<string, string> = {
    ...labels,
    [LABEL_SERVICE_NAME]: name,
    [LABEL_MANAGED_BY]: MIRRORING_CONTROLLER_NAME,
  };
  const sliceAnnotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) if (!SKIPPED_ANNOTATIONS.has(k)) sliceAnnotations[k] = v;

  const subsets = raw.subsets ?? [];
  if (!Array.isArray(subsets)) return fail('subsets', subsets, 'must be a list');
  const out: Rec[] = [];
  subsets.forEach((s: unknown, i) => {
    const f = `subsets[${i}]`;
    if (!isRec(s)) fail(f, s, 'must be an object');
    const sub = s as Rec;
    const ports = listOf(sub.ports, `${f}.ports`, fail).map((p, j) => {
      const pf = `${f}.ports[${j}]`;
      if (!isRec(p)) return fail(pf, p, 'must be an object');
      const port = p.port;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
        return fail(`${pf}.port`, port, 'must be an integer between 1 and 65535');
      const pname = p.name ?? '';
      if (typeof pname !== 'string' || (pname !== '' && !isDNS1123Label(pname)))
        return fail(`${pf}.name`, pname, 'must be a valid DNS-1123 label');
      const protocol = p.protocol ?? 'TCP';
      if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
        return fail(`${pf}.protocol`, protocol, 'must be one of TCP, UDP, SCTP');
      return { name: pname, port, protocol };
    });
    const byFamily: Record<'IPv4' | 'IPv6', Rec[]> = { IPv4: [], IPv6: [] };
    const addAll = (list: unknown, field: string, ready: boolean): void => {
      listOf(list, field, fail).forEach((a, j) => {
        const af = `${field}[${j}]`;
        if (!isRec(a)) return fail(af, a, 'must be an object');
        const ip = typeof a.ip === 'string' ? parseIPSloppy(a.ip) : undefined;
        if (ip === undefined) return fail(`${af}.ip`, a.ip, 'must be a valid IP address');
        const family = ipFamily(ip) ?? 'IPv4';
        const ep: Rec = { addresses: [ip], conditions: { ready } };
        if (a.nodeName !== undefined && a.nodeName !== null) {
          if (typeof a.nodeName !== 'string' || !isDNS1123Subdomain(a.nodeName))
            return fail(`${af}.nodeName`, a.nodeName, 'must be a valid DNS-1123 subdomain');
          ep.nodeName = a.nodeName;
        }
        byFamily[family].push(ep);
      });
    };
    addAll(sub.addresses, `${f}.addresses`, true);
    addAll(sub.notReadyAddresses, `${f}.notReadyAddresses`, false);
    for (const family of ['IPv4', 'IPv6'] as const) {
      const endpoints = byFamily[family];
      if (endpoints.length === 0) continue;
      out.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: `${name}-${out.length + 1}`,
          namespace,
          labels: { ...sliceLabels },
          annotations: { ...sliceAnnotations },
        },
        addressType: family,
        endpoints,
        ports: ports.map((p) => ({ ...p })),
      });
    }
  });
  return out;
}

function listOf(v: unknown, field: string, fail: (f: string, v: unknown, r: string) => never): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : fail(field, v, 'must be a list');
}

function stringMap(
  v: unknown,
  field: string,
  fail: (f: string, v: unknown, r: string) => never,
): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRec(v)) return fail(field, v, 'must be an object');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v))
    out[k] = typeof val === 'string' ? val : fail(`${field}[${k}]`, val, 'must be a string');
  return out;
}
