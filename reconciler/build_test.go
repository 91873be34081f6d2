package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestBuildAlone: the build step on its own generates a kustomization for a plain directory, applies
// targetNamespace and inline substitution, and refuses substituteFrom (it has no cluster to read).
func TestBuildAlone(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "apps", "one"), 0o755); err != nil {
		t.Fatal(err)
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  size: ${SIZE:=small}\n  env: ${ENV}\n"
	if err := os.WriteFile(filepath.Join(root, "apps", "one", "cm.yaml"), []byte(cm), 0o644); err != nil {
		t.Fatal(err)
	}
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "one", Namespace: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{Path: "./apps/one", TargetNamespace: "team-a",
			PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"ENV": "prod"}}}}
	objs, err := Build(context.Background(), root, ks, DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%d objects, want the one ConfigMap", len(objs))
	}
	data, _, _ := unstructured.NestedStringMap(objs[0].Object, "data")
	if objs[0].GetNamespace() != "team-a" || data["size"] != "small" || data["env"] != "prod" {
		t.Errorf("built %s/%s data %v, want namespace team-a, size=small (default), env=prod", objs[0].GetNamespace(), objs[0].GetName(), data)
	}

	ks.Spec.PostBuild.SubstituteFrom = []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "vars"}}
	if _, err := Build(context.Background(), root, ks, DefaultProfile()); err == nil || !strings.Contains(err.Error(), "substituteFrom") {
		t.Errorf("substituteFrom without a cluster: got %v, want an error naming spec.postBuild.substituteFrom", err)
	}
	ks.Spec.PostBuild.SubstituteFrom = nil
	ks.Spec.Path = "./apps/missing"
	if _, err := Build(context.Background(), root, ks, DefaultProfile()); err == nil || !strings.Contains(err.Error(), "apps/missing") {
		t.Errorf("missing path: got %v, want an error naming the path", err)
	}
}
