package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// releaseState is helm-controller's view of a release in storage against the HelmRelease
// (internal/reconcile/state.go): what decides the next action.
type releaseState string

const (
	stateAbsent    releaseState = "Absent"
	stateUnmanaged releaseState = "Unmanaged"
	stateOutOfSync releaseState = "OutOfSync"
	stateLocked    releaseState = "Locked"
	stateInSync    releaseState = "InSync"
	stateFailed    releaseState = "Failed"
	stateDrifted   releaseState = "Drifted"  // in sync in storage, but the cluster differs (driftDetection)
	stateUntested  releaseState = "Untested" // in sync, tests enabled and not run on this release
)

// Helm actions, and their kinds: a release action makes the desired release, a remediation undoes a
// failed one; each runs at most once per reconciliation, and a remediation ends it (helm-controller's
// cleanReleaseStrategy).
const (
	actInstall   = "install"
	actUpgrade   = "upgrade"
	actRollback  = "rollback"
	actUninstall = "uninstall-remediation"
	actUnlock    = "unlock"
	actTest      = "test"
	actDrift     = "correct cluster drift"
)

func actionType(act string) string {
	switch act {
	case actInstall, actUpgrade:
		return "release"
	case actRollback, actUninstall:
		return "remediate"
	case actDrift:
		return "drift-correction"
	}
	return act
}

// helm-controller's messages (internal/reconcile).
const (
	fmtInstallFailure              = "Helm install failed for release %s/%s with chart %s@%s: %s"
	fmtInstallSuccess              = "Helm install succeeded for release %s with chart %s"
	fmtUpgradeFailure              = "Helm upgrade failed for release %s/%s with chart %s@%s: %s"
	fmtUpgradeSuccess              = "Helm upgrade succeeded for release %s with chart %s"
	fmtRollbackRemediationFailure  = "Helm rollback to previous release %s with chart %s failed: %s"
	fmtRollbackRemediationSuccess  = "Helm rollback to previous release %s with chart %s succeeded"
	fmtUninstallRemediationFailure = "Helm uninstall remediation for release %s with chart %s failed: %s"
	fmtUninstallRemediationSuccess = "Helm uninstall remediation for release %s with chart %s succeeded"
)

// errExceededMaxRetries: the active remediation's retries are used up; the HelmRelease stalls until
// its chart, values or generation change.
var errExceededMaxRetries = errors.New("exceeded maximum retries")

