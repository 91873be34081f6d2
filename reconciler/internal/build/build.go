package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/fluxcd/pkg/kustomize"
	fluxfs "github.com/fluxcd/pkg/kustomize/filesys"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// originAnnotation is where kustomize records the file an object came from when the kustomization
// asks for buildMetadata [originAnnotations] (kustomize api internal/utils OriginAnnotationKey).
const originAnnotation = "config.kubernetes.io/origin"

// Errors callers can test for.
var (
	ErrPathNotFound = errors.New("kustomization path not found")
	ErrBuild        = errors.New("kustomize build failed")
	ErrSubstitute   = errors.New("post build failed")
)

// Input is one build.
type Input struct {
	// Root is the artifact directory (the repository tree); nothing outside it is read.
	Root string
	// Kustomization is the Flux Kustomization as unstructured content: the generator and the variable
	// substitution read spec fields from it, as in kustomize-controller.
	Kustomization map[string]any
	// Strict makes substitution fail on a variable with neither a value nor a default
	// (kustomize-controller --feature-gates=StrictPostBuildSubstitutions).
	Strict bool
	// Decrypt, when set, decrypts what spec.decryption covers; nil builds as a Kustomization without it.
	Decrypt Decryptor
}

// Decryptor decrypts the SOPS-encrypted content of a build, at the two points kustomize-controller's
// internal/decryptor does: Sources before kustomize reads the tree (the files that secretGenerators and
// patches of every kustomization file reached from dir name, replaced by their plain text in fs, which
// is the build's overlay: the artifact is never written), and Resource on each built object before
// post-build substitution. The caller implements it (the reconciler, which holds the keys).
type Decryptor interface {
	Sources(fs filesys.FileSystem, root, dir string) error
	Resource(r *resource.Resource) error
}

// Result is the build output.
type Result struct {
	Objects []*unstructured.Unstructured
	// Origins maps "Kind/namespace/name" (as in Subject) to the file, relative to the repository root,
	// that declared the object; objects from generators map to their kustomization file.
	Origins map[string]string
	// Checksum is the sha256 of the built objects (as JSON) -- a change detector, not Flux's
	// status.history digest (which hashes the YAML).
	Checksum string
}

// Subject is how Origins is keyed: "Kind/namespace/name", or "Kind/name" when cluster-scoped.
func Subject(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

// Build generates, builds and substitutes. kube reads substituteFrom ConfigMaps and Secrets from the
// Kustomization's namespace; it may be nil when the Kustomization has none.
func Build(ctx context.Context, kube client.Client, in Input) (*Result, error) {
	ks := unstructured.Unstructured{Object: in.Kustomization}
	specPath, _, _ := unstructured.NestedString(in.Kustomization, "spec", "path")
	dirPath, err := securejoin.SecureJoin(in.Root, specPath)
	if err != nil {
		return nil, fmt.Errorf("%w: spec.path %q: %v", ErrPathNotFound, specPath, err)
	}
	clean := func(err error) error { return relativize(err, in.Root) }
	// kustomize-controller v1.9.5's message: "kustomization path not found: stat <dir>: no such file or
	// directory" (seen by twin/flux TestCorpusOracle), here with the path relative to the artifact.
	if fi, err := os.Stat(dirPath); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPathNotFound, clean(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrPathNotFound, specPath)
	}
	if err := checkAliases(in.Root, dirPath); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, err)
	}

	type gen struct {
		manifest []byte
		kfile    string
		action   kustomize.Action
	}
	// Origin annotations tell which file each object came from. When the generator writes the
	// kustomization itself, it takes buildMetadata from the Kustomization's spec, so asking for them
	// there saves re-reading and re-writing its output; a kustomization file of the repository's gets
	// them added below, keeping its own buildMetadata.
	generated := !hasKustomizationFile(dirPath)
	genKs := ks
	if generated {
		genKs = withBuildMetadata(ks, kustypes.OriginAnnotations)
	}
	g, err := locked(in.Root, func() (gen, error) {
		m, f, a, err := kustomize.NewGenerator(in.Root, genKs).GenerateManifest(dirPath)
		return gen{m, f, a}, err
	})
	manifest, kfile, action := g.manifest, g.kfile, g.action
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, clean(err))
	}
	userOrigins := false
	if !generated || action != kustomize.CreatedAction {
		var kus kustypes.Kustomization
		if err := yaml.Unmarshal(manifest, &kus); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBuild, relPath(in.Root, kfile), err)
		}
		userOrigins = slices.Contains(kus.BuildMetadata, kustypes.OriginAnnotations)
		if !userOrigins {
			kus.BuildMetadata = append(kus.BuildMetadata, kustypes.OriginAnnotations)
		}
		manifest, err = yaml.Marshal(kus)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBuild, err)
		}
	}
	disk, err := fluxfs.MakeFsOnDiskSecure(in.Root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, err)
	}
	fs := newOverlayFS(disk)
	if err := fs.WriteFile(kfile, manifest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, err)
	}
	if in.Decrypt != nil {
		// kustomize-controller: "error decrypting sources: %w" (internal/controller build).
		if err := in.Decrypt.Sources(fs, in.Root, dirPath); err != nil {
			return nil, fmt.Errorf("error decrypting sources: %w", clean(err))
		}
	}
	resMap, err := kustomizeBuild(in.Root, fs, dirPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, clean(err))
	}

	kfileRel := relPath(in.Root, kfile)
	if action == kustomize.CreatedAction {
		kfileRel = path.Join(filepath.ToSlash(relPath(in.Root, dirPath)), "(generated kustomization.yaml)")
	}
	var subst *unstructured.Unstructured
	if _, ok, _ := unstructured.NestedFieldNoCopy(in.Kustomization, "spec", "postBuild"); ok {
		if subst, err = substitution(ctx, kube, ks); err != nil {
			return nil, err
		}
	}
	always := false
	if s, _, _ := unstructured.NestedString(in.Kustomization, "spec", "postBuild", "substituteStrategy"); s == "Always" {
		always = true
	}

	res := &Result{Origins: map[string]string{}}
	h := sha256.New()
	for _, r := range resMap.Resources() {
		origin := kfileRel
		if o, err := r.GetOrigin(); err == nil && o != nil && o.Path != "" && o.Repo == "" {
			origin = path.Join(filepath.ToSlash(relPath(in.Root, dirPath)), o.Path)
		}
		if !userOrigins {
			ann := r.GetAnnotations()
			delete(ann, originAnnotation)
			if err := r.SetAnnotations(ann); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBuild, origin, err)
			}
		}
		if r.GetName() == "" || r.GetKind() == "" || r.GetApiVersion() == "" {
			return nil, fmt.Errorf("%w: %s: an object lacks apiVersion, kind or metadata.name", ErrBuild, origin)
		}
		if in.Decrypt != nil {
			// kustomize-controller: "decryption failed for '%s/%s': %w" with the kustomize GVK and name.
			if err := in.Decrypt.Resource(r); err != nil {
				return nil, fmt.Errorf("decryption failed for '%s/%s': %w", r.GetGvk(), r.GetName(), err)
			}
		}
		if subst != nil {
			if _, err := kustomize.SubstituteVariables(ctx, nil, *subst, r,
				kustomize.SubstituteWithDryRun(true), kustomize.SubstituteWithStrict(in.Strict),
				kustomize.SubstituteWithAlways(always)); err != nil {
				return nil, fmt.Errorf("%w for '%s' in %s: %v", ErrSubstitute, r.CurId().String(), origin, err)
			}
		}
		u, err := object(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBuild, origin, err)
		}
		if len(u.GetAnnotations()) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		}
		j, err := json.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBuild, origin, err)
		}
		h.Write(j)
		res.Objects = append(res.Objects, u)
		res.Origins[Subject(u)] = origin
	}
	res.Checksum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// substitution loads substituteFrom once per build and returns a Kustomization whose inline
