package fluxcrd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
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

// TestDirsHoldEveryFluxKind: the CRD folders copied from the pinned modules (into a fresh cache) hold
// every kind of the Flux release -- sources, Kustomization, HelmRelease, notification and image kinds.
func TestDirsHoldEveryFluxKind(t *testing.T) {
	t.Setenv(toolcache.EnvCache, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dirs, err := Dirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := Read(dirs)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range crds {
		got[c.GetName()] = true
	}
	for _, want := range []string{
		"gitrepositories.source.toolkit.fluxcd.io", "helmrepositories.source.toolkit.fluxcd.io",
		"helmcharts.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io",
		"helmreleases.helm.toolkit.fluxcd.io", "alerts.notification.toolkit.fluxcd.io",
		"providers.notification.toolkit.fluxcd.io", "receivers.notification.toolkit.fluxcd.io",
		"imagerepositories.image.toolkit.fluxcd.io", "imagepolicies.image.toolkit.fluxcd.io",
		"imageupdateautomations.image.toolkit.fluxcd.io",
	} {
		if !got[want] {
			t.Errorf("no CRD %s among the %d read from %v", want, len(crds), dirs)
		}
	}
}
