package core

import (
	"fmt"
	"time"
)

// Reasons are Flux's condition reasons (github.com/fluxcd/pkg/apis/meta conditions.go), repeated here as
// plain strings so this package stays free of API imports. The controller maps them 1:1.
const (
	ReasonSuspended          = "Suspended"
	ReasonArtifactFailed     = "ArtifactFailed"
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonProgressing        = "Progressing"
)

// Timing is the per-Kustomization timing, resolved from its spec with Flux's defaults.
type Timing struct {
	// Interval between reconciliations after a success (spec.interval).
	Interval time.Duration
	// RetryInterval after a failure (spec.retryInterval; Flux: defaults to spec.interval,
	// kustomize-controller api/v1 Kustomization.GetRetryInterval).
	RetryInterval time.Duration
	// DependencyRequeue is the fallback re-check while waiting on a source or a dependency
	// (kustomize-controller --requeue-dependency, default 30s). The reconciler also wakes waiters
	// as soon as what they wait on becomes ready, so this is only a safety net.
	DependencyRequeue time.Duration
}

// DependencyStatus is what the gate needs to know about one dependsOn entry.
type DependencyStatus struct {
	Key   Key
	Found bool
	// Ready is the dependency's Ready condition being True.
	Ready bool
	// Observed is status.observedGeneration == metadata.generation.
	Observed bool
	// LastAppliedRevision is the dependency's status.lastAppliedRevision.
	LastAppliedRevision string
	// SameSource is true when the dependency reads the same source as the dependent: then it must
	// have applied the revision the dependent is about to apply (kustomize-controller checkDependencies).
	SameSource bool
	// HasReadyExpr says the dependsOn entry has a readyExpr, and ExprReady what it evaluated to: it then
	// replaces the built-in checks (kustomize-controller without the AdditiveCELDependencyCheck gate).
	HasReadyExpr bool
	ExprReady    bool
}

// GateInput is the state the admission gate decides on.
type GateInput struct {
	Suspended bool
	// SourceFound says the referenced source exists; SourceRevision is its artifact revision, empty when
	// it has no artifact yet.
	SourceFound    bool
	SourceName     string
	SourceRevision string
	Dependencies   []DependencyStatus
}

// Verdict is the gate's decision.
type Verdict struct {
	// Proceed says: fetch, build, apply now.
	Proceed bool
	// Reason and Message describe why not, for the Ready=False condition (empty when Proceed or when
	// suspended, which leaves status untouched as Flux does).
	Reason  string
	Message string
	// Waiting lists what the Kustomization waits on; the controller wakes it when one of them changes.
	WaitingOn []Key
	// RequeueAfter is the fallback re-check; zero means do not requeue (suspended).
	RequeueAfter time.Duration
}

// Admit decides whether a Kustomization may be reconciled now, in kustomize-controller's order:
// suspend, then source, then dependencies (in dependsOn order, first failure reported).
func Admit(in GateInput, t Timing) Verdict {
	if in.Suspended {
		return Verdict{}
	}
	if !in.SourceFound {
		return Verdict{Reason: ReasonArtifactFailed,
			Message:      fmt.Sprintf("Source '%s' not found", in.SourceName),
			RequeueAfter: t.RetryInterval}
	}
	if in.SourceRevision == "" {
		return Verdict{Reason: ReasonArtifactFailed,
			Message:      fmt.Sprintf("Source artifact not found, retrying in %s", t.DependencyRequeue),
			RequeueAfter: t.DependencyRequeue}
	}
	var waiting []Key
	var first string
	for _, d := range in.Dependencies {
		var msg string
		switch {
		case !d.Found:
			// kustomize-controller v1.9.5 wraps the Get error (observed by twin/flux TestCorpusOracle).
			msg = fmt.Sprintf("dependency '%s' not found: kustomizations.kustomize.toolkit.fluxcd.io %q not found", d.Key, d.Key.Name)
		case d.HasReadyExpr && !d.ExprReady:
			msg = fmt.Sprintf("dependency '%s' is not ready according to readyExpr eval", d.Key)
		case d.HasReadyExpr:
			continue
		case !d.Observed || !d.Ready:
			msg = fmt.Sprintf("dependency '%s' is not ready", d.Key)
		case d.SameSource && d.LastAppliedRevision != in.SourceRevision:
			msg = fmt.Sprintf("dependency '%s' revision is not up to date", d.Key)
		default:
			continue
		}
		if first == "" {
			first = msg
		}
		waiting = append(waiting, d.Key)
	}
	if len(waiting) > 0 {
		return Verdict{Reason: ReasonDependencyNotReady, Message: first, WaitingOn: waiting,
			RequeueAfter: t.DependencyRequeue}
	}
	return Verdict{Proceed: true}
}

// Outcome is how a reconciliation ended.
type Outcome string

const (
	// Succeeded: applied, pruned and healthy.
	Succeeded Outcome = "succeeded"
	// Failed: any step failed; retried at RetryInterval.
	Failed Outcome = "failed"
	// Stalled: will not succeed without a spec change (invalid spec); not requeued.
	Stalled Outcome = "stalled"
)

// RequeueAfter is when to reconcile again after an outcome: the interval after success, the retry
// interval after failure, never when stalled (a spec change requeues it). jitter, if not nil, is applied
// to the success interval (Flux spreads periodic reconciles with a jittered interval).
func RequeueAfter(o Outcome, t Timing, jitter func(time.Duration) time.Duration) time.Duration {
	switch o {
	case Succeeded:
		if jitter != nil {
			return jitter(t.Interval)
		}
		return t.Interval
	case Failed:
		return t.RetryInterval
	default:
		return 0
	}
}
