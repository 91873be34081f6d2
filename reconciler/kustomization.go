package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/apply"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
)

// step failure: the condition reason and whether retrying without a spec change is pointless.
type failure struct {
	reason  string
	stalled bool
	err     error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(reason string, err error) error { return &failure{reason: reason, err: err} }

// reconcileKustomization runs one reconciliation, in kustomize-controller's order: suspend, source,
// dependencies, build, apply, prune, health, status.
func (r *Reconciler) reconcileKustomization(ctx context.Context, k core.Key) {
	start := r.clk.Now()
	r.mu.Lock()
	st := r.kss[k]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	obj := st.obj.DeepCopy()
	tm := timing(obj, r.prof)
	src := sourceKey(obj)
	gin := core.GateInput{Suspended: obj.Spec.Suspend, SourceName: obj.Spec.SourceRef.String()}
	gin.SourceFound, gin.SourceRevision = r.sourceArtifactLocked(src)
	var celErr error
	for i, d := range dependsOn(obj) {
		ds := core.DependencyStatus{Key: d}
		if dst := r.kss[d]; dst != nil {
			ds.Found = true
			ds.Observed = dst.obj.Status.ObservedGeneration == dst.obj.Generation
			ds.Ready = apimeta.IsStatusConditionTrue(dst.obj.Status.Conditions, meta.ReadyCondition)
			ds.LastAppliedRevision = dst.obj.Status.LastAppliedRevision
			ds.SameSource = sourceKey(dst.obj) == src
			if expr := obj.Spec.DependsOn[i].ReadyExpr; expr != "" && celErr == nil {
				ds.HasReadyExpr = true
				ds.ExprReady, celErr = evalReadyExpr(ctx, expr, dst.obj.Name, obj, dst.obj)
			}
		}
		gin.Dependencies = append(gin.Dependencies, ds)
	}
	if rq := requestedAt(obj.Annotations); rq != "" {
		st.obj.Status.LastHandledReconcileAt = rq
	}
	r.mu.Unlock()

	if celErr == nil {
		_, celErr = healthReaders(obj)
	}
	if celErr != nil {
		r.finish(k, st, obj, start, tm, "", &failure{reason: meta.InvalidCELExpressionReason, stalled: true,
			err: fmt.Errorf("%s: %w", terminalErrorMessage, celErr)})
		return
	}
	if r.opts.NoCrossNamespaceRefs && src.key.Namespace != obj.Namespace {
		r.finish(k, st, obj, start, tm, "", &failure{reason: "AccessDenied", stalled: true,
			err: fmt.Errorf("can't access '%s', cross-namespace references have been blocked", src)})
		return
	}
	v := core.Admit(gin, tm)
	if gin.Suspended {
		r.mu.Lock()
		r.scheduleLocked(KindKustomization, k, 0)
		r.mu.Unlock()
		return
	}
	if !v.Proceed {
		r.mu.Lock()
		if st.deleted {
			r.mu.Unlock()
			return
		}
		s := &st.obj.Status
		r.setCondition(&s.Conditions, obj.Generation, meta.ReadyCondition, metav1.ConditionFalse, v.Reason, v.Message)
		r.scheduleLocked(KindKustomization, k, v.RequeueAfter)
		r.published(KindKustomization, k)
		changed := st.lastMsg != v.Message
		st.lastMsg = v.Message
		r.mu.Unlock()
		if changed {
			msg := v.Message
			if v.Reason == core.ReasonDependencyNotReady {
				msg = fmt.Sprintf("Dependencies do not meet ready condition (%s), waiting; re-checking in %s at the latest", v.Message, v.RequeueAfter)
			}
			r.emit(KindKustomization, k, EventNormal, v.Reason, msg, gin.SourceRevision)
		}
		return
	}

	revision := gin.SourceRevision
	r.mu.Lock()
	s := &st.obj.Status
	r.markProgressing(&s.Conditions, obj.Generation, fmt.Sprintf("Fetching manifests for revision %s with a timeout of %s", revision, obj.GetTimeout()))
	s.LastAttemptedRevision = revision
	r.published(KindKustomization, k)
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	defer cancel()
	changes, revision, err := r.runKustomization(ctx, k, st, obj, src, revision)
	// The change log goes out before the status turns Ready, as kustomize-controller emits it right
	// after the apply.
	if len(changes) > 0 {
		r.emit(KindKustomization, k, EventNormal, "Progressing", joinLines(changes), revision)
	}
	r.finish(k, st, obj, start, tm, revision, err)
}

// runKustomization does the work of a reconciliation that passed the gate and returns the change log
// and the revision it built (the source's newest artifact).
func (r *Reconciler) runKustomization(ctx context.Context, k core.Key, st *ksState, obj *kustomizev1.Kustomization, src srcRef, revision string) ([]string, string, error) {
	art := r.store.Acquire(src.String())
	if art == nil {
		return nil, revision, fail(meta.ArtifactFailedReason, fmt.Errorf("source artifact of %s not found, retrying", obj.Spec.SourceRef.String()))
	}
	defer art.Release()
	revision = art.Revision
	changes, err := r.applyRevision(ctx, k, st, obj, art.Dir, revision)
	return changes, revision, err
}

func (r *Reconciler) applyRevision(ctx context.Context, k core.Key, st *ksState, obj *kustomizev1.Kustomization, root, revision string) ([]string, error) {

	target, err := r.targetFor(ctx, obj)
	if err != nil {
		return nil, fail(meta.ReconciliationFailedReason, err)
	}
	kc, mapper, remote := target.client, target.mapper, target.remote != ""
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fail(meta.BuildFailedReason, err)
	}
	res, err := r.build(ctx, obj, content, root)
	if err != nil {
		return nil, err
	}
	objects := res.Objects
	labels := r.ownerLabels(k)
	for _, o := range objects {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for key, val := range labels {
			l[key] = val
		}
		if cm := obj.Spec.CommonMetadata; cm != nil {
			for key, val := range cm.Labels {
				l[key] = val
			}
			if len(cm.Annotations) > 0 {
				a := o.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				for key, val := range cm.Annotations {
					a[key] = val
				}
				o.SetAnnotations(a)
			}
		}
		o.SetLabels(l)
	}

	r.mu.Lock()
	reqObjs := make([]apply.Object, 0, len(objects))
	for _, o := range objects {
		id := apply.ID(o)
		var last map[string]any
		if prev := st.desired[id]; prev != nil && r.owners[id] == k {
			last = prev.Object
		}
		reqObjs = append(reqObjs, apply.Object{Desired: o, LastApplied: last, Ignore: pathsFor(st.ignore, o),
			Origin: res.Origins[build.Subject(o)]})
	}
	r.mu.Unlock()

	// Start the drift watch of every kind about to be applied before the apply looks objects up, so the
	// caches fill while the first objects go out and later lookups need no request. A kind whose CRD
	// comes with this apply cannot be mapped yet; it is watched after the apply, below.
	if !remote {
		for _, gvk := range dedupGVK(gvksOf(objects)) {
			_ = r.watcher.Watch(gvk)
		}
	}
	st.applyMu.Lock()
	entries, err := r.engine.Apply(ctx, apply.Request{Client: kc, Mapper: mapper, Objects: reqObjs, Force: obj.Spec.Force})
	if err != nil {
		st.applyMu.Unlock()
		return nil, fail(meta.ReconciliationFailedReason, fmt.Errorf("revision %s: %w", revision, err))
	}
	byID := make(map[core.ObjID]*unstructured.Unstructured, len(objects))
	for _, o := range objects {
		byID[apply.ID(o)] = o
	}
	newInv := make([]invEntry, 0, len(entries))
	var changes []string
	var watchKinds []schema.GroupVersionKind
	r.mu.Lock()
	oldInv := st.inventory
	for _, e := range entries {
		newInv = append(newInv, invEntry{id: e.ID, version: e.Version})
		o := byID[e.ID]
		if e.Action == core.ActionSkip || remote {
			// A remote cluster's objects are not the drift watch's (it watches the own cluster).
			delete(st.desired, e.ID)
			if e.Action == core.ActionCreate || e.Action == core.ActionUpdate {
				changes = append(changes, e.ID.Subject()+" "+string(e.Action))
			}
			continue
		}
		st.desired[e.ID] = o
		st.origins[e.ID] = res.Origins[build.Subject(o)]
		r.owners[e.ID] = k
		watchKinds = append(watchKinds, o.GroupVersionKind())
		if e.Action == core.ActionCreate || e.Action == core.ActionUpdate {
			changes = append(changes, e.ID.Subject()+" "+string(e.Action))
		}
	}
	oldIDs := make([]core.ObjID, len(oldInv))
	versions := map[core.ObjID]string{}
	for i, e := range oldInv {
		oldIDs[i] = e.id
		versions[e.id] = e.version
	}
	newIDs := make([]core.ObjID, len(newInv))
	for i, e := range newInv {
		newIDs[i] = e.id
	}
	stale := core.Stale(oldIDs, newIDs)
	// Forget stale objects before deleting them, so the drift watcher does not recreate them.
	for _, id := range stale {
		delete(st.desired, id)
		delete(st.origins, id)
		if r.owners[id] == k {
			delete(r.owners, id)
		}
	}
	st.inventory = newInv
	r.mu.Unlock()
	st.applyMu.Unlock()
	for _, gvk := range dedupGVK(watchKinds) {
		if err := r.watcher.Watch(gvk); err != nil {
			r.log.Warn("cannot watch for drift", "kind", gvk.String(), "err", err)
		}
	}

	if obj.Spec.Prune && len(stale) > 0 {
		deleted, _, err := r.engine.Prune(ctx, kc, mapper, stale, versions, r.ownerLabels(k))
		for _, id := range deleted {
			changes = append(changes, id.Subject()+" deleted")
		}
		if err != nil {
			// Keep what could not be deleted in the inventory so the next reconciliation retries it
			// (kustomize-controller, fluxcd/kustomize-controller#1664).
			done := map[core.ObjID]bool{}
			for _, id := range deleted {
				done[id] = true
			}
			r.mu.Lock()
			for _, id := range stale {
				if !done[id] {
					st.inventory = append(st.inventory, invEntry{id: id, version: versions[id]})
				}
			}
			r.mu.Unlock()
			return changes, fail(meta.PruneFailedReason, err)
		}
	}

	// Health: every applied object with spec.wait, else spec.healthChecks.
	var check []core.ObjID
	if obj.Spec.Wait {
		for _, e := range entries {
			if e.Action != core.ActionSkip && !(e.ID.Kind == kustomizev1.KustomizationKind && e.ID.Name == k.Name && e.ID.Namespace == k.Namespace) {
				check = append(check, e.ID)
			}
		}
	} else {
		for _, h := range obj.Spec.HealthChecks {
			gv, _ := schema.ParseGroupVersion(h.APIVersion)
			ns := h.Namespace
			if ns == "" {
				ns = obj.Namespace
			}
			check = append(check, core.ObjID{Group: gv.Group, Kind: h.Kind, Namespace: ns, Name: h.Name})
		}
	}
	r.mu.Lock()
	if len(check) == 0 {
		apimeta.RemoveStatusCondition(&st.obj.Status.Conditions, meta.HealthyCondition)
	} else {
		msg := fmt.Sprintf("Running health checks for revision %s with a timeout of %s", revision, obj.GetTimeout())
		r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, msg)
		r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.HealthyCondition, metav1.ConditionUnknown, meta.ProgressingReason, msg)
	}
	r.mu.Unlock()
	if len(check) > 0 {
		hstart := time.Now()
		readers, _ := healthReaders(obj) // compiled before, at the gate
		if err := r.engine.Wait(ctx, kc, mapper, check, r.prof.HealthCheckInterval, obj.GetTimeout(), readers...); err != nil {
			err = fmt.Errorf("health check failed after %s: %w", time.Since(hstart).Round(time.Millisecond), err)
			r.mu.Lock()
			r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.HealthyCondition, metav1.ConditionFalse, meta.HealthCheckFailedReason, err.Error())
			r.mu.Unlock()
			return changes, fail(meta.HealthCheckFailedReason, err)
		}
		r.mu.Lock()
		r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.HealthyCondition, metav1.ConditionTrue, meta.SucceededReason,
			fmt.Sprintf("Health check passed in %s", time.Since(hstart).Round(time.Millisecond)))
		r.mu.Unlock()
	}
	return changes, nil
}

