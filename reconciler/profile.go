package reconciler

import "time"

// Profile holds every default, limit and timing constant of the reconciler, each with its source. One
// profile is one versioned set: change Name whenever a value changes, so recorded results say which
// values produced them.
type Profile struct {
	// Name identifies this set of values in reports.
	Name string

	// FieldManager owns every applied field, and OwnerGroup prefixes the owner labels
	// (<group>/name, <group>/namespace) that tie objects to their Kustomization. Flux's values
	// (kustomize-controller main.go controllerName; api/v1 GroupVersion.Group), so objects applied by
	// the twin and by real Flux are indistinguishable and a later run of real Flux adopts them.
	FieldManager string
	OwnerGroup   string

	// KustomizationWorkers is how many Kustomizations reconcile at once. kustomize-controller's
	// --concurrent defaults to 4 (Flux docs, kustomize-controller options); the twin's builds take
	// ~1.5 ms instead of Flux's ~0.2 s (see reconciler/internal/build), so workers mostly wait on the
	// API server and more of them hide its latency: 1000 one-ConfigMap Kustomizations measured
	// 2.5-2.8 s with 4, 2.3-2.4 s with 8 and 2.2-2.25 s with 16 workers on 2 cores (bench/reconciler,
	// 2026-11-21). Beyond that the run is CPU-bound -- ~2.5 ms of reconciler CPU (kustomize, Flux's
	// generator and substitution, a quarter of it Go's GC) and ~1.9 ms of API server CPU per
	// Kustomization, on the same 2 cores (bench/reconciler cpuMsPerObject) -- so more workers buy
	// nothing; the bare-loop comparison uses this count as its concurrency.
	KustomizationWorkers int
	// SourceWorkers is how many GitRepositories fetch at once (source-controller --concurrent: 2).
	SourceWorkers int
	// HelmReleaseWorkers is how many HelmReleases reconcile at once (helm-controller --concurrent: 4,
	// its main.go default). Zero means one.
	HelmReleaseWorkers int
	// ClientQPS and ClientBurst are the client-side rate limit towards the API server when it does not
	// run API Priority and Fairness. kustomize-controller takes them from --kube-api-qps (50) and
	// --kube-api-burst (300), and drops client-side limiting altogether when the server answers with
	// APF's flow-schema header (fluxcd/pkg/runtime client.GetConfigOrDie, using
	// fluxcd/cli-utils flowcontrol.IsEnabled); the reconciler does the same, so against the twin's
	// kube-apiserver v1.33 (APF on by default) it is not throttled on the client side. The QPS and
	// Burst of the rest.Config a caller passes are not used, as Flux ignores the kubeconfig's.
	ClientQPS   float32
	ClientBurst int
	// ClientProbeTimeout bounds the APF probe (one HEAD /livez/ping) in New. Flux probes without a
	// deadline; a bound keeps New from hanging on a dead server -- on timeout the QPS/Burst above apply.
	ClientProbeTimeout time.Duration
	// ApplyConcurrency bounds the concurrent requests of one apply (kustomize-controller
	// --concurrent-ssa: 4).
	ApplyConcurrency int
	// DriftWorkers is how many drift corrections run at once. Flux has no watch-driven correction;
	// 4 matches the apply concurrency.
	DriftWorkers int

	// DependencyRequeue is the fallback re-check of a Kustomization waiting on a source or a
	// dependency (kustomize-controller --requeue-dependency: 30s). The twin also wakes waiters the
	// moment what they wait on becomes ready (event-driven; the fix fluxcd/flux2#4808 asks for).
	DependencyRequeue time.Duration
	// GitTimeout bounds Git operations when spec.timeout is unset (source-controller api/v1
	// GitRepositorySpec.Timeout: "defaults to 60s").
	GitTimeout time.Duration
	// SourceRetryBase and the GitRepository's interval bound the exponential backoff after a failed
	// fetch (source-controller requeues failures with controller-runtime's default rate limiter,
	// 5 ms doubling up to 1000 s; the twin caps it at the interval so a fixed repository is seen no
	// later than a healthy one would be).
	SourceRetryBase time.Duration
	// HealthCheckInterval is how often wait/healthChecks poll (kustomize-controller checkHealth:
	// ssa.WaitOptions{Interval: 5 * time.Second}).
	HealthCheckInterval time.Duration
	// StageWaitInterval and StageWaitTimeout bound the wait for CRDs and Namespaces between apply
	// stages (fluxcd/pkg/ssa DefaultApplyOptions: 2s, 60s).
	StageWaitInterval, StageWaitTimeout time.Duration
	// DriftRetry is the delay before retrying a failed drift correction (the interval still applies).
	// No Flux counterpart; one second keeps a failing correction from hammering the API server.
	DriftRetry time.Duration
	// DriftSyncRetry is how soon a drift check is retried when the kind's watch caches are not synced
	// yet (client-go's WaitForCacheSync polls every 100 ms; the same period here).
	DriftSyncRetry time.Duration
	// IntervalJitter spreads periodic reconciles by up to this fraction of the interval, up or down
	// (fluxcd/pkg/runtime jitter --interval-jitter-percentage: 5).
	IntervalJitter float64
	// StrictSubstitutions fails a build on a ${VAR} without value or default (kustomize-controller
	// feature gate StrictPostBuildSubstitutions: off by default).
	StrictSubstitutions bool
	// EventHistory is how many events the reconciler keeps in memory for Events(). No Flux
	// counterpart (Flux emits Kubernetes Events); sized so a 1000-Kustomization run keeps its last
	// reconcile of each.
	EventHistory int
	// CorrectionHistory is how many drift corrections Corrections() keeps (oldest dropped first).
	CorrectionHistory int

	// DriftWatch is the twin's watch-driven drift correction: every applied object is watched and a
	// change or deletion is undone within a second. Flux has none (it corrects at the Kustomization's
	// interval); FluxExactProfile turns it off.
	DriftWatch bool
	// EventDrivenDependsOn wakes a Kustomization the moment a dependency becomes Ready. Flux re-checks
	// a waiting Kustomization only every DependencyRequeue (fluxcd/flux2#4808 asks for the event);
	// FluxExactProfile turns it off, leaving the requeue alone.
	EventDrivenDependsOn bool

	// StatusWorkers is how many status writes run at once in ObjectsInCluster mode. Flux writes each
	// object's status from the worker that reconciled it (controller-runtime, --concurrent); the twin
	// writes from its own queue so a burst of changes to one object is one write: 4, as
	// kustomize-controller's --concurrent default.
	StatusWorkers int
	// StatusTimeout bounds one status or finalizer patch, and StatusRetry is the delay before a failed
	// one is retried. No Flux counterpart (its patches run under the reconcile's context and are
	// retried with the reconcile, at controller-runtime's 5 ms backoff doubling); a second keeps a
	// failing API server from being hammered, as DriftRetry.
	StatusTimeout time.Duration
	StatusRetry   time.Duration

	// GCPercent is the Go GC target (GOGC) that SetProcessGC gives a process hosting reconcilers. No
	// Flux counterpart (its controllers run at Go's default, 100). A build allocates ~540 KB for a
	// one-ConfigMap Kustomization (reconciler/internal/build BenchmarkBuildOneFile), so at 100 the
	// collector took a quarter of the reconciler's CPU: 1000 Kustomizations measured 0.96 ms of GC per
	// object at 100 and 0.31 ms at 400 (bench/results/baseline, before and after, 2026-11-21); the ratio
	// to the parallel raw loop rose from 0.38 to 0.42 on a machine that ran the loop 29% slower. The
	// price is heap headroom: the heap may grow to five times the live data before a collection,
	// bounded by the limit below (the bench process peaked at 241 MiB at 1000, 142 MiB before).
	GCPercent int
	// GCMemoryFraction of the machine's memory (at least GCMemoryFloor bytes) is the soft memory limit
	// (GOMEMLIMIT) that SetProcessGC sets alongside: near it the collector runs as often as needed,
	// whatever GCPercent says (Go's GC guide, "Memory limit"), so the larger target cannot run a
	// laptop out of memory.
	GCMemoryFraction float64
	GCMemoryFloor    int64
}