// substitute holds every variable (inline values win over ConfigMap/Secret values, as in
// fluxcd/pkg/kustomize SubstituteVariables), so the per-object substitution needs no API calls.
func substitution(ctx context.Context, kube client.Client, ks unstructured.Unstructured) (*unstructured.Unstructured, error) {
	vars := map[string]string{}
	if from, ok, _ := unstructured.NestedSlice(ks.Object, "spec", "postBuild", "substituteFrom"); ok && len(from) > 0 {
		if kube == nil {
			return nil, fmt.Errorf("%w: spec.postBuild.substituteFrom needs a cluster client", ErrSubstitute)
		}
		loaded, err := kustomize.LoadVariables(ctx, kube, ks)
		if err != nil {
			return nil, fmt.Errorf("%w: spec.postBuild.substituteFrom: %v", ErrSubstitute, err)
		}
		vars = loaded
	}
	inline, _, _ := unstructured.NestedStringMap(ks.Object, "spec", "postBuild", "substitute")
	for k, v := range inline {
		vars[k] = v
	}
	out := ks.DeepCopy()
	unstructured.RemoveNestedField(out.Object, "spec", "postBuild", "substituteFrom")
	m := make(map[string]any, len(vars))
	for k, v := range vars {
		m[k] = v
	}
	if err := unstructured.SetNestedMap(out.Object, m, "spec", "postBuild", "substitute"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSubstitute, err)
	}
	return out, nil
}

// hasKustomizationFile reports whether dir holds a kustomization file (kustomize's recognized names),
// as the generator checks before writing one.
func hasKustomizationFile(dir string) bool {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

// withBuildMetadata returns the Kustomization with spec.buildMetadata set, sharing everything else.
func withBuildMetadata(ks unstructured.Unstructured, opts ...string) unstructured.Unstructured {
	spec, _ := ks.Object["spec"].(map[string]any)
	spec = maps.Clone(spec)
	if spec == nil {
		spec = map[string]any{}
	}
	bm := make([]any, len(opts))
	for i, o := range opts {
		bm[i] = o
	}
	spec["buildMetadata"] = bm
	obj := maps.Clone(ks.Object)
	obj["spec"] = spec
	return unstructured.Unstructured{Object: obj}
}

func relPath(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

// relativize strips the artifact directory from error messages, so they name files as the repository
// does ("apps/bad.yaml", not "/tmp/.../apps/bad.yaml").
type relErr struct {
	msg string
	err error
}

func (e *relErr) Error() string { return e.msg }
func (e *relErr) Unwrap() error { return e.err }

func relativize(err error, root string) error {
	msg := strings.ReplaceAll(err.Error(), root+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, root, ".")
	return &relErr{msg: msg, err: err}
}
