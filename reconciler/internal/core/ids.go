package core

import (
	"fmt"
	"strings"
)

// Key names a namespaced object of the reconciler's own API (a Kustomization or a GitRepository).
type Key struct {
	Namespace string
	Name      string
}

// String is "namespace/name", the form Flux prints in its messages.
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Less orders keys by namespace, then name.
func (k Key) Less(o Key) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// ObjID identifies a Kubernetes object the way Flux's inventory does: group, kind, namespace and name.
// The API version is deliberately not part of the identity (a version change is the same object).
type ObjID struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// String is Flux's inventory entry ID, "<namespace>_<name>_<group>_<kind>" (kustomize-controller
// api/v1 ResourceRef.ID; cli-utils ObjMetadata.String escapes ":" in names as "__").
func (o ObjID) String() string {
	return fmt.Sprintf("%s_%s_%s_%s", o.Namespace, strings.ReplaceAll(o.Name, ":", "__"), o.Group, o.Kind)
}

// Subject is the human form used in messages: "Kind/namespace/name", or "Kind/name" when cluster-scoped,
// matching Flux's change-set subjects.
func (o ObjID) Subject() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Less orders IDs by group, kind, namespace, name.
func (o ObjID) Less(p ObjID) bool {
	if o.Group != p.Group {
		return o.Group < p.Group
	}
	if o.Kind != p.Kind {
		return o.Kind < p.Kind
	}
	if o.Namespace != p.Namespace {
		return o.Namespace < p.Namespace
	}
	return o.Name < p.Name
}

// ParseObjID reads Flux's inventory entry ID, "<namespace>_<name>_<group>_<kind>" (the inverse of
// String): namespaces, groups and kinds hold no "_", and a name's ":" is written "__", so the namespace
// ends at the first "_" and the group and kind are the last two fields.
func ParseObjID(s string) (ObjID, error) {
	ns, rest, ok := strings.Cut(s, "_")
	i := strings.LastIndex(rest, "_")
	if !ok || i < 0 {
		return ObjID{}, fmt.Errorf("inventory ID %q is not <namespace>_<name>_<group>_<kind>", s)
	}
	kind, rest := rest[i+1:], rest[:i]
	j := strings.LastIndex(rest, "_")
	if j < 0 || kind == "" {
		return ObjID{}, fmt.Errorf("inventory ID %q is not <namespace>_<name>_<group>_<kind>", s)
	}
	group, name := rest[j+1:], rest[:j]
	if name == "" {
		return ObjID{}, fmt.Errorf("inventory ID %q has no name", s)
	}
	return ObjID{Group: group, Kind: kind, Namespace: ns, Name: strings.ReplaceAll(name, "__", ":")}, nil
}
