package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/workq"
)

// ErrNoCRDs is returned by Start in ObjectsInCluster mode when the cluster does not serve Flux's CRDs.
var ErrNoCRDs = errors.New("flux CRDs not installed")

// ReasonUnsupported is the Ready=False (Stalled) reason of an object the twin's reconciler refuses: a
// field or kind it does not implement, or a dependsOn cycle. Flux has no such reason; it is the twin's,
// so a refusal is never mistaken for one of Flux's own failures.
const ReasonUnsupported = "UnsupportedByTwin"

// clusterKind is one Flux kind the reconciler reconciles from the cluster: its resource, the Flux
// controller whose name its events carry and whose field manager writes its status, its Go type, and
// how a decoded object is handed to the reconciler.
type clusterKind struct {
	kind      Kind
	gvr       schema.GroupVersionResource
	component string
	newObj    func() client.Object
	apply     func(r *Reconciler, obj client.Object) error
}

// clusterKinds is the table of kinds watched in ObjectsInCluster mode: every source kind of sourceKinds,
// then Kustomization and HelmRelease.
var clusterKinds = append(sourceClusterKinds(), clusterKind{
	kind:      KindKustomization,
	gvr:       kustomizev1.GroupVersion.WithResource("kustomizations"),
	component: "kustomize-controller",
	newObj:    func() client.Object { return &kustomizev1.Kustomization{} },
	apply: func(r *Reconciler, obj client.Object) error {
		return r.ApplyKustomization(obj.(*kustomizev1.Kustomization))
	},
}, clusterKind{
	kind:      KindHelmRelease,
	gvr:       helmv2.GroupVersion.WithResource("helmreleases"),
	component: "helm-controller",
	newObj:    func() client.Object { return &helmv2.HelmRelease{} },
	apply: func(r *Reconciler, obj client.Object) error {
		return r.ApplyHelmRelease(obj.(*helmv2.HelmRelease))
	},
})

// sourceClusterKinds are the rows of clusterKinds made from sourceKinds.
func sourceClusterKinds() []clusterKind {
	out := make([]clusterKind, 0, len(sourceKinds)+1)
	for i := range sourceKinds {
		sk := &sourceKinds[i]
		out = append(out, clusterKind{
			kind:      sk.kind,
			gvr:       sk.gvr,
			component: "source-controller",
			newObj:    func() client.Object { return sk.newObj() },
			apply: func(r *Reconciler, obj client.Object) error {
				return r.applySource(sk, obj.(sourceObject))
			},
		})
	}
	return out
}

func clusterKindOf(k Kind) clusterKind {
	for _, ck := range clusterKinds {
		if ck.kind == k {
			return ck
		}
	}
	panic("reconciler: no cluster kind " + string(k))
}

// fluxFinalizer is the finalizer Flux's controllers put on their objects (sourcev1.SourceFinalizer and
// kustomizev1.KustomizationFinalizer are both "finalizers.fluxcd.io").
const fluxFinalizer = kustomizev1.KustomizationFinalizer

// inCluster makes the reconciler a controller on Flux's objects in its cluster, as source-controller
// and kustomize-controller are: informers feed every GitRepository, OCIRepository and Kustomization into
// the reconciler (whoever created it: the Arc agent, kubectl, the flux CLI, or a Kustomization that
// applied it), the status the reconciler computes is written to the object's status subresource, its
// events become Kubernetes Events from the owning controller, and Flux's finalizer makes a deleted
// Kustomization prune its inventory first.
type inCluster struct {
	r         *Reconciler
	kube      kubernetes.Interface
	bcast     record.EventBroadcaster
	recorders map[Kind]record.EventRecorder
	statusQ   *workq.Queue[schedKey]
	finalQ    *workq.Queue[schedKey]
	synced    []cache.InformerSynced

	mu      sync.Mutex
	seen    map[schedKey]*unstructured.Unstructured // the newest object delivered by the informers
	written map[schedKey]string                     // the status last written, as its patch
}

func newInCluster(r *Reconciler, kube kubernetes.Interface) *inCluster {
	return &inCluster{r: r, kube: kube, statusQ: workq.New[schedKey](), finalQ: workq.New[schedKey](),
		seen: map[schedKey]*unstructured.Unstructured{}, written: map[schedKey]string{}}
}

// checkCRDs fails with ErrNoCRDs naming the first kind the cluster does not serve.
func (c *inCluster) checkCRDs() error {
	for _, ck := range clusterKinds {
		gk := schema.GroupKind{Group: ck.gvr.Group, Kind: string(ck.kind)}
		if _, err := c.r.mapper.RESTMapping(gk, ck.gvr.Version); err != nil {
			return fmt.Errorf("%w in cluster %q: %s %s: %v; install them before starting the reconciler (the twin does at bring-up, internal/fluxcrd)",
				ErrNoCRDs, c.r.opts.Cluster, ck.kind, ck.gvr.GroupVersion(), err)
		}
	}
	return nil
}

