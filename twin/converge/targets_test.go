package converge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/twin"
)

// convergeSpec is the twin spec of validate's converge tests.
const convergeSpec = "../../reconciler/layout/testdata/converge/twin.yaml"

// editedSpec writes a copy of the spec file with its relative paths made absolute and old replaced by new,
// and loads it.
func editedSpec(t *testing.T, file, old, new string) *twin.Spec {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), old, new, 1)
	text = strings.NewReplacer("inventory: ../", "inventory: "+dir+"/../", "path: good", "path: "+dir+"/good",
		"path: ../", "path: "+dir+"/../").Replace(text)
	p := filepath.Join(t.TempDir(), "twin.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := twin.LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// targets puts the layout where each configuration reads it: the branches and artifact tags the spec's
// configurations sync, each with the configurations ("cluster/name") that sync it.
func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		file      string
		branches  map[branchRef][]string
		artifacts map[artifactRef][]string
	}{
		{convergeSpec, map[branchRef][]string{{"gitops-config", "main"}: {"dev/platform"}}, map[artifactRef][]string{}},
		{"../../examples/twin.yaml", map[branchRef][]string{{"gitops-config", "main"}: {"dev/platform-dev", "dev/apps-dev", "prod/platform-prod", "prod/apps-prod"}},
			map[artifactRef][]string{}},
		{"../../examples/twins/branch-per-env.yaml", map[branchRef][]string{{"gitops-config", "dev"}: {"dev/platform-dev", "dev/apps-dev"}},
			map[artifactRef][]string{}},
		{"../../examples/twins/multi-repo.yaml", map[branchRef][]string{{"app-config", "main"}: {"dev/apps-dev"}, {"cluster-config", "main"}: {"dev/platform-dev"}},
			map[artifactRef][]string{}},
		{"../../examples/twins/oci-source.yaml", map[branchRef][]string{},
			map[artifactRef][]string{{"manifests/gitops-config", "1.0.0"}: {"dev/platform-dev", "dev/apps-dev"}}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			s, err := twin.LoadSpec(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			branches, artifacts, err := targets(s)
			if err != nil {
				t.Fatal(err)
			}
			opt := cmp.AllowUnexported(branchRef{}, artifactRef{})
			if d := cmp.Diff(tc.branches, branches, opt); d != "" {
				t.Errorf("branches (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.artifacts, artifacts, opt); d != "" {
				t.Errorf("artifacts (-want +got):\n%s", d)
			}
		})
	}
}

// A configuration the converge stage cannot put the layout under is refused by its index and name, with
// what to do.
func TestTargetsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		old, new  string
		mentioned []string
	}{
		{"git tag", convergeSpec, "ref: {branch: main}", "ref: {tag: v1.0.0}",
			[]string{"spec.gitops[0] (platform) syncs", "not a branch", "point the configuration at one"}},
		{"oci url", "../../examples/twins/oci-source.yaml", "oci: {repository: manifests/gitops-config,", `oci: {url: "oci://registry.example/manifests/gitops-config",`,
			[]string{"spec.gitops[0] (platform-dev) syncs the OCI artifact oci://registry.example/manifests/gitops-config:1.0.0", "--converge packs the layout as a tag of spec.artifacts"}},
		{"oci semver", "../../examples/twins/oci-source.yaml", `tag: "1.0.0"}`, `semver: ">=1.0.0"}`,
			[]string{"spec.gitops[0] (platform-dev) syncs the OCI artifact manifests/gitops-config (semver >=1.0.0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := targets(editedSpec(t, tc.file, tc.old, tc.new))
			if err == nil {
				t.Fatal("targets accepted the spec")
			}
			for _, m := range tc.mentioned {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}

func TestOCIName(t *testing.T) {
	for _, tc := range []struct {
		src  twin.OCISource
		want string
	}{
		{twin.OCISource{Repository: "manifests/app", Tag: "1.0.0"}, "manifests/app:1.0.0"},
		{twin.OCISource{Repository: "manifests/app"}, "manifests/app:" + twin.DefaultOCITag},
		{twin.OCISource{URL: "oci://r.example/app", Semver: ">=1"}, "oci://r.example/app (semver >=1)"},
		{twin.OCISource{URL: "oci://r.example/app", Digest: "sha256:ab"}, "oci://r.example/app@sha256:ab"},
	} {
		if got := OCIName(&tc.src); got != tc.want {
			t.Errorf("OCIName(%+v) = %q, want %q", tc.src, got, tc.want)
		}
	}
}
