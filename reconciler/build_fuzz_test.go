package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzBuildManifests gives the engine's build step arbitrary Git content: one manifest file of arbitrary
// bytes in a directory without kustomization.yaml (Flux's generator makes one), built with an inline
// substitution, as a Kustomization's reconcile does. It must never panic; a refusal must be an error
// that names the Kustomization; whatever builds must be objects with apiVersion, kind and name. Seeds:
// testdata/fuzz/FuzzBuildManifests and the cases below; `go tool task fuzz` searches further.
func FuzzBuildManifests(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  size: ${SIZE:=small}\n"))
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: apps}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: \"nginx:${TAG}\"}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"))
	f.Add([]byte("kind: ConfigMap\nmetadata: {name: x}\n"))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: *m}\n"))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},\"stringData\":{\"k\":\"${ENV}\"}}"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("\t- ]"))
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Namespace: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{Path: "./apps", TargetNamespace: "team-a",
			PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"ENV": "prod", "TAG": "1.25"}}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "apps"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "apps", "manifests.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := Build(context.Background(), root, ks, DefaultProfile())
		if err != nil {
			if !strings.Contains(err.Error(), "flux-system/fuzz") {
				t.Fatalf("refusal does not name the Kustomization: %v", err)
			}
			return
		}
		for _, o := range objs {
			if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
				t.Fatalf("built an object without apiVersion, kind or name: %v", o.Object)
			}
		}
	})
}
