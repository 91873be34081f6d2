package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/specyaml"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/engine/engines"
)

// KindTwin is the kind of a twin spec document.
const KindTwin = "Twin"

// Spec is a Twin document: everything one running twin is made of.
type Spec struct {
	APIVersion string              `yaml:"apiVersion" json:"apiVersion"`
	Kind       string              `yaml:"kind" json:"kind"`
	Metadata   hardware.ObjectMeta `yaml:"metadata" json:"metadata"`
	Spec       TwinSpec            `yaml:"spec" json:"spec"`

	// File is the spec's path; Dir the folder relative paths are resolved against.
	File string `yaml:"-" json:"-"`
	Dir  string `yaml:"-" json:"-"`
	// Inventory and Plan are the hardware documents the spec references or inlines, parsed and validated.
	Inventory *hardware.Inventory `yaml:"-" json:"-"`
	Plan      *hardware.Plan      `yaml:"-" json:"-"`
	// Capacity is the planner's verdict on Plan over Inventory.
	Capacity *hardware.Result `yaml:"-" json:"-"`

	pos specyaml.Positions
}

// TwinSpec is the body of a Twin.
type TwinSpec struct {
	// Hardware names the HCICluster inventory and the ClusterPlan: files relative to the spec, or empty
	// when the documents are inlined in the spec's own file.
	Hardware HardwareRef `yaml:"hardware" json:"hardware"`
	// Provider runs the workload clusters: "embedded" (default) or "kind".
	Provider cluster.ProviderName `yaml:"provider" json:"provider,omitempty"`
	// TimeProfile is "real" (Kubernetes defaults) or "fast" (shortened node-failure timings).
	TimeProfile cluster.TimeProfileName `yaml:"timeProfile" json:"timeProfile,omitempty"`
	// Reconciler is the GitOps engine of every cluster unless overridden: "hybridtwin" (default) or "flux".
	Reconciler ReconcilerName `yaml:"reconciler" json:"reconciler,omitempty"`
	// Clusters holds per-cluster overrides, by workload cluster name.
	Clusters map[string]ClusterOverride `yaml:"clusters" json:"clusters,omitempty"`
	// Azure is where the clusters are connected to (the Arc fake).
	Azure AzureSpec `yaml:"azure" json:"azure"`
	// Git holds the repositories to seed into the twin's Gitea.
	Git GitSpec `yaml:"git" json:"git"`
	// Images are published to the twin's registry.
	Images []ImageSpec `yaml:"images" json:"images,omitempty"`
	// Artifacts are folders pushed to the twin's registry as Flux OCI artifacts, the sources of GitOps
	// configurations whose oci block names their repository.
	Artifacts []ArtifactSpec `yaml:"artifacts" json:"artifacts,omitempty"`
	// GitOps are the fluxConfigurations created through the Arc fake, in its REST shape.
	GitOps []GitOpsConfig `yaml:"gitops" json:"gitops,omitempty"`
	// Charts mirror upstream Helm chart sources inside the twin, which has no network: each maps the URL
	// a repository's HelmRepository objects name, unchanged, to chart folders (charts.go).
	Charts []ChartSource `yaml:"charts" json:"charts,omitempty"`
	// Buckets are folders published as buckets of the twin's S3 server (versitygw), for configurations
	// whose source is a Flux Bucket. The server runs only when this list is not empty.
	Buckets []BucketSpec `yaml:"buckets" json:"buckets,omitempty"`
	// SealedSecrets runs the sealed-secrets controller (bitnami sealed-secrets, the guidance's other
	// option for secrets in Git) in every workload cluster, with its SealedSecret CRD, whichever engine
	// runs. Its binary is an optional tool, built on the first start of a twin that asks for it.
	SealedSecrets bool `yaml:"sealedSecrets" json:"sealedSecrets,omitempty"`
	// Notifications runs Flux's notification-controller in every workload cluster (NotificationsSpec).
	Notifications NotificationsSpec `yaml:"notifications" json:"notifications,omitzero"`
}

