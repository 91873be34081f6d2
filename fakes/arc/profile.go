package arc

import "time"

// ProfileVersion names this set of wire-format facts and defaults; reports record it.
const ProfileVersion = "arc-fake/v1"

// API versions the fake accepts per resource provider. A request with another api-version gets ARM's
// NoRegisteredProviderFound error listing these, as ARM does.
//   - Microsoft.Kubernetes: 2021-10-01 is the version of armhybridkubernetes v1.2.0 (its generated
//     clients); 2024-01-01 is the later GA version.
//   - Microsoft.KubernetesConfiguration: 2023-05-01 is armkubernetesconfiguration/v2 v2.2.0's version;
//     2022-03-01 is the one the built-in "Configure Kubernetes clusters with Flux v2 configuration" policy
//     deploys with (Azure/azure-policy Deploy-GitOps-Flux2-to-Kubernetes-cluster-no-secrets_DINE.json);
//     the others are the GA versions the REST reference lists (2022-07-01, 2022-11-01, 2024-11-01, 2025-04-01).
//   - Microsoft.Authorization policyAssignments: GA versions of the Policy REST reference.
var apiVersions = map[string][]string{
	providerKubernetes:    {"2021-10-01", "2024-01-01"},
	providerConfiguration: {"2022-03-01", "2022-07-01", "2022-11-01", "2023-05-01", "2024-11-01", "2025-04-01"},
	providerAuthorization: {"2021-06-01", "2022-06-01", "2023-04-01", "2024-04-01", "2024-05-01", "2025-01-01"},
}

// Source kinds of a fluxConfiguration the twin models (REST reference, SourceKindType: GitRepository,
// Bucket, AzureBlob, OCIRepository; the twin models all but AzureBlob).
const (
	SourceKindGitRepository = "GitRepository"
	SourceKindOCIRepository = "OCIRepository"
	SourceKindBucket        = "Bucket"
)

// BucketSecretKeySetting is the configurationProtectedSettings key holding a Bucket source's secret key,
// base64-encoded: az k8s-configuration flux create --secret-key puts it there (azure-cli-extensions
// k8s-configuration consts.BUCKET_SECRET_KEY_KEY = "bucketSecretKey", encoded with to_base64).
const BucketSecretKeySetting = "bucketSecretKey"

// SSHPrivateKeySetting is the configurationProtectedSettings key holding the private key for an ssh://
// Git URL, base64-encoded: az k8s-configuration flux create --ssh-private-key(-file) puts it there
// (azure-cli-extensions k8s-configuration consts.SSH_PRIVATE_KEY_KEY = "sshPrivateKey"). The matching
// known_hosts goes, base64-encoded too, in gitRepository.sshKnownHosts (REST reference:
// "Base64-encoded known_hosts value containing public SSH keys required to access private git
// repositories over SSH").
const SSHPrivateKeySetting = "sshPrivateKey"

// OCIMinAPIVersion is the first accepted Microsoft.KubernetesConfiguration api-version whose
// fluxConfigurations schema has the ociRepository property and the OCIRepository source kind: the
// 2023-05-01 definition's SourceKindType is GitRepository, Bucket, AzureBlob only; 2024-11-01 and
// 2025-04-01 add OCIRepositoryDefinition (azure-rest-api-specs .../fluxConfigurations/stable/<version>/
// fluxconfiguration.json; bicep-types-az's Microsoft.KubernetesConfiguration @ 2024-11-01 listing).
// api-versions compare as strings: they are ISO dates.
const OCIMinAPIVersion = "2024-11-01"

// policyDeployAPIVersion is the api-version the built-in GitOps policy's template deploys with (see
// apiVersions above).
const policyDeployAPIVersion = "2022-03-01"

// OCI layer operations (REST reference OperationType: "The default value is 'extract', but it can be set
// to 'copy'") and the digest form ("the value should be in the format 'sha256:'"; OCI image spec: 64 hex).
const (
	OCILayerExtract = "extract"
	OCILayerCopy    = "copy"
	ociPrefix       = "oci://"
)

const (
	providerKubernetes    = "microsoft.kubernetes"
	providerConfiguration = "microsoft.kubernetesconfiguration"
	providerAuthorization = "microsoft.authorization"
)

// Defaults the Kubernetes Configuration RP and the Azure CLI apply to a fluxConfiguration. Source: the
// parameters of the built-in policy "Configure Kubernetes clusters with Flux v2 configuration using public
// Git repository" (policy definition 83ea2fd1-9eaf-2f6d-f672-cd7b2ac798f6): repository and kustomization
// sync interval, timeout and retry interval 600 s, prune false, force false, scope "cluster", namespace
// "default"; and `az k8s-configuration flux create` ("--interval ... default 10m", "--timeout ... 10m",
// "--scope ... cluster", "--namespace ... default"). Kustomization wait defaults to true (REST reference:
// "Enable/disable health check for all Kubernetes objects created by this Kustomization", default true).
const (
	DefaultScope                    = "cluster"
	DefaultNamespace                = "default"
	DefaultSourceKind               = SourceKindGitRepository // REST reference: sourceKind default "GitRepository"
	DefaultSyncIntervalSeconds      = int64(600)
	DefaultTimeoutSeconds           = int64(600)
	DefaultRetryIntervalSeconds     = int64(600)
	DefaultKustomizationPrune       = false
	DefaultKustomizationForce       = false
	DefaultKustomizationWait        = true
	DefaultKustomizationPath        = "./" // policy parameter kustomizationPath default
	FluxExtensionType               = "microsoft.flux"
	FluxExtensionReleaseNamespace   = "flux-system" // microsoft.flux installs into flux-system (Arc GitOps docs)
	maxConfigurationNameLength      = 30            // policy: "Maximum of 30 lowercase alphanumeric characters or hyphens"
	maxKustomizationNameLength      = 30            // policy: kustomizationName, same rule
	maxNamespaceLength              = 253           // REST reference: "Maximum of 253 lower case alphanumeric characters, hyphen and period only"
	BuiltinGitOpsPolicyDefinitionID = "/providers/Microsoft.Authorization/policyDefinitions/83ea2fd1-9eaf-2f6d-f672-cd7b2ac798f6"
)

// Compliance states of a fluxConfiguration (armkubernetesconfiguration FluxComplianceState).
const (
	Compliant    = "Compliant"
	NonCompliant = "Non-Compliant"
	Pending      = "Pending"
	Suspended    = "Suspended"
	Unknown      = "Unknown"
)

// DefaultProvisioningDelay is how long a PUT or DELETE stays in progress before it succeeds. Azure takes
// tens of seconds; the twin keeps the asynchronous shape (201/202 + Azure-AsyncOperation, then a terminal
// status) with a short delay so tests and scenarios stay quick.
const DefaultProvisioningDelay = 500 * time.Millisecond

// TokenLifetime is how long an access token from the fake's token endpoint is valid. The Microsoft
// identity platform gives access tokens "a random value ranging between 60-90 minutes (75 minutes on
// average)" (learn.microsoft.com, "Access tokens in the Microsoft identity platform", Token lifetime); the
// fake takes the lower bound so expiry is deterministic.
const TokenLifetime = time.Hour

// armAudiences are the token audiences ARM accepts, as its InvalidAuthenticationTokenAudience error lists
// them ("It should exactly match with one of the allowed audiences 'https://management.core.windows.net/',
// 'https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'").
var armAudiences = []string{"https://management.core.windows.net/", "https://management.core.windows.net",
	"https://management.azure.com/", "https://management.azure.com"}
