package fluxcrd

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRead(t *testing.T) {
	crds, err := Read([]string{filepath.Join("testdata", "crds")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.GetName())
	}
	if d := cmp.Diff([]string{"widgets.example.com", "gadgets.example.com"}, names); d != "" {
		t.Errorf("CRDs read (-want +got):\n%s", d)
	}

	for name, tc := range map[string]struct {
		dir  string
		want string
	}{
		"not a CRD": {filepath.Join("testdata", "notcrd"), "configmap.yaml, document 1: kind \"ConfigMap\""},
		"empty":     {t.TempDir(), "holds no *.yaml files"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Read([]string{tc.dir})
			if !errors.Is(err, ErrCRD) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCRD containing %q", err, tc.want)
			}
		})
	}
}
