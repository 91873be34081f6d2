package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// Scope is a configuration's scope, as Azure Arc fluxConfigurations name it.
type Scope string

// Scopes.
const (
	ScopeCluster   Scope = "cluster"
	ScopeNamespace Scope = "namespace"
)

// Config is one GitOps configuration to validate: a repository tree and the Kustomizations that sync it.
type Config struct {
	// Cluster is the cluster the configuration is applied to; duplicate and dependsOn checks look across
	// the configurations of one cluster.
	Cluster string
	Name    string
	Scope   Scope
	// Namespace holds the configuration's Flux objects; a namespace-scoped configuration may only deploy
	// into it.
	Namespace string
	// Root is the repository directory on disk.
	Root string
	// File and Line are where the configuration was declared (for findings about it).
	File           string
	Line           int
	Kustomizations []Kustomization
	// Self are the Flux sources that are this repository (the bootstrap GitRepository, an Arc
	// configuration's GitRepository): Kustomizations of theirs are built from Root. Empty: the
	// sourceRefs of Kustomizations are taken to be the repository.
	Self []SourceRef
}

// Kustomization is one Flux Kustomization (kustomize.toolkit.fluxcd.io/v1) of a configuration.
type Kustomization struct {
	// Object is the Flux Kustomization: apiVersion, kind, metadata.name/namespace and spec (path,
	// dependsOn, targetNamespace, postBuild, patches, ...), as build.Build reads it.
	Object map[string]any
	File   string
	Line   int
}

// Name and Namespace of the Flux object.
func (k Kustomization) Name() string      { return str(k.Object, "metadata", "name") }
func (k Kustomization) Namespace() string { return str(k.Object, "metadata", "namespace") }

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// FluxConfigFile is the documented input format of `hybridtwin validate -f`: Azure Arc
// fluxConfiguration resources in their ARM REST shape (Microsoft.KubernetesConfiguration/
// fluxConfigurations, api-version 2023-05-01), either one resource per YAML document or an ARM list
// (`value: [...]`), plus one hybridtwin field, `cluster`, naming the connected cluster the resource
// belongs to (in ARM it is the parent of the resource id):
//
//	name: platform
//	cluster: dev                    # optional; default "default"
//	properties:
//	  scope: cluster                # or namespace
//	  namespace: flux-system
//	  sourceKind: GitRepository
//	  gitRepository: {url: https://git.example/platform/gitops-config, repositoryRef: {branch: main}}
//	  kustomizations:
//	    infra: {path: ./infrastructure}
//	    apps:  {path: ./apps, dependsOn: [infra], postBuild: {substitute: {ENV: dev}}}
//
// Each kustomization becomes the Flux Kustomization "<configuration>-<kustomization>" in the
// configuration's namespace, as the Arc agent names it.
type FluxConfigFile struct {
	ID         string         `json:"id,omitempty"`
	Type       string         `json:"type,omitempty"`
	SystemData any            `json:"systemData,omitempty"`
	Name       string         `json:"name"`
	Cluster    string         `json:"cluster"`
	Properties fluxConfigProp `json:"properties"`
}

type fluxConfigProp struct {
	Scope      string `json:"scope"`
	Namespace  string `json:"namespace"`
	SourceKind string `json:"sourceKind"`
	// Read for completeness of the ARM shape; the repository to validate is the PATH argument.
	Suspend                        bool                        `json:"suspend"`
	GitRepository                  any                         `json:"gitRepository"`
	ConfigurationProtectedSettings map[string]string           `json:"configurationProtectedSettings"`
	ReconciliationWaitDuration     string                      `json:"reconciliationWaitDuration"`
	WaitForReconciliation          bool                        `json:"waitForReconciliation"`
	Kustomizations                 map[string]fluxConfigKustom `json:"kustomizations"`
}

