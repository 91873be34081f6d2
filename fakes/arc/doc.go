// Package arc is a stand-in for the parts of Azure Resource Manager that an Azure Arc + GitOps estate talks
// to: Microsoft.Kubernetes/connectedClusters, the Microsoft.KubernetesConfiguration extensions (microsoft.flux)
// and fluxConfigurations, and Microsoft.Authorization/policyAssignments of the built-in GitOps policies.
//
// It speaks ARM's wire format -- URL shapes, api-version checks, ARM error bodies, Azure-AsyncOperation
// long-running operations, provisioningState -- so the official Azure SDK for Go (armhybridkubernetes,
// armkubernetesconfiguration) drives it unchanged; the tests prove that with the real SDK clients.
//
// Authentication as ARM does it: every ARM request needs a bearer token, which only this server's token
// endpoint (POST /{tenant}/oauth2/v2.0/token, the identity platform's client-credentials grant for the
// service principal in Endpoint.Principal) issues; a missing, malformed, foreign or expired token gets 401
// with ARM's codes (AuthenticationFailed, InvalidAuthenticationToken, InvalidAuthenticationTokenAudience,
// ExpiredAuthenticationToken). arcsdk.NewCredential is the client side.
//
// The in-cluster side that Azure cannot show through ARM -- the Arc agents reading configurations and
// reporting compliance back -- is a Go API on Server (FluxConfigurations, ReportCompliance, Changed).
//
// Fidelity limits, stated: only connectedClusters (Microsoft.Kubernetes) are modelled as Flux targets;
// the GitRepository and OCIRepository source kinds are (OCI from api-version 2024-11-01, as in the REST
// definitions), Bucket and AzureBlob are refused; a fluxConfiguration installs the microsoft.flux
// extension when the cluster has none (as `az k8s-configuration flux create` does); policy effects are
// evaluated at once (Azure's evaluation cycle is not modelled). Where the REST reference gives
// ociRepository.repositoryRef a precedence (digest over semver over tag), the fake refuses two of them at
// once rather than drop one silently: stricter than ARM. GET and list leave out the x-ms-secret fields
// (configurationProtectedSettings, ociRepository.tlsConfig) as ARM does; the agents' Go API still sees
// them. The package imports only the standard library and internal/depgraph (itself standard library
// only).
package arc
