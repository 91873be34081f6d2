package layout

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
)

// SourceRef names a Flux source object: Kind/namespace/name.
type SourceRef struct {
	Kind, Namespace, Name string
}

func (s SourceRef) String() string { return s.Kind + "/" + s.Namespace + "/" + s.Name }

// LocalSource maps a Flux source the layout references to a local directory, as `flux build
// --local-sources` does: the Kustomizations of that source are built from Dir instead of being reported
// as not resolvable offline. Kind and Namespace may be empty (any kind, any namespace).
type LocalSource struct {
	Kind, Namespace, Name string
	Dir                   string
}

// ParseLocalSource reads --source's value: NAME=DIR, NAMESPACE/NAME=DIR or KIND/NAMESPACE/NAME=DIR
// (GitRepository/flux-system/podinfo=./podinfo, the shape of flux build --local-sources).
func ParseLocalSource(s string) (LocalSource, error) {
	ref, dir, ok := strings.Cut(s, "=")
	if !ok || ref == "" || dir == "" {
		return LocalSource{}, fmt.Errorf("%w: --source %q: use NAME=DIR, NAMESPACE/NAME=DIR or KIND/NAMESPACE/NAME=DIR", ErrInput, s)
	}
	parts := strings.Split(ref, "/")
	var ls LocalSource
	switch len(parts) {
	case 1:
		ls.Name = parts[0]
	case 2:
		ls.Namespace, ls.Name = parts[0], parts[1]
	case 3:
		ls.Kind, ls.Namespace, ls.Name = parts[0], parts[1], parts[2]
		if !sourceKinds[ls.Kind] {
			return LocalSource{}, fmt.Errorf("%w: --source %q: kind %q is not a Flux source a Kustomization can use (%s)", ErrInput, s, ls.Kind, strings.Join(sortedKeys(sourceKinds), ", "))
		}
	default:
		return LocalSource{}, fmt.Errorf("%w: --source %q: use NAME=DIR, NAMESPACE/NAME=DIR or KIND/NAMESPACE/NAME=DIR", ErrInput, s)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return LocalSource{}, fmt.Errorf("%w: --source %q: %s is not a directory", ErrInput, s, dir)
	}
	ls.Dir = dir
	return ls, nil
}

func (l LocalSource) matches(s SourceRef) bool {
	return l.Name == s.Name && (l.Namespace == "" || l.Namespace == s.Namespace) && (l.Kind == "" || l.Kind == s.Kind)
}

// sourceKinds are the kinds a Flux Kustomization's spec.sourceRef may name (kustomize-controller v1.9
// CRD: sourceRef.kind enum OCIRepository, GitRepository, Bucket, ExternalArtifact).
var sourceKinds = map[string]bool{"GitRepository": true, "OCIRepository": true, "Bucket": true, "ExternalArtifact": true}

// artifactTree writes the part of dir source-controller would put in an artifact into a new directory
// under tmp: the repository minus source-controller's default exclusions (fluxcd/pkg/sourceignore:
// VCS files, CI folders such as .github/, images and archives, .sops.yaml, .flux.yaml), minus every
// .sourceignore pattern (each file scoped to its folder), minus the source's spec.ignore -- the filter
// source-controller applies when it archives a GitRepository (controller gitrepository_controller.go:
// LoadIgnorePatterns, then spec.ignore, then NewDefaultMatcher).
func artifactTree(dir, tmp, ignore string) (string, error) {
	ps, err := sourceignore.LoadIgnorePatterns(dir, nil)
	if err != nil {
		return "", fmt.Errorf("read .sourceignore files of %s: %w", dir, err)
	}
	if ignore != "" {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(ignore), nil)...)
	}
	m := sourceignore.NewDefaultMatcher(ps, nil)
	out, err := os.MkdirTemp(tmp, "artifact-")
	if err != nil {
		return "", err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if m.Match(strings.Split(rel, string(filepath.Separator)), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(out, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, 0o644)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("copy %s as source-controller would archive it: %w", dir, err)
	}
	return out, nil
}

// copyOp is one spec.artifacts[].copy entry of an ArtifactGenerator (source.extensions.fluxcd.io/
// v1beta1, Flux 2.7's source-watcher).
type copyOp struct {
	from, to string
	exclude  []string
}

// generateArtifact writes an ArtifactGenerator output artifact into a new directory under tmp from
// the artifact trees of its sources (alias -> directory): each copy's from "@alias/glob" selects files
// (** spans folders); a to ending in "/" (or a glob from) receives them below it, keeping their path
// under the glob's fixed prefix; otherwise the one matched file is written as to.
func generateArtifact(tmp string, roots map[string]string, ops []copyOp) (string, error) {
	out, err := os.MkdirTemp(tmp, "external-artifact-")
	if err != nil {
		return "", err
	}
	for _, op := range ops {
		alias, pattern, ok := strings.Cut(strings.TrimPrefix(op.from, "@"), "/")
		if !strings.HasPrefix(op.from, "@") || !ok {
			return "", fmt.Errorf("copy from %q: want @alias/path", op.from)
		}
		root, ok := roots[alias]
		if !ok {
			return "", fmt.Errorf("copy from %q: no source with alias %q", op.from, alias)
		}
		to := strings.TrimPrefix(strings.TrimPrefix(op.to, "@artifact"), "/")
		base := fixedPrefix(pattern)
		glob := strings.ContainsAny(pattern, "*?[")
		var files []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel := filepath.ToSlash(mustRel(root, p))
			if !globMatch(pattern, rel) {
				return nil
			}
			for _, ex := range op.exclude {
				if globMatch(ex, rel) || globMatch(ex, path.Base(rel)) {
					return nil
				}
			}
			files = append(files, rel)
			return nil
		})
		if err != nil {
			return "", err
		}
		if len(files) == 0 {
			return "", fmt.Errorf("copy from %q matches no file", op.from)
		}
		sort.Strings(files)
		for _, f := range files {
			var dst string
			if glob || strings.HasSuffix(op.to, "/") || len(files) > 1 {
				r := strings.TrimPrefix(strings.TrimPrefix(f, base), "/")
				if !glob {
					r = path.Base(f)
				}
				dst = path.Join(to, r)
			} else {
				dst = to
			}
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
			if err != nil {
				return "", err
			}
			full := filepath.Join(out, filepath.FromSlash(dst))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(full, data, 0o644); err != nil {
				return "", err
			}
		}
	}
	return out, nil
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// fixedPrefix is the folder part of a glob before its first wildcard segment.
func fixedPrefix(pattern string) string {
	segs := strings.Split(pattern, "/")
	var fixed []string
	for _, s := range segs[:len(segs)-1] {
		if strings.ContainsAny(s, "*?[") {
			break
		}
		fixed = append(fixed, s)
	}
	return strings.Join(fixed, "/")
}

// globMatch matches a slash-separated path against a glob where ** spans any number of folders.
func globMatch(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(ps, ns []string) bool {
	for len(ps) > 0 {
		if ps[0] == "**" {
			for i := 0; i <= len(ns); i++ {
				if matchSegs(ps[1:], ns[i:]) {
					return true
				}
			}
			return false
		}
		if len(ns) == 0 {
			return false
		}
		if ok, _ := path.Match(ps[0], ns[0]); !ok {
			return false
		}
		ps, ns = ps[1:], ns[1:]
	}
	return len(ns) == 0
}
