package layout

import (
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

// Profile is every default and table the rules use, each with its source. Change Name when a value
// changes, so recorded results say which values produced them.
type Profile struct {
	Name string
	// TargetVersion is the Kubernetes minor version deprecations are judged against. v1.33 is the twin's
	// control plane (RECIPES.md: v1.33.13 is the version that builds; tools/toolcache pins it).
	TargetVersion string
	// Deprecations is the Kubernetes deprecation guide's table of served-then-removed API versions.
	Deprecations []Deprecation
	// ClusterScoped lists the built-in cluster-scoped kinds by "group/Kind" ("" group is core), from
	// `kubectl api-resources --namespaced=false` of Kubernetes v1.33. CRDs in the repository add theirs.
	ClusterScoped map[string]bool
	// NamespacedGroups are the API groups whose every kind is namespaced except those ClusterScoped
	// lists (kubectl api-resources of Kubernetes v1.33, and Flux's groups, whose kinds are all
	// namespaced). A kind of another group is namespaced only when a CRD of the layout says so.
	NamespacedGroups map[string]bool
	// FluxVersion and FluxAPIs are the pinned Flux (tools/toolcache: flux CLI v2.9.5, source-controller
	// v1.9.6, kustomize-controller v1.9.5, helm-controller v1.6.4) and the one version its CRDs serve
	// per group/Kind (config/crd/bases of those modules: every earlier version is gone).
	FluxVersion string
	FluxAPIs    map[string]string
	// SOPSKey is the top-level key SOPS adds to every file it encrypts (getsops/sops: "sops" metadata
	// block; Flux decrypts objects that carry it, fluxcd kustomize-controller docs "Decryption").
	SOPSKey string
	// SubstituteDisabled is the label/annotation that turns substitution off for one object
	// (fluxcd/pkg/kustomize kustomize_varsub.go: kustomize.toolkit.fluxcd.io/substitute: disabled).
	SubstituteDisabled string

	// GitTimeout bounds cloning a remote repository (`validate URL`, and a HelmRelease chart in another
	// Git repository): source-controller's GitRepository spec.timeout default, 60 s (fluxcd.io
	// source-controller docs, "GitRepositories: Timeout").
	GitTimeout time.Duration
	// HelmTimeout bounds fetching one remote chart (index and archive, or an OCI artifact):
	// source-controller's HelmRepository spec.timeout default, 60 s (fluxcd.io source-controller docs,
	// "Helm Repositories: Timeout").
	HelmTimeout time.Duration
	// HelmIndexLimit caps a Helm repository index read into memory: source-controller's default
	// --helm-index-max-size, 50 MiB (source-controller main.go helm.MaxIndexSize).
	HelmIndexLimit int64
	// HelmChartLimit caps one chart archive: source-controller's default --helm-chart-max-size, 10 MiB
	// (source-controller main.go helm.MaxChartSize).
	HelmChartLimit int64
	// HelmKubeVersionPatch is the patch level of .Capabilities.KubeVersion when charts render for the
	// target minor version: 0, as `helm template --kube-version v1.33` sets it.
	HelmKubeVersionPatch int

	// Converge holds the converge stage's timings.
	Converge ConvergeProfile
}

// ConvergeProfile holds the timings of `validate --converge`: how long to wait for the twin's
// reconcilers, derived from the reconciler's own profile (reconciler.DefaultProfile) so a change there
// moves the bound with it.
type ConvergeProfile struct {
	// SourceFetch is the first fetch of the pushed revision: the reconciler profile's GitTimeout (60 s,
	// source-controller's GitRepository spec.timeout default).
	SourceFetch time.Duration
	// PerLevel is the bound for one level of the dependsOn graph: the reconciler profile's
	// StageWaitTimeout (60 s, fluxcd/pkg/ssa DefaultApplyOptions WaitTimeout: CRDs and Namespaces
	// between apply stages) plus its DependencyRequeue (30 s, kustomize-controller
	// --requeue-dependency: a dependent's fallback re-check after its dependency became Ready).
	PerLevel time.Duration
	// Poll is how often the compliance of the configurations is read: the Arc agent's status period
	// (twin/arcagent DefaultPollInterval, 250 ms), so no report is missed by more than one period.
	Poll time.Duration
	// Confirm is how many consecutive polls must show a configuration Compliant (or Non-Compliant) at
	// the pushed commit before it counts. Right after the source fetched a new commit, the agent can
	// report the Kustomizations' conditions of the previous revision for one status period, until the
	// Kustomizations start reconciling the new one; two polls one agent period apart outlast it.
	Confirm int
}

// Timeout is the converge bound for a layout whose longest dependsOn chain has depth Kustomizations,
// plus wait for the sources to notice the push (the GitRepository interval, zero on a fresh twin
// that fetches at once).
func (p ConvergeProfile) Timeout(depth int, wait time.Duration) time.Duration {
	return wait + p.SourceFetch + time.Duration(max(depth, 1))*p.PerLevel
}

// Deprecation is one API version the Kubernetes deprecation guide lists
// (https://kubernetes.io/docs/reference/using-api/deprecation-guide/). Kinds empty means every kind of
// the group/version. DeprecatedIn/RemovedIn are minor versions ("1.22"); RemovedIn empty means still
// served.
type Deprecation struct {
	GroupVersion string
	Kinds        []string
	DeprecatedIn string
	RemovedIn    string
	Replacement  string
}

// DefaultProfile is the profile `hybridtwin validate` uses.
func DefaultProfile() Profile {
	return Profile{
		Name:          "layout/v3",
		TargetVersion: "1.33",
		Deprecations:  deprecationGuide(),
		ClusterScoped: clusterScopedKinds(),
		NamespacedGroups: map[string]bool{"": true, "apps": true, "batch": true, "autoscaling": true, "policy": true,
			"networking.k8s.io": true, "rbac.authorization.k8s.io": true, "coordination.k8s.io": true,
			"discovery.k8s.io": true, "events.k8s.io": true,
			"kustomize.toolkit.fluxcd.io": true, "source.toolkit.fluxcd.io": true, "helm.toolkit.fluxcd.io": true,
			"notification.toolkit.fluxcd.io": true, "image.toolkit.fluxcd.io": true, "source.extensions.fluxcd.io": true},
		FluxVersion: "v2.9",
		FluxAPIs: map[string]string{
			"kustomize.toolkit.fluxcd.io/Kustomization": "v1",
			"source.toolkit.fluxcd.io/GitRepository":    "v1", "source.toolkit.fluxcd.io/OCIRepository": "v1",
			"source.toolkit.fluxcd.io/Bucket": "v1", "source.toolkit.fluxcd.io/HelmRepository": "v1",
			"source.toolkit.fluxcd.io/HelmChart": "v1", "source.toolkit.fluxcd.io/ExternalArtifact": "v1",
			"helm.toolkit.fluxcd.io/HelmRelease": "v2",
		},
		SOPSKey:            "sops",
		SubstituteDisabled: "kustomize.toolkit.fluxcd.io/substitute",
		GitTimeout:         60 * time.Second,
		HelmTimeout:        60 * time.Second,
		HelmIndexLimit:     50 << 20,
		HelmChartLimit:     10 << 20,
		Converge:           convergeProfile(reconciler.DefaultProfile()),
	}
}

// deprecationGuide transcribes the Kubernetes deprecation guide, section by removal release
// (kubernetes.io/docs/reference/using-api/deprecation-guide, "v1.16" ... "v1.32"), plus the v1.33
// deprecation of core/v1 Endpoints (KEP-4974, Kubernetes v1.33 release notes).
func deprecationGuide() []Deprecation {
	return []Deprecation{
		// v1.16
		{"extensions/v1beta1", []string{"Deployment", "DaemonSet", "ReplicaSet", "NetworkPolicy", "PodSecurityPolicy"}, "1.8", "1.16", "apps/v1 (networking.k8s.io/v1 for NetworkPolicy)"},
		{"apps/v1beta1", nil, "1.9", "1.16", "apps/v1"},
		{"apps/v1beta2", nil, "1.9", "1.16", "apps/v1"},
		// v1.22
		{"admissionregistration.k8s.io/v1beta1", []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}, "1.16", "1.22", "admissionregistration.k8s.io/v1"},
		{"apiextensions.k8s.io/v1beta1", []string{"CustomResourceDefinition"}, "1.16", "1.22", "apiextensions.k8s.io/v1"},
		{"apiregistration.k8s.io/v1beta1", []string{"APIService"}, "1.19", "1.22", "apiregistration.k8s.io/v1"},
		{"authentication.k8s.io/v1beta1", []string{"TokenReview"}, "1.19", "1.22", "authentication.k8s.io/v1"},
		{"authorization.k8s.io/v1beta1", nil, "1.19", "1.22", "authorization.k8s.io/v1"},
		{"certificates.k8s.io/v1beta1", []string{"CertificateSigningRequest"}, "1.19", "1.22", "certificates.k8s.io/v1"},
		{"coordination.k8s.io/v1beta1", []string{"Lease"}, "1.19", "1.22", "coordination.k8s.io/v1"},
		{"extensions/v1beta1", []string{"Ingress"}, "1.14", "1.22", "networking.k8s.io/v1"},
		{"networking.k8s.io/v1beta1", []string{"Ingress", "IngressClass"}, "1.19", "1.22", "networking.k8s.io/v1"},
		{"rbac.authorization.k8s.io/v1beta1", nil, "1.17", "1.22", "rbac.authorization.k8s.io/v1"},
		{"scheduling.k8s.io/v1beta1", []string{"PriorityClass"}, "1.14", "1.22", "scheduling.k8s.io/v1"},
		{"storage.k8s.io/v1beta1", []string{"CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"}, "1.19", "1.22", "storage.k8s.io/v1"},
		// v1.25
		{"batch/v1beta1", []string{"CronJob"}, "1.21", "1.25", "batch/v1"},
		{"discovery.k8s.io/v1beta1", []string{"EndpointSlice"}, "1.21", "1.25", "discovery.k8s.io/v1"},
		{"events.k8s.io/v1beta1", []string{"Event"}, "1.19", "1.25", "events.k8s.io/v1"},
		{"autoscaling/v2beta1", []string{"HorizontalPodAutoscaler"}, "1.22", "1.25", "autoscaling/v2"},
		{"policy/v1beta1", []string{"PodDisruptionBudget"}, "1.21", "1.25", "policy/v1"},
		{"policy/v1beta1", []string{"PodSecurityPolicy"}, "1.21", "1.25", "Pod Security Admission (no replacement API)"},
		{"node.k8s.io/v1beta1", []string{"RuntimeClass"}, "1.20", "1.25", "node.k8s.io/v1"},
		// v1.26
		{"flowcontrol.apiserver.k8s.io/v1beta1", nil, "1.23", "1.26", "flowcontrol.apiserver.k8s.io/v1"},
		{"autoscaling/v2beta2", []string{"HorizontalPodAutoscaler"}, "1.23", "1.26", "autoscaling/v2"},
		// v1.27
		{"storage.k8s.io/v1beta1", []string{"CSIStorageCapacity"}, "1.24", "1.27", "storage.k8s.io/v1"},
		// v1.29
		{"flowcontrol.apiserver.k8s.io/v1beta2", nil, "1.26", "1.29", "flowcontrol.apiserver.k8s.io/v1"},
		// v1.32
		{"flowcontrol.apiserver.k8s.io/v1beta3", nil, "1.29", "1.32", "flowcontrol.apiserver.k8s.io/v1"},
		// Deprecated, still served.
		{"v1", []string{"Endpoints"}, "1.33", "", "discovery.k8s.io/v1 EndpointSlice"},
	}
}

