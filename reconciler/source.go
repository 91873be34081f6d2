package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sourceObject is a source the reconciler supports: an object of one of the kinds of sourceKinds.
// The kinds share their bookkeeping (apply, delete, status, requeue); only what sourceKinds holds per
// kind differs.
type sourceObject interface {
	client.Object
	GetArtifact() *meta.Artifact
}

// sourceKinds is the table of the source kinds the reconciler reconciles, one row per kind. Everything
// that differs between kinds is in its row, stated in the kind's own file; the bookkeeping here, the
// cluster watch (clusterKinds) and the validation of a Kustomization's spec.sourceRef.kind read it. A
// new source kind is a file with its sourceDef (and its Apply/Delete/get/list methods) and one line here.
var sourceKinds = []sourceKind{
	gitRepositoryKind.row(),
	ociRepositoryKind.row(),
	bucketKind.row(),
	helmRepositoryKind.row(),
	helmChartKind.row(),
}

// sourceKind is one row of sourceKinds: a source kind with its Go type erased, so the bookkeeping can
// handle every kind alike. Rows are made from a sourceDef with row().
type sourceKind struct {
	kind Kind
	gvr  schema.GroupVersionResource
	// kustomize says whether a Kustomization's spec.sourceRef may name the kind.
	kustomize bool
	// static says whether an object is a marker with nothing to fetch (an OCI HelmRepository).
	static   func(sourceObject) bool
	newObj   func() sourceObject
	validate func(sourceObject) error
	fields   func(sourceObject) sourceFields
	// carryStatus gives dst the status of prev, the object it replaces, or an empty status when prev is
	// nil: the status of an applied object is the reconciler's, not the caller's.
	carryStatus func(dst, prev sourceObject)
	// status returns a copy of the object's status, as written to the status subresource.
	status func(sourceObject) any
	fetch  func(r *Reconciler, ctx context.Context, ref srcRef, obj sourceObject) fetched
	// stored sets the kind's own status fields after a new artifact was stored in cur.
	stored func(cur, fetched sourceObject)
}

// sourceDef is how a kind's file states its row, in the kind's own Go types: T is the object type (P
// its pointer), S the type of its status.
type sourceDef[T any, P interface {
	*T
	sourceObject
}, S any] struct {
	kind Kind
	// resource is the kind's plural resource name in source.toolkit.fluxcd.io/v1.
	resource string
	// kustomize says whether a Kustomization's spec.sourceRef may name the kind (kustomize-controller
	// reads GitRepository, OCIRepository, Bucket and ExternalArtifact; the Helm kinds are helm-controller's).
	kustomize bool
	// static, if set, says the object is a marker source-controller does not reconcile (it keeps no
	// status, artifact or finalizer): an OCI HelmRepository.
	static func(P) bool
	// validate refuses, naming the field, what the twin's reconciler cannot do with the object (the
	// error wraps ErrInvalid). It is called with nil for a nil object.
	validate func(P) error
	// fields gives the spec and status fields every source kind has.
	fields func(P) sourceFields
	// status points at the object's status.
	status func(P) *S
	// fetch produces the artifact of obj (a copy; r.mu is not held, ctx ends at spec.timeout). A
	// failure is fetchFailed(reason, err) with the kind's Ready=False reason.
	fetch func(r *Reconciler, ctx context.Context, ref srcRef, obj P) fetched
	// stored, if set, sets status fields only this kind has once a new artifact is in cur's status
	// (cur is the current object; fetched the copy whose spec was fetched).
	stored func(cur, fetched P)
}