// NotificationsSpec turns on Flux's notification-controller (the pinned release, an optional tool built on
// the first start) in every workload cluster, whichever engine runs it (docs/twin-spec.md
// "spec.notifications"). With it on, Gitea's push webhooks go to a Flux Receiver per repository instead
// of the twin's own webhook wiring; both engines post their events to it (Flux's controllers through
// --events-addr); and a gitea Provider with an Alert per repository posts commit statuses of the
// configurations' Kustomizations to Gitea. Off (the default), the twin's own push webhooks stay.
type NotificationsSpec struct {
	Enabled bool `yaml:"enabled" json:"enabled,omitempty"`
}

// HardwareRef points at the hardware documents.
type HardwareRef struct {
	Inventory string `yaml:"inventory" json:"inventory,omitempty"`
	Plan      string `yaml:"plan" json:"plan,omitempty"`
	// AllowUnfit starts the twin on a plan the capacity planner says does not fit -- it fails N-1, the
	// reserve, storage, a profile limit or an address pool -- to see what that estate does (a host crash
	// strands VMs, pods stay Pending). The default refuses such a spec, naming the failing check. Every
	// VM must still find a host: a VM that does not place has no node to run. Cluster operations on such
	// a twin are likewise not refused for the verdict, only for VMs that find no host.
	AllowUnfit bool `yaml:"allowUnfit" json:"allowUnfit,omitempty"`
}

// ReconcilerName selects a cluster's GitOps engine.
type ReconcilerName string

// Reconcilers.
const (
	ReconcilerHybridtwin ReconcilerName = engines.Default
	ReconcilerFlux       ReconcilerName = "flux"
)

// ClusterOverride changes settings of one workload cluster.
type ClusterOverride struct {
	Reconciler ReconcilerName `yaml:"reconciler" json:"reconciler,omitempty"`
	// Tier is the cluster's control-plane tier: "full" (default) or "light" (one etcd shared by the light
	// clusters, smaller caches; twin/cluster/tier.go lists what a light cluster cannot do).
	Tier cluster.TierName `yaml:"tier" json:"tier,omitempty"`
}

// AzureSpec places the twin's ARM resources.
type AzureSpec struct {
	SubscriptionID string `yaml:"subscriptionID" json:"subscriptionID,omitempty"`
	ResourceGroup  string `yaml:"resourceGroup" json:"resourceGroup,omitempty"`
	Location       string `yaml:"location" json:"location,omitempty"`
}

// Defaults of AzureSpec: a fixed, obviously fake subscription, and names a platform team recognises.
const (
	DefaultSubscriptionID = "00000000-0000-4000-8000-000000000001"
	DefaultResourceGroup  = "rg-hybridtwin"
	DefaultLocation       = "westeurope"
)

// GitSpec is the twin's Git content.
type GitSpec struct {
	// Org is the Gitea organisation holding the repositories ("platform" by default).
	Org   string     `yaml:"org" json:"org,omitempty"`
	Repos []RepoSpec `yaml:"repos" json:"repos,omitempty"`
}

// DefaultGitOrg is GitSpec.Org's default.
const DefaultGitOrg = "platform"

// RepoSpec is one repository: a folder pushed to main, or a folder per branch.
type RepoSpec struct {
	Name string `yaml:"name" json:"name"`
	// Path is a folder (relative to the spec) pushed as the main branch.
	Path string `yaml:"path" json:"path,omitempty"`
	// Branches maps a branch to the folder pushed as that branch (the branch-per-environment layout).
	Branches map[string]string `yaml:"branches" json:"branches,omitempty"`
}

// ImageSpec is an image repository to publish in the registry, with its tags.
type ImageSpec struct {
	Repository string   `yaml:"repository" json:"repository"`
	Tags       []string `yaml:"tags" json:"tags"`
}

// ArtifactSpec is a folder pushed to the twin's registry as one tag of a Flux OCI artifact, in the shape
// `flux push artifact oci://<registry>/<repository>:<tag> --path=<path>` makes (one gzipped tarball layer).
type ArtifactSpec struct {
	Repository string `yaml:"repository" json:"repository"`
	Tag        string `yaml:"tag" json:"tag"`
	// Path is the folder (relative to the spec) packed into the artifact.
	Path string `yaml:"path" json:"path"`
}

