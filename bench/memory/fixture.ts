/**
 * The memory benches' cluster: the file of Service i (its Service and one slice of 5 endpoints, as
 * JSON documents). Generation `gen` moves the endpoints (the churn writes generations 1, 2, ...).
 */
export function serviceFile(i: number, gen = 0): string {
  const ns = `ns${i % 50}`;
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: ns, name: `svc-${i}` },
    spec: {
      clusterIP: `172.30.${1 + (i >> 8)}.${i & 255}`,
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    },
  };
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: ns, name: `svc-${i}-1`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    endpoints: [0, 1, 2, 3, 4].map((j) => {
      const k = (i * 5 + j + gen * 7) % (250 * 256);
      return {
        addresses: [`10.250.${k >> 8}.${k & 255}`],
        nodeName: `node-${j}`,
        conditions: { ready: true, serving: true, terminating: false },
      };
    }),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  return `${JSON.stringify(svc)}\n---\n${JSON.stringify(slice)}\n`;
}

/** The node's own Node object (its name, pod CIDR and InternalIP), as the benches' node.yaml. */
export function nodeFile(name: string, ip: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: { podCIDRs: ['10.244.0.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  });
}