func clusterScopedKinds() map[string]bool {
	m := map[string]bool{}
	for _, k := range []string{
		"/Namespace", "/Node", "/PersistentVolume", "/ComponentStatus",
		"rbac.authorization.k8s.io/ClusterRole", "rbac.authorization.k8s.io/ClusterRoleBinding",
		"apiextensions.k8s.io/CustomResourceDefinition", "apiregistration.k8s.io/APIService",
		"storage.k8s.io/StorageClass", "storage.k8s.io/CSIDriver", "storage.k8s.io/CSINode",
		"storage.k8s.io/VolumeAttachment", "scheduling.k8s.io/PriorityClass",
		"networking.k8s.io/IngressClass", "node.k8s.io/RuntimeClass",
		"certificates.k8s.io/CertificateSigningRequest",
		"admissionregistration.k8s.io/MutatingWebhookConfiguration",
		"admissionregistration.k8s.io/ValidatingWebhookConfiguration",
		"admissionregistration.k8s.io/ValidatingAdmissionPolicy",
		"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
		"flowcontrol.apiserver.k8s.io/FlowSchema", "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
		"policy/PodSecurityPolicy",
	} {
		m[k] = true
	}
	return m
}

func convergeProfile(rp reconciler.Profile) ConvergeProfile {
	return ConvergeProfile{
		SourceFetch: rp.GitTimeout,
		PerLevel:    rp.StageWaitTimeout + rp.DependencyRequeue,
		// twin/arcagent DefaultPollInterval (250 ms); not imported: layout must not import twin/.
		Poll:    250 * time.Millisecond,
		Confirm: 2,
	}
}
