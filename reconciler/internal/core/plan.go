package core

import (
	"reflect"
	"slices"
	"strings"
)

// Flux's per-object annotations and labels (kustomize-controller api/v1 and docs "Controlling the apply
// behaviour of resources"); matched case-insensitively on either labels or annotations, as
// fluxcd/pkg/ssa utils.AnyInMetadata does.
const (
	ReconcileKey  = "kustomize.toolkit.fluxcd.io/reconcile" // "disabled": never applied
	SSAKey        = "kustomize.toolkit.fluxcd.io/ssa"       // "Ignore": never applied; "IfNotPresent": only created
	PruneKey      = "kustomize.toolkit.fluxcd.io/prune"     // "disabled": never pruned
	ForceKey      = "kustomize.toolkit.fluxcd.io/force"     // "enabled": recreate on immutable-field change
	DisabledValue = "disabled"
	EnabledValue  = "enabled"
	IgnoreValue   = "Ignore"
	IfNotPresent  = "IfNotPresent"
)

// Action is what the apply plan decided for one object.
type Action string

const (
	// ActionSkip: excluded by an annotation; not applied, not health-checked.
	ActionSkip Action = "skipped"
	// ActionUnchanged: what the cluster holds is what was last applied; no request needed.
	ActionUnchanged Action = "unchanged"
	// ActionCreate: not in the cluster; apply creates it.
	ActionCreate Action = "created"
	// ActionUpdate: in the cluster but different (or not known to match); apply it.
	ActionUpdate Action = "configured"
	// ActionDelete: pruned.
	ActionDelete Action = "deleted"
)

// ObjectState is what the plan needs to know about one object. All maps are unstructured content.
type ObjectState struct {
	Desired map[string]any
	// Live is the object in the cluster, nil when it does not exist.
	Live map[string]any
	// LastApplied is what this reconciler last applied successfully for the object, nil if unknown
	// (first reconcile, or a restart).
	LastApplied map[string]any
	// Ignore are the parsed JSON pointers of the spec.ignore rules that select this object.
	Ignore [][]string
}

// PlanObject decides what to do with one object, with Flux's exclusion rules:
// reconcile=disabled or ssa=Ignore on the desired or the live object skips it; ssa=IfNotPresent on the
// desired object skips it once it exists. An object is unchanged -- and needs no request at all -- only
// when the desired object is exactly what was last applied and the live object still matches it on
// every declared, non-ignored field. Otherwise it is applied: server-side apply is idempotent, so an
// apply that changes nothing leaves the object (and its resourceVersion) as it was.
func PlanObject(s ObjectState) Action {
	if metaHas(s.Desired, ReconcileKey, DisabledValue) || metaHas(s.Live, ReconcileKey, DisabledValue) ||
		metaHas(s.Desired, SSAKey, IgnoreValue) || metaHas(s.Live, SSAKey, IgnoreValue) {
		return ActionSkip
	}
	if s.Live == nil {
		return ActionCreate
	}
	if metaHas(s.Desired, SSAKey, IfNotPresent) {
		return ActionSkip
	}
	if s.LastApplied != nil && reflect.DeepEqual(s.LastApplied, s.Desired) &&
		len(DriftedFields(s.Desired, s.Live, s.Ignore)) == 0 {
		return ActionUnchanged
	}
	return ActionUpdate
}

// PruneDisabled reports whether an in-cluster object opts out of garbage collection.
func PruneDisabled(obj map[string]any) bool { return metaHas(obj, PruneKey, DisabledValue) }

// ReconcileDisabled reports whether an object opts out of being applied and drift-corrected.
func ReconcileDisabled(obj map[string]any) bool {
	return metaHas(obj, ReconcileKey, DisabledValue) || metaHas(obj, SSAKey, IgnoreValue)
}

// ForceEnabled reports whether an object asks to be recreated when an immutable field changes.
func ForceEnabled(obj map[string]any) bool { return metaHas(obj, ForceKey, EnabledValue) }

func metaHas(obj map[string]any, key, value string) bool {
	if obj == nil {
		return false
	}
	md, _ := obj["metadata"].(map[string]any)
	for _, f := range []string{"labels", "annotations"} {
		m, _ := md[f].(map[string]any)
		if v, ok := m[key].(string); ok && v != "" && strings.EqualFold(v, value) {
			return true
		}
	}
	return false
}

// Stale returns the IDs in old that are not in new, sorted: the objects a Kustomization no longer
// declares, which prune deletes (kustomize-controller inventory.Diff). Only a Kustomization's own
// inventory is ever passed in, so prune can never reach an object another Kustomization owns.
func Stale(old, new []ObjID) []ObjID {
	keep := make(map[ObjID]struct{}, len(new))
	for _, id := range new {
		keep[id] = struct{}{}
	}
	var out []ObjID
	for _, id := range old {
		if _, ok := keep[id]; !ok {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b ObjID) int {
		switch {
		case a == b:
			return 0
		case a.Less(b):
			return -1
		default:
			return 1
		}
	})
	return slices.Compact(out)
}

// AdoptIgnored prepares the object to apply when spec.ignore rules select it and it already exists:
// for every ignored path the live value is copied into the payload (so applying does not fight the
// other writer, and keeps this field manager's claim on the field), and a path the live object does
// not have is dropped from the payload (so apply does not re-add it). On create (live == nil) the
// payload is returned unchanged: ignore rules do not apply to creation (Flux: "CreateSkipsIgnore").
func AdoptIgnored(desired, live map[string]any, ignore [][]string) map[string]any {
	if live == nil || len(ignore) == 0 {
		return desired
	}
	out := deepCopyMap(desired)
	for _, p := range ignore {
		if len(p) == 0 {
			continue
		}
		if v, ok := GetPointer(live, p); ok {
			_ = SetPointer(out, p, deepCopyValue(v))
		} else {
			RemovePointer(out, p)
		}
	}
	return out
}
