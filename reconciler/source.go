package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sourceObject is a source the reconciler supports: a *sourcev1.GitRepository or a
// *sourcev1.OCIRepository. The two kinds share their bookkeeping (apply, delete, status, requeue);
// only the fetch and a few status fields differ.
type sourceObject interface {
	client.Object
	GetArtifact() *meta.Artifact
}

// srcState is the reconciler's record of one source.
type srcState struct {
	obj      sourceObject
	failures int
	deleted  bool
}

// sourceFields are the fields GitRepository and OCIRepository (source.toolkit.fluxcd.io/v1) both have,
// with the same meaning: the spec's by value, the status's by pointer so the shared bookkeeping can set
// them.
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

func fieldsOf(obj sourceObject) sourceFields {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: sp.Ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: &st.ObservedIgnore, lastHandled: &st.LastHandledReconcileAt}
	case *sourcev1.OCIRepository:
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: sp.Ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: &st.ObservedIgnore, lastHandled: &st.LastHandledReconcileAt}
	}
	// Unreachable: only ApplyGitRepository and ApplyOCIRepository store sources.
	panic(fmt.Sprintf("reconciler: %T is not a source kind", obj))
}

// carryStatus gives dst the status of prev, the object it replaces (of the same kind), or an empty
// status when there is none: the status of an applied object is the reconciler's, not the caller's.
func carryStatus(dst, prev sourceObject) {
	switch d := dst.(type) {
	case *sourcev1.GitRepository:
		d.Status = sourcev1.GitRepositoryStatus{}
		if p, ok := prev.(*sourcev1.GitRepository); ok {
			d.Status = p.Status
		}
	case *sourcev1.OCIRepository:
		d.Status = sourcev1.OCIRepositoryStatus{}
		if p, ok := prev.(*sourcev1.OCIRepository); ok {
			d.Status = p.Status
		}
	}
}

