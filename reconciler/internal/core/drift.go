package core

import (
	"reflect"
	"slices"
	"strconv"
)

// DriftedFields compares the fields a Kustomization declares for one object (desired) against the
// object in the cluster (live) and returns the JSON pointers of the declared fields whose live value
// differs, sorted. Only what desired declares is compared -- fields other managers or the API server
// add are not drift -- and of metadata only labels and annotations count (name, namespace and the
// server-maintained fields cannot drift); status never counts. ignore lists JSON pointers (already
// parsed) that are removed from both sides first, like Flux's spec.ignore rules.
//
// Lists are compared item by item when both sides have the same length (so defaults the server adds
// inside list items are not drift) and as a whole otherwise.
func DriftedFields(desired, live map[string]any, ignore [][]string) []string {
	for _, p := range ignore {
		if len(p) == 0 {
			return nil // the whole object is ignored
		}
	}
	d := pruneForCompare(desired, ignore)
	l := pruneForCompare(live, ignore)
	var out []string
	diffValue(d, l, nil, &out)
	slices.Sort(out)
	return out
}

// pruneForCompare returns a deep copy of obj without status, without metadata other than labels and
// annotations, and without the ignored paths.
func pruneForCompare(obj map[string]any, ignore [][]string) map[string]any {
	if obj == nil {
		return nil
	}
	c := deepCopyMap(obj)
	delete(c, "status")
	if md, ok := c["metadata"].(map[string]any); ok {
		keep := map[string]any{}
		for _, k := range []string{"labels", "annotations"} {
			if v, ok := md[k]; ok {
				keep[k] = v
			}
		}
		c["metadata"] = keep
	}
	for _, p := range ignore {
		RemovePointer(c, p)
	}
	return c
}

func diffValue(d, l any, path []string, out *[]string) {
	switch dv := d.(type) {
	case map[string]any:
		lv, ok := l.(map[string]any)
		if !ok {
			*out = append(*out, FormatPointer(path))
			return
		}
		for k, v := range dv {
			diffValue(v, lv[k], append(slices.Clone(path), k), out)
		}
	case []any:
		lv, ok := l.([]any)
		if !ok || len(lv) != len(dv) {
			*out = append(*out, FormatPointer(path))
			return
		}
		for i := range dv {
			diffValue(dv[i], lv[i], append(slices.Clone(path), strconv.Itoa(i)), out)
		}
	default:
		if !scalarEqual(d, l) {
			*out = append(*out, FormatPointer(path))
		}
	}
}

// scalarEqual compares JSON scalars; numbers compare by value whatever their Go type (int64 from the
// API server, float64 or int from YAML decoding).
func scalarEqual(a, b any) bool {
	if fa, ok := toFloat(a); ok {
		fb, ok := toFloat(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopyMap(t)
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = deepCopyValue(t[i])
		}
		return out
	default:
		return v
	}
}