type fluxConfigKustom struct {
	Name                   string   `json:"name"`
	Path                   string   `json:"path"`
	SyncIntervalInSeconds  int64    `json:"syncIntervalInSeconds"`
	TimeoutInSeconds       int64    `json:"timeoutInSeconds"`
	RetryIntervalInSeconds int64    `json:"retryIntervalInSeconds"`
	Prune                  bool     `json:"prune"`
	Force                  bool     `json:"force"`
	Wait                   *bool    `json:"wait"`
	DependsOn              []string `json:"dependsOn"`
	PostBuild              *struct {
		Substitute     map[string]string `json:"substitute"`
		SubstituteFrom []struct {
			Kind     string `json:"kind"`
			Name     string `json:"name"`
			Optional bool   `json:"optional"`
		} `json:"substituteFrom"`
	} `json:"postBuild"`
}

// ArcKustomization is one kustomization of an Arc fluxConfiguration, in the configuration's own terms.
type ArcKustomization struct {
	Name       string
	Path       string
	DependsOn  []string
	Substitute map[string]string
	// SubstituteFrom are "Kind/name" references; Optional ones may be absent.
	SubstituteFrom []SubstituteRef
}

// SubstituteRef is a postBuild.substituteFrom entry.
type SubstituteRef struct {
	Kind, Name string
	Optional   bool
}

// FromArc builds a Config from an Arc fluxConfiguration's fields: each kustomization becomes the Flux
// Kustomization "<name>-<kustomization>" in namespace, dependsOn renamed alike (twin/arcagent's naming).
func FromArc(cluster, name string, scope Scope, namespace, root, file string, ks []ArcKustomization) Config {
	if namespace == "" {
		// Arc's default namespace for a fluxConfiguration (az k8s-configuration flux create --namespace
		// default: "default").
		namespace = "default"
	}
	c := Config{Cluster: cluster, Name: name, Scope: scope, Namespace: namespace, Root: root, File: file,
		// The Arc agent creates one GitRepository named after the configuration in its namespace.
		Self: []SourceRef{{Kind: "GitRepository", Namespace: namespace, Name: name}}}
	sort.Slice(ks, func(i, j int) bool { return ks[i].Name < ks[j].Name })
	for _, k := range ks {
		spec := map[string]any{"path": k.Path, "prune": true}
		if len(k.DependsOn) > 0 {
			var deps []any
			for _, d := range k.DependsOn {
				deps = append(deps, map[string]any{"name": name + "-" + d})
			}
			spec["dependsOn"] = deps
		}
		if len(k.Substitute) > 0 || len(k.SubstituteFrom) > 0 {
			pb := map[string]any{}
			if len(k.Substitute) > 0 {
				sub := map[string]any{}
				for kk, v := range k.Substitute {
					sub[kk] = v
				}
				pb["substitute"] = sub
			}
			var from []any
			for _, f := range k.SubstituteFrom {
				from = append(from, map[string]any{"kind": f.Kind, "name": f.Name, "optional": f.Optional})
			}
			if from != nil {
				pb["substituteFrom"] = from
			}
			spec["postBuild"] = pb
		}
		c.Kustomizations = append(c.Kustomizations, Kustomization{
			Object: map[string]any{
				"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
				"metadata": map[string]any{"name": name + "-" + k.Name, "namespace": namespace},
				"spec":     spec,
			},
			File: file,
			Line: lineOf(file, k.Name+":", ""),
		})
	}
	return c
}

