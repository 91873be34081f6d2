package chartmirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// ErrInvalid is wrapped by every problem with Options; ErrStart by every other failed Start.
var (
	ErrInvalid = errors.New("invalid chart mirror options")
	ErrStart   = errors.New("start chart mirror")
)

// readHeaderTimeout bounds reading a request's headers on the proxy and the repositories; the same
// five seconds the twin's push-webhook receivers allow (twin/engine/hybridtwin, Gitea's DELIVER_TIMEOUT).
const readHeaderTimeout = 5 * time.Second

// Source is one upstream chart source and the chart folders that stand in for it: the shape of one
// entry of a twin spec's spec.charts.
type Source struct {
	// URL is the source as a HelmRepository's spec.url names it: https://host/path or http://host/path
	// (a Helm HTTP repository), or oci://host/path (charts in an OCI registry, oci://host/path/<chart>).
	URL string
	// Charts are chart folders, each holding a Chart.yaml; the mirror packages each with the Helm SDK.
	Charts []string
}

// Options configure Start.
type Options struct {
	// Dir holds the packaged charts, the repositories' index.yaml files and the CA certificate. Required;
	// created if missing.
	Dir string
	// Sources are the mirrored chart sources; none is valid (the proxy then refuses every URL, fast).
	Sources []Source
	// Registry is host:port of the twin's OCI registry (plain HTTP), where oci:// sources are pushed.
	// Required when a source is oci://.
	Registry string
	// Logger hears what Start does and every refused URL; nil means silent.
	Logger *slog.Logger
}

// Chart is one packaged chart of a mirrored source.
type Chart struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Folder is the chart folder it was packaged from.
	Folder string `json:"folder"`
	// Ref is where it lives in the twin: the .tgz's URL on the local repository, or the OCI reference in
	// the twin's registry.
	Ref string `json:"ref"`
}

// Repo is one mirrored source, as served.
type Repo struct {
	// URL is the upstream URL, normalised (lower-case host, no default port, no trailing slash).
	URL string `json:"url"`
	// Local is where the twin serves it: http://127.0.0.1:<port> for an HTTP repository, the twin
	// registry's oci://<host>/<path> prefix for an oci:// source.
	Local  string  `json:"local"`
	Charts []Chart `json:"charts"`
}

// Mirror is a running chart mirror: the local repositories, the charts in the twin's registry, and the
// forward proxy that answers for the mirrored URLs.
type Mirror struct {
	log    *slog.Logger
	dir    string
	ca     *authority
	caFile string
	repos  []Repo
	sites  map[string]*site // by canonical host (lower case, default port dropped)

	proxyLn net.Listener
	proxy   *http.Server
	inner   *http.Server  // serves the TLS connections the proxy terminates
	conns   *connListener // feeds inner
	servers []*http.Server
	wg      sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// Start packages every source's charts, pushes the oci:// ones to the registry, serves an HTTP Helm
// repository on 127.0.0.1 per https:// or http:// source, and starts the forward proxy. A failed Start
// leaves nothing running. The error wraps ErrInvalid or ErrStart.
func Start(ctx context.Context, opts Options) (*Mirror, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is empty: give a folder for the packaged charts", ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srcs, err := parseSources(opts.Sources)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if s.scheme == "oci" && opts.Registry == "" {
			return nil, fmt.Errorf("%w: %s is an oci:// source but no Registry is given to push its charts to", ErrInvalid, s.url)
		}
	}
	m := &Mirror{log: log, dir: opts.Dir, sites: map[string]*site{}}
	if err := m.start(ctx, srcs, opts.Registry); err != nil {
		_ = m.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	return m, nil
}

func (m *Mirror) start(ctx context.Context, srcs []source, registryHost string) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	ca, err := newAuthority(time.Now())
	if err != nil {
		return err
	}
	m.ca = ca
	m.caFile = filepath.Join(m.dir, "ca.crt")
	if err := os.WriteFile(m.caFile, ca.pem, 0o644); err != nil {
		return fmt.Errorf("write the mirror's CA: %w", err)
	}
	var pusher *ociPusher
	for i, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(m.dir, "sources", strconv.Itoa(i))
		charts, err := packageCharts(s.charts, dir)
		if err != nil {
			return fmt.Errorf("mirror %s: %w", s.url, err)
		}
		st := m.siteFor(s.host)
		if s.scheme == "oci" {
			if pusher == nil {
				if pusher, err = newOCIPusher(registryHost, m.dir); err != nil {
					return err
				}
			}
			repo, err := pusher.push(s, charts)
			if err != nil {
				return fmt.Errorf("mirror %s: %w", s.url, err)
			}
			st.addOCI(s, repo.Charts, registryHost)
			m.repos = append(m.repos, repo)
			continue
		}
		repo, handler, err := m.serveRepo(s, dir, charts)
		if err != nil {
			return fmt.Errorf("mirror %s: %w", s.url, err)
		}
		st.http = append(st.http, httpRoute{scheme: s.scheme, prefix: s.path, url: s.url, handler: handler})
		m.repos = append(m.repos, repo)
	}
	for _, st := range m.sites {
		// The longest prefix first: https://host/a/b is served before https://host/a.
		sort.Slice(st.http, func(i, j int) bool { return len(st.http[i].prefix) > len(st.http[j].prefix) })
	}
	return m.startProxy()
}

func (m *Mirror) siteFor(host string) *site {
	st, ok := m.sites[host]
	if !ok {
		st = &site{host: host, m: m}
		m.sites[host] = st
	}
	return st
}

