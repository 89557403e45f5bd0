/**
 * The feature gates kube-proxy-ts knows: the gates upstream kube-proxy v1.34's own code consults (and
 * the logging/z-pages gates of the component libraries it uses), each with its upstream stage and
 * default, and what setting it does here; and the names of every other gate upstream's binary
 * registers (it shares one gate set with all of Kubernetes), which it accepts and never reads. As
 * upstream, a name in neither list is an error, and so is setting a gate that is locked to its
 * default to the other value. Pure data and pure checks; load.ts throws and logs the findings.
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
  /** GA and locked to its default upstream: setting the other value is an error there, and here. */
  readonly locked?: boolean;
}

const g = (
  name: string,
  stage: GateStage,
  dflt: boolean,
  here: GateSpec['here'],
  note: string,
  locked = false,
): GateSpec => ({
  name,
  stage,
  default: dflt,
  here,
  note,
  ...(locked ? { locked } : {}),
});

/**
 * Sorted by name, as upstream's help lists them. Stages, defaults and locks as upstream's
 * pkg/features/kube_features.go and component-base declare them (KubeProxyDrainingTerminatingNodes
 * is gone: GA and locked since v1.31, its gate was removed, so upstream rejects it as unknown).
 */
export const FEATURE_GATES: readonly GateSpec[] = [
  g('AllAlpha', 'ALPHA', false, 'none', 'no alpha behaviour is switchable here'),
  g('AllBeta', 'BETA', false, 'none', 'no beta behaviour is switchable here'),
  g('ComponentFlagz', 'ALPHA', false, 'honoured', '/flagz on the metrics server'),
  g('ComponentStatusz', 'ALPHA', false, 'honoured', '/statusz on the metrics server'),
  g('ContextualLogging', 'BETA', true, 'none', 'logging library knob'),
  g('LoadBalancerIPMode', 'GA', true, 'fixed', 'ipMode Proxy ingress IPs are not programmed', true),
  g('LoggingAlphaOptions', 'ALPHA', false, 'none', 'the split-stream flags work without it'),
  g('LoggingBetaOptions', 'BETA', true, 'none', 'logging library knob'),
  g('MultiCIDRServiceAllocator', 'GA', true, 'fixed', 'ServiceCIDRs are watched'),
  g('NFTablesProxyMode', 'GA', true, 'fixed', 'the nftables mode is always available', true),
  g('PreferSameTrafficDistribution', 'BETA', true, 'fixed', 'node hints (PreferSameNode) are honoured'),
  g('ServiceTrafficDistribution', 'GA', true, 'fixed', 'trafficDistribution hints are honoured', true),
  g('TopologyAwareHints', 'GA', true, 'fixed', 'zone hints are honoured', true),
  g('WinDSR', 'BETA', true, 'none', 'Windows only'),
  g('WinOverlay', 'BETA', true, 'none', 'Windows only'),
  g('WindowsHostNetwork', 'DEPRECATED', false, 'none', 'Windows only'),
];

/**
 * Every other gate upstream's kube-proxy binary registers and accepts (Kubernetes' shared gate set:
 * kubelet, API server, scheduler, controller and client-go gates), none of which kube-proxy reads.
 * Taken from upstream's pkg/features/kube_features.go (the v1.33 release's versioned gate table,
 * including the apiserver, apiextensions, controller-manager and z-pages gates it relists) and
 * client-go's known features. Names only: setting one is accepted with one log line.
 */