// LoadFluxConfigs reads a FluxConfigFile document set; root is the repository every configuration
// syncs.
func LoadFluxConfigs(path, root string) ([]Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read configurations: %v", ErrInput, err)
	}
	var items []FluxConfigFile
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for i := 0; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%w: %s: document %d: %v; fix the YAML", ErrInput, path, i+1, err)
		}
		if raw == nil {
			continue
		}
		var docs []any
		if v, ok := raw["value"].([]any); ok {
			docs = v
		} else {
			docs = []any{raw}
		}
		for _, d := range docs {
			j, _ := sigsyaml.Marshal(d)
			var fc FluxConfigFile
			if err := sigsyaml.UnmarshalStrict(j, &fc); err != nil {
				return nil, fmt.Errorf("%w: %s: document %d: %v; see `go doc reconciler/layout.FluxConfigFile` for the format", ErrInput, path, i+1, err)
			}
			items = append(items, fc)
		}
	}
	var out []Config
	for i, fc := range items {
		at := fmt.Sprintf("%s: configuration %d", path, i+1)
		if fc.Name == "" {
			return nil, fmt.Errorf("%w: %s: name is required", ErrInput, at)
		}
		p := fc.Properties
		scope := Scope(strings.ToLower(p.Scope))
		switch scope {
		case "":
			scope = ScopeCluster
		case ScopeCluster, ScopeNamespace:
		default:
			return nil, fmt.Errorf("%w: %s (%s): properties.scope %q: use cluster or namespace", ErrInput, at, fc.Name, p.Scope)
		}
		if p.SourceKind != "" && p.SourceKind != "GitRepository" {
			return nil, fmt.Errorf("%w: %s (%s): properties.sourceKind %q: only GitRepository sources are validated", ErrInput, at, fc.Name, p.SourceKind)
		}
		if len(p.Kustomizations) == 0 {
			return nil, fmt.Errorf("%w: %s (%s): properties.kustomizations is empty; add at least one {path: ...}", ErrInput, at, fc.Name)
		}
		var ks []ArcKustomization
		for kn, kd := range p.Kustomizations {
			ak := ArcKustomization{Name: kn, Path: kd.Path, DependsOn: kd.DependsOn}
			if kd.PostBuild != nil {
				ak.Substitute = kd.PostBuild.Substitute
				for _, f := range kd.PostBuild.SubstituteFrom {
					ak.SubstituteFrom = append(ak.SubstituteFrom, SubstituteRef{f.Kind, f.Name, f.Optional})
				}
			}
			ks = append(ks, ak)
		}
		cluster := fc.Cluster
		if cluster == "" {
			cluster = "default"
		}
		c := FromArc(cluster, fc.Name, scope, p.Namespace, root, path, ks)
		c.Line = lineOf(path, fc.Name, "")
		out = append(out, c)
	}
	return out, nil
}

// DiscoverOptions pick the entry points of a repository.
type DiscoverOptions struct {
	// Path, when set, is the one entry point: a folder of the repository built as `flux bootstrap`'s
	// flux-system Kustomization builds its cluster folder.
	Path string
	// Cluster, when set, keeps only the entry points of that cluster (with Path: names it).
	Cluster string
}

// Discover finds the entry points of a repository: DiscoverWith without options.
func Discover(root string) ([]Config, error) { return DiscoverWith(root, DiscoverOptions{}) }

// candidate is a Flux Kustomization read from a file of the repository.
type candidate struct {
	obj  map[string]any
	file string // slash-separated, relative to the root
	line int
	path string // spec.path, cleaned, relative to the root ("." for the root)
}