// row erases the Go types of d.
func (d sourceDef[T, P, S]) row() sourceKind {
	typed := func(o sourceObject) P { p, _ := o.(P); return p }
	sk := sourceKind{
		kind:      d.kind,
		gvr:       sourcev1.GroupVersion.WithResource(d.resource),
		kustomize: d.kustomize,
		static:    func(sourceObject) bool { return false },
		newObj:    func() sourceObject { return P(new(T)) },
		validate:  func(o sourceObject) error { return d.validate(typed(o)) },
		fields:    func(o sourceObject) sourceFields { return d.fields(typed(o)) },
		carryStatus: func(dst, prev sourceObject) {
			var empty S
			st := d.status(typed(dst))
			*st = empty
			if p := typed(prev); p != nil {
				*st = *d.status(p)
			}
		},
		status: func(o sourceObject) any { return d.status(o.DeepCopyObject().(P)) },
		fetch: func(r *Reconciler, ctx context.Context, ref srcRef, o sourceObject) fetched {
			return d.fetch(r, ctx, ref, typed(o))
		},
		stored: func(sourceObject, sourceObject) {},
	}
	if d.stored != nil {
		sk.stored = func(cur, fetched sourceObject) { d.stored(typed(cur), typed(fetched)) }
	}
	if d.static != nil {
		sk.static = func(o sourceObject) bool { return d.static(typed(o)) }
	}
	return sk
}

// sourceKindOf returns the row of a source kind, false if kind is not one.
func sourceKindOf(kind Kind) (*sourceKind, bool) {
	for i := range sourceKinds {
		if sourceKinds[i].kind == kind {
			return &sourceKinds[i], true
		}
	}
	return nil, false
}

// isSourceKind says whether kind is a source kind of sourceKinds.
func isSourceKind(kind Kind) bool {
	_, ok := sourceKindOf(kind)
	return ok
}

// mustSourceKind returns the row of a kind its own file defines (a kind missing from sourceKinds is a
// programming error).
func mustSourceKind(kind Kind) *sourceKind {
	sk, ok := sourceKindOf(kind)
	if !ok {
		panic("reconciler: " + string(kind) + " is not in sourceKinds")
	}
	return sk
}

// sourceKindNames lists the source kinds a Kustomization may read, for a message, e.g. "GitRepository
// or OCIRepository".
func sourceKindNames() string {
	var names []string
	for _, sk := range sourceKinds {
		if sk.kustomize {
			names = append(names, string(sk.kind))
		}
	}
	return orList(names)
}

// isKustomizationSource says whether a Kustomization's spec.sourceRef may name kind.
func isKustomizationSource(kind Kind) bool {
	sk, ok := sourceKindOf(kind)
	return ok && sk.kustomize
}

// orList joins names as a message lists alternatives: "A", "A or B", "A, B or C".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// srcState is the reconciler's record of one source.
type srcState struct {
	kind     *sourceKind
	obj      sourceObject
	failures int
	deleted  bool
}

// sourceFields are the fields every source kind (source.toolkit.fluxcd.io/v1) has, with the same
// meaning: the spec's by value, the status's by pointer so the shared bookkeeping can set them.
type sourceFields struct {
	spec     any // the whole spec: a change is a new generation
	interval time.Duration
	timeout  *metav1.Duration
	suspend  bool
	ignore   *string

	conditions         *[]metav1.Condition
	artifact           **meta.Artifact
	observedGeneration *int64
	observedIgnore     **string
	lastHandled        *string // status.lastHandledReconcileAt
}