// releaseHelm runs helm-controller's atomic release: it determines the release's state, runs the next
// action (install, upgrade, unlock, or a remediation: rollback or uninstall), and repeats until the
// release is in sync, a remediation ran, or the retries are used up. Status and events follow
// helm-controller's: conditions Released, Remediated, Ready (summarized from them), Reconciling,
// Stalled; history, failure counters, lastAttempted* fields.
func (r *Reconciler) releaseHelm(ctx context.Context, k core.Key, st *hrState, obj *helmv2.HelmRelease, ch *chart.Chart, values map[string]any) core.Outcome {
	gen := obj.Generation
	rev, cd := ch.Metadata.Version, configDigest(values)
	acts, err := r.helmActions(obj)
	if err != nil {
		return r.hrFinish(k, st, obj, "FactoryError", err, core.Failed)
	}
	r.mu.Lock()
	s := st.obj.Status.DeepCopy()
	r.mu.Unlock()
	if s.LastAttemptedRevision != rev || s.LastAttemptedConfigDigest != cd || s.LastAttemptedGeneration != gen {
		s.Failures, s.InstallFailures, s.UpgradeFailures = 0, 0, 0 // a new desired state gets its retries again
	}
	s.LastAttemptedGeneration, s.LastAttemptedRevision, s.LastAttemptedConfigDigest = gen, rev, cd
	s.StorageNamespace = obj.GetStorageNamespace()
	work := obj.DeepCopy()
	work.Status = *s
	done := map[string]bool{}
	for {
		state, drift, err := r.releaseStateOf(ctx, acts, work, rev, cd)
		if err != nil {
			r.setCondition(&work.Status.Conditions, gen, meta.ReadyCondition, metav1.ConditionFalse, "StateError", "Could not determine release state: "+err.Error())
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "StateError", err, core.Failed)
		}
		switch state {
		case stateDrifted:
			r.driftDetected(k, work, drift)
		case stateUntested:
			// An untested release in sync (e.g. the result of a rollback matching the new desired
			// state) counts as upgraded before it is tested.
			r.replaceRemediated(work)
		}
		act, err := nextAction(work, state)
		if errors.Is(err, errExceededMaxRetries) {
			rem := work.GetActiveRemediation()
			msg := fmt.Sprintf("Failed to %s after %d attempt(s)", work.Status.LastAttemptedReleaseAction, rem.GetFailureCount(work))
			apimeta.RemoveStatusCondition(&work.Status.Conditions, meta.ReconcilingCondition)
			r.setCondition(&work.Status.Conditions, gen, meta.StalledCondition, metav1.ConditionTrue, "RetriesExceeded", msg)
			work.Status.ObservedGeneration = gen
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "", nil, core.Stalled)
		}
		if act == "" {
			r.inSync(work, state)
			work.Status.ObservedGeneration = gen
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "", nil, core.Succeeded)
		}
		if done[actionType(act)] {
			msg := readyMessage(work)
			r.setCondition(&work.Status.Conditions, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingWithRetryReason, msg)
			work.Status.ObservedGeneration = gen
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "", nil, core.Failed)
		}
		progress := fmt.Sprintf("Running '%s' action with timeout of %s", act, actionTimeout(work, act))
		r.setCondition(&work.Status.Conditions, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, progress)
		if actionType(act) == "release" {
			r.setCondition(&work.Status.Conditions, gen, meta.ReadyCondition, metav1.ConditionUnknown, meta.ProgressingReason, progress)
		}
		r.hrStatus(k, st, &work.Status)

		if act == actDrift {
			r.setCondition(&work.Status.Conditions, gen, meta.ReadyCondition, metav1.ConditionUnknown, meta.ProgressingReason, "correcting cluster drift")
			r.hrStatus(k, st, &work.Status)
		}
		if err := r.runAction(ctx, k, acts, work, act, ch, values, drift); err != nil {
			// An action that left nothing to act on (a release that was not stored, a test that could
			// not run): retried with backoff.
			summarizeHelmRelease(r, work)
			if apimeta.IsStatusConditionTrue(work.Status.Conditions, meta.ReadyCondition) {
				r.setCondition(&work.Status.Conditions, gen, meta.ReadyCondition, metav1.ConditionFalse, "ReconcileError", err.Error())
			}
			work.Status.ObservedGeneration = gen
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "", nil, core.Failed)
		}
		summarizeHelmRelease(r, work)
		done[actionType(act)] = true
		r.hrStatus(k, st, &work.Status)
		if actionType(act) != "remediate" {
			continue
		}
		rem := work.GetActiveRemediation()
		if rem == nil || !rem.RetriesExhausted(work) || rem.IsUninstallAfterUpgrade() {
			r.setCondition(&work.Status.Conditions, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingWithRetryReason, readyMessage(work))
			work.Status.ObservedGeneration = gen
			r.hrStatus(k, st, &work.Status)
			return r.hrFinish(k, st, work, "", nil, core.Failed)
		}
		msg := fmt.Sprintf("Failed to %s after %d attempt(s)", work.Status.LastAttemptedReleaseAction, rem.GetFailureCount(work))
		apimeta.RemoveStatusCondition(&work.Status.Conditions, meta.ReconcilingCondition)
		r.setCondition(&work.Status.Conditions, gen, meta.StalledCondition, metav1.ConditionTrue, "RetriesExceeded", msg)
		work.Status.ObservedGeneration = gen
		r.hrStatus(k, st, &work.Status)
		return r.hrFinish(k, st, work, "", nil, core.Stalled)
	}
}

func readyMessage(o *helmv2.HelmRelease) string {
	if c := apimeta.FindStatusCondition(o.Status.Conditions, meta.ReadyCondition); c != nil {
		return c.Message
	}
	return ""
}

func actionTimeout(o *helmv2.HelmRelease, act string) metav1.Duration {
	switch act {
	case actInstall:
		return o.GetInstall().GetTimeout(o.GetTimeout())
	case actUpgrade:
		return o.GetUpgrade().GetTimeout(o.GetTimeout())
	case actRollback:
		return o.GetRollback().GetTimeout(o.GetTimeout())
	case actUninstall:
		return o.GetUninstall().GetTimeout(o.GetTimeout())
	case actTest:
		return o.GetTest().GetTimeout(o.GetTimeout())
	}
	return o.GetTimeout()
}

