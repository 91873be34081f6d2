package build

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// kustomize keeps its OpenAPI schema in package globals. fluxcd/pkg/kustomize therefore serializes
// every build and resets and re-parses the embedded schema before each one, so a kustomization's
// `openapi:` field cannot leak into the next build (kubernetes-sigs/kustomize#3659). Measured here, that
// re-parse is ~0.2 s of CPU per build -- the dominant cost of a one-ConfigMap Kustomization and the
// reason 500 Kustomizations take minutes under Flux (RECIPES.md "Real Flux outside a cluster").
//
// This package keeps the isolation and pays for it only where needed. The schema globals are written
// only by a kustomization that sets `openapi:` (kyaml openapi.SetSchema); every other build only reads
// them after a one-time, lock-protected initialization. So builds from an artifact in which no
// kustomization file sets `openapi:` run concurrently (shared lock), and a build from an artifact that
// does runs alone (exclusive lock), after which the schema is reset before the next build.
var (
	buildMu     sync.RWMutex
	dirtyMu     sync.Mutex
	schemaDirty bool
	safeRoots   sync.Map // artifact root -> bool (no kustomization sets openapi:)
	builtin     string   // openapi.GetSchemaVersion() with the built-in schema
	openapiKey  = regexp.MustCompile(`(?m)^openapi\s*:`)
)

func init() {
	openapi.ResetOpenAPI()
	_ = openapi.Schema() // initialize once, before any concurrent build reads it
	builtin = openapi.GetSchemaVersion()
}

// customSchemaFree reports whether no kustomization file under root sets `openapi:`. Artifacts are
// immutable, so the answer is cached per root.
func customSchemaFree(root string) bool {
	if v, ok := safeRoots.Load(root); ok {
		return v.(bool)
	}
	names := map[string]bool{}
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		names[n] = true
	}
	free := true
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !names[d.Name()] {
			return nil
		}
		if b, err := os.ReadFile(p); err != nil || openapiKey.Match(b) {
			free = false
			return filepath.SkipAll
		}
		return nil
	})
	safeRoots.Store(root, free)
	return free
}

// lockFor takes the build lock for an artifact root and returns its release: shared when the artifact
// cannot change the schema, exclusive (with a schema reset before and, if it changed, after) when it can.
func lockFor(root string) func() {
	dirtyMu.Lock()
	dirty := schemaDirty
	dirtyMu.Unlock()
	if customSchemaFree(root) && !dirty {
		buildMu.RLock()
		return buildMu.RUnlock
	}
	buildMu.Lock()
	dirtyMu.Lock()
	if schemaDirty {
		openapi.ResetOpenAPI()
		_ = openapi.Schema()
		schemaDirty = false
	}
	dirtyMu.Unlock()
	return func() {
		if openapi.GetSchemaVersion() != builtin {
			dirtyMu.Lock()
			schemaDirty = true
			dirtyMu.Unlock()
		}
		buildMu.Unlock()
	}
}

// kustomizeBuild runs krusty with kustomize-controller's options: no load restrictions (files outside
// the kustomization directory but inside the artifact root; the filesystem enforces the root), and only
// built-in plugins.
func kustomizeBuild(root string, fs filesys.FileSystem, dirPath string) (m resmap.ResMap, err error) {
	defer lockFor(root)()
	// Kustomize panics on some malformed input; report it as a build error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered from kustomize build panic: %v", r)
		}
	}()
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	return k.Run(fs, dirPath)
}

// locked runs f under the build lock for root (the generator parses YAML with kustomize's factories,
// which read the same globals).
func locked[T any](root string, f func() (T, error)) (T, error) {
	defer lockFor(root)()
	return f()
}
