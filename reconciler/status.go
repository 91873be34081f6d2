package reconciler

import (
	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// setCondition sets a condition the way fluxcd/pkg/runtime/conditions does: the transition time moves
// only when the status changes.
func (r *Reconciler) setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(r.clk.Now())})
}

// markProgressing: Ready Unknown and Reconciling True, as kustomize-controller sets at the start of a
// reconciliation.
func (r *Reconciler) markProgressing(conds *[]metav1.Condition, gen int64, msg string) {
	r.setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionUnknown, meta.ProgressingReason, "Reconciliation in progress")
	r.setCondition(conds, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, msg)
}

// markFailed: Ready False with the reason; Reconciling True (ProgressingWithRetry) while it will be
// retried, or Stalled True when it will not succeed without a spec change.
func (r *Reconciler) markFailed(conds *[]metav1.Condition, gen int64, reason, msg string, stalled bool) {
	r.setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionFalse, reason, msg)
	if stalled {
		apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
		r.setCondition(conds, gen, meta.StalledCondition, metav1.ConditionTrue, reason, msg)
		return
	}
	apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
	r.setCondition(conds, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingWithRetryReason, msg)
}

// markReady: Ready True; Reconciling and Stalled removed.
func (r *Reconciler) markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	r.setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionTrue, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
}
