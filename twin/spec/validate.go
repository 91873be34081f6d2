package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/depgraph"
	"github.com/hybridtwin/hybridtwin/internal/specyaml"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Loading the hardware documents and validating a spec: every problem found, each with file, line and
// field (validator).

func (s *Spec) loadHardware(v *validator, docs []specyaml.Document) {
	var invFiles, planFiles []string
	hw := s.Spec.Hardware
	inline := false
	for _, d := range docs {
		if d.Kind == hardware.KindHCICluster || d.Kind == hardware.KindClusterPlan {
			inline = true
		}
	}
	if hw.Inventory != "" {
		invFiles = append(invFiles, s.Path(hw.Inventory))
	}
	if hw.Plan != "" && hw.Plan != hw.Inventory {
		planFiles = append(planFiles, s.Path(hw.Plan))
	}
	var inv *hardware.Inventory
	var plan *hardware.Plan
	if inline {
		i, p, err := hardware.FromDocuments(s.File, docs)
		if err != nil {
			v.hardwareErr(err)
			return
		}
		inv, plan = i, p
	}
	if len(invFiles)+len(planFiles) > 0 {
		for _, f := range append(invFiles, planFiles...) {
			if _, err := os.Stat(f); err != nil {
				field := "spec.hardware.inventory"
				if slices.Contains(planFiles, f) {
					field = "spec.hardware.plan"
				}
				v.addAt(field, "cannot read %s: %v; give a path relative to %s", f, errors.Unwrap(err), s.Dir)
				return
			}
		}
		i, p, err := hardware.LoadFiles(append(invFiles, planFiles...)...)
		if err != nil {
			v.hardwareErr(err)
			return
		}
		if i != nil {
			if inv != nil {
				v.addAt("spec.hardware.inventory", "the spec both inlines an %s and names %s; keep one", hardware.KindHCICluster, hw.Inventory)
			}
			inv = i
		}
		if p != nil {
			if plan != nil {
				v.addAt("spec.hardware.plan", "the spec both inlines a %s and names %s; keep one", hardware.KindClusterPlan, hw.Plan)
			}
			plan = p
		}
	}
	switch {
	case inv == nil:
		v.addAt("spec.hardware.inventory", "no %s: name its file here or add the document to this file", hardware.KindHCICluster)
		return
	case plan == nil:
		v.addAt("spec.hardware.plan", "no %s: name its file here or add the document to this file; it lists the workload clusters", hardware.KindClusterPlan)
		return
	}
	s.Inventory, s.Plan = inv, plan
	res, err := hardware.Evaluate(inv, plan)
	if err != nil {
		v.hardwareErr(err)
		return
	}
	s.Capacity = res
	for _, f := range res.Findings {
		switch {
		case f.Severity != hardware.SeverityError:
		case !hw.AllowUnfit:
			v.addAt("spec.hardware", "the capacity planner says the plan does not fit (%s check): %s (see `hybridtwin capacity -f %s -f %s`); to run this estate anyway, set spec.hardware.allowUnfit: true",
				f.Check, f.Message, inv.File, plan.File)
		case f.Check == hardware.CheckPlacement:
			v.addAt("spec.hardware.allowUnfit", "runs an estate that fails a capacity check, but not one whose VMs find no host: %s (see `hybridtwin capacity -f %s -f %s`); shrink the plan until every VM places",
				f.Message, inv.File, plan.File)
		}
	}
	if len(plan.Spec.WorkloadClusters) == 0 {
		v.addAt("spec.hardware.plan", "the plan has no workload clusters; a twin needs at least one")
	}
}

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	arcName     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$`) // fluxConfigurations: 30 chars (fakes/arc)
	guid        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	rgName      = regexp.MustCompile(`^[-\w._()]{1,90}$`) // ARM resource group naming rules
	imageRepo   = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
	imageTag    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	gitRefName  = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	commitSHA   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	repoNameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	orgNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$`)
	namespaceRE = dnsLabel
)

