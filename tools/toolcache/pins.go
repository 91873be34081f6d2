package toolcache

import "regexp"

// PinsVersion names this set of pins. It is recorded in reports next to the tool versions, and must
// change whenever a version, build flag or module below changes.
const PinsVersion = "pins/v6"

// KubernetesVersion is the Kubernetes release every workload cluster runs.
// Source: ../shared/RECIPES.md "Kubernetes control plane from Go modules": v1.33.13 is the newest
// release whose staging modules the Go module proxy serves in full here (v1.32.x does not build).
const KubernetesVersion = "v1.33.13"

// kubeLDFlags stamps the version into component-base and client-go, else the servers report
// v0.0.0-master (RECIPES.md). Keep these flags fixed: changing them discards the compile cache.
var kubeLDFlags = []string{
	"-s", "-w",
	"-X", "k8s.io/component-base/version.gitVersion=" + KubernetesVersion,
	"-X", "k8s.io/component-base/version.gitMajor=1",
	"-X", "k8s.io/component-base/version.gitMinor=33",
	"-X", "k8s.io/client-go/pkg/version.gitVersion=" + KubernetesVersion,
	"-X", "k8s.io/client-go/pkg/version.gitMajor=1",
	"-X", "k8s.io/client-go/pkg/version.gitMinor=33",
}

func kubeTool(name string) Tool {
	return Tool{
		Name:        name,
		Version:     KubernetesVersion,
		Module:      "k8s",
		Package:     "k8s.io/kubernetes/cmd/" + name,
		LDFlags:     kubeLDFlags,
		VersionArgs: []string{"--version"},
		// "Kubernetes v1.33.13"
		VersionRE: regexp.MustCompile(`Kubernetes (v[0-9][^\s]*)`),
	}
}

// The pinned tools. Cold build times are RECIPES.md's figures on 2 cores, printed before a build starts.
var (
	// KubeAPIServer is the API server of each workload cluster. Cold build ~10 min (RECIPES.md).
	KubeAPIServer = withColdBuild(kubeTool("kube-apiserver"), "~10 min")
	// KubeControllerManager runs the real node-lifecycle, deployment and garbage-collection controllers.
	// Cold build +2.5 min after kube-apiserver (RECIPES.md).
	KubeControllerManager = withColdBuild(kubeTool("kube-controller-manager"), "~2.5 min after kube-apiserver, ~12 min alone")
	// KubeScheduler binds pods to the VM-nodes. Cold build +11 s after the other two (RECIPES.md).
	KubeScheduler = withColdBuild(kubeTool("kube-scheduler"), "~11 s after kube-apiserver, ~9 min alone")

	// Etcd is the store behind each kube-apiserver: etcd 3.5.21 built from go.etcd.io/etcd/server/v3
	// (RECIPES.md: "embedded go.etcd.io/etcd/server/v3/embed v3.5.21 works"). Built rather than taken from
	// Debian's etcd-server 3.4.23 so the twin runs the etcd line Kubernetes 1.33 supports and every binary
	// comes from one cache with one pin.
	Etcd = Tool{
		Name:        "etcd",
		Version:     "v3.5.21",
		Module:      "etcd",
		Package:     ".",
		LDFlags:     []string{"-s", "-w"},
		VersionArgs: []string{"--version"},
		// "etcd Version: 3.5.21"
		VersionRE: regexp.MustCompile(`etcd Version: ([0-9][^\s]*)`),
		ColdBuild: "~2 min",
	}

	// Kwok is a simulated kubelet. RECIPES.md "Simulated kubelets: kwok v0.8.0": 2.5 min cold. Optional:
	// the embedded provider's nodes run the twin's own kubelets instead (twin/cluster/internal/simkubelet
	// says why: kwok keeps playing a cut-off node's pods); it stays pinned for users who drive kwok stages.
	Kwok = Tool{
		Name:        "kwok",
		Version:     "v0.8.0",
		Module:      "kwok",
		Package:     "sigs.k8s.io/kwok/cmd/kwok",
		LDFlags:     []string{"-s", "-w", "-X", "sigs.k8s.io/kwok/pkg/consts.Version=0.8.0"},
		VersionArgs: []string{"--version"},
		// "kwok version v0.8.0 (go1.26.8 linux/amd64)" -- the value stamped above, with or without "v".
		VersionRE: regexp.MustCompile(`version v?([0-9][^\s]*)`),
		ColdBuild: "~2.5 min",
		Optional:  true,
	}

	// Gitea is the Git server. RECIPES.md "Gitea from Go modules": v1.26.4 is the newest the proxy serves;
	// sqlite needs cgo and the two tags; main.Version must be stamped or the go-sdk's version checks break.
	// Cold build ~6-12 min.
	Gitea = Tool{
		Name:        "gitea",
		Version:     "v1.26.4",
		Module:      "gitea",
		Package:     "code.gitea.io/gitea",
		Tags:        []string{"sqlite", "sqlite_unlock_notify"},
		CGO:         true,
		LDFlags:     []string{"-s", "-w", "-X", "main.Version=1.26.4"},
		VersionArgs: []string{"--version"},
		// "gitea version 1.26.4 built with go1.26.8 ..."
		VersionRE: regexp.MustCompile(`(?i)gitea version ([0-9][^\s]*)`),
		// Gitea built from Go modules embeds no assets; `gitea web` refuses to start without the en-US
		// translation (twin/gitserver/assets.go), so the cache keeps it next to the binary, from the same
		// module version.
		Assets:    []string{"options/locale/locale_en-US.json"},
		ColdBuild: "~6-12 min",
	}
)

