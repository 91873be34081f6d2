package drift

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Event is one observed change of a watched object.
type Event struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
	// Object is the new state; nil when Deleted.
	Object  *unstructured.Unstructured
	Deleted bool
	// Initial marks objects listed when a watch starts (not changes).
	Initial bool
	// At is when the watcher received it.
	At time.Time
}

// Handler receives events. It must not block: queue and return.
type Handler func(Event)

// Watcher holds, per watched kind, two informers: the owner-labelled objects in full (drift events and
// the live state to compare), and every object of the kind as metadata only (so "does it exist, and is
// it annotated to be left alone?" needs no request).
type Watcher struct {
	dyn      dynamic.Interface
	meta     metadata.Interface
	mapper   meta.RESTMapper
	selector string
	handler  Handler
	now      func() time.Time

	mu    sync.Mutex
	kinds map[schema.GroupVersionKind]*kindInformer
	ctx   context.Context
	wg    sync.WaitGroup
}

type kindInformer struct {
	full       cache.SharedIndexInformer
	meta       cache.SharedIndexInformer
	namespaced bool
}

func (k *kindInformer) synced() bool { return k.full.HasSynced() && k.meta.HasSynced() }

// New returns a watcher whose full informers select objects by labelSelector (e.g. the owner label
// key, meaning "has the label"). Informers start when Watch is first called for a kind and stop with ctx.
func New(ctx context.Context, dyn dynamic.Interface, md metadata.Interface, mapper meta.RESTMapper, labelSelector string, now func() time.Time, h Handler) *Watcher {
	return &Watcher{dyn: dyn, meta: md, mapper: mapper, selector: labelSelector, handler: h, now: now,
		kinds: map[schema.GroupVersionKind]*kindInformer{}, ctx: ctx}
}

// Watch makes sure the kind is watched. It returns at once; lookups fall back to the API server until
// the caches are synced.
func (w *Watcher) Watch(gvk schema.GroupVersionKind) error {
	if w.kind(gvk) != nil {
		return nil
	}
	// The mapping may need discovery (a kind not seen yet): not under w.mu, which every lookup takes.
	m, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("watch %s: %w", gvk, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.kinds[gvk]; ok {
		return nil
	}
	if w.ctx.Err() != nil {
		return w.ctx.Err()
	}
	idx := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	ki := &kindInformer{
		full: dynamicinformer.NewFilteredDynamicInformer(w.dyn, m.Resource, metav1.NamespaceAll, 0, idx,
			func(o *metav1.ListOptions) { o.LabelSelector = w.selector }).Informer(),
		meta:       metadatainformer.NewFilteredMetadataInformer(w.meta, m.Resource, metav1.NamespaceAll, 0, idx, nil).Informer(),
		namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace,
	}
	emit := func(obj any, deleted bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj, deleted = t.Obj, true
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		ev := Event{GVK: gvk, Namespace: u.GetNamespace(), Name: u.GetName(), Deleted: deleted, At: w.now(), Initial: !ki.full.HasSynced()}
		if !deleted {
			ev.Object = u
		}
		w.handler(ev)
	}
	if _, err := ki.full.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { emit(obj, false) },
		UpdateFunc: func(_, obj any) { emit(obj, false) },
		DeleteFunc: func(obj any) { emit(obj, true) },
	}); err != nil {
		return fmt.Errorf("watch %s: %w", gvk, err)
	}
	w.kinds[gvk] = ki
	ctx := w.ctx
	w.wg.Add(2)
	go func() { defer w.wg.Done(); ki.full.RunWithContext(ctx) }()
	go func() { defer w.wg.Done(); ki.meta.RunWithContext(ctx) }()
	return nil
}

func (w *Watcher) kind(gvk schema.GroupVersionKind) *kindInformer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kinds[gvk]
}

func (k *kindInformer) key(namespace, name string) string {
	if k.namespaced {
		return namespace + "/" + name
	}
	return name
}

// Live returns the owner-labelled object from the cache; found is false when it is not there or the
// kind's caches are not synced yet.
func (w *Watcher) Live(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, bool) {
	u, _ := w.Lookup(gvk, namespace, name)
	return u, u != nil
}

// Lookup returns the owner-labelled object (nil if the cache does not hold it) and whether the kind's
// caches are synced; only a synced cache's nil means the labelled object is gone or unlabelled.
func (w *Watcher) Lookup(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, bool) {
	ki := w.kind(gvk)
	if ki == nil || !ki.synced() {
		return nil, false
	}
	o, ok, err := ki.full.GetStore().GetByKey(ki.key(namespace, name))
	if err != nil || !ok {
		return nil, true
	}
	u, _ := o.(*unstructured.Unstructured)
	return u, true
}

// Exists reports, from the metadata cache, whether any object of the kind has this name (labelled or
// not); known is false until the kind's caches are synced.
func (w *Watcher) Exists(gvk schema.GroupVersionKind, namespace, name string) (exists, known bool) {
	ki := w.kind(gvk)
	if ki == nil || !ki.synced() {
		return false, false
	}
	_, ok, err := ki.meta.GetStore().GetByKey(ki.key(namespace, name))
	return ok && err == nil, err == nil
}

// Synced reports whether the kind's caches are complete.
func (w *Watcher) Synced(gvk schema.GroupVersionKind) bool {
	ki := w.kind(gvk)
	return ki != nil && ki.synced()
}

// Wait blocks until every informer goroutine has ended (after the context passed to New is done).
func (w *Watcher) Wait() { w.wg.Wait() }
