package gitserver_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// examples is the folder of the layouts, from this package's directory.
const examples = "../../examples/repos"

var layoutNames = []string{"branch-per-env", "dir-per-env", "multi-repo"}

func build(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return m
}

// TestLayoutEveryKustomizationBuilds builds every folder under examples/repos that holds a
// kustomization.yaml, with the real kustomize API.
func TestLayoutEveryKustomizationBuilds(t *testing.T) {
	var dirs []string
	err := filepath.WalkDir(examples, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("found %d kustomizations under %s, expected the three layouts' (over 30)", len(dirs), examples)
	}
	for _, d := range dirs {
		rel, _ := filepath.Rel(examples, d)
		t.Run(rel, func(t *testing.T) {
			m := build(t, d)
			if m.Size() == 0 {
				t.Errorf("%s builds to nothing", rel)
			}
			for _, r := range m.Resources() {
				if r.GetName() == "" || r.GetKind() == "" || r.GetApiVersion() == "" {
					t.Errorf("%s: an object without apiVersion, kind or name:\n%s", rel, r.MustYaml())
				}
			}
		})
	}
}

// kindCount is "Kind" -> number of objects.
type kindCount map[string]int

// wantPerEnvironment is what every environment deploys, whichever the layout: the cluster-wide layer
// (namespaces, persona RBAC, the ingress controller) and two applications of four objects each.
var wantPerEnvironment = kindCount{
	"Namespace":               2,
	"ClusterRole":             1, // ingress-controller
	"ClusterRoleBinding":      2, // cluster-operators, ingress-controller
	"Role":                    2, // application-operator, application-developer
	"RoleBinding":             2,
	"ServiceAccount":          1,
	"IngressClass":            1,
	"ConfigMap":               3, // ingress controller, podinfo, orders
	"Deployment":              3,
	"Service":                 3,
	"HorizontalPodAutoscaler": 2,
}

// TestLayoutConfigurations builds each layout's GitOps configurations per environment and checks the kinds
// they deploy, the namespace scoping, the environment's values and the images.
func TestLayoutConfigurations(t *testing.T) {
	for _, name := range layoutNames {
		t.Run(name, func(t *testing.T) {
			l, err := gitserver.LoadLayout(filepath.Join(examples, name))
			if err != nil {
				t.Fatal(err)
			}
			if l.Name != name {
				t.Errorf("layout in %s is named %q", name, l.Name)
			}
			listed := map[string]bool{}
			for _, img := range l.Images {
				listed[img] = true
			}
			used := map[string]bool{}
			envs := map[string]kindCount{}
			for _, c := range l.Configurations {
				if envs[c.Environment] == nil {
					envs[c.Environment] = kindCount{}
				}
				for _, k := range c.Kustomizations {
					dir := l.KustomizationDir(c, k)
					m := build(t, dir)
					for _, r := range m.Resources() {
						envs[c.Environment][r.GetKind()]++
						if c.Scope == "namespace" {
							if ns := r.GetNamespace(); ns != c.Namespace {
								t.Errorf("%s/%s (namespace scope %s) holds %s %s in namespace %q; a namespace-scoped configuration may only hold objects of its namespace",
									c.Environment, c.Name, c.Namespace, r.GetKind(), r.GetName(), ns)
							}
						}
						if env := r.GetLabels()["environment"]; r.GetKind() != "ClusterRole" && r.GetKind() != "ClusterRoleBinding" && env != "" && env != c.Environment {
							t.Errorf("%s/%s: %s %s is labelled environment=%s", c.Environment, c.Name, r.GetKind(), r.GetName(), env)
						}
						for _, img := range images(t, r.MustYaml()) {
							repoTag, ok := strings.CutPrefix(img, gitserver.PlaceholderRegistry+"/")
							if !ok {
								t.Errorf("%s: image %q is not under the placeholder registry %s", dir, img, gitserver.PlaceholderRegistry)
								continue
							}
							if !listed[repoTag] {
								t.Errorf("%s: image %s is not listed in %s images", dir, repoTag, gitserver.LayoutFile)
							}
							used[repoTag] = true
						}
					}
				}
			}
			envNames := make([]string, 0, len(envs))
			for e := range envs {
				envNames = append(envNames, e)
			}
			sort.Strings(envNames)
			if diff := cmp.Diff([]string{"dev", "prod", "staging"}, envNames); diff != "" {
				t.Errorf("environments (-want +got):\n%s", diff)
			}
			for _, e := range envNames {
				if diff := cmp.Diff(wantPerEnvironment, envs[e]); diff != "" {
					t.Errorf("environment %s deploys (-want +got):\n%s", e, diff)
				}
			}
			for img := range listed {
				if !used[img] {
					t.Errorf("%s lists image %s that no configuration uses", gitserver.LayoutFile, img)
				}
			}
		})
	}
}

