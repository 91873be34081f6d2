package reconciler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/registry"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// condition returns a condition as "Status/Reason: message", or "" when it is absent.
func condition(conds []metav1.Condition, typ string) string {
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

// readyOf returns the Ready condition as "Status/Reason: message".
func readyOf(conds []metav1.Condition) string {
	if c := condition(conds, meta.ReadyCondition); c != "" {
		return c
	}
	return "no Ready condition"
}

// fluxSource is what TestSourceBookkeeping reads of either source kind through their API types' own
// methods; the rest it reads and edits through the unstructured form (see field and with).
type fluxSource interface {
	runtime.Object
	metav1.Object
	GetConditions() []metav1.Condition
	GetArtifact() *meta.Artifact
}

// field returns the value at a dotted path of obj's unstructured form (nil when absent).
func field(t *testing.T, obj fluxSource, path string) any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := unstructured.NestedFieldNoCopy(u, strings.Split(path, ".")...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// with returns a copy of obj with the fields at the dotted paths set.
func with(t *testing.T, obj fluxSource, fields map[string]any) fluxSource {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	for p, v := range fields {
		if err := unstructured.SetNestedField(u, v, strings.Split(p, ".")...); err != nil {
			t.Fatal(err)
		}
	}
	out := obj.DeepCopyObject().(fluxSource)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sourceEvents returns the events of one source with the given reason, as "message @ revision".
func (e *env) sourceEvents(kind reconciler.Kind, name, reason string) []string {
	var out []string
	for _, ev := range e.r.Events() {
		if ev.Kind == kind && ev.Namespace == e.ns && ev.Name == name && ev.Reason == reason {
			out = append(out, ev.Message+" @ "+ev.Revision)
		}
	}
	return out
}

// names returns the names of objects, in order.
func names[T any, P interface {
	*T
	GetName() string
}](objs []T) []string {
	out := make([]string, len(objs))
	for i := range objs {
		out[i] = P(&objs[i]).GetName()
	}
	return out
}

// sourceKindCase is one source kind of TestSourceBookkeeping.
type sourceKindCase struct {
	kind reconciler.Kind
	// setup makes the content the source reads and returns a source of it named name (interval 1m, not
	// suspended), the artifact revision it gives, and the kind's Ready and NewArtifact messages.
	setup func(t *testing.T, e *env, name string) (obj fluxSource, revision, ready, event string)
	get   func(e *env, name string) (fluxSource, bool)
	list  func(e *env) []string // names, in the order the list gives them
	del   func(e *env, name string) error
	// only checks what only this kind records of a successful fetch of obj.
	only func(t *testing.T, e *env, obj, got fluxSource)
}

var sourceKindCases = []sourceKindCase{{
	kind: reconciler.KindGitRepository,
	setup: func(t *testing.T, e *env, name string) (fluxSource, string, string, string) {
		sha := e.commit(map[string]string{"apps/a.yaml": configMap(e.ns, "a", nil)})
		rev := "main@sha1:" + sha
		return e.gitRepository(name), rev, "stored artifact for revision '" + rev + "'", "stored artifact for commit '" + sha + "'"
	},
	get:  func(e *env, name string) (fluxSource, bool) { return e.r.GitRepository(e.ns, name) },
	list: func(e *env) []string { return names(e.r.GitRepositories()) },
	del:  func(e *env, name string) error { return e.r.DeleteGitRepository(e.ns, name) },
	only: func(t *testing.T, e *env, obj, got fluxSource) {
		e.g.Expect(got.GetArtifact().Metadata).To(BeNil())
		// The push webhook's trigger finds GitRepositories by URL.
		e.g.Expect(e.r.TriggerRepository(e.repo.URL)).To(Equal([]string{e.ns + "/a-bad-secret", e.ns + "/" + obj.GetName()}))
	},
}, {
	kind: reconciler.KindOCIRepository,
	setup: func(t *testing.T, e *env, name string) (fluxSource, string, string, string) {
		reg, err := registry.Start(context.Background(), registry.Options{Dir: t.TempDir()})
		e.g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() { _ = reg.Stop(context.Background()) })
		url := "oci://" + reg.Host() + "/manifests/" + e.ns
		rev := "latest@" + pushArtifact(t, reg, "manifests/"+e.ns, "latest", map[string]string{"apps/a.yaml": configMap(e.ns, "a", nil)})
		o := e.ociRepository(name, url)
		o.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: fluxContentMediaType, Operation: sourcev1.OCILayerExtract}
		return o, rev, "stored artifact for digest '" + rev + "'", "stored artifact with revision '" + rev + "' from '" + url + "'"
	},
	get:  func(e *env, name string) (fluxSource, bool) { return e.r.OCIRepository(e.ns, name) },
	list: func(e *env) []string { return names(e.r.OCIRepositories()) },
	del:  func(e *env, name string) error { return e.r.DeleteOCIRepository(e.ns, name) },
	only: func(t *testing.T, e *env, obj, got fluxSource) {
		o, g := obj.(*sourcev1.OCIRepository), got.(*sourcev1.OCIRepository)
		e.g.Expect(g.Status.URL).To(Equal(g.Status.Artifact.URL))
		e.g.Expect(g.Status.ObservedLayerSelector).To(Equal(o.Spec.LayerSelector))
		e.g.Expect(g.Status.Artifact.Metadata).To(HaveKeyWithValue("org.opencontainers.image.revision", "main@sha1:latest"))
		e.g.Expect(e.r.GitRepositories()).To(BeEmpty())
	},
}}

// TestSourceBookkeeping pins what the reconciler records for each source kind, as source-controller
// does: generations, the caller's status ignored, requestedAt handled while suspended, the artifact
// and conditions of a fetch, the NewArtifact event, a secretRef that does not exist, the sorted list,
// and delete.
func TestSourceBookkeeping(t *testing.T) {
	for _, tc := range sourceKindCases {
		t.Run(string(tc.kind), func(t *testing.T) {
			e := newEnv(t)
			obj, rev, readyMsg, eventMsg := tc.setup(t, e, "src")
			get := func() fluxSource {
				got, ok := tc.get(e, "src")
				e.g.Expect(ok).To(BeTrue())
				return got
			}
			ready := func() string { return readyOf(get().GetConditions()) }

			// Suspended, with a status of the caller's: the status stays the reconciler's (empty).
			obj = with(t, obj, map[string]any{"spec.suspend": true, "spec.ignore": "/docs/", "status.observedGeneration": int64(99)})
			e.apply(obj)
			e.waitIdle()
			e.g.Expect(get().GetGeneration()).To(Equal(int64(1)))
			e.g.Expect(field(t, get(), "status")).To(BeEmpty())

			// A new requestedAt reconciles without a new generation; suspended, it is only marked handled.
			obj.SetAnnotations(map[string]string{meta.ReconcileRequestAnnotation: "req-1"})
			e.apply(obj)
			e.g.Eventually(func() any { return field(t, get(), "status.lastHandledReconcileAt") }).
				WithTimeout(eventually).WithPolling(poll).Should(Equal("req-1"))
			e.g.Expect(get().GetGeneration()).To(Equal(int64(1)))
			e.g.Expect(get().GetArtifact()).To(BeNil())

			// Resumed (a spec change): generation 2, fetched, Ready.
			obj = with(t, obj, map[string]any{"spec.suspend": false})
			e.apply(obj)
			e.g.Eventually(ready).WithTimeout(eventually).WithPolling(poll).Should(Equal("True/Succeeded: " + readyMsg))
			got := get()
			e.g.Expect(got.GetGeneration()).To(Equal(int64(2)))
			e.g.Expect(field(t, got, "status.observedGeneration")).To(Equal(int64(2)))
			e.g.Expect(field(t, got, "status.observedIgnore")).To(Equal("/docs/"))
			e.g.Expect(field(t, got, "status.lastHandledReconcileAt")).To(Equal("req-1"))
			e.g.Expect(condition(got.GetConditions(), sourcev1.ArtifactInStorageCondition)).To(Equal("True/Succeeded: " + readyMsg))
			e.g.Expect(condition(got.GetConditions(), meta.ReconcilingCondition)).To(BeEmpty())
			a := got.GetArtifact()
			e.g.Expect(a.Revision).To(Equal(rev))
			e.g.Expect(a.URL).To(Equal("file://" + a.Path))
			e.g.Expect(a.Digest).To(HavePrefix("sha256:"))
			e.g.Expect(e.sourceEvents(tc.kind, "src", "NewArtifact")).To(Equal([]string{eventMsg + " @ " + rev}))

			// The same spec again is no new generation.
			e.apply(obj)
			e.g.Expect(get().GetGeneration()).To(Equal(int64(2)))

			// A secretRef that does not exist: Ready False, retried, with a Warning event.
			bad := with(t, obj, map[string]any{"metadata.name": "a-bad-secret", "spec.secretRef": map[string]any{"name": "nope"}})
			bad.SetAnnotations(nil)
			e.apply(bad)
			msg := "failed to get secret '" + e.ns + "/nope' named in spec.secretRef"
			badReady := func() string {
				b, _ := tc.get(e, "a-bad-secret")
				return readyOf(b.GetConditions())
			}
			e.g.Eventually(badReady).WithTimeout(eventually).WithPolling(poll).Should(
				HavePrefix("False/" + sourcev1.AuthenticationFailedReason + ": " + msg))
			b, _ := tc.get(e, "a-bad-secret")
			e.g.Expect(condition(b.GetConditions(), meta.ReconcilingCondition)).To(HavePrefix("True/" + meta.ProgressingWithRetryReason + ": " + msg))
			e.g.Expect(b.GetArtifact()).To(BeNil())
			e.g.Expect(e.sourceEvents(tc.kind, "a-bad-secret", sourcev1.AuthenticationFailedReason)).NotTo(BeEmpty())

			e.g.Expect(tc.list(e)).To(Equal([]string{"a-bad-secret", "src"}))
			tc.only(t, e, obj, got)

			// Delete, then it is gone.
			e.g.Expect(tc.del(e, "src")).To(Succeed())
			_, ok := tc.get(e, "src")
			e.g.Expect(ok).To(BeFalse())
			err := tc.del(e, "src")
			e.g.Expect(errors.Is(err, reconciler.ErrNotFound)).To(BeTrue())
			e.g.Expect(err).To(MatchError(string(tc.kind) + " " + e.ns + "/src: not found"))
			e.g.Expect(errors.Is(e.r.RequestReconcile(tc.kind, e.ns, "src"), reconciler.ErrNotFound)).To(BeTrue())
		})
	}
}
