/** Label filters upstream applies at the informer (upstream cmd/kube-proxy/app/server.go, where the informers are created). Pure. */
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME } from './types.js';

/** The label selector string the api source sends for Services and EndpointSlices. */
export const PROXY_LABEL_SELECTOR = `!${LABEL_SERVICE_PROXY_NAME},!${LABEL_HEADLESS}`;

/**
 * True when a Service or EndpointSlice is for this proxy: it has neither the service-proxy-name label
 * (another proxy owns it) nor the headless label.
 */
export function isForThisProxy(labels: Readonly<Record<string, string>>): boolean {
  return !(LABEL_SERVICE_PROXY_NAME in labels) && !(LABEL_HEADLESS in labels);
}