// DiscoverWith finds the entry points of a repository, the Kustomizations Flux starts from, grouped
// by cluster. Validate follows them to everything else their builds apply.
//
// The entry points are the bootstrap Kustomizations of the repository: those that apply the folder
// their own file is in (flux bootstrap's flux-system Kustomization of each cluster folder). In a
// repository without one, they are the Flux Kustomizations (kustomize.toolkit.fluxcd.io/*) of its
// files that no other Kustomization covers (has the file under its spec.path): the Kustomizations of
// each clusters/<name>/ folder, say. A Kustomization whose
// source is not the repository (a tenant's GitRepository) covers nothing here. Files source-controller
// would leave out of the artifact (.sourceignore, its default exclusions) are not read.
//
// An entry point's cluster is its bootstrap folder (spec.path without a leading clusters/), or
// <name> for a file under clusters/<name>/, else "default". Kustomizations without
// metadata.namespace are taken to be in flux-system, where flux bootstrap puts them.
func DiscoverWith(root string, o DiscoverOptions) ([]Config, error) {
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: repository %q is not a directory", ErrInput, root)
	}
	if o.Path != "" {
		return discoverPath(root, o)
	}
	cands, err := scanKustomizations(root)
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: %s declares no Flux Kustomization (kustomize.toolkit.fluxcd.io/v1); pass the configurations with -f fluxconfigs.yaml or -f twin.yaml, or the cluster folder with --path", ErrInput, root)
	}
	// The repository's own source names: those of Kustomizations covering their own file (a
	// bootstrap), and flux bootstrap's flux-system.
	selfNames := map[string]bool{"flux-system": true}
	for _, c := range cands {
		if under(c.file, c.path) && isGitRef(c.obj) {
			selfNames[str(c.obj, "spec", "sourceRef", "name")] = true
		}
	}
	covers := func(b, a candidate) bool {
		return isGitRef(b.obj) && selfNames[str(b.obj, "spec", "sourceRef", "name")] && under(a.file, b.path)
	}
	// A repository that bootstraps clusters declares its entry points: the bootstrap Kustomizations.
	// Everything else is reached, or not, from them.
	var boots []candidate
	for _, c := range cands {
		if under(c.file, c.path) && isGitRef(c.obj) {
			boots = append(boots, c)
		}
	}
	if len(boots) > 0 {
		cands = boots
	}
	var entries []candidate
	for i, a := range cands {
		covered := false
		for j, b := range cands {
			if i != j && covers(b, a) && !(under(b.file, a.path) && covers(a, b) && j > i) {
				covered = true
				break
			}
		}
		if !covered {
			entries = append(entries, a)
		}
	}
	if len(entries) == 0 {
		entries = cands
	}
	byCluster := map[string]*Config{}
	for _, e := range entries {
		cluster := "default"
		switch parts := strings.Split(e.file, "/"); {
		case under(e.file, e.path):
			cluster = clusterName(e.path)
		case len(parts) > 2 && parts[0] == "clusters":
			cluster = parts[1]
		}
		c := byCluster[cluster]
		if c == nil {
			c = &Config{Cluster: cluster, Name: cluster, Scope: ScopeCluster, Namespace: "flux-system", Root: root}
			byCluster[cluster] = c
		}
		if isGitRef(e.obj) && selfNames[str(e.obj, "spec", "sourceRef", "name")] {
			ref := SourceRef{Kind: "GitRepository", Namespace: str(e.obj, "spec", "sourceRef", "namespace"), Name: str(e.obj, "spec", "sourceRef", "name")}
			if ref.Namespace == "" {
				ref.Namespace = str(e.obj, "metadata", "namespace")
			}
			if !containsRef(c.Self, ref) {
				c.Self = append(c.Self, ref)
			}
		}
		c.Kustomizations = append(c.Kustomizations, Kustomization{Object: e.obj, File: e.file, Line: e.line})
	}
	if len(byCluster) > 0 {
		// Every entry without a source of the repository still needs a Self: flux-system.
		for _, c := range byCluster {
			if len(c.Self) == 0 {
				c.Self = []SourceRef{{Kind: "GitRepository", Namespace: "flux-system", Name: "flux-system"}}
			}
		}
	}
	var out []Config
	for _, k := range sortedKeys(byCluster) {
		out = append(out, *byCluster[k])
	}
	if o.Cluster != "" {
		for _, c := range out {
			if c.Cluster == o.Cluster {
				return []Config{c}, nil
			}
		}
		if fi, err := os.Stat(filepath.Join(root, "clusters", o.Cluster)); err == nil && fi.IsDir() {
			return discoverPath(root, DiscoverOptions{Path: "clusters/" + o.Cluster, Cluster: o.Cluster})
		}
		names := sortedKeys(byCluster)
		msg := fmt.Sprintf("--cluster %q: the repository declares no such cluster (it has: %s)", o.Cluster, strings.Join(names, ", "))
		if near := closest(o.Cluster, names); near != "" {
			msg += fmt.Sprintf("; did you mean %s?", near)
		}
		return nil, fmt.Errorf("%w: %s", ErrInput, msg)
	}
	return out, nil
}

