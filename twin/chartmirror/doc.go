// Package chartmirror is the twin's hermetic Helm chart mirror: a twin has no network, yet a GitOps
// repository's HelmRepository objects name upstream URLs (https://kubernetes.github.io/ingress-nginx,
// oci://ghcr.io/stefanprodan/charts), and the twin must not rewrite them: Git content stays as the
// platform team wrote it. The mirror makes those unchanged URLs resolve inside the twin.
//
// What it serves, from the chart folders a twin spec maps to each upstream URL (spec.charts):
//   - an https:// or http:// source: the folders packaged with the Helm SDK (as `helm package`), indexed
//     with the SDK's repository index (as `helm repo index`, chart URLs relative), served as an HTTP Helm
//     repository on its own 127.0.0.1 port (Repo.Local);
//   - an oci:// source: each chart pushed to the twin's registry with the SDK's registry client (as
//     `helm push`: config application/vnd.cncf.helm.config.v1+json, layer
//     application/vnd.cncf.helm.chart.content.v1.tar+gzip), under <upstream host>/<path>/<chart>:<version>.
//
// How an unchanged URL resolves: a forward proxy on 127.0.0.1 (ProxyURL) answers for the mirrored
// hosts. Real Flux cannot be told a URL mapping, but source-controller v1.9.6 fetches a HelmRepository's
// index.yaml and its charts through fluxcd/pkg/http/transport, whose transports use
// http.ProxyFromEnvironment, and OCI charts through Helm's registry client on a clone of
// http.DefaultTransport, which does too; with no certSecretRef its TLS roots are the system's, and Go's
// crypto/x509 adds SSL_CERT_FILE on Linux. So a controller process started with Env (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY, SSL_CERT_FILE) sends https://kubernetes.github.io/... as a CONNECT to the proxy;
// the proxy terminates TLS with a certificate for that host signed by the mirror's own CA (new each
// start, CAFile), and serves the request itself: the Helm repository whose URL is the longest prefix of
// the path, or, under /v2/, the registry API of an oci:// source, read from the twin's registry with
// the upstream repository name mapped to the stored one. Plain http:// sources and insecure OCI arrive
// as absolute-form requests and are served the same way. Loopback addresses are never proxied (Go's
// rule), so the API server, Gitea, the twin's registry and source-controller's storage stay direct.
// The twin's own engine runs in-process and must not change the process environment: it takes
// Transport, the same resolution as an http.Transport.
//
// Rejected: rewriting spec.url when objects are applied (Git content must stay unchanged; the objects
// in the cluster would differ from Git); an /etc/hosts-style DNS override (needs root, and the real
// hosts' port 443 on loopback); skipping TLS verification or trusting a CA through the object
// (spec.insecure, spec.certSecretRef are fields of the HelmRepository in Git, so again a change of Git).
//
// A URL the mirror does not hold fails fast, never hangs: a CONNECT to an unmirrored host, a path no
// mirrored repository covers and an unknown OCI repository are answered at once with a status whose
// reason phrase (Go's client returns it as the CONNECT error; Helm's getter quotes the status line) or
// OCI error message names the URL and says to add its chart folders to spec.charts.
//
// It imports the Helm SDK (helm.sh/helm/v4, the major version the pinned source-controller uses) and
// the standard library; it must not import other twin packages, reconciler/, scenarios/ or cmd/: the
// twin composes it (twin/internal/estate), giving it the registry's address.
package chartmirror
