package fluxcrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

// FieldManager is the field manager the CRDs are server-side applied with: the twin owns them.
const FieldManager = "hybridtwin"

// healthPoll is how often Install asks a CRD's Established condition; the API server establishes a CRD
// within a second on these machines (RECIPES.md: Flux's CRDs applied and established at start-up).
const healthPoll = 250 * time.Millisecond

// Tools are the pinned Flux controllers whose CRDs every cluster gets: source-controller and
// kustomize-controller as tools/toolcache/pins.go pins them, and helm-controller, notification-controller
// and the image controllers of the same Flux release (CRDsOnly).
var Tools = append([]toolcache.Tool{toolcache.SourceController, toolcache.KustomizeController, toolcache.HelmController}, CRDsOnly...)

// CRDsOnly are Flux controllers the twin takes only the CRDs of, so a cluster serves every kind of the
// Flux release (Alert, Provider, Receiver, ImageRepository, ImagePolicy, ImageUpdateAutomation; the
// HelmRelease CRD comes from the helm-controller pin, toolcache.HelmController) and kubectl, the flux CLI and the twin's engine find them whichever engine runs.
// No binary is built for them: tools/toolcache has no pin or wrapper module for them yet, so each names
// its module by an exact version ("module@version"), which `go list -m` and `go mod download` resolve
// from any wrapper module (flux-source's is used) without a require.
//
// Versions: Flux v2.9.5 (toolcache.FluxCLI; its manifests/bases) pins notification-controller v1.9.4 and
// image-reflector/automation-controller v1.2.5. The module proxy refuses those three; their previous
// patches, v1.9.3 and v1.2.4 (RECIPES.md "More of Flux"), are taken instead: the CRDs of a patch release
// do not change.
var CRDsOnly = []toolcache.Tool{
	crdsOnly("notification-controller", "v1.9.3"),
	crdsOnly("image-reflector-controller", "v1.2.4"),
	crdsOnly("image-automation-controller", "v1.2.4"),
}

func crdsOnly(name, version string) toolcache.Tool {
	return toolcache.Tool{
		Name:        name,
		Version:     version,
		Module:      toolcache.SourceController.Module,
		AssetModule: "github.com/fluxcd/" + name + "@" + version,
		Assets:      []string{"config/crd/bases"},
		Optional:    true,
	}
}

// Dirs returns the CRD folders of Tools in the cache, copying them from the pinned modules if needed
// (no controller is built; a nil cache means toolcache.New()).
func Dirs(ctx context.Context, cache *toolcache.Cache) ([]string, error) {
	if cache == nil {
		var err error
		if cache, err = toolcache.New(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCRD, err)
		}
	}
	var dirs []string
	for _, t := range Tools {
		dir, err := cache.EnsureAssets(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("%w of %s: %v", ErrCRD, t, err)
		}
		dirs = append(dirs, filepath.Join(dir, "config", "crd", "bases"))
	}
	return dirs, nil
}

// Install reads the CRDs of dirs (Dirs when dirs is nil) and server-side applies them to the cluster
// at cfg, waiting until each is Established; it returns how many it installed. Applying again is a
// no-op, not a conflict.
func Install(ctx context.Context, cfg *rest.Config, cache *toolcache.Cache, dirs []string) (int, error) {
	if dirs == nil {
		var err error
		if dirs, err = Dirs(ctx, cache); err != nil {
			return 0, err
		}
	}
	crds, err := Read(dirs)
	if err != nil {
		return 0, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("%w: client for %s: %v", ErrCRD, cfg.Host, err)
	}
	if err := Apply(ctx, dyn, crds); err != nil {
		return 0, err
	}
	return len(crds), nil
}

// ErrCRD is wrapped when Flux's CRDs cannot be read, applied or do not become Established.
var ErrCRD = errors.New("flux CRDs")

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Read reads every CustomResourceDefinition in the *.yaml files of dirs, sorted by file name.
func Read(dirs []string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("%w: list %s: %v", ErrCRD, dir, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: %s holds no *.yaml files; the tool cache's copy is damaged: remove it and run again", ErrCRD, dir)
		}
		sort.Strings(files)
		for _, f := range files {
			objs, err := decodeFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

func decodeFile(path string) ([]*unstructured.Unstructured, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCRD, err)
	}
	defer fh.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(fh, 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%w: %s, document %d: %v", ErrCRD, path, i+1, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() != "CustomResourceDefinition" || u.GetName() == "" {
			return nil, fmt.Errorf("%w: %s, document %d: kind %q name %q is not a named CustomResourceDefinition",
				ErrCRD, path, i+1, u.GetKind(), u.GetName())
		}
		out = append(out, u)
	}
}

// Apply server-side applies the CRDs (field manager hybridtwin, forced: the twin owns them) and
// waits until every one is Established.
func Apply(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
	for _, crd := range crds {
		data, err := crd.MarshalJSON()
		if err != nil {
			return fmt.Errorf("%w: encode %s: %v", ErrCRD, crd.GetName(), err)
		}
		force := true
		if _, err := dyn.Resource(crdGVR).Patch(ctx, crd.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return fmt.Errorf("%w: server-side apply %s: %v", ErrCRD, crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		name := crd.GetName()
		var last string
		err := wait.PollUntilContextCancel(ctx, healthPoll, true, func(ctx context.Context) (bool, error) {
			got, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				last = "not found"
				return false, nil
			}
			if err != nil {
				last = err.Error()
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" {
					last = fmt.Sprintf("Established=%v: %v", cm["status"], cm["message"])
					return cm["status"] == "True", nil
				}
			}
			last = "no Established condition yet"
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("%w: %s did not become Established (%s): %v", ErrCRD, name, strings.TrimSpace(last), err)
		}
	}
	return nil
}
