/** Version strings. The Kubernetes version is the upstream release whose behaviour we track. */
export const VERSION = '0.1.0';
export const KUBERNETES_COMPAT = 'v1.34';