export const OTHER_UPSTREAM_GATES: readonly string[] = [
  'APIResponseCompression',
  'APIServerIdentity',
  'APIServerTracing',
  'APIServingWithRoutine',
  'AggregatedDiscoveryRemoveBetaType',
  'AllowDNSOnlyNodeCSR',
  'AllowInsecureKubeletCertificateSigningRequests',
  'AllowOverwriteTerminationGracePeriodSeconds',
  'AllowParsingUserUIDFromCertAuth',
  'AllowServiceLBStatusOnNonLB',
  'AllowUnsafeMalformedObjectDeletion',
  'AnonymousAuthConfigurableEndpoints',
  'AnyVolumeDataSource',
  'AuthorizeNodeWithSelectors',
  'AuthorizeWithSelectors',
  'BtreeWatchCache',
  'CBORServingAndStorage',
  'CPUManagerPolicyAlphaOptions',
  'CPUManagerPolicyBetaOptions',
  'CPUManagerPolicyOptions',
  'CRDValidationRatcheting',
  'CSIMigrationPortworx',
  'CSIVolumeHealth',
  'ClientsAllowCBOR',
  'ClientsPreferCBOR',
  'CloudControllerManagerWebhook',
  'ClusterTrustBundle',
  'ClusterTrustBundleProjection',
  'ConcurrentWatchObjectDecode',
  'ConsistentListFromCache',
  'ContainerCheckpoint',
  'ContainerStopSignals',
  'CoordinatedLeaderElection',
  'CronJobsScheduledAnnotation',
  'CrossNamespaceVolumeDataSource',
  'CustomCPUCFSQuotaPeriod',
  'CustomResourceFieldSelectors',
  'DRAAdminAccess',
  'DRADeviceTaints',
  'DRAPartitionableDevices',
  'DRAPrioritizedList',
  'DRAResourceClaimDeviceStatus',
  'DeclarativeValidation',
  'DeclarativeValidationTakeover',
  'DeploymentReplicaSetTerminatingReplicas',
  'DevicePluginCDIDevices',
  'DisableAllocatorDualWrite',
  'DisableCPUQuotaWithExclusiveCPUs',
  'DisableNodeKubeProxyVersion',
  'DynamicResourceAllocation',
  'ElasticIndexedJob',
  'EventedPLEG',
  'ExecProbeTimeout',
  'ExternalServiceAccountTokenSigner',
  'GitRepoVolumeDriver',
  'GracefulNodeShutdown',
  'GracefulNodeShutdownBasedOnPodPriority',
  'HPAConfigurableTolerance',
  'HPAScaleToZero',
  'HonorPVReclaimPolicy',
  'ImageMaximumGCAge',
  'ImageVolume',
  'InOrderInformers',
  'InPlacePodVerticalScaling',
  'InPlacePodVerticalScalingAllocatedStatus',
  'InPlacePodVerticalScalingExclusiveCPUs',
  'InTreePluginPortworxUnregister',
  'InformerResourceVersion',
  'JobBackoffLimitPerIndex',
  'JobManagedBy',
  'JobPodReplacementPolicy',
  'JobSuccessPolicy',
  'KMSv1',
  'KubeletCgroupDriverFromCRI',
  'KubeletCrashLoopBackOffMax',
  'KubeletEnsureSecretPulledImages',
  'KubeletFineGrainedAuthz',
  'KubeletInUserNamespace',
  'KubeletPSI',
  'KubeletPodResourcesDynamicResources',
  'KubeletPodResourcesGet',
  'KubeletRegistrationGetOnExistsOnly',
  'KubeletSeparateDiskGC',
  'KubeletServiceAccountTokenForCredentialProviders',
  'KubeletTracing',
  'LegacySidecarContainers',
  'ListFromCacheSnapshot',
  'LocalStorageCapacityIsolationFSQuotaMonitoring',
  'LogarithmicScaleDown',
  'MatchLabelKeysInPodAffinity',
  'MatchLabelKeysInPodTopologySpread',
  'MaxUnavailableStatefulSet',
  'MemoryManager',
  'MemoryQoS',
  'MutableCSINodeAllocatableCount',
  'MutatingAdmissionPolicy',
  'NodeInclusionPolicyInPodTopologySpread',
  'NodeLogQuery',
  'NodeSwap',
  'OpenAPIEnums',
  'OrderedNamespaceDeletion',
  'PodAndContainerStatsFromCRI',
  'PodDeletionCost',
  'PodDisruptionConditions',
  'PodIndexLabel',
  'PodLevelResources',
  'PodLifecycleSleepAction',
  'PodLifecycleSleepActionAllowZero',
  'PodLogsQuerySplitStreams',
  'PodObservedGenerationTracking',
  'PodReadyToStartContainersCondition',
  'PodSchedulingReadiness',
  'PodTopologyLabelsAdmission',
  'PortForwardWebsockets',
  'ProcMountType',
  'QOSReserved',
  'RecoverVolumeExpansionFailure',
  'RecursiveReadOnlyMounts',
  'ReduceDefaultCrashLoopBackOffDecay',
  'RelaxedDNSSearchValidation',
  'RelaxedEnvironmentVariableValidation',
  'ReloadKubeletServerCertificateFile',
  'RemoteRequestHeaderUID',
  'ResilientWatchCacheInitialization',
  'ResourceHealthStatus',
  'RetryGenerateName',
  'RotateKubeletServerCertificate',
  'RuntimeClassInImageCriApi',
  'SELinuxChangePolicy',
  'SELinuxMount',
  'SELinuxMountReadWriteOncePod',
  'SchedulerAsyncPreemption',
  'SchedulerPopFromBackoffQ',
  'SchedulerQueueingHints',
  'SeparateCacheWatchRPC',
  'SeparateTaintEvictionController',
  'ServiceAccountNodeAudienceRestriction',
  'ServiceAccountTokenJTI',
  'ServiceAccountTokenNodeBinding',
  'ServiceAccountTokenNodeBindingValidation',
  'ServiceAccountTokenPodNodeInfo',
  'SidecarContainers',
  'SizeMemoryBackedVolumes',
  'StatefulSetAutoDeletePVC',
  'StatefulSetStartOrdinal',
  'StorageCapacityScoring',
  'StorageNamespaceIndex',
  'StorageVersionAPI',
  'StorageVersionHash',
  'StorageVersionMigrator',
  'StreamingCollectionEncodingToJSON',
  'StreamingCollectionEncodingToProtobuf',
  'StrictCostEnforcementForVAP',
  'StrictCostEnforcementForWebhooks',
  'StrictIPCIDRValidation',
  'StructuredAuthenticationConfiguration',
  'StructuredAuthorizationConfiguration',
  'SupplementalGroupsPolicy',
  'SystemdWatchdog',
  'TopologyManagerPolicyAlphaOptions',
  'TopologyManagerPolicyBetaOptions',
  'TopologyManagerPolicyOptions',
  'TranslateStreamCloseWebsocketRequests',
  'UnauthenticatedHTTP2DOSMitigation',
  'UnknownVersionInteroperabilityProxy',
  'UserNamespacesPodSecurityStandards',
  'UserNamespacesSupport',
  'VolumeAttributesClass',
  'WatchCacheInitializationPostStartHook',
  'WatchFromStorageWithoutResourceVersion',
  'WatchList',
  'WatchListClient',
  'WindowsCPUAndMemoryAffinity',
  'WindowsGracefulNodeShutdown',
];

