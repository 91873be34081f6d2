package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/apply"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/drift"
)

// onWatchEvent queues a watched object for a drift check when it belongs to a Kustomization's
// inventory. It runs on the informer's goroutine and must not block.
func (r *Reconciler) onWatchEvent(ev drift.Event) {
	if r.opts.NoDriftWatch || !r.prof.DriftWatch {
		return
	}
	id := core.ObjID{Group: ev.GVK.Group, Kind: ev.GVK.Kind, Namespace: ev.Namespace, Name: ev.Name}
	r.mu.Lock()
	_, owned := r.owners[id]
	if owned {
		if _, ok := r.pending[id]; !ok {
			r.pending[id] = ev.At
		}
	}
	r.mu.Unlock()
	if owned {
		r.driftQueue.Add(id)
	}
}

// correct restores one object to what its Kustomization last applied, if it drifted or was deleted,
// and records the correction.
func (r *Reconciler) correct(ctx context.Context, id core.ObjID) {
	r.mu.Lock()
	detected, ok := r.pending[id]
	delete(r.pending, id)
	k, owned := r.owners[id]
	st := r.kss[k]
	r.mu.Unlock()
	if !ok || !owned || st == nil {
		return
	}

	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	r.mu.Lock()
	desired := st.desired[id]
	obj := st.obj.DeepCopy()
	origin := st.origins[id]
	rules := st.ignore
	still := r.owners[id] == k && !st.deleted
	r.mu.Unlock()
	if desired == nil || !still || obj.Spec.Suspend || core.ReconcileDisabled(desired.Object) {
		return
	}
	live, synced := r.watcher.Lookup(desired.GroupVersionKind(), id.Namespace, id.Name)
	if !synced {
		// The watch is (re)starting: look again shortly, keeping the detection time.
		r.retryCorrection(id, detected, r.prof.DriftSyncRetry)
		return
	}
	ignore := pathsFor(rules, desired)
	action := string(core.ActionCreate)
	var fields []string
	if live != nil {
		if core.ReconcileDisabled(live.Object) {
			return
		}
		fields = core.DriftedFields(desired.Object, live.Object, ignore)
		if len(fields) == 0 {
			return
		}
		action = string(core.ActionUpdate)
	}
	c, err := r.clientFor(obj)
	if err == nil {
		_, err = r.engine.Apply(ctx, apply.Request{Client: c, Mapper: r.mapper, Force: obj.Spec.Force,
			Objects: []apply.Object{{Desired: desired, Ignore: ignore, Origin: origin}}})
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		r.emit(KindKustomization, k, EventWarning, "DriftCorrectionFailed",
			fmt.Sprintf("%s drifted (%s) and could not be corrected: %v", id.Subject(), strings.Join(fields, ", "), err), "")
		r.retryCorrection(id, detected, r.prof.DriftRetry)
		return
	}
	now := r.clk.Now()
	c2 := Correction{Cluster: r.opts.Cluster, Kustomization: k.String(), Object: id.Subject(), Action: action,
		Fields: fields, DetectedAt: detected, CorrectedAt: now, Latency: now.Sub(detected)}
	r.mu.Lock()
	r.corrs = append(r.corrs, c2)
	if n := r.prof.CorrectionHistory; n > 0 && len(r.corrs) > n {
		r.corrs = slices.Delete(r.corrs, 0, len(r.corrs)-n)
	}
	r.mu.Unlock()
	r.met.observeCorrection(c2.Latency)
	what := "recreated"
	if action == string(core.ActionUpdate) {
		what = "reverted " + strings.Join(fields, ", ")
	}
	r.emit(KindKustomization, k, EventNormal, "DriftCorrected", fmt.Sprintf("%s drifted from the desired state: %s", id.Subject(), what),
		obj.Status.LastAppliedRevision)
}

// retryCorrection looks at a drifted object again after d, keeping the time its drift was first
// detected (a correction's latency counts from there).
func (r *Reconciler) retryCorrection(id core.ObjID, detected time.Time, d time.Duration) {
	r.mu.Lock()
	if _, ok := r.pending[id]; !ok {
		r.pending[id] = detected
	}
	r.mu.Unlock()
	r.driftQueue.AddAfter(id, d)
}