func (s *Spec) validate(v *validator) {
	if s.APIVersion != hardware.APIVersion {
		v.addAt("apiVersion", "is %q; write apiVersion: %s", s.APIVersion, hardware.APIVersion)
	}
	if !dnsLabel.MatchString(s.Metadata.Name) {
		v.addAt("metadata.name", "%q must be a DNS label (lower case letters, digits, '-'): it names the twin's state folder", s.Metadata.Name)
	}
	t := s.Spec
	if t.Provider != cluster.ProviderEmbedded && t.Provider != cluster.ProviderKind {
		v.addAt("spec.provider", "%q is not a provider; use %s (processes, the default) or %s (needs Docker)", t.Provider, cluster.ProviderEmbedded, cluster.ProviderKind)
	}
	if _, err := cluster.Profile(t.TimeProfile); err != nil {
		v.addAt("spec.timeProfile", "%v", err)
	}
	clusters := map[string]bool{}
	for _, c := range s.ClusterNames() {
		clusters[c] = true
	}
	have := strings.Join(s.ClusterNames(), ", ")
	for _, name := range sortedKeys(t.Clusters) {
		if s.Plan != nil && !clusters[name] {
			v.addAt("spec.clusters."+name, "%q is not a workload cluster of the plan (have: %s)", name, have)
		}
		if tier := t.Clusters[name].Tier; tier != "" {
			if _, err := cluster.LookupTier(tier); err != nil {
				v.addAt("spec.clusters."+name+".tier", "%q is not a tier; use %s (own etcd, the default) or %s (shared etcd, smaller caches; see docs/twin-spec.md)", tier, cluster.TierFull, cluster.TierLight)
			} else if tier == cluster.TierLight && t.Provider != cluster.ProviderEmbedded {
				v.addAt("spec.clusters."+name+".tier", "%s needs provider %s (its etcd is shared on this machine); use tier %s with provider %s", tier, cluster.ProviderEmbedded, cluster.TierFull, t.Provider)
			}
		}
	}
	if !guid.MatchString(t.Azure.SubscriptionID) {
		v.addAt("spec.azure.subscriptionID", "%q is not a subscription ID (a GUID like %s)", t.Azure.SubscriptionID, DefaultSubscriptionID)
	}
	if !rgName.MatchString(t.Azure.ResourceGroup) || strings.HasSuffix(t.Azure.ResourceGroup, ".") {
		v.addAt("spec.azure.resourceGroup", "%q is not a resource group name (1-90 letters, digits, '-', '_', '.', '(', ')'; not ending in '.')", t.Azure.ResourceGroup)
	}
	if !orgNameRE.MatchString(t.Git.Org) {
		v.addAt("spec.git.org", "%q is not a Gitea organisation name (letters, digits, '-', '_', '.'; at most 40)", t.Git.Org)
	}
	repos := map[string]RepoSpec{}
	for i, r := range t.Git.Repos {
		at := fmt.Sprintf("spec.git.repos[%d]", i)
		if !repoNameRE.MatchString(r.Name) {
			v.addAt(at+".name", "%q is not a repository name (letters, digits, '-', '_', '.')", r.Name)
		}
		if _, dup := repos[r.Name]; dup {
			v.addAt(at+".name", "repository %q is given twice", r.Name)
		}
		repos[r.Name] = r
		switch {
		case r.Path == "" && len(r.Branches) == 0:
			v.addAt(at, "give path (a folder pushed as main) or branches (a folder per branch)")
		case r.Path != "" && len(r.Branches) > 0:
			v.addAt(at, "give path or branches, not both")
		}
		if r.Path != "" {
			v.checkDir(at+".path", s.Path(r.Path))
		}
		for _, b := range sortedKeys(r.Branches) {
			if !gitRefName.MatchString(b) {
				v.addAt(at+".branches."+b, "%q is not a branch name", b)
			}
			v.checkDir(at+".branches."+b, s.Path(r.Branches[b]))
		}
	}
	for i, img := range t.Images {
		at := fmt.Sprintf("spec.images[%d]", i)
		if !imageRepo.MatchString(img.Repository) {
			v.addAt(at+".repository", "%q is not an image repository name (lower case path, e.g. apps/podinfo)", img.Repository)
		}
		if len(img.Tags) == 0 {
			v.addAt(at+".tags", "list at least one tag to publish")
		}
		for j, tag := range img.Tags {
			if !imageTag.MatchString(tag) {
				v.addAt(fmt.Sprintf("%s.tags[%d]", at, j), "%q is not an image tag (letters, digits, '_', '.', '-'; at most 128)", tag)
			}
		}
	}
	artifacts := map[string]map[string]string{} // repository -> tag -> folder
	for i, a := range t.Artifacts {
		at := fmt.Sprintf("spec.artifacts[%d]", i)
		if !imageRepo.MatchString(a.Repository) {
			v.addAt(at+".repository", "%q is not a repository name (lower case path, e.g. manifests/platform)", a.Repository)
		}
		if !imageTag.MatchString(a.Tag) {
			v.addAt(at+".tag", "%q is not a tag (letters, digits, '_', '.', '-'; at most 128), e.g. 1.0.0", a.Tag)
		}
		if _, dup := artifacts[a.Repository][a.Tag]; dup {
			v.addAt(at+".tag", "%s:%s is given twice", a.Repository, a.Tag)
		}
		if a.Path == "" {
			v.addAt(at+".path", "is required: the folder (relative to the spec) to pack into the artifact")
		} else {
			v.checkDir(at+".path", s.Path(a.Path))
		}
		if artifacts[a.Repository] == nil {
			artifacts[a.Repository] = map[string]string{}
		}
		artifacts[a.Repository][a.Tag] = s.Path(a.Path)
	}
	buckets := s.checkBuckets(v)
	names := map[string]bool{}
	for i, g := range t.GitOps {
		at := fmt.Sprintf("spec.gitops[%d]", i)
		if !arcName.MatchString(g.Name) {
			v.addAt(at+".name", "%q must be at most 30 lower case letters, digits or '-', starting and ending with a letter or digit (Arc fluxConfiguration names)", g.Name)
		}
		if names[g.Name] {
			v.addAt(at+".name", "configuration %q is given twice", g.Name)
		}
		names[g.Name] = true
		if len(g.Clusters) == 0 {
			v.addAt(at+".clusters", "list the workload clusters to configure, or [\"*\"] for all")
		}
		for j, c := range g.Clusters {
			if c != "*" && s.Plan != nil && !clusters[c] {
				v.addAt(fmt.Sprintf("%s.clusters[%d]", at, j), "%q is not a workload cluster of the plan (have: %s)", c, have)
			}
		}
		if g.Scope != "cluster" && g.Scope != "namespace" {
			v.addAt(at+".scope", "%q is not a scope; use cluster or namespace", g.Scope)
		}
		if !namespaceRE.MatchString(g.Namespace) {
			v.addAt(at+".namespace", "%q is not a namespace name (a DNS label)", g.Namespace)
		}
		switch g.GitAuth {
		case "", GitAuthHTTPS, GitAuthSSH:
			if g.GitAuth != "" && (g.Bucket != nil || g.OCI != nil) {
				v.addAt(at+".gitAuth", "is for a Git source (repo); remove it from an oci or bucket configuration")
			}
		default:
			v.addAt(at+".gitAuth", "%q is not a Git auth; use https (the default) or ssh", g.GitAuth)
		}
		// Where the kustomization paths must exist, and what to call the source in messages.
		root, source := "", fmt.Sprintf("repository %q", g.Repo)
		if g.Bucket != nil {
			if g.Repo != "" || g.OCI != nil {
				v.addAt(at+".bucket", "the configuration names a bucket and also a Git repository or an OCI artifact; keep one source")
			}
			root, source = buckets[g.Bucket.Name], fmt.Sprintf("bucket %q", g.Bucket.Name)
			if _, ok := buckets[g.Bucket.Name]; !ok {
				v.addAt(at+".bucket.name", "%q is not a bucket of spec.buckets (have: %s); add it (name, path) or fix the name", g.Bucket.Name, strings.Join(sortedKeys(buckets), ", "))
			}
			if g.Ref != (RepositoryRef{}) {
				v.addAt(at+".ref", "is for a Git source; a bucket has no branch, tag or commit: remove ref")
			}
		} else if g.OCI != nil {
			if g.Repo != "" {
				v.addAt(at+".oci", "the configuration names both a Git repository (repo: %s) and an OCI artifact; keep one", g.Repo)
			}
			root, source = v.checkOCI(at, g, artifacts)
		} else {
			root = s.checkGitSource(v, at, g, repos)
		}
		positiveSeconds(v, at+".syncIntervalInSeconds", g.SyncIntervalInSeconds)
		positiveSeconds(v, at+".timeoutInSeconds", g.TimeoutInSeconds)
		if len(g.Kustomizations) == 0 {
			v.addAt(at+".kustomizations", "list at least one kustomization (name: {path: ...})")
		}
		for _, kn := range sortedKeys(g.Kustomizations) {
			k := g.Kustomizations[kn]
			kat := at + ".kustomizations." + kn
			if !arcName.MatchString(kn) {
				v.addAt(kat, "the name %q must be at most 30 lower case letters, digits or '-'", kn)
			}
			if k.Path == "" {
				v.addAt(kat+".path", "is required: the folder of the source to apply, e.g. ./apps/dev")
			} else if filepath.IsAbs(k.Path) || strings.Contains(filepath.ToSlash(filepath.Clean(k.Path)), "..") {
				v.addAt(kat+".path", "%q must be a path inside the source", k.Path)
			} else if root != "" {
				if st, err := os.Stat(filepath.Join(root, k.Path)); err != nil || !st.IsDir() {
					v.addAt(kat+".path", "%q is not a folder of %s (looked in %s)", k.Path, source, root)
				}
			}
			for _, d := range k.DependsOn {
				if _, ok := g.Kustomizations[d]; !ok || d == kn {
					v.addAt(kat+".dependsOn", "%q is not another kustomization of this configuration (have: %s)", d, strings.Join(sortedKeys(g.Kustomizations), ", "))
				}
			}
			positiveSeconds(v, kat+".syncIntervalInSeconds", k.SyncIntervalInSeconds)
			positiveSeconds(v, kat+".timeoutInSeconds", k.TimeoutInSeconds)
			positiveSeconds(v, kat+".retryIntervalInSeconds", k.RetryIntervalInSeconds)
		}
		if cycle := dependsOnCycle(g.Kustomizations); cycle != nil {
			v.addAt(at+".kustomizations", "dependsOn has a cycle: %s; break it", strings.Join(cycle, " -> "))
		}
	}
	s.checkCharts(v)
}