// start runs the informers, the status writers, the finalizer worker and the event recorder until ctx
// ends.
func (c *inCluster) start(ctx context.Context) {
	r := c.r
	c.bcast = record.NewBroadcaster(record.WithContext(ctx))
	c.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	c.recorders = map[Kind]record.EventRecorder{}
	for _, ck := range clusterKinds {
		c.recorders[ck.kind] = c.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ck.component})
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(r.dyn, 0, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = r.opts.WatchLabelSelector
	})
	for _, ck := range clusterKinds {
		inf := factory.ForResource(ck.gvr).Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.observe(ck, obj) },
			UpdateFunc: func(_, obj any) { c.observe(ck, obj) },
			DeleteFunc: func(obj any) { c.forget(ck, obj) },
		})
		c.synced = append(c.synced, inf.HasSynced)
	}
	factory.Start(ctx.Done())
	for i := 0; i < r.prof.StatusWorkers; i++ {
		r.goRun(func() { work(ctx, c.statusQ, c.writeStatus) })
	}
	r.goRun(func() { work(ctx, c.finalQ, c.finalize) })
	r.goRun(func() {
		<-ctx.Done()
		c.statusQ.ShutDown()
		c.finalQ.ShutDown()
		factory.Shutdown()
		c.bcast.Shutdown()
	})
}

// idle reports whether no status write or finalizer is pending and the informers have listed.
func (c *inCluster) idle() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return c.statusQ.Idle() && c.finalQ.Idle()
}

func objectOf(obj any) (*unstructured.Unstructured, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	return u, ok
}

// observe hands a created or updated object to the reconciler, or its deletion to the finalizer worker.
func (c *inCluster) observe(ck clusterKind, obj any) {
	u, ok := objectOf(obj)
	if !ok {
		return
	}
	sk := schedKey{ck.kind, core.Key{Namespace: u.GetNamespace(), Name: u.GetName()}}
	c.mu.Lock()
	c.seen[sk] = u
	c.mu.Unlock()
	if u.GetDeletionTimestamp() != nil {
		c.finalQ.Add(sk)
		return
	}
	if !slices.Contains(u.GetFinalizers(), fluxFinalizer) {
		c.finalQ.Add(sk) // the worker adds it, as Flux's controllers do on first sight
	}
	typed := ck.newObj()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		c.refuse(ck, u, fmt.Errorf("decode %s %s: %w", ck.kind, sk.key, err))
		return
	}
	if err := ck.apply(c.r, typed); err != nil && !errors.Is(err, ErrStopped) {
		// A refused update must not leave the previous spec reconciling (and writing its status over the
		// refusal): the reconciler lets go of the object without pruning, as a failing Flux reconcile
		// leaves what was applied in place.
		c.r.release(sk)
		c.refuse(ck, u, err)
	}
}

// forget drops an object that is gone from the cluster. With Flux's finalizer the reconciler has
// already let go of it (finalize); without it (deleted before the finalizer was added) the reconciler
// deletes it now, pruning as the finalizer would have.
func (c *inCluster) forget(ck clusterKind, obj any) {
	u, ok := objectOf(obj)
	if !ok {
		return
	}
	sk := schedKey{ck.kind, core.Key{Namespace: u.GetNamespace(), Name: u.GetName()}}
	c.mu.Lock()
	delete(c.seen, sk)
	delete(c.written, sk)
	c.mu.Unlock()
	c.finalQ.Add(sk) // finalize finds it gone and lets the reconciler delete it
}

