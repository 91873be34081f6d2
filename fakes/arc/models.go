package arc

import "time"

// The JSON shapes below follow the ARM REST API definitions of the resource types (api-versions in
// apiversions.go); field names are the REST API's, so the official SDK reads and writes them unchanged.

// SystemData is ARM's resource metadata block.
type SystemData struct {
	CreatedAt          *time.Time `json:"createdAt,omitempty"`
	CreatedBy          string     `json:"createdBy,omitempty"`
	CreatedByType      string     `json:"createdByType,omitempty"`
	LastModifiedAt     *time.Time `json:"lastModifiedAt,omitempty"`
	LastModifiedBy     string     `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string     `json:"lastModifiedByType,omitempty"`
}

// ConnectedCluster is a Microsoft.Kubernetes/connectedClusters resource (an Arc-enabled cluster).
type ConnectedCluster struct {
	ID         string                     `json:"id,omitempty"`
	Name       string                     `json:"name,omitempty"`
	Type       string                     `json:"type,omitempty"`
	Location   string                     `json:"location"`
	Tags       map[string]string          `json:"tags,omitempty"`
	Identity   *ConnectedClusterIdentity  `json:"identity"`
	Properties ConnectedClusterProperties `json:"properties"`
	SystemData *SystemData                `json:"systemData,omitempty"`
}

// ConnectedClusterIdentity is the cluster's managed identity.
type ConnectedClusterIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
}

// ConnectedClusterProperties are the cluster's properties; agentPublicKeyCertificate is required on PUT.
type ConnectedClusterProperties struct {
	AgentPublicKeyCertificate string     `json:"agentPublicKeyCertificate"`
	AgentVersion              string     `json:"agentVersion,omitempty"`
	ConnectivityStatus        string     `json:"connectivityStatus,omitempty"`
	Distribution              string     `json:"distribution,omitempty"`
	Infrastructure            string     `json:"infrastructure,omitempty"`
	KubernetesVersion         string     `json:"kubernetesVersion,omitempty"`
	LastConnectivityTime      *time.Time `json:"lastConnectivityTime,omitempty"`
	Offering                  string     `json:"offering,omitempty"`
	ProvisioningState         string     `json:"provisioningState,omitempty"`
	TotalCoreCount            *int32     `json:"totalCoreCount,omitempty"`
	TotalNodeCount            *int32     `json:"totalNodeCount,omitempty"`
}

// Extension is a Microsoft.KubernetesConfiguration/extensions resource, e.g. microsoft.flux.
type Extension struct {
	ID         string              `json:"id,omitempty"`
	Name       string              `json:"name,omitempty"`
	Type       string              `json:"type,omitempty"`
	Properties ExtensionProperties `json:"properties"`
	SystemData *SystemData         `json:"systemData,omitempty"`
}

// ExtensionProperties are an extension's properties.
type ExtensionProperties struct {
	ExtensionType           string            `json:"extensionType,omitempty"`
	AutoUpgradeMinorVersion *bool             `json:"autoUpgradeMinorVersion,omitempty"`
	ReleaseTrain            string            `json:"releaseTrain,omitempty"`
	Version                 string            `json:"version,omitempty"`
	CurrentVersion          string            `json:"currentVersion,omitempty"`
	ConfigurationSettings   map[string]string `json:"configurationSettings,omitempty"`
	Scope                   *ExtensionScope   `json:"scope,omitempty"`
	ProvisioningState       string            `json:"provisioningState,omitempty"`
	IsSystemExtension       *bool             `json:"isSystemExtension,omitempty"`
}

// ExtensionScope says where an extension is installed.
type ExtensionScope struct {
	Cluster *struct {
		ReleaseNamespace string `json:"releaseNamespace,omitempty"`
	} `json:"cluster,omitempty"`
	Namespace *struct {
		TargetNamespace string `json:"targetNamespace,omitempty"`
	} `json:"namespace,omitempty"`
}

// FluxConfiguration is a Microsoft.KubernetesConfiguration/fluxConfigurations resource.
type FluxConfiguration struct {
	ID         string                      `json:"id,omitempty"`
	Name       string                      `json:"name,omitempty"`
	Type       string                      `json:"type,omitempty"`
	Properties FluxConfigurationProperties `json:"properties"`
	SystemData *SystemData                 `json:"systemData,omitempty"`
}

// FluxConfigurationProperties hold the desired configuration and, read-only, its compliance as reported
// by the cluster's agents.
type FluxConfigurationProperties struct {
	Scope                          string                              `json:"scope,omitempty"`
	Namespace                      string                              `json:"namespace,omitempty"`
	SourceKind                     string                              `json:"sourceKind,omitempty"`
	Suspend                        *bool                               `json:"suspend,omitempty"`
	GitRepository                  *GitRepositoryDefinition            `json:"gitRepository,omitempty"`
	OCIRepository                  *OCIRepositoryDefinition            `json:"ociRepository,omitempty"`
	Bucket                         *BucketDefinition                   `json:"bucket,omitempty"`
	Kustomizations                 map[string]*KustomizationDefinition `json:"kustomizations,omitempty"`
	ConfigurationProtectedSettings map[string]string                   `json:"configurationProtectedSettings,omitempty"`
	ReconciliationWaitDuration     string                              `json:"reconciliationWaitDuration,omitempty"`
	WaitForReconciliation          *bool                               `json:"waitForReconciliation,omitempty"`

	// Read-only.
	Statuses             []ObjectStatus `json:"statuses,omitempty"`
	RepositoryPublicKey  string         `json:"repositoryPublicKey,omitempty"`
	SourceSyncedCommitID string         `json:"sourceSyncedCommitId,omitempty"`
	SourceUpdatedAt      *time.Time     `json:"sourceUpdatedAt,omitempty"`
	StatusUpdatedAt      *time.Time     `json:"statusUpdatedAt,omitempty"`
	ComplianceState      string         `json:"complianceState,omitempty"`
	ProvisioningState    string         `json:"provisioningState,omitempty"`
	ErrorMessage         string         `json:"errorMessage,omitempty"`
}

// GitRepositoryDefinition is the Git source of a configuration.
type GitRepositoryDefinition struct {
	URL                   string                   `json:"url,omitempty"`
	RepositoryRef         *RepositoryRefDefinition `json:"repositoryRef,omitempty"`
	SyncIntervalInSeconds *int64                   `json:"syncIntervalInSeconds,omitempty"`
	TimeoutInSeconds      *int64                   `json:"timeoutInSeconds,omitempty"`
	HTTPSUser             string                   `json:"httpsUser,omitempty"`
	HTTPSCACert           string                   `json:"httpsCACert,omitempty"`
	SSHKnownHosts         string                   `json:"sshKnownHosts,omitempty"`
	LocalAuthRef          string                   `json:"localAuthRef,omitempty"`
}

// BucketDefinition is the S3 bucket source of a configuration (sourceKind "Bucket"). Shape: the REST API
// definition BucketDefinition of Microsoft.KubernetesConfiguration fluxConfigurations (every api-version
// from 2022-03-01 to 2025-04-01; the generated SDK's armkubernetesconfiguration/v2 BucketDefinition):
// url of the S3 endpoint, bucketName, accessKey in plain text (the secret key goes in
// configurationProtectedSettings.bucketSecretKey), insecure, localAuthRef, and syncIntervalInSeconds and
// timeoutInSeconds, which default to 600 as for the other sources.
type BucketDefinition struct {
	URL                   string `json:"url,omitempty"`
	BucketName            string `json:"bucketName,omitempty"`
	Insecure              *bool  `json:"insecure,omitempty"`
	TimeoutInSeconds      *int64 `json:"timeoutInSeconds,omitempty"`
	SyncIntervalInSeconds *int64 `json:"syncIntervalInSeconds,omitempty"`
	AccessKey             string `json:"accessKey,omitempty"`
	LocalAuthRef          string `json:"localAuthRef,omitempty"`
}

// RepositoryRefDefinition picks what to sync; Flux's precedence is commit > semver > tag > branch.
type RepositoryRefDefinition struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Semver string `json:"semver,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// OCIRepositoryDefinition is the OCI source of a configuration (sourceKind "OCIRepository"). Shape: the
// REST API definition OCIRepositoryDefinition of Microsoft.KubernetesConfiguration fluxConfigurations,
// api-version 2024-11-01 and 2025-04-01 (azure-rest-api-specs specification/kubernetesconfiguration/
// resource-manager/Microsoft.KubernetesConfiguration/fluxConfigurations/stable/2025-04-01/
// fluxconfiguration.json, and its example CreateFluxConfigurationWithOCIRepository.json). syncIntervalInSeconds
// and timeoutInSeconds default to 600, insecure and useWorkloadIdentity to false.
type OCIRepositoryDefinition struct {
	URL                   string                      `json:"url,omitempty"`
	TimeoutInSeconds      *int64                      `json:"timeoutInSeconds,omitempty"`
	SyncIntervalInSeconds *int64                      `json:"syncIntervalInSeconds,omitempty"`
	RepositoryRef         *OCIRepositoryRefDefinition `json:"repositoryRef,omitempty"`
	LayerSelector         *LayerSelectorDefinition    `json:"layerSelector,omitempty"`
	Verify                *VerifyDefinition           `json:"verify,omitempty"`
	Insecure              *bool                       `json:"insecure,omitempty"`
	UseWorkloadIdentity   *bool                       `json:"useWorkloadIdentity,omitempty"`
	ServiceAccountName    string                      `json:"serviceAccountName,omitempty"`
	TLSConfig             *TLSConfigDefinition        `json:"tlsConfig,omitempty"`
	LocalAuthRef          string                      `json:"localAuthRef,omitempty"`
}

// OCIRepositoryRefDefinition picks the artifact: "digest ... takes precedence over semver", "semver ...
// takes precedence over tag", and tag "defaults to 'latest'" (REST reference).
type OCIRepositoryRefDefinition struct {
	Tag    string `json:"tag,omitempty"`
	Semver string `json:"semver,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// LayerSelectorDefinition picks the artifact's layer: the first one of mediaType, and what to do with it
// (OperationType "extract", the default, or "copy").
type LayerSelectorDefinition struct {
	MediaType string `json:"mediaType,omitempty"`
	Operation string `json:"operation,omitempty"`
}

// VerifyDefinition asks for the artifact's signature to be verified (cosign or notation in Flux).
type VerifyDefinition struct {
	Provider           string                        `json:"provider,omitempty"`
	VerificationConfig map[string]string             `json:"verificationConfig,omitempty"`
	MatchOidcIdentity  []MatchOidcIdentityDefinition `json:"matchOidcIdentity,omitempty"`
}

// MatchOidcIdentityDefinition is one keyless-signature identity to accept.
type MatchOidcIdentityDefinition struct {
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// TLSConfigDefinition is the registry's mTLS material, base64-encoded. Every field is x-ms-secret in the
// REST API definition: written on PUT, never returned.
type TLSConfigDefinition struct {
	ClientCertificate string `json:"clientCertificate,omitempty"`
	PrivateKey        string `json:"privateKey,omitempty"`
	CACertificate     string `json:"caCertificate,omitempty"`
}

// KustomizationDefinition is one Flux Kustomization of a configuration. The API (2024-11-01, 2025-04-01;
// `az k8s-configuration flux kustomization create` likewise) carries no decryption setting: the extension
// creates Kustomizations without spec.decryption, so SOPS-encrypted Secrets are decrypted by a
// Kustomization with spec.decryption that the repository itself holds (nested under the configuration's),
// which both engines honour.
type KustomizationDefinition struct {
	Name                   string               `json:"name,omitempty"`
	Path                   string               `json:"path,omitempty"`
	DependsOn              []string             `json:"dependsOn,omitempty"`
	SyncIntervalInSeconds  *int64               `json:"syncIntervalInSeconds,omitempty"`
	TimeoutInSeconds       *int64               `json:"timeoutInSeconds,omitempty"`
	RetryIntervalInSeconds *int64               `json:"retryIntervalInSeconds,omitempty"`
	Prune                  *bool                `json:"prune,omitempty"`
	Force                  *bool                `json:"force,omitempty"`
	Wait                   *bool                `json:"wait,omitempty"`
	PostBuild              *PostBuildDefinition `json:"postBuild,omitempty"`
}

// PostBuildDefinition is Flux's post-build variable substitution.
type PostBuildDefinition struct {
	Substitute     map[string]string          `json:"substitute,omitempty"`
	SubstituteFrom []SubstituteFromDefinition `json:"substituteFrom,omitempty"`
}

// SubstituteFromDefinition names a ConfigMap or Secret of variables.
type SubstituteFromDefinition struct {
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Optional *bool  `json:"optional,omitempty"`
}

// ObjectStatus is the status of one Flux object (GitRepository, Kustomization) the agent reports.
type ObjectStatus struct {
	Name             string            `json:"name,omitempty"`
	Namespace        string            `json:"namespace,omitempty"`
	Kind             string            `json:"kind,omitempty"`
	ComplianceState  string            `json:"complianceState,omitempty"`
	AppliedBy        *ObjectReference  `json:"appliedBy,omitempty"`
	StatusConditions []StatusCondition `json:"statusConditions,omitempty"`
}

// ObjectReference names an object in the cluster.
type ObjectReference struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// StatusCondition is a Kubernetes condition as the agent reports it.
type StatusCondition struct {
	LastTransitionTime *time.Time `json:"lastTransitionTime,omitempty"`
	Message            string     `json:"message,omitempty"`
	Reason             string     `json:"reason,omitempty"`
	Status             string     `json:"status,omitempty"`
	Type               string     `json:"type,omitempty"`
}

// PolicyAssignment is a Microsoft.Authorization/policyAssignments resource.
type PolicyAssignment struct {
	ID         string                     `json:"id,omitempty"`
	Name       string                     `json:"name,omitempty"`
	Type       string                     `json:"type,omitempty"`
	Location   string                     `json:"location,omitempty"`
	Identity   *PolicyIdentity            `json:"identity,omitempty"`
	Properties PolicyAssignmentProperties `json:"properties"`
	SystemData *SystemData                `json:"systemData,omitempty"`
}

// PolicyIdentity is the managed identity a DeployIfNotExists assignment deploys with.
type PolicyIdentity struct {
	Type        string `json:"type,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
}

// PolicyAssignmentProperties are an assignment's properties.
type PolicyAssignmentProperties struct {
	DisplayName        string                          `json:"displayName,omitempty"`
	PolicyDefinitionID string                          `json:"policyDefinitionId"`
	Scope              string                          `json:"scope,omitempty"`
	NotScopes          []string                        `json:"notScopes,omitempty"`
	Parameters         map[string]PolicyParameterValue `json:"parameters,omitempty"`
	EnforcementMode    string                          `json:"enforcementMode,omitempty"`
}

// PolicyParameterValue is ARM's {"value": ...} wrapper.
type PolicyParameterValue struct {
	Value any `json:"value"`
}

// operationStatus is the body of an Azure-AsyncOperation status URL.
type operationStatus struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	StartTime *time.Time   `json:"startTime,omitempty"`
	EndTime   *time.Time   `json:"endTime,omitempty"`
	Error     *errorDetail `json:"error,omitempty"`
}

type errorResponse struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Target  string        `json:"target,omitempty"`
	Details []errorDetail `json:"details,omitempty"`
}
