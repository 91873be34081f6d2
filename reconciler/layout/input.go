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
	c := Config{Cluster: cluster, Name: name, Scope: scope, Namespace: namespace, Root: root, File: file}
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

// Discover finds the Flux Kustomizations (kustomize.toolkit.fluxcd.io/*) declared in the repository and
// groups them by cluster: a file under clusters/<name>/ belongs to cluster <name> (Flux's repository
// convention, fluxcd.io "Ways of structuring your repositories"); any other to cluster "default".
// Every discovered configuration is cluster-scoped.
func Discover(root string) ([]Config, error) {
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: repository %q is not a directory", ErrInput, root)
	}
	byCluster := map[string]*Config{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
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
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				// Not parseable here: the build of whichever Kustomization includes it reports it.
				break
			}
			if !strings.HasPrefix(str(obj, "apiVersion"), "kustomize.toolkit.fluxcd.io/") || str(obj, "kind") != "Kustomization" {
				continue
			}
			cluster := "default"
			if parts := strings.Split(rel, "/"); len(parts) > 2 && parts[0] == "clusters" {
				cluster = parts[1]
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
			c := byCluster[cluster]
			if c == nil {
				c = &Config{Cluster: cluster, Name: cluster, Scope: ScopeCluster, Namespace: "flux-system", Root: root}
				byCluster[cluster] = c
			}
			c.Kustomizations = append(c.Kustomizations, Kustomization{Object: obj, File: rel,
				Line: lineOf(p, str(obj, "metadata", "name"), "Kustomization")})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: scan %s for Flux Kustomizations: %v", ErrInput, root, err)
	}
	var out []Config
	for _, k := range sortedKeys(byCluster) {
		out = append(out, *byCluster[k])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s declares no Flux Kustomization (kustomize.toolkit.fluxcd.io/v1); pass the configurations with -f fluxconfigs.yaml or -f twin.yaml", ErrInput, root)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