// BucketSpec is a folder published as one bucket of the twin's S3 server: every file below Path becomes an
// object keyed by its path relative to Path (a folder of a Git layout under examples/repos, or any folder).
type BucketSpec struct {
	// Name is the bucket's name (S3 bucket naming rules).
	Name string `yaml:"name" json:"name"`
	// Path is the folder (relative to the spec) to publish.
	Path string `yaml:"path" json:"path"`
}

// BucketSource is the bucket a GitOps configuration syncs (sourceKind Bucket): a bucket of spec.buckets;
// the twin fills in the S3 server's URL, insecure (plain HTTP on loopback) and its credentials.
type BucketSource struct {
	Name string `yaml:"name" json:"name"`
}

// GitOpsConfig is a fluxConfiguration to create on clusters, in the Arc REST shape (field names as
// Microsoft.KubernetesConfiguration/fluxConfigurations), with the repository named from spec.git, or, with
// an oci block, an OCI artifact as its source (sourceKind OCIRepository).
type GitOpsConfig struct {
	Name string `yaml:"name" json:"name"`
	// Clusters are the workload clusters to configure; ["*"] is all of them.
	Clusters  []string `yaml:"clusters" json:"clusters"`
	Scope     string   `yaml:"scope" json:"scope,omitempty"`
	Namespace string   `yaml:"namespace" json:"namespace,omitempty"`
	Suspend   bool     `yaml:"suspend" json:"suspend,omitempty"`
	// Repo names a repository of spec.git.repos; the twin fills in its Gitea URL and credentials.
	Repo string        `yaml:"repo" json:"repo,omitempty"`
	Ref  RepositoryRef `yaml:"ref" json:"ref"`
	// GitAuth is how the clusters read repo: "https" (the default: the twin's read-only service account
	// with its API token) or "ssh" (Gitea's built-in SSH server with a read-only key of that account, and
	// the server's host key as known_hosts).
	GitAuth string `yaml:"gitAuth" json:"gitAuth,omitempty"`
	// OCI makes the source an OCI artifact instead of a Git repository (give repo or oci, not both).
	OCI *OCISource `yaml:"oci" json:"oci,omitempty"`
	// Bucket makes the source a bucket of spec.buckets (give one of repo, oci or bucket).
	Bucket                *BucketSource            `yaml:"bucket" json:"bucket,omitempty"`
	SyncIntervalInSeconds int64                    `yaml:"syncIntervalInSeconds" json:"syncIntervalInSeconds,omitempty"`
	TimeoutInSeconds      int64                    `yaml:"timeoutInSeconds" json:"timeoutInSeconds,omitempty"`
	Kustomizations        map[string]Kustomization `yaml:"kustomizations" json:"kustomizations"`
}

// GitOpsConfig.GitAuth values.
const (
	GitAuthHTTPS = "https"
	GitAuthSSH   = "ssh"
)

// RepositoryRef is what to sync: branch, tag, semver or commit.
type RepositoryRef struct {
	Branch string `yaml:"branch" json:"branch,omitempty"`
	Tag    string `yaml:"tag" json:"tag,omitempty"`
	Semver string `yaml:"semver" json:"semver,omitempty"`
	Commit string `yaml:"commit" json:"commit,omitempty"`
}

// OCISource is the OCI artifact a GitOps configuration syncs, the fluxConfiguration's ociRepository
// (api-version 2025-04-01): a repository of spec.artifacts in the twin's registry, or the oci:// URL of any
// registry the clusters reach; and at most one of tag, semver or digest (none: the tag "latest", the REST
// reference's default).
type OCISource struct {
	// Repository names a repository of spec.artifacts; the twin fills in its registry URL and insecure
	// (the twin's registry speaks plain HTTP).
	Repository string `yaml:"repository" json:"repository,omitempty"`
	// URL is oci://<host>/<repository> of another registry, instead of Repository.
	URL string `yaml:"url" json:"url,omitempty"`
	// Insecure lets Flux pull URL over plain HTTP; always on for Repository.
	Insecure bool   `yaml:"insecure" json:"insecure,omitempty"`
	Tag      string `yaml:"tag" json:"tag,omitempty"`
	Semver   string `yaml:"semver" json:"semver,omitempty"`
	Digest   string `yaml:"digest" json:"digest,omitempty"`
}

