// Package engine is the twin's engine room: what a GitOps engine is to the twin. An engine runs for one
// workload cluster, reconciling Flux's objects in it (the Arc agent writes them, whichever engine runs,
// as the real fluxconfig-agent does). Its members are listed in package twin/engine/engines, keyed by the
// name a twin spec gives in spec.reconciler; adding an engine (Argo CD, say) is one package implementing
// Engine and one line in that list.
package engine

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// Engine starts a GitOps engine for a workload cluster.
type Engine interface {
	// Start runs the engine for one cluster until Stop. Flux's CRDs are installed in the cluster
	// already. ctx bounds the start only; c.Run bounds the engine's life. A failed start leaves
	// nothing running.
	Start(ctx context.Context, c Cluster) (Running, error)
}

// Cluster is what an engine is given for one workload cluster.
type Cluster struct {
	Name string
	// Config and Kubeconfig are the cluster's admin credentials (in memory, and as a file for engines
	// that run as processes).
	Config     *rest.Config
	Kubeconfig string
	// Dir is the engine's own directory for this cluster (work trees, logs, storage); the twin removes
	// it with the cluster, so a cluster of the same name later starts clean.
	Dir    string
	Logger *slog.Logger
	// Run ends when the twin goes down; an engine's goroutines live under it.
	Run context.Context
	// Git subscribes push receivers to the twin's seeded repositories; nil when there are none.
	Git PushHooks
	// NoDriftWatch asks for an engine without watch-driven drift correction, where it has one (the
	// scenario suite's deliberately broken change).
	NoDriftWatch bool
	// Charts is how the engine reaches Helm chart sources: the twin's chart mirror (spec.charts), which
	// makes HelmRepository URLs resolve inside the twin unchanged. Nil when the twin runs none.
	Charts *ChartMirror
	// Restart is the back-off with which an engine that runs as processes restarts a crashed one (the
	// time profile's, procgroup.Backoff); OnRestart, if set, hears every restart.
	Restart   procgroup.Backoff
	OnRestart func(procgroup.Restart)
	// EventsURL is Flux's notification-controller event endpoint in this cluster (spec.notifications):
	// the engine posts its events there in Flux's event shape, as Flux's controllers do with
	// --events-addr. Empty when the cluster runs no notification-controller.
	EventsURL string
}

// ChartMirror is the twin's chart mirror (twin/chartmirror) as an engine reaches it: a loopback forward
// proxy answering for the mirrored URLs with certificates of its own CA, and refusing every other URL at
// once with a message naming spec.charts.
type ChartMirror struct {
	// Env is for an engine that runs as processes: HTTPS_PROXY, HTTP_PROXY, NO_PROXY and SSL_CERT_FILE,
	// which Go's HTTP clients (Flux's source-controller among them) honour.
	Env []string
	// Transport is for an engine in the twin's process, whose environment it must not change: its Helm
	// getter (getter.WithTransport) and OCI registry client (an http.Client on it) resolve through it.
	Transport *http.Transport
}

// PushHooks registers Git push webhooks, as a platform team wires its Git server to a Flux Receiver.
type PushHooks interface {
	// Subscribe registers a push webhook to url, signed with secret (HMAC-SHA256), on every seeded
	// repository; unsubscribe removes them again.
	Subscribe(ctx context.Context, url, secret string) (unsubscribe func(context.Context) error, err error)
}

// Running is an engine running for one cluster.
type Running interface {
	// Stop stops it and waits until it has stopped; ctx bounds the wait.
	Stop(ctx context.Context) error
	// Components are what it runs, for `hybridtwin status`.
	Components() []Component
	// Metrics is its Prometheus registry for this cluster, nil when it serves its own metrics
	// endpoints (listed in Components).
	Metrics() prometheus.Gatherer
}

// Component is one part of a running engine: a process of its own (PID, the ports it listens on, all
// on 127.0.0.1) or a part of the twin's own process (InProcess).
type Component struct {
	Name      string
	PID       int
	Ports     []int
	InProcess bool
	// Restarts is how many times the process was restarted after a crash.
	Restarts int
}