// releaseStateOf compares the newest release in storage with the history and the desired chart
// version and values.
func (r *Reconciler) releaseStateOf(ctx context.Context, acts *helm.Actions, o *helmv2.HelmRelease, rev, cd string) (releaseState, helm.Drift, error) {
	last, err := acts.Last()
	if err != nil {
		return "", nil, err
	}
	if last == nil {
		return stateAbsent, nil, nil
	}
	if last.Info != nil && last.Info.Status.IsPending() {
		return stateLocked, nil, nil
	}
	if o.Status.History.Len() == 0 {
		if last.Info != nil && last.Info.Status == rcommon.StatusUninstalled {
			return stateAbsent, nil, nil
		}
		return stateUnmanaged, nil, nil
	}
	cur := o.Status.History.Latest()
	if !cur.Targets(last.Name, last.Namespace, last.Version) {
		return stateUnmanaged, nil, nil
	}
	switch last.Info.Status {
	case rcommon.StatusFailed:
		return stateFailed, nil, nil
	case rcommon.StatusUninstalled:
		return stateAbsent, nil, nil
	case rcommon.StatusDeployed:
	default:
		return stateOutOfSync, nil, nil
	}
	if last.Chart == nil || last.Chart.Metadata == nil || last.Chart.Metadata.Version != rev || configDigest(last.Config) != cd {
		return stateOutOfSync, nil, nil
	}
	// A new generation whose post-renderers or common metadata changed renders differently: upgrade
	// (helm-controller compares the digests observed at the last release).
	if o.Status.ObservedGeneration != o.Generation &&
		(postRenderersDigest(o) != o.Status.ObservedPostRenderersDigest || commonMetadataDigest(o) != o.Status.ObservedCommonMetadataDigest) {
		return stateOutOfSync, nil, nil
	}
	if t := o.GetTest(); t.Enable {
		if !cur.HasBeenTested() {
			return stateUntested, nil, nil
		}
		if rem := o.GetActiveRemediation(); rem != nil && !rem.MustIgnoreTestFailures(t.IgnoreFailures) && cur.HasTestInPhase(hookPhaseFailed) {
			return stateFailed, nil, nil
		}
	}
	if o.GetDriftDetection().MustDetectChanges() {
		rules, err := ignoreRules(o)
		if err != nil {
			return "", nil, err
		}
		drift, err := acts.Diff(ctx, last, rules)
		if err != nil && !drift.HasChanges() {
			return "", nil, fmt.Errorf("unable to determine cluster state: %w", err)
		}
		if err != nil {
			r.log.Error("diff of release against cluster state completed with error", "release", last.Namespace+"/"+last.Name, "error", err)
		}
		if drift.HasChanges() {
			return stateDrifted, drift, nil
		}
	}
	return stateInSync, nil, nil
}

// nextAction is helm-controller's AtomicRelease.actionForState, for the remediation strategy (the
// retry strategy is refused at validation): "" when the release is in sync.
func nextAction(o *helmv2.HelmRelease, state releaseState) (string, error) {
	switch state {
	case stateInSync:
		return "", nil
	case stateDrifted:
		if o.GetDriftDetection().GetMode() == helmv2.DriftDetectionEnabled {
			return actDrift, nil
		}
		return "", nil
	case stateUntested:
		return actTest, nil
	case stateLocked:
		return actUnlock, nil
	case stateAbsent:
		if o.GetInstall().GetRemediation().RetriesExhausted(o) {
			return "", fmt.Errorf("%w: cannot install release", errExceededMaxRetries)
		}
		return actInstall, nil
	case stateUnmanaged:
		o.Status.History = nil
		return actUpgrade, nil
	case stateOutOfSync:
		if o.GetUpgrade().GetRemediation().RetriesExhausted(o) {
			return "", fmt.Errorf("%w: cannot upgrade release", errExceededMaxRetries)
		}
		return actUpgrade, nil
	case stateFailed:
		rem := o.GetActiveRemediation()
		if rem == nil || rem.GetFailureCount(o) <= 0 {
			return actUpgrade, nil
		}
		if rem.RetriesExhausted(o) && !rem.MustRemediateLastFailure() {
			return "", fmt.Errorf("%w: cannot remediate failed release", errExceededMaxRetries)
		}
		ignoreTests := rem.MustIgnoreTestFailures(o.GetTest().IgnoreFailures)
		o.Status.History.Truncate(ignoreTests)
		if rem.GetStrategy() == helmv2.RollbackRemediationStrategy {
			if o.Status.History.Previous(ignoreTests) == nil {
				return actUpgrade, nil // nothing to roll back to: the upgrade is attempted again
			}
			return actRollback, nil
		}
		return actUninstall, nil
	}
	return "", fmt.Errorf("unknown release state %q", state)
}

