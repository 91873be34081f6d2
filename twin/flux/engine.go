package flux

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hybridtwin/hybridtwin/twin/engine"
)

// Engine is real Flux (source-controller, kustomize-controller and helm-controller of the pinned release)
// as a member of the twin's engine room (spec.reconciler: flux). The controllers poll their sources; with
// spec.notifications the twin runs notification-controller next to them (StartNotification), gives them
// its event endpoint (--events-addr) and wires Gitea's push webhooks to its Receivers, so c.Git is unused.
type Engine struct{}

var _ engine.Engine = Engine{}

// Start runs the controllers against the cluster (Start), with the chart mirror's environment when the
// twin runs one.
func (Engine) Start(ctx context.Context, c engine.Cluster) (engine.Running, error) {
	var env []string
	if c.Charts != nil {
		env = c.Charts.Env
	}
	ctl, err := Start(ctx, Options{Kubeconfig: c.Kubeconfig, StateDir: c.Dir, Logger: c.Logger, Env: env,
		Restart: c.Restart, OnRestart: c.OnRestart, EventsURL: c.EventsURL})
	if err != nil {
		return nil, err
	}
	return running{ctl}, nil
}

type running struct{ c *Controllers }

func (r running) Stop(context.Context) error { return r.c.Stop() }

func (r running) Components() []engine.Component {
	var out []engine.Component
	for _, p := range r.c.Processes() {
		out = append(out, engine.Component{Name: "flux " + p.Name, PID: p.PID, Ports: p.Ports, Restarts: p.Restarts})
	}
	return out
}

// Metrics is nil: the controllers serve their own /metrics (their ports are in Components).
func (r running) Metrics() prometheus.Gatherer { return nil }