// bucketName is S3's rule for a general purpose bucket name: 3-63 lower-case letters, digits, dots and
// hyphens, starting and ending with a letter or digit (Amazon S3 User Guide, "General purpose bucket naming
// rules").
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// checkBuckets validates spec.buckets and returns each bucket's folder by name.
func (s *Spec) checkBuckets(v *validator) map[string]string {
	out := map[string]string{}
	for i, b := range s.Spec.Buckets {
		at := fmt.Sprintf("spec.buckets[%d]", i)
		if !bucketName.MatchString(b.Name) {
			v.addAt(at+".name", "%q is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit), e.g. platform-apps", b.Name)
		}
		if _, dup := out[b.Name]; dup {
			v.addAt(at+".name", "bucket %q is given twice", b.Name)
		}
		if b.Path == "" {
			v.addAt(at+".path", "is required: the folder (relative to the spec) to publish as the bucket")
		} else {
			v.checkDir(at+".path", s.Path(b.Path))
		}
		out[b.Name] = s.Path(b.Path)
	}
	return out
}

// checkGitSource validates a configuration's Git source (repo and ref) and returns the folder its
// kustomization paths must exist in ("" when unknown).
func (s *Spec) checkGitSource(v *validator, at string, g GitOpsConfig, repos map[string]RepoSpec) string {
	repo, ok := repos[g.Repo]
	if !ok {
		v.addAt(at+".repo", "%q is not a repository of spec.git.repos (have: %s); fix the name or add the repository, or give an oci source instead", g.Repo, strings.Join(sortedKeys(repos), ", "))
	}
	refs := 0
	for _, r := range []string{g.Ref.Branch, g.Ref.Tag, g.Ref.Semver, g.Ref.Commit} {
		if r != "" {
			refs++
		}
	}
	if refs == 0 {
		v.addAt(at+".ref", "set one of branch, tag, semver or commit")
	}
	if g.Ref.Commit != "" && !commitSHA.MatchString(g.Ref.Commit) {
		v.addAt(at+".ref.commit", "%q is not a full 40-character commit SHA", g.Ref.Commit)
	}
	// Where the kustomization paths must exist: the branch's folder for a branch-per-env repo.
	root := ""
	if ok {
		switch {
		case repo.Path != "":
			if g.Ref.Branch != "" && g.Ref.Branch != "main" {
				v.addAt(at+".ref.branch", "repository %q has only a main branch (spec.git.repos gives a path, not branches)", g.Repo)
			}
			root = s.Path(repo.Path)
		case g.Ref.Branch != "":
			if dir, has := repo.Branches[g.Ref.Branch]; has {
				root = s.Path(dir)
			} else {
				v.addAt(at+".ref.branch", "repository %q has no branch %q (have: %s)", g.Repo, g.Ref.Branch, strings.Join(sortedKeys(repo.Branches), ", "))
			}
		}
	}
	return root
}

