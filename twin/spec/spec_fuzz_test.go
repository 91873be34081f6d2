package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseSpec feeds arbitrary bytes to the twin spec decoder as if they were a file next to the
// examples (so relative references resolve as in a real spec). It must never panic; every refusal must
// be *SpecErrors whose every problem names a file and a line or a field; what parses must have a name
// and at least one cluster. Seeds: the examples, the package's test specs and testdata/fuzz/FuzzParseSpec;
// `go tool task fuzz` (or `go test -fuzz=FuzzParseSpec -parallel 1 ./twin/spec/`) searches further.
func FuzzParseSpec(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/twin.yaml")
	more, _ := filepath.Glob("../../examples/twins/*.yaml")
	tests, _ := filepath.Glob("testdata/specs/*.yaml")
	for _, s := range append(append(seeds, more...), tests...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	path := filepath.Join("..", "..", "examples", "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(path, data)
		if err != nil {
			var se *SpecErrors
			if !errors.As(err, &se) || len(se.Problems) == 0 {
				t.Fatalf("refusal is not *SpecErrors with problems: %T %v", err, err)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("refusal does not wrap ErrInvalidSpec: %v", err)
			}
			for _, p := range se.Problems {
				if p.File == "" || (p.Line == 0 && p.Field == "") || p.Msg == "" {
					t.Fatalf("problem without file, place or message: %+v", p)
				}
			}
			return
		}
		if s == nil || s.Metadata.Name == "" || len(s.ClusterNames()) == 0 {
			t.Fatalf("a spec that loads has no name or no cluster: %+v", s)
		}
	})
}

// FuzzParseClusterFragment does the same for a cluster file (`hybridtwin cluster add`): never a panic,
// every refusal a *ClusterFileError whose problems name the file and a line or a field.
func FuzzParseClusterFragment(f *testing.F) {
	f.Add([]byte("name: edge\nkubernetesVersion: v1.33.13\ncontrolPlane: {count: 1, vmSize: Standard_A4_v2}\nnodePools:\n- {name: linux, vmSize: Standard_K8S3_v1, count: 2}\n"))
	f.Add([]byte("name: edge\nnodePools: [{name: linux, vmSize: Standard_K8S3_v1, count: 2}]\ngitops:\n- name: fleet\n  repo: fleet\n  clusters: [other]\n"))
	f.Add([]byte("name: Edge_1\nnodePools: []\n"))
	f.Add([]byte("name: a\n---\nname: b\n"))
	f.Add([]byte("nodePools: [{count: -1}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseClusterFragment("cluster.yaml", data)
		if err != nil {
			var ce *ClusterFileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("refusal is not *ClusterFileError with problems: %T %v", err, err)
			}
			for _, p := range ce.Problems {
				if p.File != "cluster.yaml" || (p.Line == 0 && p.Field == "") || p.Msg == "" {
					t.Fatalf("problem without file, place or message: %+v", p)
				}
			}
			return
		}
		if c == nil || c.Name == "" || len(c.NodePools) == 0 {
			t.Fatalf("a cluster file that loads has no name or no node pool: %+v", c)
		}
	})
}
