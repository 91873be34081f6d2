package gitserver

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// LayoutFile is the file in a layout folder that describes it (examples/repos/<layout>/layout.yaml).
const LayoutFile = "layout.yaml"

// PlaceholderRegistry is the registry host the example manifests name images under; RegistryRewrite
// replaces it with the twin's registry as Seed pushes them.
const PlaceholderRegistry = "registry.twin.local"

// Layout is a GitOps repository structure: which repositories, which folder becomes which branch, the images
// the manifests name and the GitOps configurations that deploy each environment.
type Layout struct {
	APIVersion     string          `json:"apiVersion"`
	Kind           string          `json:"kind"`
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	Repositories   []LayoutRepo    `json:"repositories"`
	Images         []string        `json:"images"`
	Configurations []Configuration `json:"configurations"`

	// Dir is the folder the layout was loaded from (not in the file).
	Dir string `json:"-"`
}

// LayoutRepo is one repository of a layout.
type LayoutRepo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Layers are the configuration layers the repository holds; persona access follows from them.
	Layers []Layer `json:"layers"`
	// DefaultBranch is the branch clones check out; the first branch when empty.
	DefaultBranch string         `json:"defaultBranch"`
	Branches      []LayoutBranch `json:"branches"`
}

// LayoutBranch says which folder (relative to the layout folder) is the whole content of a branch.
type LayoutBranch struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Configuration is a GitOps configuration in the shape of an Azure Arc fluxConfiguration: one source (a
// repository and branch) and kustomizations, at cluster or namespace scope.
type Configuration struct {
	Environment    string              `json:"environment"`
	Name           string              `json:"name"`
	Scope          string              `json:"scope"` // "cluster" or "namespace"
	Namespace      string              `json:"namespace,omitempty"`
	Repository     string              `json:"repository"`
	Branch         string              `json:"branch"`
	Kustomizations []KustomizationSpec `json:"kustomizations"`
}

// KustomizationSpec is one kustomization of a configuration: a path in the repository, built with
// kustomize and applied.
type KustomizationSpec struct {
	Name      string   `json:"name"`
	Path      string   `json:"path"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

// Repository returns the layout's repository by name.
func (l *Layout) Repository(name string) (LayoutRepo, bool) {
	for _, r := range l.Repositories {
		if r.Name == name {
			return r, true
		}
	}
	return LayoutRepo{}, false
}

// BranchDir is the local folder holding a repository branch's content.
func (l *Layout) BranchDir(repo, branch string) (string, bool) {
	r, ok := l.Repository(repo)
	if !ok {
		return "", false
	}
	for _, b := range r.Branches {
		if b.Name == branch {
			return filepath.Join(l.Dir, filepath.FromSlash(b.Path)), true
		}
	}
	return "", false
}

// LoadLayout reads dir/layout.yaml strictly and checks it: unknown fields, missing folders, configurations
// that name unknown repositories or branches, and paths that leave the repository are errors naming the
// file and field.
func LoadLayout(dir string) (*Layout, error) {
	file := filepath.Join(dir, LayoutFile)
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("gitserver: read layout %s: %w: %w; a layout folder holds a %s", file, ErrInvalidOptions, err, LayoutFile)
	}
	var l Layout
	if err := yaml.UnmarshalStrict(b, &l); err != nil {
		return nil, fmt.Errorf("gitserver: parse layout %s: %w: %w", file, ErrInvalidOptions, err)
	}
	l.Dir = dir
	if err := l.validate(file); err != nil {
		return nil, err
	}
	return &l, nil
}

func (l *Layout) validate(file string) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("gitserver: layout %s: %s: %s: %w", file, field, fmt.Sprintf(format, args...), ErrInvalidOptions)
	}
	if l.APIVersion != "hybridtwin.io/v1alpha1" || l.Kind != "RepoLayout" {
		return bad("apiVersion/kind", "got %q/%q; want hybridtwin.io/v1alpha1/RepoLayout", l.APIVersion, l.Kind)
	}
	if l.Name == "" {
		return bad("name", "empty; name the layout")
	}
	if len(l.Repositories) == 0 {
		return bad("repositories", "empty; list at least one repository")
	}
	seen := map[string]bool{}
	for i, r := range l.Repositories {
		f := fmt.Sprintf("repositories[%d]", i)
		if !nameRE.MatchString(r.Name) {
			return bad(f+".name", "%q is not a repository name ([A-Za-z0-9_.-])", r.Name)
		}
		if seen[r.Name] {
			return bad(f+".name", "%q appears twice", r.Name)
		}
		seen[r.Name] = true
		if err := validateLayers(r.Layers); err != nil {
			return bad(f+".layers", "%v", err)
		}
		if len(r.Branches) == 0 {
			return bad(f+".branches", "empty; map at least one folder to a branch")
		}
		branches := map[string]bool{}
		for j, br := range r.Branches {
			bf := fmt.Sprintf("%s.branches[%d]", f, j)
			if br.Name == "" || strings.ContainsAny(br.Name, " ~^:?*[\\") || branches[br.Name] {
				return bad(bf+".name", "%q is empty, not a valid branch name, or repeated", br.Name)
			}
			branches[br.Name] = true
			if err := inside(br.Path); err != nil {
				return bad(bf+".path", "%v", err)
			}
			if fi, err := os.Stat(filepath.Join(l.Dir, filepath.FromSlash(br.Path))); err != nil || !fi.IsDir() {
				return bad(bf+".path", "folder %s does not exist under %s", br.Path, l.Dir)
			}
		}
		if r.DefaultBranch != "" && !branches[r.DefaultBranch] {
			return bad(f+".defaultBranch", "%q is not one of the repository's branches", r.DefaultBranch)
		}
	}
	for i, img := range l.Images {
		name, tag, ok := strings.Cut(img, ":")
		if !ok || name == "" || tag == "" || strings.Contains(name, PlaceholderRegistry) {
			return bad(fmt.Sprintf("images[%d]", i), "%q; write repository:tag without the registry host", img)
		}
	}
	for i, c := range l.Configurations {
		f := fmt.Sprintf("configurations[%d]", i)
		if c.Environment == "" || c.Name == "" {
			return bad(f, "environment and name must be set")
		}
		switch c.Scope {
		case "cluster":
			if c.Namespace != "" {
				return bad(f+".namespace", "set on a cluster-scoped configuration; remove it or use scope namespace")
			}
		case "namespace":
			if c.Namespace == "" {
				return bad(f+".namespace", "empty; a namespace-scoped configuration names its namespace")
			}
		default:
			return bad(f+".scope", "%q; use cluster or namespace", c.Scope)
		}
		if _, ok := l.BranchDir(c.Repository, c.Branch); !ok {
			return bad(f, "repository %q branch %q is not in repositories", c.Repository, c.Branch)
		}
		if len(c.Kustomizations) == 0 {
			return bad(f+".kustomizations", "empty")
		}
		names := map[string]bool{}
		for j, k := range c.Kustomizations {
			kf := fmt.Sprintf("%s.kustomizations[%d]", f, j)
			if k.Name == "" || names[k.Name] {
				return bad(kf+".name", "%q is empty or repeated", k.Name)
			}
			names[k.Name] = true
			if err := inside(k.Path); err != nil {
				return bad(kf+".path", "%v", err)
			}
			for _, d := range k.DependsOn {
				if !names[d] {
					return bad(kf+".dependsOn", "%q is not an earlier kustomization of this configuration", d)
				}
			}
		}
	}
	return nil
}

// inside checks that a slash-separated relative path stays inside its root.
func inside(p string) error {
	if p == "" {
		return errors.New("empty; give a folder relative to the layout (or repository)")
	}
	c := path.Clean(strings.TrimPrefix(p, "./"))
	if path.IsAbs(p) || c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q leaves its root; use a relative path inside it", p)
	}
	return nil
}

// KustomizationDir is the local folder a configuration's kustomization builds from.
func (l *Layout) KustomizationDir(c Configuration, k KustomizationSpec) string {
	root, _ := l.BranchDir(c.Repository, c.Branch)
	return filepath.Join(root, filepath.FromSlash(path.Clean(strings.TrimPrefix(k.Path, "./"))))
}

// SeedSpec is the layout as Seed's input: its repositories in org, each with its description, layers,
// default branch (the first branch when the layout names none) and a folder per branch (relative to the
// layout's folder). Set Rewrite (RegistryRewrite), Protect and Webhooks on it as the seeding needs.
func (l *Layout) SeedSpec(org string) SeedSpec {
	spec := SeedSpec{Org: org, Root: l.Dir}
	for _, lr := range l.Repositories {
		r := SeedRepo{Name: lr.Name, Description: lr.Description, Layers: lr.Layers, DefaultBranch: lr.DefaultBranch,
			Branches: map[string]string{}}
		if r.DefaultBranch == "" {
			r.DefaultBranch = lr.Branches[0].Name
		}
		for _, b := range lr.Branches {
			r.Branches[b.Name] = b.Path
		}
		spec.Repos = append(spec.Repos, r)
	}
	return spec
}
