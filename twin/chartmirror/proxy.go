package chartmirror

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// site is everything the mirror serves for one upstream host.
type site struct {
	host string
	m    *Mirror
	http []httpRoute // longest prefix first
	oci  *ociRoute   // nil when no oci:// source is on this host
}

// httpRoute is one mirrored Helm HTTP repository: requests under prefix go to its handler with the
// prefix stripped.
type httpRoute struct {
	scheme, prefix, url string
	handler             http.Handler
}

// startProxy starts the forward proxy on a loopback port. It answers
//   - CONNECT host:port for a mirrored host by terminating TLS with a certificate the mirror's CA signs
//     for that host, then serving the tunnelled requests itself (serveSite);
//   - absolute-form requests (GET http://host/path, plain-HTTP sources and insecure OCI) directly;
//   - anything else, CONNECT to an unmirrored host included, with an error at once whose reason phrase
//     names the URL and spec.charts, so a client fails fast with a message instead of waiting for a
//     network the twin does not have.
func (m *Mirror) startProxy() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	m.proxyLn = ln
	m.conns = newConnListener(ln.Addr())
	m.inner = &http.Server{ReadHeaderTimeout: readHeaderTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serveSite(w, r, "https", r.Host) })}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); _ = m.inner.Serve(m.conns) }()
	m.proxy = &http.Server{ReadHeaderTimeout: readHeaderTimeout, Handler: http.HandlerFunc(m.serveProxy)}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); _ = m.proxy.Serve(ln) }()
	m.log.Info("chart mirror proxy listening", "url", m.ProxyURL(), "hosts", len(m.sites))
	return nil
}

func (m *Mirror) serveProxy(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		m.connect(w, r)
	case r.URL.IsAbs():
		m.serveSite(w, r, strings.ToLower(r.URL.Scheme), r.URL.Host)
	default:
		m.refuse(w, http.StatusBadRequest, "hybridtwin chart mirror: this is a forward proxy; set HTTPS_PROXY/HTTP_PROXY to it, or use a repository's local URL")
	}
}

// connect tunnels a CONNECT to a mirrored host into the inner server, through TLS the mirror terminates.
func (m *Mirror) connect(w http.ResponseWriter, r *http.Request) {
	host := CanonicalHost("https", r.Host)
	if _, ok := m.sites[host]; !ok {
		m.refuse(w, http.StatusBadGateway, notMirrored("https://"+host, ""))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		m.refuse(w, http.StatusInternalServerError, "hybridtwin chart mirror: cannot take over the connection")
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil || rw.Flush() != nil {
		_ = conn.Close()
		return
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// The CONNECT's host, not the ClientHello's SNI: a client sends no SNI for an IP address.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.ca.leaf(name) },
	}
	if !m.conns.push(tls.Server(&bufferedConn{Conn: conn, r: rw.Reader}, cfg)) {
		_ = conn.Close()
	}
}

// serveSite answers one request for scheme://hostport/path: the OCI registry API of an oci:// source,
// or the Helm repository whose URL is the longest prefix of the path.
func (m *Mirror) serveSite(w http.ResponseWriter, r *http.Request, scheme, hostport string) {
	host := CanonicalHost(scheme, hostport)
	st, ok := m.sites[host]
	if !ok {
		m.refuse(w, http.StatusBadGateway, notMirrored(scheme+"://"+host+r.URL.Path, ""))
		return
	}
	p := r.URL.Path
	if st.oci != nil && (p == "/v2" || strings.HasPrefix(p, "/v2/")) {
		st.oci.ServeHTTP(w, r)
		return
	}
	for _, rt := range st.http {
		if rt.scheme != scheme || (p != rt.prefix && !strings.HasPrefix(p, rt.prefix+"/")) {
			continue
		}
		http.StripPrefix(rt.prefix, rt.handler).ServeHTTP(w, r)
		return
	}
	m.refuse(w, http.StatusNotFound, notMirrored(scheme+"://"+host+p, st.mirrored()))
}

// mirrored lists the site's mirrored URLs, for messages.
func (st *site) mirrored() string {
	var urls []string
	for _, rt := range st.http {
		urls = append(urls, rt.url)
	}
	if st.oci != nil {
		urls = append(urls, st.oci.urls...)
	}
	return strings.Join(urls, ", ")
}

// notMirrored is the one message of a refused URL: what, why, and how to mirror it.
func notMirrored(u, have string) string {
	msg := fmt.Sprintf("hybridtwin: %s is not mirrored in the twin (it has no network); mirror it with spec.charts in the twin spec: [{url: <repository URL>, charts: [<chart folder>, ...]}]", u)
	if have != "" {
		msg += "; this host mirrors " + have
	}
	return msg
}

// refuse answers with status and msg as the reason phrase and the body, then closes the connection. Go's
// HTTP client returns a failed CONNECT's reason phrase as its error, and Helm's getter puts the status
// line in its error, so the message reaches the controller's status condition.
func (m *Mirror) refuse(w http.ResponseWriter, status int, msg string) {
	m.log.Warn("chart mirror refused a request", "status", status, "msg", msg)
	msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, rw, err := hj.Hijack(); err == nil {
			fmt.Fprintf(rw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				status, msg, len(msg)+1, msg+"\n")
			_ = rw.Flush()
			_ = conn.Close()
			return
		}
	}
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
}

// connListener is a net.Listener fed by push: the connections the proxy tunnels into the inner server.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// bufferedConn reads what the hijacked connection's reader already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var _ net.Listener = (*connListener)(nil)
