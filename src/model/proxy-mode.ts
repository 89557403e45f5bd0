/**
 * The proxy modes kube-proxy-ts knows by name. It lives in model/ because config/, observability/ and
 * backends/ all speak of modes; what each mode is lives in its backend's registration.
 */
export type ProxyMode = 'userspace' | 'iptables' | 'ipvs' | 'nftables' | 'state';
