// Package hybridtwin is the twin's own GitOps engine as a member of the engine room: the reconciler
// (package reconciler) on Flux's objects in the cluster, with push webhooks from the twin's Git server.
package hybridtwin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reconciler/notify"
	"github.com/hybridtwin/hybridtwin/twin/engine"
)

// Push webhooks: a platform team wires its Git server's push webhook to a Flux notification-controller
// Receiver so a push is fetched at once instead of at the next source interval (Flux "Receivers" guide;
// Arc's default syncIntervalInSeconds is 600). The twin does the same for its own reconcilers: each one
// serves reconciler.WebhookHandler on a loopback port, and every seeded repository gets a Gitea push
// webhook to it, signed with a secret per reconciler (HMAC-SHA256, X-Gitea-Signature). The source
// interval stays as the configuration sets it, as with a Receiver. With spec.notifications the twin runs
// Flux's real notification-controller instead: c.Git is nil (its Receivers take the push webhooks and
// annotate the GitRepositories, which the reconciler watches), and the reconciler's events are posted
// to its event endpoint (c.EventsURL) as Flux's controllers post theirs.

// webhookHeaderTimeout bounds reading a delivery's headers; Gitea's own DELIVER_TIMEOUT is 5 s
// (twin/gitserver profile, Gitea config cheat sheet).
const webhookHeaderTimeout = 5 * time.Second

// Engine is the twin's reconciler.
type Engine struct{}

var _ engine.Engine = Engine{}

type running struct {
	rec     *reconciler.Reconciler
	metrics *prometheus.Registry
	stops   []func(context.Context) error // newest last
}

// Start starts the cluster's reconciler with its own Prometheus registry (a cluster's figures are never
// mixed with another's, and a cluster removed and recreated starts from zero), its push receiver, and a
// push webhook on every seeded repository.
func (Engine) Start(ctx context.Context, c engine.Cluster) (engine.Running, error) {
	secret, err := webhookSecret()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	o := reconciler.Options{Cluster: c.Name, WorkDir: c.Dir, Logger: c.Logger,
		NoDriftWatch: c.NoDriftWatch, Registerer: reg, WebhookSecret: []byte(secret), ObjectsInCluster: true}
	if c.Charts != nil {
		o.ChartTransport = c.Charts.Transport
	}
	if c.EventsURL != "" {
		o.OnEvent = notify.Poster(c.Run, c.EventsURL, c.Logger)
	}
	rec, err := reconciler.New(c.Config, o)
	if err != nil {
		return nil, err
	}
	r := &running{rec: rec, metrics: reg}
	if err := rec.Start(c.Run); err != nil {
		return nil, err
	}
	r.stops = append(r.stops, func(context.Context) error { rec.Stop(); return nil })
	if c.Git != nil {
		if err := r.serveWebhooks(ctx, c, secret); err != nil {
			return nil, errors.Join(err, r.Stop(context.WithoutCancel(ctx)))
		}
	}
	return r, nil
}

// serveWebhooks starts the cluster's receiver and subscribes it to every seeded repository; Stop
// unsubscribes and closes the receiver.
func (r *running) serveWebhooks(ctx context.Context, c engine.Cluster, secret string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("push webhook receiver of %s: %w", c.Name, err)
	}
	srv := &http.Server{Handler: r.rec.WebhookHandler(), ReadHeaderTimeout: webhookHeaderTimeout}
	go func() { _ = srv.Serve(ln) }()
	r.stops = append(r.stops, func(context.Context) error { return srv.Close() })
	unsubscribe, err := c.Git.Subscribe(ctx, "http://"+ln.Addr().String()+"/", secret)
	if err != nil {
		return fmt.Errorf("push webhooks of %s: %w", c.Name, err)
	}
	r.stops = append(r.stops, unsubscribe)
	return nil
}

// Stop removes the webhooks, closes the receiver and stops the reconciler.
func (r *running) Stop(ctx context.Context) error {
	var errs []error
	for i := len(r.stops) - 1; i >= 0; i-- {
		errs = append(errs, r.stops[i](ctx))
	}
	r.stops = nil
	return errors.Join(errs...)
}

// Components: the reconciler runs in the twin's process.
func (r *running) Components() []engine.Component {
	return []engine.Component{{Name: "reconciler", InProcess: true}}
}

// Metrics is the cluster's reconciler registry (hybridtwin_reconciler_*, labelled cluster=<name>).
func (r *running) Metrics() prometheus.Gatherer { return r.metrics }

// webhookSecret is a fresh random HMAC key.
func webhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
