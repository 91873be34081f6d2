package flux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// ErrCRD is wrapped when Flux's CRDs cannot be read, applied or do not become Established.
var ErrCRD = errors.New("flux CRDs")

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// readCRDs reads every CustomResourceDefinition in the *.yaml files of dirs, sorted by file name.
func readCRDs(dirs []string) ([]*unstructured.Unstructured, error) {
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

// applyCRDs server-side applies the CRDs (field manager hybridtwin, forced: the twin owns them) and
// waits until every one is Established.
func applyCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
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
