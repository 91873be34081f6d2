package reconciler

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestSourceKindsTable: every row of sourceKinds is consistent -- its Go type is the kind of its
// resource's group and version, it is watched in the cluster by source-controller, it refuses nil, and
// its status accessors copy and carry the status -- so a new row cannot be half wired.
func TestSourceKindsTable(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := sourcev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for i, sk := range sourceKinds {
		t.Run(string(sk.kind), func(t *testing.T) {
			gvks, _, err := scheme.ObjectKinds(sk.newObj())
			if err != nil || len(gvks) != 1 {
				t.Fatalf("newObj() is not a type of source.toolkit.fluxcd.io: %v %v", gvks, err)
			}
			if gvks[0].Kind != string(sk.kind) || gvks[0].GroupVersion() != sk.gvr.GroupVersion() {
				t.Errorf("newObj() is %s, the row says %s of %s", gvks[0], sk.kind, sk.gvr.GroupVersion())
			}
			if !strings.HasPrefix(sk.gvr.Resource, strings.TrimSuffix(strings.ToLower(string(sk.kind)), "y")) {
				t.Errorf("resource %q does not name kind %s", sk.gvr.Resource, sk.kind)
			}
			if strings.Contains(sourceKindNames(), string(sk.kind)) != sk.kustomize {
				t.Errorf("sourceKindNames() = %q, kind %s readable by Kustomizations: %v", sourceKindNames(), sk.kind, sk.kustomize)
			}
			if got, ok := sourceKindOf(sk.kind); !ok || got != &sourceKinds[i] {
				t.Errorf("sourceKindOf(%s) does not find its row", sk.kind)
			}
			ck := clusterKindOf(sk.kind)
			if ck.gvr != sk.gvr || ck.component != "source-controller" {
				t.Errorf("clusterKinds row %+v does not match the source row", ck)
			}
			// A nil pointer of the kind's type, as ApplyGitRepository(nil) passes it.
			nilObj := reflect.Zero(reflect.TypeOf(sk.newObj())).Interface().(sourceObject)
			err = sk.validate(nilObj)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nil "+string(sk.kind)) {
				t.Errorf("validate(nil) = %v, want an ErrInvalid naming nil %s", err, sk.kind)
			}

			// status is a copy; carryStatus copies the previous status or clears it.
			prev := sk.newObj()
			*sk.fields(prev).observedGeneration = 7
			st := sk.status(prev)
			*sk.fields(prev).observedGeneration = 8
			if j, _ := json.Marshal(st); !strings.Contains(string(j), `"observedGeneration":7`) {
				t.Errorf("status() is not a copy: %s", j)
			}
			next := sk.newObj()
			*sk.fields(next).observedGeneration = 3
			sk.carryStatus(next, prev)
			if g := *sk.fields(next).observedGeneration; g != 8 {
				t.Errorf("carryStatus(next, prev): observedGeneration %d, want 8", g)
			}
			sk.carryStatus(next, nil)
			if g := *sk.fields(next).observedGeneration; g != 0 {
				t.Errorf("carryStatus(next, nil): observedGeneration %d, want 0", g)
			}
		})
	}
}

func TestOrList(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"GitRepository"}, "GitRepository"},
		{[]string{"GitRepository", "OCIRepository"}, "GitRepository or OCIRepository"},
		{[]string{"GitRepository", "OCIRepository", "Bucket"}, "GitRepository, OCIRepository or Bucket"},
	} {
		if got := orList(tc.names); got != tc.want {
			t.Errorf("orList(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}
