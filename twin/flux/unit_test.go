package flux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/google/go-cmp/cmp"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReadCRDs(t *testing.T) {
	crds, err := readCRDs([]string{filepath.Join("testdata", "crds")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.GetName())
	}
	if d := cmp.Diff([]string{"widgets.example.com", "gadgets.example.com"}, names); d != "" {
		t.Errorf("CRDs read (-want +got):\n%s", d)
	}

	for name, tc := range map[string]struct {
		dir  string
		want string
	}{
		"not a CRD": {filepath.Join("testdata", "notcrd"), "configmap.yaml, document 1: kind \"ConfigMap\""},
		"empty":     {t.TempDir(), "holds no *.yaml files"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readCRDs([]string{tc.dir})
			if !errors.Is(err, ErrCRD) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCRD containing %q", err, tc.want)
			}
		})
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"no kubeconfig":      {Options{StateDir: t.TempDir()}, "Kubeconfig is empty"},
		"missing kubeconfig": {Options{Kubeconfig: filepath.Join(t.TempDir(), "nope"), StateDir: t.TempDir()}, "nope"},
		"no state dir":       {Options{Kubeconfig: kc}, "StateDir is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.opts)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidOptions containing %q", err, tc.want)
			}
		})
	}
}

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
