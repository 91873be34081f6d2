package layout_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// TestDiff applies testdata/diff/live with the twin's real reconciler against a real API server, then
// diffs testdata/diff/change against it: a changed ConfigMap and Deployment are configured (with a
// unified diff), the changed Secret's values are masked, new objects are created (also in a namespace
// the change adds), the object the change drops is deleted by prune, an object the API server refuses
// is rejected, and the rest is unchanged. The
// live layout diffs clean; a layout that does not build makes the diff incomplete (exit 2).
func TestDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	g := NewWithT(t)
	ctx := context.Background()
	cfg := testenv.APIServer(t)
	gitSrv := testenv.Git(t, "flux", "pw")
	repo, sha := testenv.SeededRepo(t, gitSrv, "diff", readTree(t, filepath.Join("testdata", "diff", "live")))

	c, err := client.New(cfg, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}})).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: "flux-system"},
		StringData: map[string]string{"username": gitSrv.Username, "password": gitSrv.Password}})).To(Succeed())
	// substituteFrom is read from the cluster, as the reconciler reads it.
	g.Expect(c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-vars", Namespace: "flux-system"},
		Data: map[string]string{"REGION": "westeurope"}})).To(Succeed())

	// The live state: what the twin's reconciler applies from the live layout.
	rec, err := reconciler.New(cfg, reconciler.Options{Cluster: "test", WorkDir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	rctx, cancel := context.WithCancel(ctx)
	g.Expect(rec.Start(rctx)).To(Succeed())
	g.Expect(rec.ApplyGitRepository(&sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "flux-system", Namespace: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	})).To(Succeed())
	live := load(t, filepath.Join("testdata", "diff", "live"))
	var ks kustomizev1.Kustomization
	g.Expect(runtimeFrom(live[0].Kustomizations[0].Object, &ks)).To(Succeed())
	g.Expect(rec.ApplyKustomization(&ks)).To(Succeed())
	g.Eventually(func() string {
		k, ok := rec.Kustomization("flux-system", "shop")
		if !ok || !apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition) {
			return ""
		}
		return k.Status.LastAppliedRevision
	}).WithTimeout(2 * time.Minute).WithPolling(200 * time.Millisecond).Should(Equal("main@sha1:" + sha))
	cancel()
	rec.Stop()

	// The live layout against the live state: nothing changes.
	rep, err := layout.Diff(ctx, cfg, live, layout.DiffOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Problems).To(BeEmpty())
	for _, o := range rep.Objects {
		g.Expect(o.Action).To(Equal(layout.DiffUnchanged), "%+v", o)
	}
	g.Expect(rep.Objects).To(HaveLen(6))
	g.Expect(rep.ExitCode()).To(Equal(layout.ExitClean))

	// The change.
	rep, err = layout.Diff(ctx, cfg, load(t, filepath.Join("testdata", "diff", "change")), layout.DiffOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	got := map[string]layout.DiffAction{}
	diffs := map[string]string{}
	for _, o := range rep.Objects {
		got[o.Object] = o.Action
		diffs[o.Object] = o.Diff
	}
	g.Expect(got).To(Equal(map[string]layout.DiffAction{
		"Namespace/shop":               layout.DiffUnchanged,
		"ConfigMap/shop/settings":      layout.DiffConfigured,
		"ConfigMap/shop/stable":        layout.DiffUnchanged,
		"ConfigMap/shop/feature":       layout.DiffCreated,
		"ConfigMap/shop/legacy":        layout.DiffDeleted,
		"Secret/shop/creds":            layout.DiffConfigured,
		"Deployment.apps/shop/web":     layout.DiffConfigured,
		"Namespace/shop-canary":        layout.DiffCreated,
		"ConfigMap/shop-canary/canary": layout.DiffCreated,
		"ConfigMap/shop/Invalid_Name":  layout.DiffRejected,
	}))
	g.Expect(diffs["ConfigMap/shop/settings"]).To(And(ContainSubstring("--- live"), ContainSubstring("-  color: blue"), ContainSubstring("+  color: green"),
		ContainSubstring("   region: westeurope"))) // ${REGION} from the cluster's substituteFrom ConfigMap
	g.Expect(diffs["Deployment.apps/shop/web"]).To(And(ContainSubstring("-  replicas: 1"), ContainSubstring("+  replicas: 2")))
	g.Expect(diffs["Secret/shop/creds"]).To(And(ContainSubstring("*** (before)"), ContainSubstring("*** (after)"),
		Not(ContainSubstring("s3cret")), Not(ContainSubstring("YmVmb3Jl")), Not(ContainSubstring("YWZ0ZXI"))))
	g.Expect(rep.ExitCode()).To(Equal(layout.ExitFindings))
	var text bytes.Buffer
	g.Expect(rep.Write(&text, layout.FormatText)).To(Succeed())
	g.Expect(text.String()).To(And(ContainSubstring("► ConfigMap/shop/legacy deleted [test/shop]"),
		ContainSubstring("► ConfigMap/shop/feature created [test/shop] (app/objects.yaml)"),
		ContainSubstring("cluster test: 3 created, 3 configured, 1 deleted, 1 rejected, 2 unchanged"),
		ContainSubstring("► ConfigMap/shop/Invalid_Name rejected [test/shop]"), ContainSubstring("metadata.name: Invalid value"),
		ContainSubstring("  ConfigMap/shop/stable unchanged [test/shop]\n")))
	g.Expect(text.String()).NotTo(ContainSubstring("s3cret"))

	// A layout that does not build: the diff is incomplete.
	broken := load(t, filepath.Join("testdata", "build", "fail"))
	rep, err = layout.Diff(ctx, cfg, broken, layout.DiffOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Problems).To(HaveLen(1))
	g.Expect(rep.ExitCode()).To(Equal(layout.ExitError))
	g.Expect(strings.Join([]string{rep.Problems[0].Message}, "")).To(ContainSubstring("missing.yaml"))
}

func runtimeFrom(obj map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
}