// DefaultProfile is Flux v2.7's defaults (source-controller v1.9.6, kustomize-controller v1.9.5, the
// versions RECIPES.md runs) with the twin's deliberate departures marked in the field comments:
// event-driven dependencies, watch-driven drift correction, more workers.
func DefaultProfile() Profile {
	return Profile{
		Name:                 "flux-v2.7-twin/v6",
		FieldManager:         "kustomize-controller",
		OwnerGroup:           "kustomize.toolkit.fluxcd.io",
		KustomizationWorkers: 16,
		HelmReleaseWorkers:   4,
		SourceWorkers:        2,
		ClientQPS:            50,
		ClientBurst:          300,
		ClientProbeTimeout:   10 * time.Second,
		ApplyConcurrency:     4,
		DriftWorkers:         4,
		DependencyRequeue:    30 * time.Second,
		GitTimeout:           60 * time.Second,
		SourceRetryBase:      5 * time.Millisecond,
		HealthCheckInterval:  5 * time.Second,
		StageWaitInterval:    2 * time.Second,
		StageWaitTimeout:     60 * time.Second,
		DriftRetry:           time.Second,
		DriftSyncRetry:       100 * time.Millisecond,
		IntervalJitter:       0.05,
		StrictSubstitutions:  false,
		EventHistory:         10000,
		CorrectionHistory:    100000,
		DriftWatch:           true,
		EventDrivenDependsOn: true,
		StatusWorkers:        4,
		StatusTimeout:        30 * time.Second,
		StatusRetry:          time.Second,
		GCPercent:            400,
		GCMemoryFraction:     0.25,
		GCMemoryFloor:        1 << 30,
	}
}

// FluxExactProfile is DefaultProfile without the twin's two departures from Flux: no watch-driven drift
// correction (drift is undone at the Kustomization's interval, or on a reconcile request) and no
// event-driven dependsOn (a waiting Kustomization is re-checked every DependencyRequeue). A twin run
// with it behaves as Flux does, intervals only, so the departures' effect can be measured.
func FluxExactProfile() Profile {
	p := DefaultProfile()
	p.Name = "flux-v2.7-exact/v1"
	p.DriftWatch = false
	p.EventDrivenDependsOn = false
	return p
}