// applySource adds or updates a source (in is the caller's validated object, copied). A spec change
// (or a new reconcile.fluxcd.io/requestedAt annotation) reconciles it at once.
func (r *Reconciler) applySource(kind Kind, in sourceObject) error {
	ref := srcRef{kind, core.Key{Namespace: in.GetNamespace(), Name: in.GetName()}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	st := r.srcs[ref]
	if st == nil {
		in.SetGeneration(r.firstGeneration(in))
		carryStatus(in, nil)
		r.srcs[ref] = &srcState{obj: in}
	} else {
		gen, reconcile := r.updatedGeneration(st.obj, in, fieldsOf(st.obj).spec, fieldsOf(in).spec)
		in.SetGeneration(gen)
		carryStatus(in, st.obj)
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
	waiting := r.kustomizationsOfSourceLocked(ref)
	r.mu.Unlock()
	r.store.Forget(ref.String())
	for _, w := range waiting {
		r.ksQueue.Add(w)
	}
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
	reason  string
	err     error
}

func fetchFailed(reason string, err error) fetched { return fetched{reason: reason, err: err} }

// reconcileSource fetches a GitRepository or an OCIRepository and, when the revision changed,
// publishes the new artifact and wakes every Kustomization that reads it -- source-controller's
// reconcilers, for the fields the reconciler supports.
func (r *Reconciler) reconcileSource(ctx context.Context, ref srcRef) {
	start := r.clk.Now()
	r.mu.Lock()
	st := r.srcs[ref]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	obj := st.obj.DeepCopyObject().(sourceObject)
	spec, gen := fieldsOf(obj), obj.GetGeneration()
	if rq := requestedAt(obj.GetAnnotations()); rq != "" {
		*fieldsOf(st.obj).lastHandled = rq
	}
	if spec.suspend {
		r.scheduleLocked(ref.kind, ref.key, 0)
		r.mu.Unlock()
		return
	}
	r.markProgressing(fieldsOf(st.obj).conditions, gen, "building artifact")
	r.published(ref.kind, ref.key)
	r.mu.Unlock()

	// Both kinds' spec.timeout "defaults to 60s" (api/v1 GitRepositorySpec and OCIRepositorySpec.Timeout).
	timeout := r.prof.GitTimeout
	if spec.timeout != nil {
		timeout = spec.timeout.Duration
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := r.fetchSource(fctx, ref, obj)

	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	// An Apply during the fetch may have replaced st.obj: the status goes on the current object.
	s := fieldsOf(st.obj)
	*s.observedGeneration = gen
	var next time.Duration
	outcome := core.Succeeded
	if f.err != nil {
		outcome = core.Failed
		st.failures++
		r.markFailed(s.conditions, gen, f.reason, f.err.Error(), false)
		next = min(r.prof.SourceRetryBase<<min(st.failures, 30), spec.interval)
	} else {
		st.failures = 0
		art := f.art
		*s.artifact = &meta.Artifact{Path: art.Dir, URL: "file://" + art.Dir, Revision: art.Revision, Digest: art.Digest,
			LastUpdateTime: metav1.NewTime(art.Created), Size: &art.Size, Metadata: art.Metadata}
		*s.observedIgnore = spec.ignore
		if o, ok := st.obj.(*sourcev1.OCIRepository); ok {
			// OCIRepository also reports the artifact URL and the layer selection it was built with.
			o.Status.URL = o.Status.Artifact.URL
			o.Status.ObservedLayerSelector = obj.(*sourcev1.OCIRepository).Spec.LayerSelector
		}
		r.markReady(s.conditions, gen, meta.SucceededReason, f.stored)
		r.setCondition(s.conditions, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, f.stored)
		next = spec.interval
	}
	r.published(ref.kind, ref.key)
	var wake []core.Key
	if f.changed {
		wake = r.kustomizationsOfSourceLocked(ref)
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
		return
	}
	if f.changed {
		r.emit(ref.kind, ref.key, EventNormal, "NewArtifact", f.event, f.art.Revision)
	}
	for _, w := range wake {
		r.ksQueue.Add(w)
	}
}

func (r *Reconciler) fetchSource(ctx context.Context, ref srcRef, obj sourceObject) fetched {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		return r.fetchGit(ctx, ref, o)
	case *sourcev1.OCIRepository:
		return r.pullOCI(ctx, ref, o)
	}
	return fetchFailed(meta.FailedReason, fmt.Errorf("%s: %T is not a supported source kind", ref, obj))
}

// fetchGit clones or fetches a GitRepository and checks out its reference.
func (r *Reconciler) fetchGit(ctx context.Context, ref srcRef, obj *sourcev1.GitRepository) fetched {
	req := source.Request{URL: obj.Spec.URL, Ignore: obj.Spec.Ignore}
	if ref := obj.Spec.Reference; ref != nil {
		req.Ref = source.Ref{Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Name: ref.Name, Commit: ref.Commit}
	}
	if sr := obj.Spec.SecretRef; sr != nil {
		sec, err := r.secretRef(ctx, obj.Namespace, sr.Name)
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason, err)
		}
		req.Auth = &source.Auth{Username: string(sec.Data["username"]), Password: string(sec.Data["password"]),
			BearerToken: string(sec.Data["bearerToken"]), CABundle: sec.Data["ca.crt"]}
	}
	art, changed, err := r.store.Fetch(ctx, ref.String(), req)
	if err != nil {
		reason := sourcev1.GitOperationFailedReason
		if errors.Is(err, source.ErrAuth) {
			reason = sourcev1.AuthenticationFailedReason
		}
		return fetchFailed(reason, fmt.Errorf("failed to checkout and determine revision: %w", err))
	}
	return fetched{art: art, changed: changed,
		stored: fmt.Sprintf("stored artifact for revision '%s'", art.Revision),
		event:  fmt.Sprintf("stored artifact for commit '%s'", art.Commit)}
}

// secretRef reads the Secret a source's spec.secretRef names.
func (r *Reconciler) secretRef(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	var sec corev1.Secret
	if err := r.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sec); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s/%s' named in spec.secretRef: %w", namespace, name, err)
	}
	return &sec, nil
}
