/**
 * The contract every source (api, manifests) fulfils: typed events for the kinds kube-proxy consumes.
 * Nothing downstream knows which source runs.
 */
import type { Kind, KubeObject } from '../model/types.js';

export type SourceEvent =
  | { readonly type: 'add'; readonly object: KubeObject }
  | { readonly type: 'update'; readonly old: KubeObject; readonly object: KubeObject }
  | { readonly type: 'delete'; readonly object: KubeObject }
  /** The initial state of `kind` has been delivered in full (sent once per kind per source lifetime). */
  | { readonly type: 'synced'; readonly kind: Kind };

export type SourceHandler = (ev: SourceEvent) => void;

export interface Source {
  /**
   * Starts delivering events to `handler`. Resolves once watching has begun (not when synced: the
   * 'synced' events say that). Objects that fail validation are logged and never delivered.
   */
  start(handler: SourceHandler): Promise<void>;
  /** Stops all watches and timers; no event is delivered after it resolves. */
  stop(): Promise<void>;
}

/** What a source is asked to watch. */
export interface SourceScope {
  /** This node's name: the Node object watched is the one with this name. */
  readonly nodeName: string;
  /** Whether to watch ServiceCIDR objects (nftables mode). */
  readonly serviceCIDRs: boolean;
}