const others = new Set(OTHER_UPSTREAM_GATES);

const byName = new Map(FEATURE_GATES.map((s) => [s.name, s]));

/** The gate's spec, or undefined for a name kube-proxy-ts does not know. */
export function gateSpec(name: string): GateSpec | undefined {
  return byName.get(name);
}

/**
 * The errors upstream's feature gate would raise for `gates`, one line each: an unrecognized name, or
 * a gate locked to its default set to the other value. Empty when every gate is acceptable.
 */
export function featureGateErrors(gates: Readonly<Record<string, boolean>>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(gates).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = byName.get(name);
    if (!spec) {
      if (!others.has(name)) out.push(`featureGates: unrecognized feature gate: ${name}`);
    } else if (spec.locked === true && value !== spec.default) {
      out.push(
        `featureGates: cannot set feature gate ${name} to ${value}, feature is locked to ${spec.default}`,
      );
    }
  }
  return out;
}

/**
 * What to log about the gates an operator set (after {@link featureGateErrors} found none): one
 * line per gate set against a built-in behaviour, read by nothing here, or deprecated. A gate of
 * ours set to its default needs no line.
 */
export function reviewFeatureGates(gates: Readonly<Record<string, boolean>>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(gates).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = byName.get(name);
    if (!spec) {
      if (others.has(name))
        out.push(`feature gate ${name}=${value} is accepted and has no effect: kube-proxy does not read it`);
      continue;
    }
    if (spec.stage === 'DEPRECATED')
      out.push(
        `feature gate ${name}=${value} is deprecated upstream and will be removed in a future release`,
      );
    if (spec.here === 'honoured') continue;
    if (value === spec.default) continue;
    if (spec.here === 'none')
      out.push(`feature gate ${name}=${value} is accepted and has no effect here (${spec.note})`);
    else
      out.push(
        `feature gate ${name}=${value} is not supported: kube-proxy-ts always behaves as ${name}=${spec.default} (${spec.note})`,
      );
  }
  return out;
}

/** The --help lines listing every known gate, upstream's way: `Name=true|false (STAGE - default=x)`. */
export function featureGateHelpLines(): string[] {
  return FEATURE_GATES.map((s) => `${s.name}=true|false (${s.stage} - default=${s.default})`);
}