// The Flux controllers for the `reconciler: flux` mode. RECIPES.md "Real Flux outside a cluster":
// source-controller v1.9.6 and kustomize-controller v1.9.5 build here (v1.10.x needs Go 1.27); cold builds
// ~5 min and ~2.5 min. Neither has a version flag: the version is read from the binary's build information.
// Their CRDs are assets taken from the same module versions ("CRDs: each module's config/crd/bases",
// RECIPES.md), so the CRDs the twin installs always match the controllers it runs.
var (
	SourceController = Tool{
		Name:          "source-controller",
		Version:       "v1.9.6",
		Module:        "flux-source",
		Package:       "github.com/fluxcd/source-controller",
		LDFlags:       []string{"-s", "-w"},
		VersionModule: "github.com/fluxcd/source-controller",
		Assets:        []string{"config/crd/bases"},
		ColdBuild:     "~5 min",
		Optional:      true,
	}
	KustomizeController = Tool{
		Name:          "kustomize-controller",
		Version:       "v1.9.5",
		Module:        "flux-kustomize",
		Package:       "github.com/fluxcd/kustomize-controller",
		LDFlags:       []string{"-s", "-w"},
		VersionModule: "github.com/fluxcd/kustomize-controller",
		Assets:        []string{"config/crd/bases"},
		ColdBuild:     "~2.5 min",
		Optional:      true,
	}
	// HelmController reconciles HelmReleases for `reconciler: flux`. v1.6.4 is the helm-controller of the
	// same Flux release as the two above: flux2 v2.9.5's manifests/bases/helm-controller pins it. It builds
	// on upstream helm.sh/helm/v4 v4.2.4 -- the Helm source-controller v1.9.6 uses -- with the go.mod
	// replaces of RECIPES.md "More of Flux" (go-digest, kustomize api/kyaml v0.21.1). v1.6.3 would not do:
	// it replaces Helm with a fork (github.com/fluxcd/helm/v4) that the module proxy refuses; RECIPES.md's
	// fallback v1.6.2 (Helm v4.2.2) is older than the release Flux pins. Its CRDs (HelmRelease) are assets
	// of the same module version. Cold build measured 2026-12-07 on 2 cores under load: 9m03s wall (4.1
	// CPU-minutes, peak RSS 1.25 GB), the build cache already holding source-controller's dependencies.
	HelmController = Tool{
		Name:          "helm-controller",
		Version:       "v1.6.4",
		Module:        "flux-helm",
		Package:       "github.com/fluxcd/helm-controller",
		LDFlags:       []string{"-s", "-w"},
		VersionModule: "github.com/fluxcd/helm-controller",
		Assets:        []string{"config/crd/bases"},
		ColdBuild:     "~9 min",
		Optional:      true,
	}
)

