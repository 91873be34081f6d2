package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func ks(spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "apps", "namespace": "flux-system"}, "spec": spec}
}

const cmA = `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: team
data:
  color: ${COLOR:=blue}
  size: ${SIZE}
`

const cmB = `apiVersion: v1
kind: ConfigMap
metadata:
  name: b
data:
  k: v
`

func TestBuild(t *testing.T) {
	cases := []struct {
		name        string
		files       map[string]string
		spec        map[string]any
		wantOrigins map[string]string
		wantData    map[string]map[string]any // subject -> data
		wantErr     error
		wantMsg     []string
	}{
		{
			name:        "plain directory gets a generated kustomization",
			files:       map[string]string{"apps/a.yaml": cmA, "apps/sub/b.yaml": cmB, "apps/notes.txt": "x", "other/x.yaml": cmB},
			spec:        map[string]any{"path": "./apps"},
			wantOrigins: map[string]string{"ConfigMap/team/a": "apps/a.yaml", "ConfigMap/b": "apps/sub/b.yaml"},
			wantData:    map[string]map[string]any{"ConfigMap/team/a": {"color": "${COLOR:=blue}", "size": "${SIZE}"}},
		},
		{
			name: "kustomization with a base, targetNamespace=prod and substitution",
			files: map[string]string{
				"base/a.yaml":                      cmA,
				"base/kustomization.yaml":          "resources: [a.yaml]\n",
				"overlay/b.yaml":                   cmB,
				"overlay/kustomization.yaml":       "resources: [../base, b.yaml]\n",
				"overlay/ignored-by-kustomize.yml": cmB,
			},
			spec: map[string]any{"path": "overlay", "targetNamespace": "prod",
				"postBuild": map[string]any{"substitute": map[string]any{"SIZE": "large"}}},
			wantOrigins: map[string]string{"ConfigMap/prod/a": "base/a.yaml", "ConfigMap/prod/b": "overlay/b.yaml"},
			wantData:    map[string]map[string]any{"ConfigMap/prod/a": {"color": "blue", "size": "large"}, "ConfigMap/prod/b": {"k": "v"}},
		},
		{
			name:    "broken YAML names the file",
			files:   map[string]string{"apps/good.yaml": cmB, "apps/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"},
			spec:    map[string]any{"path": "apps"},
			wantErr: ErrBuild, wantMsg: []string{"apps/bad.yaml"},
		},
		{
			name:    "object without name names the file",
			files:   map[string]string{"apps/kustomization.yaml": "resources: [noname.yaml]\n", "apps/noname.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n"},
			spec:    map[string]any{"path": "apps"},
			wantErr: ErrBuild, wantMsg: []string{"noname.yaml"},
		},
		{
			name:    "missing path",
			files:   map[string]string{"apps/a.yaml": cmB},
			spec:    map[string]any{"path": "./nope"},
			wantErr: ErrPathNotFound, wantMsg: []string{"kustomization path not found: stat nope: no such file or directory"},
		},
		{
			name:    "path escaping the root stays inside",
			files:   map[string]string{"apps/a.yaml": cmB},
			spec:    map[string]any{"path": "../../etc"},
			wantErr: ErrPathNotFound,
		},
		{
			name:    "strict substitution without a value",
			files:   map[string]string{"apps/a.yaml": cmA},
			spec:    map[string]any{"path": "apps", "postBuild": map[string]any{"substitute": map[string]any{"COLOR": "red"}}},
			wantErr: ErrSubstitute, wantMsg: []string{"apps/a.yaml", "SIZE"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			res, err := Build(context.Background(), nil, Input{Root: root, Kustomization: ks(tc.spec), Strict: tc.wantErr == ErrSubstitute})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				if strings.Contains(err.Error(), root) {
					t.Errorf("error leaks the artifact path: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantOrigins, res.Origins); d != "" {
				t.Errorf("origins (-want +got):\n%s", d)
			}
			for _, o := range res.Objects {
				if _, ok := o.GetAnnotations()[originAnnotation]; ok {
					t.Errorf("%s keeps the origin annotation", Subject(o))
				}
				if want, ok := tc.wantData[Subject(o)]; ok {
					if d := cmp.Diff(want, o.Object["data"]); d != "" {
						t.Errorf("%s data (-want +got):\n%s", Subject(o), d)
					}
				}
			}
			if !strings.HasPrefix(res.Checksum, "sha256:") {
				t.Errorf("checksum %q", res.Checksum)
			}
		})
	}
}

// BenchmarkBuildOneConfigMap is the cost of one build of the benchmark's shape (one ConfigMap, no
// kustomization.yaml): the floor under "N Kustomizations" that the global kustomize lock serializes.
func BenchmarkBuildOneConfigMap(b *testing.B) {
	root := writeTree(b, map[string]string{"apps/a.yaml": cmB})
	in := Input{Root: root, Kustomization: ks(map[string]any{"path": "apps"})}
	for b.Loop() {
		if _, err := Build(context.Background(), nil, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentBuilds runs builds of a kustomization with transformers from many goroutines; with
// -race it checks that shared-lock builds do not race inside kustomize.
func TestConcurrentBuilds(t *testing.T) {
	root := writeTree(t, map[string]string{
		"base/a.yaml":             cmA,
		"base/kustomization.yaml": "resources: [a.yaml]\nlabels: [{pairs: {tier: web}}]\n",
		"app/kustomization.yaml":  "resources: [../base]\nnamePrefix: p-\npatches:\n- patch: |\n    - op: add\n      path: /data/extra\n      value: x\n  target: {kind: ConfigMap}\n",
	})
	in := Input{Root: root, Kustomization: ks(map[string]any{"path": "app", "targetNamespace": "t",
		"postBuild": map[string]any{"substitute": map[string]any{"SIZE": "m"}}})}
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			res, err := Build(context.Background(), nil, in)
			if err == nil && (len(res.Objects) != 1 || res.Objects[0].GetName() != "p-a" || res.Objects[0].GetNamespace() != "t") {
				err = errors.New("unexpected build output")
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCustomOpenAPIIsolated: an artifact whose kustomization sets openapi: builds alone, and the next
// build sees the built-in schema again.
func TestCustomOpenAPIIsolated(t *testing.T) {
	custom := writeTree(t, map[string]string{
		"app/a.yaml":             cmB,
		"app/kustomization.yaml": "resources: [a.yaml]\nopenapi:\n  version: v1.21.2\n",
	})
	if customSchemaFree(custom) {
		t.Fatal("an artifact setting openapi: must not be treated as schema-free")
	}
	if _, err := Build(context.Background(), nil, Input{Root: custom, Kustomization: ks(map[string]any{"path": "app"})}); err != nil {
		t.Fatal(err)
	}
	plain := writeTree(t, map[string]string{"app/a.yaml": cmB})
	if !customSchemaFree(plain) {
		t.Fatal("plain artifact")
	}
	if _, err := Build(context.Background(), nil, Input{Root: plain, Kustomization: ks(map[string]any{"path": "app"})}); err != nil {
		t.Fatal(err)
	}
	dirtyMu.Lock()
	dirty := schemaDirty
	dirtyMu.Unlock()
	if dirty || openapi.GetSchemaVersion() != builtin {
		t.Fatal("the schema must have been reset before the plain build")
	}
}

// BenchmarkBuildOneFile is flux-benchmark's Kustomization: a directory with one ConfigMap, no
// kustomization.yaml, targetNamespace and one substituted variable.
func BenchmarkBuildOneFile(b *testing.B) {
	root := writeTree(b, map[string]string{"apps/app-0001/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-0001\ndata:\n  index: ${INDEX}\n  value: \"v1\"\n"})
	in := Input{Root: root, Kustomization: ks(map[string]any{"path": "apps/app-0001", "targetNamespace": "bench",
		"postBuild": map[string]any{"substitute": map[string]any{"INDEX": "1app"}}})}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		res, err := Build(context.Background(), nil, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Objects) != 1 {
			b.Fatalf("%d objects", len(res.Objects))
		}
	}
	// CPU time (including the GC's) per build: steadier than ns/op on a machine shared with other work.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBuildValueTypes: built objects carry the value types kustomize-controller reads back from the
// build's YAML (kustomize's AsYaml, then YAML to JSON to unstructured): int64 and float64 numbers,
// unquoted dates as RFC 3339 strings -- and they deep-copy (unstructured panics on int or time.Time).
func TestBuildValueTypes(t *testing.T) {
	const widget = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  count: 3
  ratio: 1.5
  big: 1e3
  huge: 12345678901234567890
  items: [1, 2.5, "3"]
  enabled: true
  none: ~
`
	const dated = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: d
spec:
  since: 2001-12-14
`
	root := writeTree(t, map[string]string{"apps/w.yaml": widget, "apps/d.yaml": dated})
	res, err := Build(context.Background(), nil, Input{Root: root, Kustomization: ks(map[string]any{"path": "apps"})})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, o := range res.Objects {
		got[o.GetName()] = o.DeepCopy().Object["spec"].(map[string]any)
	}
	want := map[string]map[string]any{
		"w": {"count": int64(3), "ratio": 1.5, "big": int64(1000), "huge": 12345678901234567890.0,
			"items": []any{int64(1), 2.5, "3"}, "enabled": true, "none": nil},
		// kustomize's AsYaml (what kustomize-controller applies) writes an unquoted date as a timestamp.
		"d": {"since": "2001-12-14T00:00:00Z"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("built specs (-want +got):\n%s", d)
	}

	// A map with a non-string key cannot be written as JSON: kustomize's own AsYAML fails on it, so
	// kustomize-controller does too. The error names the file.
	root = writeTree(t, map[string]string{"apps/k.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: k\nspec:\n  byCode:\n    1: one\n"})
	_, err = Build(context.Background(), nil, Input{Root: root, Kustomization: ks(map[string]any{"path": "apps"})})
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "apps/k.yaml") {
		t.Errorf("non-string key: got %v, want ErrBuild naming apps/k.yaml", err)
	}
}