// runAction runs one Helm action and records its outcome in o's status, with helm-controller's
// conditions and events. The error is for an action that left nothing to act on (an install or
// upgrade that stored no release, a test that did not run); other failures are recorded in the status.
func (r *Reconciler) runAction(ctx context.Context, k core.Key, acts *helm.Actions, o *helmv2.HelmRelease, act string, ch *chart.Chart,
	values map[string]any, drift helm.Drift) error {
	gen := o.Generation
	s := &o.Status
	name, ns := releaseName(o), o.GetReleaseNamespace()
	chartName, chartVersion := ch.Metadata.Name, ch.Metadata.Version
	switch act {
	case actInstall, actUpgrade:
		var err error
		var opts helm.Options
		stored := false
		if act == actInstall {
			opts = installOptions(o)
			opts.PostRenderer, opts.PostRenderStrategy = postRenderer(o), postRenderStrategy(o)
			s.LastAttemptedReleaseAction = helmv2.ReleaseActionInstall
			if policy := installCRDsPolicy(o); policy != helmv2.Skip {
				_, err = acts.ApplyCRDs(ctx, ch, policy == helmv2.CreateReplace)
			}
			if err == nil {
				_, err = acts.Install(ctx, ch, values, opts)
			}
		} else {
			opts = upgradeOptions(o)
			opts.PostRenderer, opts.PostRenderStrategy = postRenderer(o), postRenderStrategy(o)
			s.LastAttemptedReleaseAction = helmv2.ReleaseActionUpgrade
			switch o.GetUpgrade().CRDs {
			case helmv2.Create, helmv2.CreateReplace:
				_, err = acts.ApplyCRDs(ctx, ch, o.GetUpgrade().CRDs == helmv2.CreateReplace)
			}
			if err == nil {
				_, err = acts.Upgrade(ctx, ch, values, opts)
			}
		}
		before := s.History.Latest()
		observe(acts, &s.History, s.LastAttemptedReleaseAction)
		// A new record, or a new record of the same version (an install after an uninstall
		// remediation purged the storage), is a stored release.
		if l := s.History.Latest(); l != nil && (before == nil || l.Version != before.Version || l.Digest != before.Digest) {
			stored = true
		}
		if err != nil {
			format, reason := fmtInstallFailure, helmv2.InstallFailedReason
			if act == actUpgrade {
				format, reason = fmtUpgradeFailure, helmv2.UpgradeFailedReason
			}
			msg := fmt.Sprintf(format, ns, name, chartName, chartVersion, strings.TrimSpace(err.Error()))
			s.Failures++
			if stored {
				if act == actInstall {
					s.InstallFailures++
				} else {
					s.UpgradeFailures++
				}
			}
			r.setCondition(&s.Conditions, gen, helmv2.ReleasedCondition, metav1.ConditionFalse, reason, msg)
			r.emit(KindHelmRelease, k, EventWarning, reason, msg, chartVersion)
			if !stored {
				// Nothing to remediate (e.g. the chart did not render): retried with backoff.
				return err
			}
			return nil
		}
		cur := s.History.Latest()
		format, reason := fmtInstallSuccess, helmv2.InstallSucceededReason
		if act == actUpgrade {
			format, reason = fmtUpgradeSuccess, helmv2.UpgradeSucceededReason
		}
		msg := fmt.Sprintf(format, cur.FullReleaseName(), cur.VersionedChartName())
		apimeta.RemoveStatusCondition(&s.Conditions, helmv2.RemediatedCondition)
		r.setCondition(&s.Conditions, gen, helmv2.ReleasedCondition, metav1.ConditionTrue, reason, msg)
		r.emit(KindHelmRelease, k, EventNormal, reason, msg, chartVersion)
	case actRollback:
		prev := s.History.Previous(o.GetActiveRemediation().MustIgnoreTestFailures(o.GetTest().IgnoreFailures))
		err := acts.Rollback(prev.Version, rollbackOptions(o))
		observe(acts, &s.History, helmv2.ReleaseActionRollback)
		if err != nil {
			msg := fmt.Sprintf(fmtRollbackRemediationFailure, prev.FullReleaseName(), prev.VersionedChartName(), strings.TrimSpace(err.Error()))
			r.setCondition(&s.Conditions, gen, helmv2.RemediatedCondition, metav1.ConditionFalse, helmv2.RollbackFailedReason, msg)
			r.emit(KindHelmRelease, k, EventWarning, helmv2.RollbackFailedReason, msg, prev.ChartVersion)
			return nil
		}
		msg := fmt.Sprintf(fmtRollbackRemediationSuccess, prev.FullReleaseName(), prev.VersionedChartName())
		r.setCondition(&s.Conditions, gen, helmv2.RemediatedCondition, metav1.ConditionTrue, helmv2.RollbackSucceededReason, msg)
		r.emit(KindHelmRelease, k, EventNormal, helmv2.RollbackSucceededReason, msg, prev.ChartVersion)
	case actUninstall:
		cur := s.History.Latest()
		_, err := acts.Uninstall(uninstallOptions(o))
		observe(acts, &s.History, helmv2.ReleaseActionUninstallRemediation)
		if err != nil {
			msg := fmt.Sprintf(fmtUninstallRemediationFailure, cur.FullReleaseName(), cur.VersionedChartName(), strings.TrimSpace(err.Error()))
			r.setCondition(&s.Conditions, gen, helmv2.RemediatedCondition, metav1.ConditionFalse, helmv2.UninstallFailedReason, msg)
			r.emit(KindHelmRelease, k, EventWarning, helmv2.UninstallFailedReason, msg, cur.ChartVersion)
			return nil
		}
		msg := fmt.Sprintf(fmtUninstallRemediationSuccess, cur.FullReleaseName(), cur.VersionedChartName())
		r.setCondition(&s.Conditions, gen, helmv2.RemediatedCondition, metav1.ConditionTrue, helmv2.UninstallSucceededReason, msg)
		r.emit(KindHelmRelease, k, EventNormal, helmv2.UninstallSucceededReason, msg, cur.ChartVersion)
	case actUnlock:
		last, err := acts.Last()
		if err == nil && last != nil {
			err = acts.Unlock(last)
		}
		observe(acts, &s.History, s.LastAttemptedReleaseAction)
		if err != nil {
			r.setCondition(&s.Conditions, gen, helmv2.ReleasedCondition, metav1.ConditionFalse, "UnlockFailed", err.Error())
			r.emit(KindHelmRelease, k, EventWarning, "UnlockFailed", err.Error(), chartVersion)
		}
	case actTest:
		return r.runTest(ctx, k, acts, o)
	case actDrift:
		r.correctDrift(ctx, k, acts, o, drift)
	}
	return nil
}

