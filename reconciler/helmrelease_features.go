package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
	"github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/postrenderer"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apierrutil "k8s.io/apimachinery/pkg/util/errors"
	kustypes "sigs.k8s.io/kustomize/api/types"
)

// This file holds what a HelmRelease adds to a plain install or upgrade, each as helm-controller
// v1.6.4 does it: post-renderers, `helm test`, and drift detection and correction.

// hookPhaseFailed is Helm's phase of a hook that failed (release/v1 HookPhaseFailed).
const hookPhaseFailed = "Failed"

// postRenderer is helm-controller's chain of post-renderers (internal/postrender BuildPostRenderers):
// each spec.postRenderers[].kustomize in order, then spec.commonMetadata, then the origin labels.
func postRenderer(o *helmv2.HelmRelease) postrenderer.PostRenderer {
	var chain helm.Chain
	for _, p := range o.Spec.PostRenderers {
		if p.Kustomize == nil {
			continue
		}
		k := &helm.Kustomize{}
		for _, pt := range p.Kustomize.Patches {
			k.Patches = append(k.Patches, kustypes.Patch{Patch: pt.Patch, Target: kustomizeSelector(pt.Target)})
		}
		for _, im := range p.Kustomize.Images {
			k.Images = append(k.Images, kustypes.Image{Name: im.Name, NewName: im.NewName, NewTag: im.NewTag, Digest: im.Digest})
		}
		chain = append(chain, k)
	}
	if cm := o.Spec.CommonMetadata; cm != nil {
		chain = append(chain, helm.Metadata{Labels: cm.Labels, Annotations: cm.Annotations})
	}
	return append(chain, helm.OriginLabels(helmv2.GroupVersion.Group, o.Namespace, o.Name))
}

func kustomizeSelector(s *kustomize.Selector) *kustypes.Selector {
	if s == nil {
		return nil
	}
	out := &kustypes.Selector{LabelSelector: s.LabelSelector, AnnotationSelector: s.AnnotationSelector}
	out.Group, out.Version, out.Kind, out.Name, out.Namespace = s.Group, s.Version, s.Kind, s.Name, s.Namespace
	return out
}

// postRenderStrategy is spec.postRenderStrategy as Helm's; "" is Helm 4's default, combined
// (helm-controller's default without its UseHelm3Defaults feature gate).
func postRenderStrategy(o *helmv2.HelmRelease) action.PostRenderStrategy {
	switch o.GetPostRenderStrategy() {
	case helmv2.PostRenderStrategyNoHooks:
		return action.PostRenderStrategyNoHooks
	case helmv2.PostRenderStrategySeparate:
		return action.PostRenderStrategySeparate
	}
	return action.PostRenderStrategyCombined
}

// specDigest is helm-controller's digest of a spec field: SHA-256 of its JSON encoding (with the
// encoder's trailing newline), "" when the field is unset.
func specDigest(v any) string {
	d := digest.Canonical.Digester()
	if err := json.NewEncoder(d.Hash()).Encode(v); err != nil {
		return ""
	}
	return d.Digest().String()
}

func postRenderersDigest(o *helmv2.HelmRelease) string {
	if o.Spec.PostRenderers == nil {
		return ""
	}
	return specDigest(o.Spec.PostRenderers)
}

func commonMetadataDigest(o *helmv2.HelmRelease) string {
	if o.Spec.CommonMetadata == nil {
		return ""
	}
	return specDigest(o.Spec.CommonMetadata)
}

// ignoreRules are spec.driftDetection.ignore as the diff's rules.
func ignoreRules(o *helmv2.HelmRelease) ([]jsondiff.IgnoreRule, error) {
	var out []jsondiff.IgnoreRule
	for _, ir := range o.GetDriftDetection().Ignore {
		rule := jsondiff.IgnoreRule{Paths: ir.Paths}
		if t := ir.Target; t != nil {
			rule.Selector = &jsondiff.Selector{Group: t.Group, Version: t.Version, Kind: t.Kind, Name: t.Name, Namespace: t.Namespace,
				AnnotationSelector: t.AnnotationSelector, LabelSelector: t.LabelSelector}
		}
		out = append(out, rule)
	}
	if _, err := jsondiff.CompileIgnoreRules(out); err != nil {
		return nil, err
	}
	return out, nil
}

// replaceRemediated turns a True Remediated condition into Released True UpgradeSucceeded: the
// current release (the result of a rollback) matches the desired state.
func (r *Reconciler) replaceRemediated(o *helmv2.HelmRelease) {
	s := &o.Status
	if !apimeta.IsStatusConditionTrue(s.Conditions, helmv2.RemediatedCondition) {
		return
	}
	cur := s.History.Latest()
	apimeta.RemoveStatusCondition(&s.Conditions, helmv2.RemediatedCondition)
	r.setCondition(&s.Conditions, o.Generation, helmv2.ReleasedCondition, metav1.ConditionTrue, helmv2.UpgradeSucceededReason,
		fmt.Sprintf(fmtUpgradeSuccess, cur.FullReleaseName(), cur.VersionedChartName()))
}

// helm-controller's test messages (internal/reconcile/test.go).
const (
	fmtTestFailure = "Helm test failed for release %s with chart %s: %s"
	fmtTestSuccess = "Helm test succeeded for release %s with chart %s: %s"
)