// applySource validates a source of kind sk and adds or updates it (as a copy). A spec change (or a
// new reconcile.fluxcd.io/requestedAt annotation) reconciles it at once.
func (r *Reconciler) applySource(sk *sourceKind, obj sourceObject) error {
	if err := sk.validate(obj); err != nil {
		return err
	}
	in := obj.DeepCopyObject().(sourceObject)
	ref := srcRef{sk.kind, core.Key{Namespace: in.GetNamespace(), Name: in.GetName()}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	st := r.srcs[ref]
	if st == nil {
		in.SetGeneration(r.firstGeneration(in))
		sk.carryStatus(in, nil)
		r.srcs[ref] = &srcState{kind: sk, obj: in}
	} else {
		gen, reconcile := r.updatedGeneration(st.obj, in, sk.fields(st.obj).spec, sk.fields(in).spec)
		in.SetGeneration(gen)
		sk.carryStatus(in, st.obj)
		st.obj = in
		if !reconcile {
			return nil
		}
	}
	if r.started {
		r.srcQueue.Add(ref)
	}
	return nil
}

// nextGeneration is the generation of an updated object, as the API server counts it (a spec change
// increments it), and whether it must be reconciled now: a spec change or a new
// reconcile.fluxcd.io/requestedAt annotation.
func nextGeneration(gen int64, oldSpec, newSpec any, oldAnn, newAnn map[string]string) (int64, bool) {
	changed := !equalJSON(oldSpec, newSpec)
	if changed {
		gen++
	}
	return gen, changed || requestedAt(newAnn) != requestedAt(oldAnn)
}

// deleteSource removes a source and its clone and artifact. Kustomizations that use it report the
// source as not found.
func (r *Reconciler) deleteSource(ref srcRef) error {
	r.mu.Lock()
	st := r.srcs[ref]
	if st == nil {
		r.mu.Unlock()
		return fmt.Errorf("%s %s: %w", ref.kind, ref.key, ErrNotFound)
	}
	st.deleted = true
	delete(r.srcs, ref)
	r.scheduleLocked(ref.kind, ref.key, 0)
	waiting := r.readersOfSourceLocked(ref)
	r.mu.Unlock()
	r.store.Forget(ref.String())
	r.wakeAll(waiting)
	return nil
}

// getSource returns a copy of a source with its current status.
func getSource[P sourceObject](r *Reconciler, kind Kind, namespace, name string) (P, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.srcs[srcRef{kind, core.Key{Namespace: namespace, Name: name}}]
	if st == nil {
		var none P
		return none, false
	}
	return st.obj.DeepCopyObject().(P), true
}

// listSources returns copies of all sources of a kind, sorted by namespace and name.
func listSources[T any, P interface {
	*T
	sourceObject
}](r *Reconciler, kind Kind) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []core.Key
	for ref := range r.srcs {
		if ref.kind == kind {
			keys = append(keys, ref.key)
		}
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, *r.srcs[srcRef{kind, k}].obj.DeepCopyObject().(P))
	}
	return out
}

// fetched is the outcome of fetching a source: the artifact and whether it changed (its revision, or
// what shaped its content), with the kind's wording of the Ready condition and the NewArtifact event;
// or the error with the Ready=False reason.
type fetched struct {
	art     *source.Artifact
	changed bool
	stored  string // Ready and ArtifactInStorage message
	event   string // NewArtifact event message
	reason  string // the Ready=False reason; on success, a kind's own Ready=True reason if set
	err     error
	// stalled: the failure will not go away without a spec change (or a new upstream version), as
	// source-controller's stalling errors (a chart reference no version matches).
	stalled bool
}

func fetchFailed(reason string, err error) fetched { return fetched{reason: reason, err: err} }