// inSync records a release that needs nothing: the history kept back to the previous successful
// release, a stale Remediated or failed Released replaced by success (helm-controller's in-sync case).
func (r *Reconciler) inSync(o *helmv2.HelmRelease, state releaseState) {
	s := &o.Status
	ignoreTests := o.GetTest().IgnoreFailures
	if rem := o.GetActiveRemediation(); rem != nil {
		ignoreTests = rem.MustIgnoreTestFailures(ignoreTests)
	}
	s.History.Truncate(ignoreTests)
	cur := s.History.Latest()
	apimeta.RemoveStatusCondition(&s.Conditions, meta.ReconcilingCondition)
	r.replaceRemediated(o)
	if state == stateInSync && o.GetDriftDetection().MustDetectChanges() {
		r.setCondition(&s.Conditions, o.Generation, helmv2.DriftedCondition, metav1.ConditionFalse, helmv2.NoDriftDetectedReason,
			"No drift detected against the cluster state")
	}
	if c := apimeta.FindStatusCondition(s.Conditions, helmv2.ReleasedCondition); c != nil && c.Status != metav1.ConditionTrue {
		switch c.Reason {
		case helmv2.InstallFailedReason:
			r.setCondition(&s.Conditions, o.Generation, helmv2.ReleasedCondition, metav1.ConditionTrue, helmv2.InstallSucceededReason,
				fmt.Sprintf(fmtInstallSuccess, cur.FullReleaseName(), cur.VersionedChartName()))
		default:
			r.setCondition(&s.Conditions, o.Generation, helmv2.ReleasedCondition, metav1.ConditionTrue, helmv2.UpgradeSucceededReason,
				fmt.Sprintf(fmtUpgradeSuccess, cur.FullReleaseName(), cur.VersionedChartName()))
		}
	}
	summarizeHelmRelease(r, o)
}