func positiveSeconds(v *validator, at string, n int64) {
	if n < 0 {
		v.addAt(at, "must be a positive number of seconds, got %d", n)
	}
}

// dependsOnCycle returns one cycle of the dependsOn graph (first node repeated at the end), or nil.
func dependsOnCycle(ks map[string]Kustomization) []string {
	return depgraph.Cycle(sortedKeys(ks), func(n string) []string {
		var deps []string
		for _, d := range ks[n].DependsOn {
			if d != n { // a self-dependency is reported on its own, as "not another kustomization"
				deps = append(deps, d)
			}
		}
		return deps
	})
}

type validator struct {
	file     string
	pos      specyaml.Positions
	problems []Problem
}

func (v *validator) add(line int, field, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addAt names the line of field, or of its closest decoded parent.
func (v *validator) addAt(field, format string, args ...any) {
	line := 0
	for f := field; f != ""; {
		if l, ok := v.pos[f]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	v.add(line, field, format, args...)
}

func (v *validator) hardwareErr(err error) {
	var se *hardware.SpecError
	if errors.As(err, &se) {
		v.problems = append(v.problems, Problem{File: se.File, Line: se.Line, Field: se.Field, Msg: se.Msg})
		return
	}
	v.addAt("spec.hardware", "%v", err)
}

func (v *validator) checkDir(field, dir string) {
	st, err := os.Stat(dir)
	if err != nil {
		v.addAt(field, "folder %s does not exist; give a path relative to the spec", dir)
		return
	}
	if !st.IsDir() {
		v.addAt(field, "%s is a file, not a folder", dir)
	}
}

func (v *validator) result() error {
	if len(v.problems) == 0 {
		return nil
	}
	sort.SliceStable(v.problems, func(i, j int) bool {
		a, b := v.problems[i], v.problems[j]
		if a.File != b.File {
			return a.File == v.file // this spec's problems first, then the hardware files'
		}
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		return a.Line < b.Line
	})
	return &SpecErrors{Problems: v.problems}
}

// sortedKeys are a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

var ociDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) // Flux OCIRepository spec.ref.digest; fakes/arc checks the same

// checkOCI validates a configuration's oci block and returns the folder its kustomization paths must exist
// in (the artifact's folder when the source is a tag of spec.artifacts, else "") and the source's name for
// messages.
func (v *validator) checkOCI(at string, g GitOpsConfig, artifacts map[string]map[string]string) (root, source string) {
	o := g.OCI
	oat := at + ".oci"
	if g.Ref != (RepositoryRef{}) {
		v.addAt(at+".ref", "is for Git sources; for an oci source set oci.tag, oci.semver or oci.digest")
	}
	var set []string
	for _, f := range []struct{ name, v string }{{"tag", o.Tag}, {"semver", o.Semver}, {"digest", o.Digest}} {
		if f.v != "" {
			set = append(set, f.name)
		}
	}
	if len(set) > 1 {
		// Azure gives digest precedence over semver over tag and drops the rest silently; the Arc fake
		// refuses the combination, and so does the spec, before anything starts.
		v.addAt(oat, "sets %s: set only one of tag, semver or digest", strings.Join(set, " and "))
	}
	if o.Tag != "" && !imageTag.MatchString(o.Tag) {
		v.addAt(oat+".tag", "%q is not a tag (letters, digits, '_', '.', '-'; at most 128)", o.Tag)
	}
	if o.Digest != "" && !ociDigest.MatchString(o.Digest) {
		v.addAt(oat+".digest", "%q must be sha256: followed by 64 lower-case hex digits", o.Digest)
	}
	switch {
	case o.Repository == "" && o.URL == "":
		v.addAt(oat, "name the artifact: repository (one of spec.artifacts, in the twin's registry) or url (oci://host/repository)")
		return "", "the OCI artifact"
	case o.Repository != "" && o.URL != "":
		v.addAt(oat, "gives both repository and url; keep one (repository for the twin's registry)")
		return "", "the OCI artifact"
	case o.URL != "":
		rest, ok := strings.CutPrefix(o.URL, "oci://")
		host, repo, _ := strings.Cut(rest, "/")
		switch {
		case !ok:
			v.addAt(oat+".url", "%q must start with oci://, e.g. oci://registry.example/manifests/platform", o.URL)
		case host == "" || repo == "" || !imageRepo.MatchString(repo):
			v.addAt(oat+".url", "%q must name a registry host and a lower-case repository path without tag or digest, e.g. oci://registry.example/manifests/platform; put the tag in oci.tag", o.URL)
		}
		return "", fmt.Sprintf("artifact %s", o.URL)
	}
	if o.Insecure {
		v.addAt(oat+".insecure", "is for url; a repository of spec.artifacts is always pulled over the twin registry's plain HTTP")
	}
	tags, ok := artifacts[o.Repository]
	if !ok {
		v.addAt(oat+".repository", "%q is not a repository of spec.artifacts (have: %s); add an artifact (repository, tag, path) or fix the name", o.Repository, strings.Join(sortedKeys(artifacts), ", "))
		return "", fmt.Sprintf("artifact %q", o.Repository)
	}
	if len(set) != 0 && o.Tag == "" {
		return "", fmt.Sprintf("artifact %q", o.Repository) // semver or digest: resolved by Flux at run time
	}
	tag := o.Tag
	if tag == "" {
		tag = DefaultOCITag
	}
	dir, has := tags[tag]
	if !has {
		field := oat + ".tag"
		if o.Tag == "" {
			field = oat
		}
		v.addAt(field, "tag %q of %q is not in spec.artifacts (have: %s); the registry would not have it", tag, o.Repository, strings.Join(sortedKeys(tags), ", "))
		return "", fmt.Sprintf("artifact %q", o.Repository)
	}
	return dir, fmt.Sprintf("artifact %s:%s", o.Repository, tag)
}