// runTest runs the release's test hooks (spec.test.filters select them) and records the outcome as
// helm-controller's Test action: the latest history entry gets the test hooks' phases, TestSuccess
// True (TestSucceeded) or False (TestFailed, a failure counted against the active remediation unless
// its failures are ignored), with an event. It returns an error only when no test result could be
// observed.
func (r *Reconciler) runTest(ctx context.Context, k core.Key, acts *helm.Actions, o *helmv2.HelmRelease) error {
	s := &o.Status
	cur := s.History.Latest()
	if cur == nil {
		return errors.New("no latest release in the history: required for test")
	}
	t := o.GetTest()
	var include, exclude []string
	for _, f := range t.GetFilters() {
		if f.Exclude {
			exclude = append(exclude, f.Name)
		} else {
			include = append(include, f.Name)
		}
	}
	rel, err := acts.Test(ctx, t.GetTimeout(o.GetTimeout()).Duration, include, exclude)
	switch {
	case rel != nil && !cur.Targets(rel.Name, rel.Namespace, rel.Version):
		err = fmt.Errorf("tested release %s/%s.v%d != current release %s/%s.v%d", rel.Namespace, rel.Name, rel.Version,
			cur.Namespace, cur.Name, cur.Version)
	case rel != nil:
		tested := snapshotOf(rel)
		tested.Action = cur.Action
		hooks := map[string]*helmv2.TestHookStatus{}
		for name, run := range helm.TestHooks(rel) {
			if !testHookSelected(name, include, exclude) {
				continue
			}
			var h *helmv2.TestHookStatus
			if run.Phase != "" {
				h = &helmv2.TestHookStatus{LastStarted: metav1.NewTime(run.StartedAt), LastCompleted: metav1.NewTime(run.CompletedAt),
					Phase: run.Phase.String()}
			}
			hooks[name] = h
		}
		tested.SetTestHooks(hooks)
		s.History[0] = tested
		cur = tested
	}
	if err != nil {
		msg := fmt.Sprintf(fmtTestFailure, cur.FullReleaseName(), cur.VersionedChartName(), strings.TrimSpace(err.Error()))
		s.Failures++
		r.setCondition(&s.Conditions, o.Generation, helmv2.TestSuccessCondition, metav1.ConditionFalse, helmv2.TestFailedReason, msg)
		r.emit(KindHelmRelease, k, EventWarning, helmv2.TestFailedReason, msg, cur.ChartVersion)
		if !cur.HasBeenTested() {
			return err
		}
		if rem := o.GetActiveRemediation(); rem != nil && !rem.MustIgnoreTestFailures(t.IgnoreFailures) {
			rem.IncrementFailureCount(o)
		}
		return nil
	}
	hookMsg := "no test hooks"
	if n := len(cur.GetTestHooks()); n == 1 {
		hookMsg = "1 test hook completed successfully"
	} else if n > 1 {
		hookMsg = fmt.Sprintf("%d test hooks completed successfully", n)
	}
	msg := fmt.Sprintf(fmtTestSuccess, cur.FullReleaseName(), cur.VersionedChartName(), hookMsg)
	r.setCondition(&s.Conditions, o.Generation, helmv2.TestSuccessCondition, metav1.ConditionTrue, helmv2.TestSucceededReason, msg)
	r.emit(KindHelmRelease, k, EventNormal, helmv2.TestSucceededReason, msg, cur.ChartVersion)
	return nil
}

// testHookSelected: a hook is tested unless excluded by name, and when names are included, only if
// it is one of them.
func testHookSelected(name string, include, exclude []string) bool {
	for _, e := range exclude {
		if e == name {
			return false
		}
	}
	if len(include) == 0 {
		return true
	}
	for _, i := range include {
		if i == name {
			return true
		}
	}
	return false
}

// driftDetected records a drift found at a reconciliation (helm-controller detects drift at each
// reconciliation, not by watching the release's objects): a DriftDetected warning event and the
// Drifted condition, both with the summary of what changed.
func (r *Reconciler) driftDetected(k core.Key, o *helmv2.HelmRelease, d helm.Drift) {
	cur := o.Status.History.Latest()
	msg := fmt.Sprintf("Cluster state of release %s has drifted from the desired state:\n%s", cur.FullReleaseName(), d.Summary())
	r.emit(KindHelmRelease, k, EventWarning, helmv2.DriftDetectedReason, msg, cur.ChartVersion)
	r.setCondition(&o.Status.Conditions, o.Generation, helmv2.DriftedCondition, metav1.ConditionTrue, helmv2.DriftDetectedReason, msg)
}

// correctDrift puts the drifted objects back (driftDetection mode enabled), with helm-controller's
// DriftCorrected or DriftCorrectionFailed event.
func (r *Reconciler) correctDrift(ctx context.Context, k core.Key, acts *helm.Actions, o *helmv2.HelmRelease, d helm.Drift) {
	ctx, cancel := context.WithTimeout(ctx, o.GetTimeout().Duration)
	defer cancel()
	done, err := acts.Correct(ctx, d)
	cur := o.Status.History.Latest()
	if err != nil {
		var b strings.Builder
		b.WriteString("Failed to ")
		if len(done) > 0 {
			b.WriteString("partially ")
		}
		fmt.Fprintf(&b, "correct cluster state of release %s:\n", cur.FullReleaseName())
		var agg apierrutil.Aggregate
		if errors.As(err, &agg) {
			for i, e := range agg.Errors() {
				if i > 0 {
					b.WriteString("\n")
				}
				b.WriteString(e.Error())
			}
		} else {
			b.WriteString(err.Error())
		}
		if len(done) > 0 {
			b.WriteString("\n\nSuccessful corrections:\n" + strings.Join(done, "\n"))
		}
		r.emit(KindHelmRelease, k, EventWarning, "DriftCorrectionFailed", b.String(), cur.ChartVersion)
		return
	}
	if len(done) > 0 {
		r.emit(KindHelmRelease, k, EventNormal, "DriftCorrected",
			fmt.Sprintf("Cluster state of release %s has been corrected:\n%s", cur.FullReleaseName(), strings.Join(done, "\n")), cur.ChartVersion)
	}
}