// DefaultOCITag is the tag an oci source without tag, semver or digest syncs: "latest" (REST reference,
// OCIRepositoryRefDefinition.tag: "defaults to 'latest'"; Flux OCIRepository spec.ref likewise).
const DefaultOCITag = "latest"

// Kustomization is one kustomization of a GitOps configuration.
type Kustomization struct {
	Path                   string            `yaml:"path" json:"path"`
	DependsOn              []string          `yaml:"dependsOn" json:"dependsOn,omitempty"`
	Prune                  bool              `yaml:"prune" json:"prune,omitempty"`
	Force                  bool              `yaml:"force" json:"force,omitempty"`
	Wait                   *bool             `yaml:"wait" json:"wait,omitempty"`
	SyncIntervalInSeconds  int64             `yaml:"syncIntervalInSeconds" json:"syncIntervalInSeconds,omitempty"`
	TimeoutInSeconds       int64             `yaml:"timeoutInSeconds" json:"timeoutInSeconds,omitempty"`
	RetryIntervalInSeconds int64             `yaml:"retryIntervalInSeconds" json:"retryIntervalInSeconds,omitempty"`
	Substitute             map[string]string `yaml:"substitute" json:"substitute,omitempty"`
}

// ParseScalar makes ReconcilerName an enum in specs: the engines of the engine room (twin/engine/engines).
func (r *ReconcilerName) ParseScalar(s string) error {
	if _, ok := engines.Lookup(s); ok || s == "" {
		*r = ReconcilerName(s)
		return nil
	}
	return fmt.Errorf("unknown reconciler %q; use one of %s", s, strings.Join(engines.Names(), ", "))
}

// ErrInvalidSpec is wrapped by every spec problem.
var ErrInvalidSpec = errors.New("invalid twin spec")

// Problem is one thing wrong with a spec: where, and what to do.
type Problem struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += fmt.Sprintf(":%d", p.Line)
	}
	if p.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Field, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// SpecErrors is every problem of a spec, in file order.
type SpecErrors struct{ Problems []Problem }

func (e *SpecErrors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("%d problem(s) in the twin spec; nothing was started:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// Unwrap lets errors.Is(err, ErrInvalidSpec) work.
func (e *SpecErrors) Unwrap() error { return ErrInvalidSpec }

// LoadSpec reads, defaults and validates a twin spec. On any problem it returns *SpecErrors listing all of
// them; a spec that loads is safe to start.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &SpecErrors{Problems: []Problem{{File: path, Msg: fmt.Sprintf("cannot read the twin spec: %v", errors.Unwrap(err))}}}
	}
	return ParseSpec(path, data)
}

