package layout_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// packageChart packages a chart directory as `helm package` does (chartutil.Save) and returns the
// archive's path.
func packageChart(t *testing.T, chartDir string) string {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serveHelmRepo serves a Helm chart repository (index.yaml plus the packaged chart, the layout of
// `helm repo index`) holding the chart in chartDir, and returns its URL.
func serveHelmRepo(t *testing.T, chartDir string) string {
	t.Helper()
	archive := packageChart(t, chartDir)
	ch, err := loader.LoadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(archive)
	if err := os.WriteFile(filepath.Join(dir, base), data, 0o644); err != nil {
		t.Fatal(err)
	}
	index := fmt.Sprintf("apiVersion: v1\nentries:\n  %s:\n  - name: %s\n    version: %s\n    apiVersion: v2\n    urls: [%s]\n  - name: %s\n    version: 0.0.9\n    apiVersion: v2\n    urls: [missing-0.0.9.tgz]\n",
		ch.Metadata.Name, ch.Metadata.Name, ch.Metadata.Version, base, ch.Metadata.Name)
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/charts", http.FileServer(http.Dir(dir))))
	t.Cleanup(srv.Close)
	return srv.URL + "/charts"
}

// pushOCIChart pushes a packaged chart to an OCI registry as `helm push` lays it out (config
// application/vnd.cncf.helm.config.v1+json, one chart layer) under ref.
func pushOCIChart(t *testing.T, archive, ref string) {
	t.Helper()
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:     static.NewLayer(data, "application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
		MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.cncf.helm.config.v1+json")
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// substitute sets a postBuild variable on every Kustomization.
func substitute(cs []layout.Config, key, value string) {
	for _, c := range cs {
		for _, k := range c.Kustomizations {
			spec := k.Object["spec"].(map[string]any)
			pb, _ := spec["postBuild"].(map[string]any)
			if pb == nil {
				pb = map[string]any{}
				spec["postBuild"] = pb
			}
			sub, _ := pb["substitute"].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				pb["substitute"] = sub
			}
			sub[key] = value
		}
	}
}

// TestHelmRenderedObjectsChecked: the objects a chart renders go through the object rules, and the
// findings point at the HelmRelease, naming the template.
func TestHelmRenderedObjectsChecked(t *testing.T) {
	rep := validate(t, filepath.Join("testdata", "helmrendered"), layout.Options{AllowedRegistries: []string{"registry.twin.local"}})
	secret := of(rep, layout.RulePlainSecret)
	if len(secret) != 1 {
		t.Fatalf("want one HT006 finding from the rendered Secret, got %+v", rep.Findings)
	}
	f := secret[0]
	if f.File != "app/release.yaml" || f.Line != 4 || f.Object != "Secret/payments/payments-creds-creds" ||
		!strings.Contains(f.Message, "rendered by HelmRelease shop/creds (chart creds-1.2.0, creds/templates/secret.yaml)") {
		t.Errorf("rendered Secret finding: %+v", f)
	}
	reg := of(rep, layout.RuleRegistry)
	if len(reg) != 1 || !strings.Contains(reg[0].Message, `image "nginx:1.25"`) || reg[0].Object != "Deployment.apps/payments/payments-creds" {
		t.Errorf("rendered Deployment's registry finding: %+v", reg)
	}
	if len(rep.HelmReleases) != 1 || rep.HelmReleases[0].Objects != 2 || rep.HelmReleases[0].Release != "shop/creds" {
		t.Errorf("renders: %+v", rep.HelmReleases)
	}
}

// TestHelmOCIChart renders charts pulled from an OCI registry (go-containerregistry's registry, in
// process): through an OCIRepository chartRef with a semver range, and through an OCI HelmRepository.
func TestHelmOCIChart(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	archive := packageChart(t, filepath.Join("testdata", "helmrelease", "pass", "charts", "hello"))
	pushOCIChart(t, archive, u.Host+"/charts/hello:0.1.0")

	cs := load(t, filepath.Join("testdata", "helmoci"))
	substitute(cs, "OCI_REPO", "oci://"+u.Host+"/charts")
	rep, err := layout.Validate(context.Background(), cs, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("findings: %+v", rep.Findings)
	}
	if len(rep.HelmReleases) != 2 {
		t.Fatalf("want both HelmReleases rendered, got %+v", rep.HelmReleases)
	}
	for _, h := range rep.HelmReleases {
		if h.Chart != "hello-0.1.0" || h.Objects != 2 {
			t.Errorf("render %+v: want chart hello-0.1.0 with a Deployment and a Service", h)
		}
	}

	// A tag the registry does not hold is an error (the registry answered), not a warning.
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "helmoci"), dir)
	rel := filepath.Join(dir, "app", "release.yaml")
	data, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rel, []byte(strings.Replace(string(data), `version: "0.1.0"`, `version: "0.2.0"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cs = load(t, dir)
	substitute(cs, "OCI_REPO", "oci://"+u.Host+"/charts")
	rep, err = layout.Validate(context.Background(), cs, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := of(rep, layout.RuleHelmRender)
	if len(got) != 1 || got[0].Severity != layout.Error || !strings.Contains(got[0].Message, `charts/hello: no version matches "0.2.0" (published: 0.1.0)`) || len(rep.HelmReleases) != 1 {
		t.Fatalf("want one HT011 error for the missing tag and one render, got %+v / %+v", rep.Findings, rep.HelmReleases)
	}
}

// TestHelmRepoVersionMissing: a reachable Helm repository without a matching version is an error
// (HT011): Flux's HelmChart would fail the same way.
func TestHelmRepoVersionMissing(t *testing.T) {
	cs := load(t, filepath.Join("testdata", "helmsource", "pass"))
	substitute(cs, "CHART_REPO", serveHelmRepo(t, filepath.Join("testdata", "helmrelease", "pass", "charts", "hello")))
	rep, err := layout.Validate(context.Background(), cs, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.HelmReleases) != 1 || rep.HelmReleases[0].Chart != "hello-0.1.0" {
		t.Fatalf("renders: %+v (findings %+v)", rep.HelmReleases, rep.Findings)
	}

	// The same repository asked for 2.x: reachable, but no such version.
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "helmsource", "pass"), dir)
	rel := filepath.Join(dir, "app", "release.yaml")
	data, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rel, []byte(strings.Replace(string(data), `version: "0.1.x"`, `version: "2.x"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cs = load(t, dir)
	substitute(cs, "CHART_REPO", serveHelmRepo(t, filepath.Join("testdata", "helmrelease", "pass", "charts", "hello")))
	rep, err = layout.Validate(context.Background(), cs, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := of(rep, layout.RuleHelmRender)
	if len(got) != 1 || got[0].Severity != layout.Error || !strings.Contains(got[0].Message, `no version matches "2.x" (published: 0.0.9, 0.1.0)`) {
		t.Fatalf("want a HT011 error naming the published versions, got %+v", rep.Findings)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHelmExampleValidatesClean: examples/repos/kustomize-helm (the Flux kustomize+helm example's
// shape, charts in the repository) validates without a finding, and both charts render in both
// clusters.
func TestHelmExampleValidatesClean(t *testing.T) {
	rep := validate(t, filepath.Join("..", "..", "examples", "repos", "kustomize-helm"), layout.Options{AllowedRegistries: []string{"registry.twin.local"}})
	if len(rep.Findings) != 0 || len(rep.Configs) != 2 {
		t.Fatalf("want clean over staging and production, got %+v", rep.Findings)
	}
	got := map[string]int{}
	for _, h := range rep.HelmReleases {
		got[h.Cluster+" "+h.Release+" "+h.Chart] = h.Objects
	}
	want := map[string]int{
		"staging edge-system/edge-proxy edge-proxy-1.0.0": 6, "production edge-system/edge-proxy edge-proxy-1.0.0": 6,
		"staging podinfo/podinfo podinfo-6.5.0": 3, "production podinfo/podinfo podinfo-6.5.0": 3,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("renders %v, want %v", got, want)
	}
}