// release stops reconciling an object and forgets its state without deleting or pruning anything: the
// objects it applied stay on the cluster, no longer watched for drift. Nothing happens for an object the
// reconciler does not hold.
func (r *Reconciler) release(sk schedKey) {
	if sk.kind == KindHelmRelease {
		r.releaseHelmRelease(sk.key) // the release stays installed
		return
	}
	if sk.kind != KindKustomization {
		_ = r.deleteSource(srcRef(sk)) // a source applies nothing: forgetting its artifact is all
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduleLocked(sk.kind, sk.key, 0)
	st := r.kss[sk.key]
	if st == nil {
		return
	}
	st.deleted = true
	for id, owner := range r.owners {
		if owner == sk.key {
			delete(r.owners, id)
		}
	}
	delete(r.kss, sk.key)
	r.graph.Remove(sk.key)
}

// deleteKind lets go of an object: a Kustomization prunes per its deletion policy, a source drops its
// artifact. An object the reconciler does not hold is not an error.
func (r *Reconciler) deleteKind(ctx context.Context, sk schedKey) error {
	var err error
	switch sk.kind {
	case KindKustomization:
		err = r.DeleteKustomization(ctx, sk.key.Namespace, sk.key.Name)
	case KindHelmRelease:
		err = r.DeleteHelmRelease(ctx, sk.key.Namespace, sk.key.Name)
	default:
		err = r.deleteSource(srcRef(sk))
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// refuse writes what the reconciler refused into the object's status: Ready False and Stalled True with
// ReasonUnsupported and the refusal, for the object's generation, and a Warning event. The conditions'
// transition times stay while the refusal does, so the write is done once, not on every update.
func (c *inCluster) refuse(ck clusterKind, u *unstructured.Unstructured, err error) {
	sk := schedKey{ck.kind, core.Key{Namespace: u.GetNamespace(), Name: u.GetName()}}
	var st struct {
		Conditions []metav1.Condition `json:"conditions,omitempty"`
	}
	if m, ok, _ := unstructured.NestedMap(u.Object, "status"); ok {
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(m, &st)
	}
	now := metav1.NewTime(c.r.clk.Now())
	msg := err.Error()
	for _, typ := range []string{meta.ReadyCondition, meta.StalledCondition} {
		status := metav1.ConditionTrue
		if typ == meta.ReadyCondition {
			status = metav1.ConditionFalse
		}
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: ReasonUnsupported,
			Message: msg, ObservedGeneration: u.GetGeneration(), LastTransitionTime: now})
	}
	apimeta.RemoveStatusCondition(&st.Conditions, meta.ReconcilingCondition)
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": st.Conditions}})
	if c.unchanged(sk, patch) {
		return
	}
	c.r.log.Warn("refused", "cluster", c.r.opts.Cluster, "kind", ck.kind, "object", sk.key.String(), "error", msg)
	c.event(sk, EventWarning, ReasonUnsupported, msg, "")
	if err := c.patchStatus(context.Background(), ck, sk.key, patch); err != nil {
		c.r.log.Error("write status", "cluster", c.r.opts.Cluster, "kind", ck.kind, "object", sk.key.String(), "error", err)
		c.forgetWritten(sk)
	}
}

// unchanged records patch as the status of sk and reports whether it was already.
func (c *inCluster) unchanged(sk schedKey, patch []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written[sk] == string(patch) {
		return true
	}
	c.written[sk] = string(patch)
	return false
}

func (c *inCluster) forgetWritten(sk schedKey) {
	c.mu.Lock()
	delete(c.written, sk)
	c.mu.Unlock()
}

// statusChanged queues a status write of the object (the newest status is read when it is written, so
// a burst of changes is one write).
func (c *inCluster) statusChanged(kind Kind, k core.Key) { c.statusQ.Add(schedKey{kind, k}) }

// writeStatus writes the reconciler's status of one object to its status subresource, as a merge patch
// (Flux's controllers patch status the same way), unless it is what was last written.
func (c *inCluster) writeStatus(ctx context.Context, sk schedKey) {
	status, ok := c.r.statusOf(sk)
	if !ok {
		return
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		c.r.log.Error("encode status", "cluster", c.r.opts.Cluster, "kind", sk.kind, "object", sk.key.String(), "error", err)
		return
	}
	if c.unchanged(sk, patch) {
		return
	}
	if err := c.patchStatus(ctx, clusterKindOf(sk.kind), sk.key, patch); err != nil {
		c.forgetWritten(sk)
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		c.r.log.Warn("write status, retrying", "cluster", c.r.opts.Cluster, "kind", sk.kind, "object", sk.key.String(), "error", err)
		c.statusQ.AddAfter(sk, c.r.prof.StatusRetry)
	}
}

func (c *inCluster) patchStatus(ctx context.Context, ck clusterKind, k core.Key, patch []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.r.prof.StatusTimeout)
	defer cancel()
	_, err := c.r.dyn.Resource(ck.gvr).Namespace(k.Namespace).Patch(ctx, k.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: ck.component}, "status")
	return err
}