// NotificationController is Flux's notification-controller, run per twin cluster when the spec turns
// notifications on (docs/twin-spec.md "notifications"): Receivers for Gitea's push webhook, Providers and
// Alerts for the events the engines post. flux2 v2.9.5's manifests/bases/notification-controller pins v1.9.4,
// which the module proxy refuses (403, checked 2026-12-07); v1.9.3 is the newest patch of the same minor it
// serves (RECIPES.md "More of Flux" names v1.9.3). Replace: gopkg.in/yaml.v3 => v3.0.1 (RECIPES.md); its
// ./api replace becomes the published api module of the same version. No version flag: the version is read
// from the binary's build information. CRDs (Receiver, Provider, Alert) are assets of the same module version.
// Optional: only twins whose spec asks for notifications run it, so CI's cold run does not build it.
// Cold build measured 2026-12-07: 1h07m wall on 2 cores shared by 8 engineers (load average 50-68); not
// measured on a quiet machine, where the other Flux controllers take 2.5-9 min.
var NotificationController = Tool{
	Name:          "notification-controller",
	Version:       "v1.9.3",
	Module:        "flux-notification",
	Package:       "github.com/fluxcd/notification-controller",
	LDFlags:       []string{"-s", "-w"},
	VersionModule: "github.com/fluxcd/notification-controller",
	Assets:        []string{"config/crd/bases"},
	ColdBuild:     "~10 min quiet (estimate), 67 min measured under heavy load",
	Optional:      true,
}

// FluxCLI is the flux command line of the Flux release whose manifests pin the controllers above: flux2
// v2.9.5 (its manifests/bases pin source-controller v1.9.5 -- the twin runs the v1.9.6 patch -- and
// kustomize-controller v1.9.5; module github.com/fluxcd/flux2/v2, RECIPES.md "More of Flux"). Its
// cmd/flux embeds manifests/*.yaml that upstream's `make build` generates and the module zip lacks
// (fluxcd/flux2#1187), so the build adds one placeholder file (ModulePatch): every command that reads the
// cluster works (get, reconcile, suspend, resume, events, tree, logs); `flux install` and `flux bootstrap`
// have no manifests to install and fail, which a twin never needs (its clusters get Flux's CRDs from
// internal/fluxcrd). main.VERSION holds the version without "v" (upstream's Makefile stamps it so).
// Cold build ~9 min on 2 cores under load (measured 2026-12-07, 539 s with an empty build cache).
var FluxCLI = Tool{
	Name:        "flux",
	Version:     "v2.9.5",
	Module:      "flux-cli",
	Package:     "github.com/fluxcd/flux2/v2/cmd/flux",
	LDFlags:     []string{"-s", "-w", "-X", "main.VERSION=2.9.5"},
	VersionArgs: []string{"version", "--client"},
	// "flux: v2.9.5"
	VersionRE: regexp.MustCompile(`flux: v?([0-9][^\s]*)`),
	Patch: &ModulePatch{Module: "github.com/fluxcd/flux2/v2", Files: map[string]string{
		"cmd/flux/manifests/hybridtwin-placeholder.yaml": "# hybridtwin: the flux CLI is built without the install manifests upstream's\n" +
			"# `make build` generates (fluxcd/flux2#1187); flux install and flux bootstrap are not available.\n"}},
	ColdBuild: "~9 min",
	Optional:  true,
}

// Versitygw is the S3-compatible server that publishes the twin spec's buckets (Flux Bucket sources),
// run with its posix backend. Issue #25 names versitygw v1.7.0 (Apache-2.0; MinIO is AGPL and not used);
// the module proxy serves it. main.Version is stamped as upstream's Makefile does, else `versitygw version`
// prints "git". A separate binary rather than a library of the twin: its dependencies (AWS SDK, fiber,
// Azure blob, Kafka, NATS, LDAP, Vault clients) stay out of the main module, whose every CI build would
// otherwise compile them; the tool cache builds it once. Cold build measured 2026-12-07 on 2 cores under
// heavy load (load average ~18) with an empty build cache: 9m08s wall, 3.9 CPU-minutes, peak RSS 650 MB.
var Versitygw = Tool{
	Name:        "versitygw",
	Version:     "v1.7.0",
	Module:      "versitygw",
	Package:     "github.com/versity/versitygw/cmd/versitygw",
	LDFlags:     []string{"-s", "-w", "-X", "main.Version=v1.7.0"},
	VersionArgs: []string{"--version"},
	// "Version  : v1.7.0"
	VersionRE: regexp.MustCompile(`Version\s*:\s*v?([0-9][^\s]*)`),
	// Optional: only twins whose spec has buckets run it (it is built on their first start), and the Bucket
	// tests run where it is built or HYBRIDTWIN_BUCKET_TESTS=1 asks for it (internal/testenv
	// RequireBucketServer); so CI's cold run, which must finish in 90 minutes, does not build it.
	Optional:  true,
	ColdBuild: "~4-9 min",
}