// ParseSpec is LoadSpec for data already read from path.
func ParseSpec(path string, data []byte) (*Spec, error) {
	v := &validator{file: path}
	docs, p := specyaml.Split(data)
	if p != nil {
		v.add(p.Line, p.Field, "%s", p.Msg)
		return nil, v.result()
	}
	var twinDoc *specyaml.Document
	for i := range docs {
		d := docs[i]
		switch d.Kind {
		case KindTwin:
			if twinDoc != nil {
				v.add(d.Line, "kind", "a second Twin document (the first is at line %d); one file describes one twin", twinDoc.Line)
				continue
			}
			twinDoc = &docs[i]
		case hardware.KindHCICluster, hardware.KindClusterPlan:
		default:
			v.add(d.Line, "kind", "is %q; a twin file holds a Twin and optionally its %s and %s documents", d.Kind, hardware.KindHCICluster, hardware.KindClusterPlan)
		}
	}
	if twinDoc == nil {
		v.add(1, "kind", "no Twin document; a twin spec starts with apiVersion: %s and kind: %s", hardware.APIVersion, KindTwin)
		return nil, v.result()
	}
	s := &Spec{File: path, Dir: filepath.Dir(path)}
	pos, problems := specyaml.Decode(twinDoc.Node, s)
	s.pos = pos
	v.pos = pos
	for _, p := range problems {
		v.add(p.Line, p.Field, "%s", p.Msg)
	}
	s.applyDefaults()
	s.loadHardware(v, docs)
	s.validate(v)
	if err := v.result(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Spec) applyDefaults() {
	t := &s.Spec
	if t.Provider == "" {
		t.Provider = cluster.DefaultProvider
	}
	if t.TimeProfile == "" {
		t.TimeProfile = cluster.DefaultTimeProfile
	}
	if t.Reconciler == "" {
		t.Reconciler = ReconcilerHybridtwin
	}
	if t.Azure.SubscriptionID == "" {
		t.Azure.SubscriptionID = DefaultSubscriptionID
	}
	if t.Azure.ResourceGroup == "" {
		t.Azure.ResourceGroup = DefaultResourceGroup
	}
	if t.Azure.Location == "" {
		t.Azure.Location = DefaultLocation
	}
	if t.Git.Org == "" {
		t.Git.Org = DefaultGitOrg
	}
	for i := range t.GitOps {
		g := &t.GitOps[i]
		if g.Scope == "" {
			g.Scope = "cluster" // Arc default (fakes/arc.DefaultScope)
		}
		if g.Namespace == "" {
			g.Namespace = "flux-system"
		}
	}
}

// ReconcilerFor is the reconciler a workload cluster runs.
func (s *Spec) ReconcilerFor(clusterName string) ReconcilerName {
	if o, ok := s.Spec.Clusters[clusterName]; ok && o.Reconciler != "" {
		return o.Reconciler
	}
	return s.Spec.Reconciler
}

// TierFor is the tier a workload cluster runs in ("" is full).
func (s *Spec) TierFor(clusterName string) cluster.TierName {
	return s.Spec.Clusters[clusterName].Tier
}

// ClusterNames are the workload clusters of the plan, in plan order.
func (s *Spec) ClusterNames() []string {
	if s.Plan == nil {
		return nil
	}
	var out []string
	for _, c := range s.Plan.Spec.WorkloadClusters {
		out = append(out, c.Name)
	}
	return out
}

// TargetsOf resolves a GitOps configuration's cluster list ("*" is all).
func (s *Spec) TargetsOf(g GitOpsConfig) []string {
	for _, c := range g.Clusters {
		if c == "*" {
			return s.ClusterNames()
		}
	}
	return g.Clusters
}

// SourceDir is the local folder a GitOps configuration's source is made from, which its kustomization
// paths are relative to: the repository's folder (the ref's branch folder for a branch-per-environment
// repository) for a Git source, the artifact's folder for an oci source naming a tag of spec.artifacts, the
// bucket's folder for a bucket source;
// "" when the source has no local folder (an oci url, semver or digest, or an unknown name).
func (s *Spec) SourceDir(g GitOpsConfig) string {
	if b := g.Bucket; b != nil {
		for _, bs := range s.Spec.Buckets {
			if bs.Name == b.Name {
				return s.Path(bs.Path)
			}
		}
		return ""
	}
	if o := g.OCI; o != nil {
		if o.Repository == "" || o.Semver != "" || o.Digest != "" {
			return ""
		}
		tag := o.Tag
		if tag == "" {
			tag = DefaultOCITag
		}
		for _, a := range s.Spec.Artifacts {
			if a.Repository == o.Repository && a.Tag == tag {
				return s.Path(a.Path)
			}
		}
		return ""
	}
	for _, r := range s.Spec.Git.Repos {
		if r.Name != g.Repo {
			continue
		}
		if r.Path != "" {
			return s.Path(r.Path)
		}
		if dir, ok := r.Branches[g.Ref.Branch]; ok {
			return s.Path(dir)
		}
	}
	return ""
}

// Path resolves a path of the spec relative to the spec's folder.
func (s *Spec) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}
