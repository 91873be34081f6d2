package chartmirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	twinregistry "github.com/hybridtwin/hybridtwin/twin/registry"
)

var (
	helloChart   = filepath.Join("testdata", "charts", "hello")
	greeterChart = filepath.Join("testdata", "charts", "greeter")
)

func startMirror(t *testing.T, opts Options) *Mirror {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	m, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return m
}

// fetch gets url with the Helm SDK's HTTP getter over transport, as source-controller fetches a
// HelmRepository's index and charts (helm getter with a pooled transport).
func fetch(t *testing.T, transport *http.Transport, url string) ([]byte, error) {
	t.Helper()
	g, err := getter.NewHTTPGetter(getter.WithURL(url), getter.WithTransport(transport))
	if err != nil {
		t.Fatal(err)
	}
	buf, err := g.Get(url)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func loadIndex(t *testing.T, data []byte) *repo.IndexFile {
	t.Helper()
	f := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := repo.LoadIndexFile(f)
	if err != nil {
		t.Fatalf("load index: %v", err)
	}
	return idx
}

// An https:// repository resolves at its unchanged URL through the proxy: the SDK-generated index lists
// both charts with relative URLs, and a chart downloads from the URL the index resolves to.
func TestHTTPSRepositoryResolvesThroughProxy(t *testing.T) {
	const url = "https://kubernetes.github.io/ingress-nginx"
	m := startMirror(t, Options{Sources: []Source{
		{URL: url + "/", Charts: []string{helloChart, greeterChart}},
		{URL: "http://charts.example.com:8080/plain", Charts: []string{helloChart}},
	}})
	tr := m.Transport()

	data, err := fetch(t, tr, url+"/index.yaml")
	if err != nil {
		t.Fatalf("index through the proxy: %v", err)
	}
	idx := loadIndex(t, data)
	for name, version := range map[string]string{"hello": "0.1.0", "greeter": "1.2.3"} {
		cv, err := idx.Get(name, version)
		if err != nil {
			t.Fatalf("index has no %s %s: %v", name, version, err)
		}
		if want := name + "-" + version + ".tgz"; len(cv.URLs) != 1 || cv.URLs[0] != want {
			t.Errorf("%s URLs = %v, want [%s] (relative)", name, cv.URLs, want)
		}
	}
	cv, _ := idx.Get("hello", "0.1.0")
	chartURL, err := repo.ResolveReferenceURL(url, cv.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := fetch(t, tr, chartURL)
	if err != nil {
		t.Fatalf("chart %s through the proxy: %v", chartURL, err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil || c.Name() != "hello" {
		t.Fatalf("chart from %s: %v, %v", chartURL, c, err)
	}

	// A plain http:// source: an absolute-form request to the proxy.
	if _, err := fetch(t, tr, "http://charts.example.com:8080/plain/index.yaml"); err != nil {
		t.Errorf("plain http source: %v", err)
	}
	// The repository's own loopback address serves the same index.
	repos := m.Repos()
	if len(repos) != 2 || repos[0].URL != url || !strings.HasPrefix(repos[0].Local, "http://127.0.0.1:") {
		t.Fatalf("Repos() = %+v", repos)
	}
	local, err := fetch(t, &http.Transport{}, repos[0].Local+"/index.yaml")
	if err != nil || !bytes.Equal(local, data) {
		t.Errorf("local index differs from the proxied one (err %v)", err)
	}
}

// URLs the mirror does not hold fail at once with a message that names the URL and spec.charts.
func TestUnmirroredURLsFailFastNamingSpecCharts(t *testing.T) {
	m := startMirror(t, Options{Sources: []Source{{URL: "https://charts.example.com/stable", Charts: []string{helloChart}}}})
	tr := m.Transport()
	for name, tc := range map[string]struct{ url, want string }{
		"unmirrored https host": {"https://stefanprodan.github.io/podinfo/index.yaml", "https://stefanprodan.github.io is not mirrored"},
		"unmirrored http host":  {"http://charts.internal.example/index.yaml", "http://charts.internal.example/index.yaml is not mirrored"},
		"other path, same host": {"https://charts.example.com/incubator/index.yaml", "https://charts.example.com/incubator/index.yaml is not mirrored"},
		"https mirror, http":    {"http://charts.example.com/stable/index.yaml", "http://charts.example.com/stable/index.yaml is not mirrored"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := fetch(t, tr, tc.url)
			if err == nil {
				t.Fatalf("fetch %s: no error", tc.url)
			}
			t.Logf("%s: %v", tc.url, err)
			for _, want := range []string{tc.want, "spec.charts"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not say %q", err, want)
				}
			}
		})
	}
}

// The environment a controller process gets (Env) is enough for Go's default HTTP client -- the one
// source-controller's transports start from -- to fetch a mirrored https URL: the test runs itself as
// that process.
func TestEnvResolvesInAProcess(t *testing.T) {
	if os.Getenv("CHARTMIRROR_ENV_CHILD") == "1" {
		resp, err := http.Get(os.Getenv("CHARTMIRROR_URL"))
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(3)
		}
		body, _ := io.ReadAll(resp.Body)
		os.Stdout.WriteString(resp.Status + "\n" + string(body))
		os.Exit(0)
	}
	m := startMirror(t, Options{Sources: []Source{{URL: "https://kubernetes.github.io/ingress-nginx", Charts: []string{helloChart}}}})
	run := func(url string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvResolvesInAProcess$")
		cmd.Env = append([]string{"CHARTMIRROR_ENV_CHILD=1", "CHARTMIRROR_URL=" + url, "HOME=" + t.TempDir()}, m.Env()...)
		out, err := cmd.Output()
		return string(out), err
	}
	out, err := run("https://kubernetes.github.io/ingress-nginx/index.yaml")
	if err != nil || !strings.HasPrefix(out, "200 OK") || !strings.Contains(out, "hello-0.1.0.tgz") {
		t.Fatalf("child with Env: %v\n%s", err, out)
	}
	out, err = run("https://ghcr.io/v2/")
	if err == nil || !strings.Contains(out, "https://ghcr.io is not mirrored") {
		t.Fatalf("child with Env, unmirrored host: %v\n%s", err, out)
	}
}

// An oci:// source is pushed to the twin's registry in Helm's OCI layout and pulled at its unchanged
// reference through the proxy with the SDK's registry client, as source-controller pulls an OCI
// HelmRepository's chart.
func TestOCISourceResolvesThroughProxy(t *testing.T) {
	ctx := context.Background()
	reg, err := twinregistry.Start(ctx, twinregistry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	m := startMirror(t, Options{Registry: reg.Host(), Sources: []Source{
		{URL: "oci://ghcr.io/stefanprodan/charts", Charts: []string{helloChart, greeterChart}},
	}})
	repos := m.Repos()
	if want := "oci://" + reg.Host() + "/ghcr.io/stefanprodan/charts"; len(repos) != 1 || repos[0].Local != want {
		t.Fatalf("Repos() = %+v, want Local %s", repos, want)
	}
	catalog, err := reg.Client().Catalog(ctx)
	if err != nil || strings.Join(catalog, ",") != "ghcr.io/stefanprodan/charts/greeter,ghcr.io/stefanprodan/charts/hello" {
		t.Fatalf("twin registry catalog = %v, %v", catalog, err)
	}

	client, err := registry.NewClient(registry.ClientOptWriter(io.Discard),
		registry.ClientOptHTTPClient(&http.Client{Transport: m.Transport()}),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	tags, err := client.Tags("ghcr.io/stefanprodan/charts/hello")
	if err != nil || strings.Join(tags, ",") != "0.1.0" {
		t.Fatalf("tags through the proxy = %v, %v", tags, err)
	}
	res, err := client.Pull("ghcr.io/stefanprodan/charts/hello:0.1.0")
	if err != nil {
		t.Fatalf("pull through the proxy: %v", err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil || c.Name() != "hello" || c.Metadata.Version != "0.1.0" {
		t.Fatalf("pulled chart: %v, %v", c, err)
	}

	// The manifest has Helm's media types.
	req, _ := http.NewRequest(http.MethodGet, "https://ghcr.io/v2/stefanprodan/charts/greeter/manifests/1.2.3", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := (&http.Client{Transport: m.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var man struct {
		Config struct{ MediaType string }   `json:"config"`
		Layers []struct{ MediaType string } `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&man); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest: %s, %v", resp.Status, err)
	}
	if man.Config.MediaType != registry.ConfigMediaType || len(man.Layers) != 1 || man.Layers[0].MediaType != registry.ChartLayerMediaType {
		t.Errorf("manifest media types = %+v, want config %s and one %s layer", man, registry.ConfigMediaType, registry.ChartLayerMediaType)
	}

	// A chart of the same host that is not mirrored: refused (DENIED), naming the reference and spec.charts.
	_, err = client.Pull("ghcr.io/stefanprodan/charts/podinfo:6.5.0")
	t.Logf("unmirrored chart: %v", err)
	if err == nil || !strings.Contains(err.Error(), "oci://ghcr.io/stefanprodan/charts/podinfo is not mirrored") || !strings.Contains(err.Error(), "spec.charts") {
		t.Errorf("pull of an unmirrored chart: %v", err)
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"scheme":           {Options{Sources: []Source{{URL: "git://example.com/charts", Charts: []string{helloChart}}}}, "scheme must be https, http or oci"},
		"no host":          {Options{Sources: []Source{{URL: "https:///charts", Charts: []string{helloChart}}}}, "scheme://host/path"},
		"no charts":        {Options{Sources: []Source{{URL: "https://example.com/charts"}}}, "lists no chart folders"},
		"twice":            {Options{Sources: []Source{{URL: "https://example.com/charts", Charts: []string{helloChart}}, {URL: "https://EXAMPLE.com:443/charts/", Charts: []string{greeterChart}}}}, "mirrored twice"},
		"oci, no registry": {Options{Sources: []Source{{URL: "oci://ghcr.io/x", Charts: []string{helloChart}}}}, "no Registry"},
		"not a chart":      {Options{Sources: []Source{{URL: "https://example.com/charts", Charts: []string{"testdata"}}}}, "load chart folder testdata"},
		"same chart twice": {Options{Sources: []Source{{URL: "https://example.com/charts", Charts: []string{helloChart, helloChart}}}}, "both hello 0.1.0"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.opts.Dir = t.TempDir()
			m, err := Start(context.Background(), tc.opts)
			if err == nil {
				_ = m.Stop(context.Background())
				t.Fatal("Start: no error")
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one saying %q", err, tc.want)
			}
		})
	}
}