// serveRepo indexes a source's packaged charts and serves them on a loopback port of their own.
func (m *Mirror) serveRepo(s source, dir string, charts []Chart) (Repo, http.Handler, error) {
	if err := writeIndex(dir); err != nil {
		return Repo{}, nil, err
	}
	handler := http.FileServer(http.Dir(dir))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Repo{}, nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: readHeaderTimeout}
	m.serve(srv, ln)
	local := "http://" + ln.Addr().String()
	for i := range charts {
		charts[i].Ref = local + "/" + filepath.Base(charts[i].Ref)
	}
	m.log.Info("chart repository mirrored", "url", s.url, "local", local, "charts", len(charts))
	return Repo{URL: s.url, Local: local, Charts: charts}, handler, nil
}

func (m *Mirror) serve(srv *http.Server, ln net.Listener) {
	m.servers = append(m.servers, srv)
	m.wg.Add(1)
	go func() { defer m.wg.Done(); _ = srv.Serve(ln) }()
}

// Repos are the mirrored sources in spec order.
func (m *Mirror) Repos() []Repo { return append([]Repo(nil), m.repos...) }

// ProxyURL is the forward proxy, http://127.0.0.1:<port>.
func (m *Mirror) ProxyURL() string { return "http://" + m.proxyLn.Addr().String() }

// CAFile is the PEM file of the CA that signs the proxy's certificates for mirrored https hosts.
func (m *Mirror) CAFile() string { return m.caFile }

// Env is the environment that makes a process's Go HTTP clients resolve mirrored URLs: HTTPS_PROXY and
// HTTP_PROXY name the proxy (Go's http.ProxyFromEnvironment, which Flux's source-controller uses for
// Helm repositories and OCI registries), NO_PROXY keeps loopback direct (Go never proxies loopback
// anyway: the API server, Gitea, the twin's registry and source-controller's storage stay direct), and
// SSL_CERT_FILE adds the mirror's CA to the roots crypto/x509 trusts on Linux (the default certificate
// folders are still read).
func (m *Mirror) Env() []string {
	p := m.ProxyURL()
	return []string{"HTTPS_PROXY=" + p, "HTTP_PROXY=" + p, "NO_PROXY=localhost,127.0.0.1,::1", "SSL_CERT_FILE=" + m.caFile}
}

// Transport is an HTTP transport for clients in the twin's own process (its reconciler's Helm getter
// and OCI client): what Env does for a process, without touching the process's environment. Loopback
// requests go direct.
func (m *Mirror) Transport() *http.Transport {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(m.ca.cert)
	proxy := (&httpproxy.Config{HTTPProxy: m.ProxyURL(), HTTPSProxy: m.ProxyURL()}).ProxyFunc()
	return &http.Transport{
		Proxy:                 func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Stop closes the proxy and the repositories and waits for them. Safe to call more than once; the
// charts pushed to the registry stay there.
func (m *Mirror) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() {
		var errs []error
		if m.proxy != nil {
			errs = append(errs, m.proxy.Close())
		}
		if m.conns != nil {
			_ = m.conns.Close()
		}
		if m.inner != nil {
			errs = append(errs, m.inner.Close())
		}
		for _, s := range m.servers {
			errs = append(errs, s.Close())
		}
		done := make(chan struct{})
		go func() { m.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("stop chart mirror: %w", ctx.Err()))
		}
		m.stopErr = errors.Join(errs...)
	})
	return m.stopErr
}

// source is a Source parsed and normalised.
type source struct {
	url    string // normalised
	scheme string // https, http or oci
	host   string // canonical host: lower case, default port dropped
	path   string // without trailing slash; "" for the host's root
	charts []string
}

// parseSources checks and normalises the sources: scheme https, http or oci, a host, no query or
// fragment, each URL once, at least one chart folder each.
func parseSources(in []Source) ([]source, error) {
	var out []source
	seen := map[string]bool{}
	for i, s := range in {
		u, err := url.Parse(strings.TrimSpace(s.URL))
		if err != nil {
			return nil, fmt.Errorf("%w: sources[%d].url %q: %v", ErrInvalid, i, s.URL, err)
		}
		scheme := strings.ToLower(u.Scheme)
		switch {
		case scheme != "https" && scheme != "http" && scheme != "oci":
			return nil, fmt.Errorf("%w: sources[%d].url %q: the scheme must be https, http or oci", ErrInvalid, i, s.URL)
		case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("%w: sources[%d].url %q: give scheme://host/path, without credentials, query or fragment", ErrInvalid, i, s.URL)
		case len(s.Charts) == 0:
			return nil, fmt.Errorf("%w: sources[%d] (%s) lists no chart folders", ErrInvalid, i, s.URL)
		}
		src := source{scheme: scheme, host: CanonicalHost(scheme, u.Host), path: strings.TrimRight(u.Path, "/"), charts: s.Charts}
		src.url = scheme + "://" + src.host + src.path
		if seen[src.url] {
			return nil, fmt.Errorf("%w: sources[%d]: %s is mirrored twice; list all its charts under one entry", ErrInvalid, i, src.url)
		}
		seen[src.url] = true
		out = append(out, src)
	}
	return out, nil
}

// CanonicalHost is host[:port] in lower case with the scheme's default port dropped (443 for https and
// oci, 80 for http), the form the mirror matches requests by.
func CanonicalHost(scheme, hostport string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.Trim(hostport, "[]")
	}
	if (port == "443" && (scheme == "https" || scheme == "oci")) || (port == "80" && scheme == "http") {
		return strings.Trim(host, "[]")
	}
	return net.JoinHostPort(host, port)
}