// finish records the outcome in status, schedules the next run and wakes dependents.
func (r *Reconciler) finish(k core.Key, st *ksState, obj *kustomizev1.Kustomization, start time.Time, tm core.Timing, revision string, err error) {
	outcome := core.Succeeded
	var f *failure
	if err != nil {
		outcome = core.Failed
		if !errors.As(err, &f) {
			f = &failure{reason: meta.ReconciliationFailedReason, err: err}
		}
		if f.stalled {
			outcome = core.Stalled
		}
	}
	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	s := &st.obj.Status
	s.ObservedGeneration = obj.Generation
	inv := &kustomizev1.ResourceInventory{Entries: make([]kustomizev1.ResourceRef, 0, len(st.inventory))}
	for _, e := range st.inventory {
		inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{ID: e.id.String(), Version: e.version})
	}
	// In apply order, as kustomize-controller records its change set (ssa's kind order): `flux tree ks`
	// prints the inventory as it stands.
	s.Inventory = inv
	if err == nil {
		s.LastAppliedRevision = revision
		r.markReady(&s.Conditions, obj.Generation, meta.ReconciliationSucceededReason, "Applied revision: "+revision)
		st.lastMsg = ""
	} else {
		r.markFailed(&s.Conditions, obj.Generation, f.reason, f.Error(), f.stalled)
		st.lastMsg = f.Error()
	}
	next := core.RequeueAfter(outcome, tm, nil)
	r.published(KindKustomization, k)
	r.mu.Unlock()
	if outcome == core.Succeeded {
		next = r.jitter(next)
	}
	r.mu.Lock()
	r.scheduleLocked(KindKustomization, k, next)
	dependents := r.graph.Dependents(k)
	r.mu.Unlock()

	elapsed := r.clk.Since(start)
	r.met.observeReconcile(KindKustomization, outcome, elapsed)
	if err != nil {
		r.emit(KindKustomization, k, EventWarning, f.reason, f.Error(), revision)
		return
	}
	r.emit(KindKustomization, k, EventNormal, meta.ReconciliationSucceededReason,
		fmt.Sprintf("Reconciliation finished in %s, next run in %s", elapsed.Round(time.Millisecond), tm.Interval), revision)
	// Event-driven dependsOn: a dependent waits for nothing but this (Flux: the dependency requeue).
	if !r.prof.EventDrivenDependsOn {
		return
	}
	for _, d := range dependents {
		r.ksQueue.Add(d)
	}
}

func gvksOf(objs []*unstructured.Unstructured) []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, len(objs))
	for i, o := range objs {
		out[i] = o.GroupVersionKind()
	}
	return out
}

func dedupGVK(in []schema.GroupVersionKind) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, g := range in {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// sourceArtifactLocked says whether the source exists and gives its artifact revision ("" when it has
// none yet). Callers hold r.mu.
func (r *Reconciler) sourceArtifactLocked(src srcRef) (found bool, revision string) {
	st := r.srcs[src]
	if st == nil {
		return false, ""
	}
	a := st.obj.GetArtifact()
	if a == nil {
		return true, ""
	}
	return true, a.Revision
}

// kustomizationsOfSourceLocked lists the Kustomizations reading a source. Callers hold r.mu.
func (r *Reconciler) kustomizationsOfSourceLocked(src srcRef) []core.Key {
	var out []core.Key
	for k, st := range r.kss {
		if sourceKey(st.obj) == src {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}
