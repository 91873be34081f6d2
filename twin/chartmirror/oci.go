package chartmirror

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/registry"
)

// ociPusher pushes packaged charts to the twin's registry with the Helm SDK's registry client, as
// `helm push` does: a manifest whose config is application/vnd.cncf.helm.config.v1+json and whose one
// layer is the chart archive, application/vnd.cncf.helm.chart.content.v1.tar+gzip, tagged with the
// chart's version.
type ociPusher struct {
	client *registry.Client
	host   string // the twin registry's host:port
}

func newOCIPusher(host, dir string) (*ociPusher, error) {
	// A credentials file of the mirror's own keeps the SDK away from the user's Helm configuration.
	c, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(dir, "registry-config.json")))
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	return &ociPusher{client: c, host: host}, nil
}

// push pushes a source's charts to <registry>/<store name>/<chart>:<version>. The store name is the
// upstream host and path (registryName), so two sources never share a repository.
func (p *ociPusher) push(s source, charts []Chart) (Repo, error) {
	for i, c := range charts {
		data, err := os.ReadFile(c.Ref)
		if err != nil {
			return Repo{}, err
		}
		// OCI tags cannot hold '+': Helm pushes semver build metadata with '_' instead (helm push).
		tag := strings.ReplaceAll(c.Version, "+", "_")
		ref := p.host + "/" + registryName(s.host, upstreamName(s, c.Name)) + ":" + tag
		if _, err := p.client.Push(data, ref, registry.PushOptStrictMode(tag == c.Version)); err != nil {
			return Repo{}, fmt.Errorf("push chart %s %s to %s: %w", c.Name, c.Version, ref, err)
		}
		charts[i].Ref = "oci://" + ref
	}
	local := "oci://" + p.host + "/" + registryName(s.host, strings.TrimPrefix(s.path, "/"))
	return Repo{URL: s.url, Local: strings.TrimSuffix(local, "/"), Charts: charts}, nil
}

// upstreamName is a chart's repository name at the upstream registry: oci://ghcr.io/stefanprodan/charts
// and chart podinfo give stefanprodan/charts/podinfo.
func upstreamName(s source, chart string) string {
	if p := strings.TrimPrefix(s.path, "/"); p != "" {
		return p + "/" + chart
	}
	return chart
}

// registryName is where the twin's registry keeps an upstream repository: under the upstream host
// (ghcr.io/stefanprodan/charts/podinfo), a port written as -<port> since ':' is not allowed in names.
func registryName(host, name string) string {
	h := strings.ReplaceAll(host, ":", "-")
	if name == "" {
		return h
	}
	return h + "/" + name
}

// ociRoute serves the registry API (distribution spec: /v2/, manifests, blobs, tags/list; reads only)
// for the oci:// sources of one host, from the twin's registry.
type ociRoute struct {
	site     *site
	urls     []string          // the mirrored oci:// URLs on this host
	names    map[string]string // upstream repository name -> twin registry repository name
	registry string
}

func (st *site) addOCI(s source, charts []Chart, registryHost string) {
	if st.oci == nil {
		st.oci = &ociRoute{site: st, names: map[string]string{}, registry: registryHost}
	}
	st.oci.urls = append(st.oci.urls, s.url)
	for _, c := range charts {
		n := upstreamName(s, c.Name)
		st.oci.names[n] = registryName(s.host, n)
	}
}

// The kinds of registry API paths after /v2/<name>.
var ociKinds = []string{"/manifests/", "/blobs/", "/tags/list"}

func (o *ociRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2" || r.URL.Path == "/v2/" {
		// The API version check every client makes first; no authentication is asked for.
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	cut := -1
	for _, k := range ociKinds {
		if i := strings.LastIndex(rest, k); i > 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "hybridtwin chart mirror: not a registry API path: "+r.URL.Path)
		return
	}
	name, tail := rest[:cut], rest[cut:]
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ociError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "hybridtwin chart mirror: the mirror of oci://"+o.site.host+" is read-only")
		return
	}
	store, ok := o.names[name]
	if !ok {
		o.site.m.log.Warn("chart mirror refused an OCI repository", "repository", o.site.host+"/"+name)
		// 403 DENIED rather than 404 NAME_UNKNOWN: ORAS reports a 404 as a bare "not found" and drops
		// the message, while it quotes the error body of any other status.
		ociError(w, http.StatusForbidden, "DENIED", notMirrored("oci://"+o.site.host+"/"+name, o.site.mirrored()))
		return
	}
	in := r.Clone(r.Context())
	in.URL.Path, in.URL.RawPath = "/v2/"+store+tail, ""
	from, to := "/v2/"+store+"/", "/v2/"+name+"/"
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", o.registry, o.registry
		},
		// Pagination links and redirects name the registry's repository; give the client its own name back.
		ModifyResponse: func(resp *http.Response) error {
			for _, h := range []string{"Link", "Location"} {
				if v := resp.Header.Get(h); v != "" {
					resp.Header.Set(h, strings.ReplaceAll(v, from, to))
				}
			}
			return nil
		},
	}
	rp.ServeHTTP(w, in)
}

// ociError answers in the distribution spec's error shape, which ORAS and Helm put in their errors.
func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