// TestLayoutEnvironmentsDiffer checks that each layout really gives each environment its own values: image
// tags and HPA bounds as in the layouts' READMEs.
func TestLayoutEnvironmentsDiffer(t *testing.T) {
	want := map[string]struct {
		podinfo, orders string
		minReplicas     int
	}{
		"dev":     {"6.5.1", "1.5.0", 1},
		"staging": {"6.5.1", "1.4.2", 2},
		"prod":    {"6.5.0", "1.4.2", 3},
	}
	for _, name := range layoutNames {
		l, err := gitserver.LoadLayout(filepath.Join(examples, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range l.Configurations {
			if c.Scope != "namespace" {
				continue
			}
			w := want[c.Environment]
			for _, k := range c.Kustomizations {
				m := build(t, l.KustomizationDir(c, k))
				for _, r := range m.Resources() {
					y := r.MustYaml()
					switch {
					case r.GetKind() == "Deployment" && r.GetName() == "podinfo":
						if !strings.Contains(y, "/apps/podinfo:"+w.podinfo) {
							t.Errorf("%s %s: podinfo image is not %s:\n%s", name, c.Environment, w.podinfo, y)
						}
					case r.GetKind() == "Deployment" && r.GetName() == "orders":
						if !strings.Contains(y, "/apps/orders:"+w.orders) {
							t.Errorf("%s %s: orders image is not %s:\n%s", name, c.Environment, w.orders, y)
						}
					case r.GetKind() == "HorizontalPodAutoscaler":
						got, _ := r.GetFieldValue("spec.minReplicas")
						if got != w.minReplicas {
							t.Errorf("%s %s: HPA %s minReplicas = %v, want %d", name, c.Environment, r.GetName(), got, w.minReplicas)
						}
					}
				}
			}
		}
	}
}

func images(t *testing.T, y string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(y, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))
		if v, ok := strings.CutPrefix(line, "image: "); ok {
			out = append(out, strings.Trim(v, `"'`))
		}
	}
	return out
}

func TestLoadLayoutRejectsBadFiles(t *testing.T) {
	cases := []struct {
		name, yaml, mention string
	}{
		{"unknown field", "apiVersion: hybridtwin.io/v1alpha1\nkind: RepoLayout\nname: x\nrepos: []\n", "unknown field"},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\nname: x\n", "apiVersion/kind"},
		{"no repositories", "apiVersion: hybridtwin.io/v1alpha1\nkind: RepoLayout\nname: x\n", "repositories"},
		{"missing folder", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [app]
    branches: [{name: main, path: nowhere}]
`, "repositories[0].branches[0].path"},
		{"path escapes", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [app]
    branches: [{name: main, path: ../..}]
`, "leaves its root"},
		{"bad layer", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [network]
    branches: [{name: main, path: content}]
`, "repositories[0].layers"},
		{"unknown repository", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [app]
    branches: [{name: main, path: content}]
configurations:
  - {environment: dev, name: apps, scope: namespace, namespace: apps, repository: other, branch: main,
     kustomizations: [{name: apps, path: ./}]}
`, "configurations[0]"},
		{"namespace scope without namespace", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [app]
    branches: [{name: main, path: content}]
configurations:
  - {environment: dev, name: apps, scope: namespace, repository: r, branch: main,
     kustomizations: [{name: apps, path: ./}]}
`, "configurations[0].namespace"},
		{"image with host", `apiVersion: hybridtwin.io/v1alpha1
kind: RepoLayout
name: x
repositories:
  - name: r
    layers: [app]
    branches: [{name: main, path: content}]
images: [registry.twin.local/apps/podinfo:1]
`, "images[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "content"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, gitserver.LayoutFile), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := gitserver.LoadLayout(dir)
			if !errors.Is(err, gitserver.ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
			if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), gitserver.LayoutFile) {
				t.Errorf("err = %q, want it to name %s and %q", err, gitserver.LayoutFile, tc.mention)
			}
		})
	}
	if _, err := gitserver.LoadLayout(t.TempDir()); !errors.Is(err, gitserver.ErrInvalidOptions) {
		t.Errorf("a folder without layout.yaml: err = %v, want ErrInvalidOptions", err)
	}
}

func TestPersonaAccessMatrix(t *testing.T) {
	both := []gitserver.Layer{gitserver.ClusterLayer, gitserver.AppLayer}
	cluster := []gitserver.Layer{gitserver.ClusterLayer}
	app := []gitserver.Layer{gitserver.AppLayer}
	cases := []struct {
		p      gitserver.Persona
		layers []gitserver.Layer
		want   gitserver.Access
	}{
		{gitserver.ClusterOperator, cluster, gitserver.WriteAccess},
		{gitserver.ClusterOperator, app, gitserver.ReadAccess},
		{gitserver.ClusterOperator, both, gitserver.WriteAccess},
		{gitserver.ApplicationOperator, cluster, gitserver.ReadAccess},
		{gitserver.ApplicationOperator, app, gitserver.WriteAccess},
		{gitserver.ApplicationDeveloper, cluster, gitserver.NoAccess},
		{gitserver.ApplicationDeveloper, app, gitserver.ReadAccess},
		{gitserver.ApplicationDeveloper, both, gitserver.ReadAccess},
	}
	for _, tc := range cases {
		if got := gitserver.AccessTo(tc.p, tc.layers); got != tc.want {
			t.Errorf("AccessTo(%s, %v) = %s, want %s", tc.p, tc.layers, got, tc.want)
		}
	}
	if got := gitserver.Maintainers(cluster); !slices.Equal(got, []gitserver.Persona{gitserver.ClusterOperator}) {
		t.Errorf("Maintainers(cluster) = %v", got)
	}
	if got := gitserver.Maintainers(both); len(got) != 2 {
		t.Errorf("Maintainers(cluster, app) = %v, want both operators", got)
	}
	if got := gitserver.TeamName(gitserver.ApplicationOperator, gitserver.WriteAccess); got != "application-operators-write" {
		t.Errorf("TeamName = %q", got)
	}
}
