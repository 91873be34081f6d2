package arcagent

import (
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCurrentConditions(t *testing.T) {
	at := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	ready := func(status metav1.ConditionStatus, reason string, gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: meta.ReadyCondition, Status: status, Reason: reason, Message: "m", ObservedGeneration: gen, LastTransitionTime: at}}
	}
	for name, tc := range map[string]struct {
		generation int64
		suspended  bool
		conds      []metav1.Condition
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		"current success":              {2, false, ready(metav1.ConditionTrue, meta.ReconciliationSucceededReason, 2), metav1.ConditionTrue, meta.ReconciliationSucceededReason},
		"current failure":              {2, false, ready(metav1.ConditionFalse, "ArtifactFailed", 2), metav1.ConditionFalse, "ArtifactFailed"},
		"stale success is progressing": {3, false, ready(metav1.ConditionTrue, meta.ReconciliationSucceededReason, 2), metav1.ConditionUnknown, meta.ProgressingReason},
		"stale failure is progressing": {3, false, ready(metav1.ConditionFalse, "ArtifactFailed", 2), metav1.ConditionUnknown, meta.ProgressingReason},
		"suspended keeps its verdict":  {3, true, ready(metav1.ConditionTrue, meta.ReconciliationSucceededReason, 2), metav1.ConditionTrue, meta.ReconciliationSucceededReason},
	} {
		t.Run(name, func(t *testing.T) {
			got := apimeta.FindStatusCondition(currentConditions(tc.generation, tc.suspended, tc.conds), meta.ReadyCondition)
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Fatalf("Ready = %s/%s, want %s/%s", got.Status, got.Reason, tc.wantStatus, tc.wantReason)
			}
			if !got.LastTransitionTime.Equal(&at) {
				t.Errorf("LastTransitionTime moved to %v: the agent would report on every poll", got.LastTransitionTime)
			}
		})
	}
	if got := currentConditions(1, false, nil); got != nil {
		t.Errorf("no conditions became %v", got)
	}
	orig := ready(metav1.ConditionTrue, meta.ReconciliationSucceededReason, 1)
	_ = currentConditions(2, false, orig)
	if orig[0].Status != metav1.ConditionTrue {
		t.Error("currentConditions changed the object's own conditions")
	}
}