// reconcileSource fetches a source and, when the revision changed, publishes the new artifact and wakes
// every Kustomization that reads it -- source-controller's reconcilers, for the fields the reconciler
// supports.
func (r *Reconciler) reconcileSource(ctx context.Context, ref srcRef) {
	start := r.clk.Now()
	r.mu.Lock()
	st := r.srcs[ref]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	sk := st.kind
	obj := st.obj.DeepCopyObject().(sourceObject)
	spec, gen := sk.fields(obj), obj.GetGeneration()
	if rq := requestedAt(obj.GetAnnotations()); rq != "" {
		*sk.fields(st.obj).lastHandled = rq
	}
	if spec.suspend {
		r.scheduleLocked(ref.kind, ref.key, 0)
		r.mu.Unlock()
		return
	}
	if sk.static(obj) {
		// Nothing to fetch or report: readers use the object's spec (source-controller leaves such an
		// object without status).
		sk.carryStatus(st.obj, nil)
		r.scheduleLocked(ref.kind, ref.key, 0)
		r.published(ref.kind, ref.key)
		wake := r.readersOfSourceLocked(ref)
		r.mu.Unlock()
		r.wakeAll(wake)
		return
	}
	// The observed generation and Ready condition before this run, to tell whether its outcome changed
	// what a HelmRelease checks of its chart source (helm-controller's isSourceReady).
	readyBefore := fmt.Sprint(*sk.fields(st.obj).observedGeneration, " ", readyFact(*sk.fields(st.obj).conditions))
	r.markProgressing(sk.fields(st.obj).conditions, gen, "building artifact")
	r.published(ref.kind, ref.key)
	r.mu.Unlock()

	// A source's spec.timeout "defaults to 60s" (api/v1 GitRepositorySpec and OCIRepositorySpec.Timeout).
	timeout := r.prof.GitTimeout
	if spec.timeout != nil {
		timeout = spec.timeout.Duration
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := sk.fetch(r, fctx, ref, obj)

	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	// An Apply during the fetch may have replaced st.obj: the status goes on the current object.
	s := sk.fields(st.obj)
	*s.observedGeneration = gen
	var next time.Duration
	outcome := core.Succeeded
	if f.err != nil {
		outcome = core.Failed
		st.failures++
		r.markFailed(s.conditions, gen, f.reason, f.err.Error(), f.stalled)
		next = min(r.prof.SourceRetryBase<<min(st.failures, 30), spec.interval)
	} else {
		st.failures = 0
		art := f.art
		*s.artifact = &meta.Artifact{Path: art.Dir, URL: "file://" + art.Dir, Revision: art.Revision, Digest: art.Digest,
			LastUpdateTime: metav1.NewTime(art.Created), Size: &art.Size, Metadata: art.Metadata}
		*s.observedIgnore = spec.ignore
		sk.stored(st.obj, obj)
		reason := meta.SucceededReason
		if f.reason != "" {
			reason = f.reason // a kind's own success reason (HelmChart's ChartPullSucceeded)
		}
		r.markReady(s.conditions, gen, reason, f.stored)
		r.setCondition(s.conditions, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, reason, f.stored)
		next = spec.interval
	}
	r.published(ref.kind, ref.key)
	var wake []schedKey
	if f.changed {
		wake = r.readersOfSourceLocked(ref)
	} else if fmt.Sprint(*s.observedGeneration, " ", readyFact(*s.conditions)) != readyBefore {
		// HelmReleases hear of a change of their chart source's readiness, not only of a new artifact,
		// so a failure (or its end) reaches their Ready message at once (helm-controller re-checks a
		// source that is not ready every --requeue-dependency). An unchanged outcome wakes no one:
		// helm-controller's watch on HelmCharts passes only revision changes
		// (SourceRevisionChangePredicate), and a wake would cut a release's retry backoff short.
		wake = r.helmReleasesOfSourceLocked(ref)
	}
	r.mu.Unlock()
	if outcome == core.Succeeded {
		next = r.jitter(next)
	}
	r.mu.Lock()
	r.scheduleLocked(ref.kind, ref.key, next)
	r.mu.Unlock()
	r.met.observeReconcile(ref.kind, outcome, r.clk.Since(start))

	if f.err != nil {
		r.emit(ref.kind, ref.key, EventWarning, f.reason, f.err.Error(), "")
		r.wakeAll(wake)
		return
	}
	if f.changed {
		r.emit(ref.kind, ref.key, EventNormal, "NewArtifact", f.event, f.art.Revision)
	}
	r.wakeAll(wake)
}

// readersOfSourceLocked lists what reads a source's artifact: Kustomizations, HelmCharts of a
// HelmRepository, HelmReleases of a HelmChart or OCIRepository. Callers hold r.mu.
func (r *Reconciler) readersOfSourceLocked(ref srcRef) []schedKey {
	var out []schedKey
	for _, k := range r.kustomizationsOfSourceLocked(ref) {
		out = append(out, schedKey{KindKustomization, k})
	}
	for _, c := range r.helmChartsOfRepositoryLocked(ref) {
		out = append(out, schedKey{KindHelmChart, c})
	}
	return append(out, r.helmReleasesOfSourceLocked(ref)...)
}

// wakeAll queues the objects now.
func (r *Reconciler) wakeAll(keys []schedKey) {
	for _, k := range keys {
		r.enqueue(k.kind, k.key)
	}
}

// secretRef reads the Secret a source's spec.secretRef names.
func (r *Reconciler) secretRef(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	var sec corev1.Secret
	if err := r.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sec); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s/%s' named in spec.secretRef: %w", namespace, name, err)
	}
	return &sec, nil
}

// readyFact is a source's Ready condition as "status/reason: message", "" without one.
func readyFact(conds []metav1.Condition) string {
	c := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}