// summarizeHelmRelease is helm-controller's summarize: Ready is taken from the newest of Remediated,
// TestSuccess (when tests are enabled and their failures not ignored) and Released, in that order of
// priority; a Remediated one means the desired release is not there (Ready False). A Ready True drops
// Stalled. TestSuccess goes when tests are disabled; the observed post-renderers and common metadata
// digests are those of the current spec.
func summarizeHelmRelease(r *Reconciler, o *helmv2.HelmRelease) {
	conds := &o.Status.Conditions
	sum := []string{helmv2.RemediatedCondition, helmv2.ReleasedCondition}
	if t := o.GetTest(); t.Enable && !t.IgnoreFailures {
		sum = []string{helmv2.RemediatedCondition, helmv2.TestSuccessCondition, helmv2.ReleasedCondition}
	}
	if !o.GetTest().Enable {
		apimeta.RemoveStatusCondition(conds, helmv2.TestSuccessCondition)
	}
	o.Status.ObservedPostRenderersDigest = postRenderersDigest(o)
	o.Status.ObservedCommonMetadataDigest = commonMetadataDigest(o)
	sorted := slices.Clone(*conds)
	sort.SliceStable(sorted, func(i, j int) bool {
		ip := slices.Index(sum, sorted[i].Type)
		if ip < 0 {
			return false
		}
		jp := slices.Index(sum, sorted[j].Type)
		if jp < 0 {
			return true
		}
		return sorted[i].ObservedGeneration >= sorted[j].ObservedGeneration && ip < jp
	})
	if len(sorted) == 0 || !slices.Contains(sum, sorted[0].Type) {
		return
	}
	from := sorted[0]
	status := from.Status
	if from.Type == helmv2.RemediatedCondition {
		status = metav1.ConditionFalse
	}
	if status == metav1.ConditionTrue {
		apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
	}
	r.setCondition(conds, o.Generation, meta.ReadyCondition, status, from.Reason, from.Message)
}

// hrStatus publishes a working status as the HelmRelease's current one.
func (r *Reconciler) hrStatus(k core.Key, st *hrState, s *helmv2.HelmReleaseStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.deleted {
		return
	}
	lh := st.obj.Status.LastHandledReconcileAt
	st.obj.Status = *s.DeepCopy()
	st.obj.Status.LastHandledReconcileAt = lh
	r.published(KindHelmRelease, k)
}

// hrFinish schedules the next reconciliation after an atomic release: the interval when it is in sync
// or stalled, a backoff when it must go on (a remediation ran) or failed.
func (r *Reconciler) hrFinish(k core.Key, st *hrState, o *helmv2.HelmRelease, reason string, err error, outcome core.Outcome) core.Outcome {
	r.mu.Lock()
	if err != nil && !st.deleted {
		r.setCondition(&st.obj.Status.Conditions, o.Generation, meta.ReadyCondition, metav1.ConditionFalse, reason, err.Error())
		r.published(KindHelmRelease, k)
	}
	st.lastMsg = ""
	fails := o.Status.Failures
	r.mu.Unlock()
	next := o.Spec.Interval.Duration
	if outcome == core.Failed {
		next = min(r.prof.SourceRetryBase<<min(fails, 30), next)
	} else {
		next = r.jitter(next)
	}
	r.mu.Lock()
	if !st.deleted {
		r.scheduleLocked(KindHelmRelease, k, next)
	}
	r.mu.Unlock()
	if err != nil {
		r.emit(KindHelmRelease, k, EventWarning, reason, err.Error(), "")
	}
	return outcome
}