// The sealed-secrets controller and kubeseal (issue #25, "Sealed Secrets": the guidance's other option for
// secrets in Git), built from github.com/bitnami/sealed-secrets v0.40.0: the newest release the module proxy
// serves, and one that builds with Go 1.26.8 (its go.mod says go 1.26.8). The project's module path moved
// from github.com/bitnami-labs to github.com/bitnami (v0.40.0's go.mod). main.VERSION is stamped as
// upstream's Makefile does (GO_LD_FLAGS), else both print the wrapper module's "(devel)". The controller
// runs outside the cluster against a twin cluster's kube-apiserver; kubeseal seals the scenarios' secrets
// with the certificate the controller generated.
//
// The controller has no --kubeconfig flag and builds its client with rest.InClusterConfig only
// (pkg/controller/main.go, Main), which needs the service-account token at the fixed path
// /var/run/secrets/kubernetes.io/serviceaccount/token: one per machine, not one per twin cluster. So the
// build patches one line (ModulePatch): Main takes the cluster from $KUBECONFIG when it is set, else from
// the in-cluster configuration as before; nothing else of the controller changes. kubeseal needs no
// patch (it reads a kubeconfig, and the twin gives it --cert instead). Both are Optional: only twins whose spec asks for the
// add-on run the controller, and the tests that need them are gated (HYBRIDTWIN_SEALED_TESTS=1, or the
// tools already built), so CI's cold run does not build them.
var (
	SealedSecretsController = Tool{
		Name:        "sealed-secrets-controller",
		Version:     "v0.40.0",
		Module:      "sealed-secrets",
		Package:     "github.com/bitnami/sealed-secrets/cmd/controller",
		LDFlags:     []string{"-s", "-w", "-X", "main.VERSION=v0.40.0"},
		VersionArgs: []string{"--version"},
		// "controller version: v0.40.0"
		VersionRE: regexp.MustCompile(`controller version: v?([0-9][^\s]*)`),
		// Its CRD (SealedSecret), from the same module version: the Helm chart's crds folder.
		Patch: &ModulePatch{Module: "github.com/bitnami/sealed-secrets",
			Files: map[string]string{"pkg/controller/hybridtwin_kubeconfig.go": sealedSecretsKubeconfig},
			Edits: []FileEdit{{Path: "pkg/controller/main.go",
				Old: "config, err := rest.InClusterConfig()", New: "config, err := hybridtwinRESTConfig(rest.InClusterConfig)"}}},
		Assets:      []string{"helm/sealed-secrets/crds"},
		AssetModule: "github.com/bitnami/sealed-secrets",
		ColdBuild:   "~4 min",
		Optional:    true,
	}
	Kubeseal = Tool{
		Name:        "kubeseal",
		Version:     "v0.40.0",
		Module:      "sealed-secrets",
		Package:     "github.com/bitnami/sealed-secrets/cmd/kubeseal",
		LDFlags:     []string{"-s", "-w", "-X", "main.VERSION=v0.40.0"},
		VersionArgs: []string{"--version"},
		// "kubeseal version: v0.40.0"
		VersionRE: regexp.MustCompile(`kubeseal version: v?([0-9][^\s]*)`),
		ColdBuild: "~1 min after the controller",
		Optional:  true,
	}
)

// sealedSecretsKubeconfig is the file the sealed-secrets controller's build adds to its pkg/controller
// (SealedSecretsController.Patch): the client configuration from $KUBECONFIG, for a controller that runs
// outside its cluster.
const sealedSecretsKubeconfig = `// Added by hybridtwin's tool build (tools/toolcache/pins.go, SealedSecretsController): the controller
// runs outside its cluster, against the kube-apiserver $KUBECONFIG names.

package controller

import (
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func hybridtwinRESTConfig(inCluster func() (*rest.Config, error)) (*rest.Config, error) {
	if path := os.Getenv("KUBECONFIG"); path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return inCluster()
}
`

// Pinned lists every external tool the twin runs, in the order `hybridtwin tools build` builds them:
// the Kubernetes binaries share one compile, so they go together and first.
func Pinned() []Tool {
	return []Tool{KubeAPIServer, KubeControllerManager, KubeScheduler, Etcd, Kwok, Gitea, SourceController, KustomizeController, HelmController, NotificationController, FluxCLI, Versitygw, SealedSecretsController, Kubeseal}
}

// Default lists the tools built when none are named: every pinned tool that is not Optional.
func Default() []Tool {
	var out []Tool
	for _, t := range Pinned() {
		if !t.Optional {
			out = append(out, t)
		}
	}
	return out
}

// Lookup returns the pinned tool with the given name.
func Lookup(name string) (Tool, bool) {
	for _, t := range Pinned() {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

func withColdBuild(t Tool, d string) Tool {
	t.ColdBuild = d
	return t
}
