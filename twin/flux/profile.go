package flux

import "time"

// ProfileVersion names the settings below; recorded next to measurements, changed whenever one changes.
const ProfileVersion = "flux-profile/v2"

// RuntimeNamespace is the namespace the controllers run "in" (RUNTIME_NAMESPACE) and the Arc Flux
// extension's namespace. Source: RECIPES.md "Real Flux outside a cluster" (RUNTIME_NAMESPACE=flux-system);
// seeds/000 (the microsoft.flux extension installs into flux-system).
const RuntimeNamespace = "flux-system"

// KustomizeConcurrency is kustomize-controller's --concurrent. Source: RECIPES.md "Real Flux outside a
// cluster" (the flags that worked: --concurrent=4; Flux's own default is 4 as well).
const KustomizeConcurrency = 4

// HelmConcurrency is helm-controller's --concurrent: 4, helm-controller v1.6.4's own default (main.go),
// the same as kustomize-controller's.
const HelmConcurrency = 4

// Timing of starts and stops.
const (
	// DefaultStartTimeout bounds Start: CRDs Established plus both controllers healthy. RECIPES.md
	// measured the control plane ready in ~4.3 s; the controllers' caches sync in seconds; two minutes
	// leaves room for a loaded 2-core machine without hanging a run on a controller that never comes up.
	DefaultStartTimeout = 2 * time.Minute
	// DefaultStopGrace is the time between SIGTERM and SIGKILL. controller-runtime's default graceful
	// shutdown timeout is 30 s (manager.Options.GracefulShutdownTimeout); the twin throws the state away,
	// so 10 s, the embedded cluster provider's stop grace (twin/cluster DefaultStopGrace), is enough.
	DefaultStopGrace = 10 * time.Second
	// healthPoll is how often Start asks a controller's /readyz and a CRD's Established condition; the
	// same quarter second the Arc agent polls status with (twin/arcagent DefaultPollInterval).
	healthPoll = 250 * time.Millisecond
)