// finalize adds Flux's finalizer to an object that lacks it, or, for an object being deleted, lets the
// reconciler delete it (a Kustomization prunes its inventory per its deletion policy) and then removes
// the finalizer so the API server can let the object go. For an object already gone from the cluster it
// lets the reconciler delete it (nothing to do after a finalizer ran).
func (c *inCluster) finalize(ctx context.Context, sk schedKey) {
	c.mu.Lock()
	u := c.seen[sk]
	c.mu.Unlock()
	if u == nil { // gone from the cluster (forget)
		if err := c.r.deleteKind(ctx, sk); err != nil && ctx.Err() == nil {
			c.r.log.Warn("delete", "cluster", c.r.opts.Cluster, "kind", sk.kind, "object", sk.key.String(), "error", err)
		}
		return
	}
	ck := clusterKindOf(sk.kind)
	has := slices.Contains(u.GetFinalizers(), fluxFinalizer)
	var finalizers []string
	switch {
	case u.GetDeletionTimestamp() == nil && !has:
		finalizers = append(slices.Clone(u.GetFinalizers()), fluxFinalizer)
	case u.GetDeletionTimestamp() != nil && has:
		if err := c.r.deleteKind(ctx, sk); err != nil {
			if ctx.Err() == nil {
				c.r.log.Warn("finalize, retrying", "cluster", c.r.opts.Cluster, "kind", sk.kind, "object", sk.key.String(), "error", err)
				c.finalQ.AddAfter(sk, c.r.prof.StatusRetry)
			}
			return
		}
		finalizers = slices.DeleteFunc(slices.Clone(u.GetFinalizers()), func(f string) bool { return f == fluxFinalizer })
	default:
		return
	}
	// The resourceVersion makes the patch fail on a newer object instead of overwriting its
	// finalizers; the informer then delivers the newer one and this runs again.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": finalizers, "resourceVersion": u.GetResourceVersion()}})
	pctx, cancel := context.WithTimeout(ctx, c.r.prof.StatusTimeout)
	defer cancel()
	_, err := c.r.dyn.Resource(ck.gvr).Namespace(sk.key.Namespace).Patch(pctx, sk.key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: ck.component})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err), ctx.Err() != nil:
	default:
		c.r.log.Warn("patch finalizers, retrying", "cluster", c.r.opts.Cluster, "kind", sk.kind, "object", sk.key.String(), "error", err)
		c.finalQ.AddAfter(sk, c.r.prof.StatusRetry)
	}
}

// event records a Kubernetes Event on the object, from the Flux controller that owns its kind, with the
// revision as Flux's annotation (<group>/revision).
func (c *inCluster) event(sk schedKey, typ EventType, reason, msg, revision string) {
	c.mu.Lock()
	u := c.seen[sk]
	c.mu.Unlock()
	rec := c.recorders[sk.kind]
	if u == nil || rec == nil {
		return
	}
	var ann map[string]string
	if revision != "" {
		ann = map[string]string{clusterKindOf(sk.kind).gvr.Group + "/revision": revision}
	}
	rec.AnnotatedEventf(u, ann, string(typ), reason, "%s", msg)
}

// statusOf returns the reconciler's current status of an object, false if it holds none.
func (r *Reconciler) statusOf(sk schedKey) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch sk.kind {
	case KindKustomization:
		st := r.kss[sk.key]
		if st == nil || st.deleted {
			return nil, false
		}
		return st.obj.Status.DeepCopy(), true
	case KindHelmRelease:
		st := r.hrs[sk.key]
		if st == nil || st.deleted {
			return nil, false
		}
		return st.obj.Status.DeepCopy(), true
	default:
		st := r.srcs[srcRef(sk)]
		if st == nil || st.deleted {
			return nil, false
		}
		return st.kind.status(st.obj), true
	}
}

// published tells the cluster writer that an object's status changed; in memory it does nothing.
func (r *Reconciler) published(kind Kind, k core.Key) {
	if r.cluster != nil {
		r.cluster.statusChanged(kind, k)
	}
}

// updatedGeneration is how an update is counted: in the cluster the API server's generation is taken; in
// memory the reconciler counts as the API server would (a spec change is a new generation). The bool
// says whether to reconcile now: a new generation or a new reconcile.fluxcd.io/requestedAt annotation.
func (r *Reconciler) updatedGeneration(prev, next metav1.Object, prevSpec, nextSpec any) (int64, bool) {
	if r.opts.ObjectsInCluster {
		gen := next.GetGeneration()
		return gen, gen != prev.GetGeneration() || requestedAt(next.GetAnnotations()) != requestedAt(prev.GetAnnotations())
	}
	return nextGeneration(prev.GetGeneration(), prevSpec, nextSpec, prev.GetAnnotations(), next.GetAnnotations())
}

// firstGeneration is the generation of an object the reconciler sees first: the API server's in the
// cluster, 1 in memory.
func (r *Reconciler) firstGeneration(obj metav1.Object) int64 {
	if r.opts.ObjectsInCluster && obj.GetGeneration() > 0 {
		return obj.GetGeneration()
	}
	return 1
}