// discoverPath makes o.Path the one entry point, as flux bootstrap's flux-system Kustomization.
func discoverPath(root string, o DiscoverOptions) ([]Config, error) {
	p := filepath.ToSlash(filepath.Clean(strings.TrimPrefix(o.Path, "./")))
	if strings.HasPrefix(p, "../") || filepath.IsAbs(o.Path) {
		return nil, fmt.Errorf("%w: --path %q: give a folder of the repository, relative to its root", ErrInput, o.Path)
	}
	if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: --path %q is not a folder of the repository %s", ErrInput, o.Path, root)
	}
	cluster := o.Cluster
	if cluster == "" {
		cluster = clusterName(p)
	}
	obj := map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "flux-system", "namespace": "flux-system"},
		"spec": map[string]any{"path": "./" + p, "prune": true,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "flux-system"}},
	}
	return []Config{{Cluster: cluster, Name: cluster, Scope: ScopeCluster, Namespace: "flux-system", Root: root,
		Self:           []SourceRef{{Kind: "GitRepository", Namespace: "flux-system", Name: "flux-system"}},
		Kustomizations: []Kustomization{{Object: obj, File: p}}}}, nil
}

// scanKustomizations reads every Flux Kustomization of the repository's files, skipping what
// source-controller leaves out of an artifact.
func scanKustomizations(root string) ([]candidate, error) {
	ps, err := sourceignore.LoadIgnorePatterns(root, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: read .sourceignore files of %s: %v", ErrInput, root, err)
	}
	m := sourceignore.NewDefaultMatcher(ps, nil)
	var out []candidate
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && m.Match(strings.Split(rel, string(filepath.Separator)), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte("kustomize.toolkit.fluxcd.io/")) {
			return nil
		}
		rel = filepath.ToSlash(rel)
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				// EOF, or not parseable here: the build of whichever Kustomization includes it reports it.
				break
			}
			if !strings.HasPrefix(str(obj, "apiVersion"), "kustomize.toolkit.fluxcd.io/") || str(obj, "kind") != "Kustomization" {
				continue
			}
			md, _ := obj["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				obj["metadata"] = md
			}
			if str(obj, "metadata", "namespace") == "" {
				// flux bootstrap's namespace; `flux create kustomization` defaults to it too.
				md["namespace"] = "flux-system"
			}
			sp := strings.TrimPrefix(str(obj, "spec", "path"), "./")
			out = append(out, candidate{obj: obj, file: rel, path: filepath.ToSlash(filepath.Clean("./" + sp)),
				line: lineOf(p, str(obj, "metadata", "name"), "Kustomization")})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: scan %s for Flux Kustomizations: %v", ErrInput, root, err)
	}
	return out, nil
}

// under reports whether the slash-separated file lies in folder dir ("." is the root).
func under(file, dir string) bool {
	return dir == "." || strings.HasPrefix(file, dir+"/")
}

// isGitRef: the Kustomization's source is a GitRepository (the kind Flux defaults to).
func isGitRef(obj map[string]any) bool {
	k := str(obj, "spec", "sourceRef", "kind")
	return (k == "" || k == "GitRepository") && str(obj, "spec", "sourceRef", "name") != ""
}

// clusterName names a cluster after its folder: clusters/production is production.
func clusterName(p string) string {
	p = strings.TrimPrefix(strings.Trim(filepath.ToSlash(p), "/"), "./")
	if p == "." || p == "" {
		return "default"
	}
	return strings.TrimPrefix(p, "clusters/")
}

func containsRef(rs []SourceRef, r SourceRef) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
