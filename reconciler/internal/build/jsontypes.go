package build

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/yaml"
)

// object returns a built resource as unstructured content with the value types JSON decoding gives
// (string, bool, nil, int64, float64, map[string]any, []any) -- what kustomize-controller gets when it
// reads the build's YAML back (fluxcd/pkg/ssa/utils ReadObjects: YAML to JSON to unstructured).
// kustomize's own Map() decodes YAML directly and yields int, uint64, time.Time (an unquoted date) and
// maps with non-string keys, which unstructured's DeepCopy panics on and which do not match what the
// API server returns. The common types are converted in place; anything else takes Flux's route.
func object(r *resource.Resource) (*unstructured.Unstructured, error) {
	m, err := r.Map()
	if err != nil {
		return nil, err
	}
	// apiVersion, kind and metadata.name must be strings: kustomize accepts `apiVersion: 0` (found by
	// FuzzBuildManifests), which no API server would. Refuse it here, naming the object.
	meta, _ := m["metadata"].(map[string]any)
	for i, v := range []any{m["apiVersion"], m["kind"], meta["name"]} {
		if s, ok := v.(string); !ok || s == "" {
			return nil, fmt.Errorf("object %s: %s is %v, not a string; quote it in the manifest", r.CurId(), []string{"apiVersion", "kind", "metadata.name"}[i], v)
		}
	}
	if v, ok := jsonValue(m); ok {
		return &unstructured.Unstructured{Object: v.(map[string]any)}, nil
	}
	y, err := r.AsYAML()
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, fmt.Errorf("decode built object: %w", err)
	}
	return u, nil
}

// maxExactJSONInt bounds the floats encoding/json writes without an exponent (it switches to 1e+21
// notation at 1e21); such a whole float reads back as int64 when it fits.
const maxExactJSONInt = 1e21

// jsonValue converts v in place where it can; ok is false for a type it does not handle.
func jsonValue(v any) (any, bool) {
	switch t := v.(type) {
	case nil, string, bool, int64:
		return v, true
	case int:
		return int64(t), true
	case float64:
		// apimachinery's JSON decoding reads a number written without a fraction or exponent as int64.
		if t == math.Trunc(t) && math.Abs(t) < maxExactJSONInt && t >= math.MinInt64 && t <= math.MaxInt64 {
			return int64(t), true
		}
		return t, true
	case map[string]any:
		for k, e := range t {
			c, ok := jsonValue(e)
			if !ok {
				return nil, false
			}
			t[k] = c
		}
		return t, true
	case []any:
		for i, e := range t {
			c, ok := jsonValue(e)
			if !ok {
				return nil, false
			}
			t[i] = c
		}
		return t, true
	}
	return nil, false
}
