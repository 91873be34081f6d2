package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/flowcontrol"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/apply"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/drift"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/workq"
)

// Options configure one reconciler (one workload cluster).
type Options struct {
	// Cluster names the workload cluster in events, corrections and metrics.
	Cluster string
	// WorkDir holds Git clones and artifacts; it must be private to this reconciler.
	WorkDir string
	// Profile holds the defaults and timings; zero means DefaultProfile().
	Profile Profile
	// Clock drives intervals, requeues and timestamps; nil means the real clock. Tests pass a fake
	// clock and step it instead of waiting for intervals.
	Clock clock.WithTicker
	// Logger receives debug and error logs; nil means silent.
	Logger *slog.Logger
	// Registerer receives the Prometheus metrics; nil means a private registry (see Gatherer).
	Registerer prometheus.Registerer
	// WebhookSecret is the HMAC key of the Git server's push webhook; empty disables WebhookHandler.
	WebhookSecret []byte
	// DefaultServiceAccount is impersonated for Kustomizations without spec.serviceAccountName
	// (kustomize-controller --default-service-account; the Arc Flux extension's multi-tenancy sets it).
	DefaultServiceAccount string
	// NoCrossNamespaceRefs rejects a Kustomization whose sourceRef points to another namespace
	// (kustomize-controller --no-cross-namespace-refs; also set by the Arc extension's multi-tenancy).
	NoCrossNamespaceRefs bool
	// OnEvent, if set, receives every event as it is emitted (do not block).
	OnEvent func(Event)
	// NoDriftWatch turns the watch-driven drift correction off: a changed or deleted object is then put
	// back only at its Kustomization's next interval, as Flux does. It exists for the scenario suite's
	// broken-change check (`go tool task scenario:broken`), which proves the drift scenarios can fail.
	NoDriftWatch bool
	// ObjectsInCluster makes the reconciler a controller on Flux's objects in its cluster, as Flux's
	// controllers are: it watches every GitRepository, OCIRepository and Kustomization there (whoever
	// created it, a Kustomization it applied included), takes their generations from the API server,
	// writes their status to the status subresource, records Kubernetes Events from source-controller
	// and kustomize-controller, and puts Flux's finalizer on them so a deleted Kustomization prunes
	// first. Flux's CRDs must be installed (Start fails with ErrNoCRDs otherwise). Off, the objects
	// live in memory only, fed through the Apply methods.
	ObjectsInCluster bool
	// WatchLabelSelector, in ObjectsInCluster mode, restricts the reconciler to the Flux objects whose
	// labels match it, as the Flux controllers' --watch-label-selector does (Flux's sharding, e.g.
	// "sharding.fluxcd.io/key=shard1"); empty watches them all.
	WatchLabelSelector string
	// ChartTransport carries the Helm sources' requests (index, charts, OCI pulls) when set: the twin's
	// chart mirror, through which a HelmRepository's upstream URL resolves in a twin without network.
	ChartTransport *http.Transport
}

// Errors callers can test for.
var (
	// ErrInvalid is wrapped by validation errors of the Apply methods.
	ErrInvalid = errors.New("invalid object")
	// ErrNotFound is returned for an unknown object.
	ErrNotFound = errors.New("not found")
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("reconciler stopped")
	// ErrDependencyCycle is wrapped when ApplyKustomization rejects a dependsOn cycle; the message
	// prints the cycle ("ns/a -> ns/b -> ns/a").
	ErrDependencyCycle = core.ErrDependencyCycle
)

type schedKey struct {
	kind Kind
	key  core.Key
}

// srcRef names a source: an object of one of the kinds of sourceKinds.
type srcRef struct {
	kind Kind
	key  core.Key
}

func (s srcRef) String() string { return string(s.kind) + "/" + s.key.String() }

// Reconciler reconciles sources (GitRepositories, OCIRepositories) and Kustomizations against one
// cluster.
type Reconciler struct {
	opts   Options
	prof   Profile
	clk    clock.WithTicker
	log    *slog.Logger
	cfg    *rest.Config
	admin  client.Client
	mapper meta.RESTMapper
	dyn    dynamic.Interface
	md     metadata.Interface
	store  *source.Store
	helm   *helm.Getter
	engine *apply.Engine
	met    *metrics
	rng    *rand.Rand

	watcher *drift.Watcher
	cluster *inCluster // ObjectsInCluster mode; nil in memory

	mu      sync.Mutex
	srcs    map[srcRef]*srcState
	kss     map[core.Key]*ksState
	hrs     map[core.Key]*hrState
	graph   *core.Graph
	owners  map[core.ObjID]core.Key
	sched   *core.Scheduler[schedKey]
	events  []Event
	corrs   []Correction
	clients map[string]client.Client
	// remotes are the spec.kubeConfig targets, by Secret, its resourceVersion and service account.
	remotes map[string]applyTarget
	pending map[core.ObjID]time.Time // drift detected, not yet handled

	ksQueue    *workq.Queue[core.Key]
	hrQueue    *workq.Queue[core.Key]
	srcQueue   *workq.Queue[srcRef]
	driftQueue *workq.Queue[core.ObjID]
	wake       chan struct{}

	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type ksState struct {
	obj *kustomizev1.Kustomization
	// applyMu serializes apply and prune with drift corrections of this Kustomization's objects.
	applyMu sync.Mutex
	// desired holds, per inventory object, what was last applied (normalized, owner labels set);
	// the drift corrector restores it. Guarded by Reconciler.mu.
	desired map[core.ObjID]*unstructured.Unstructured
	origins map[core.ObjID]string
	// inventory is what status.inventory shows: every object of the last successful apply (and
	// objects whose prune failed), with its API version.
	inventory []invEntry
	ignore    []ignoreRule
	deleted   bool
	lastMsg   string
}

type invEntry struct {
	id      core.ObjID
	version string
}

// New returns a reconciler for the cluster at cfg. Start it with Start.
func New(cfg *rest.Config, opts Options) (*Reconciler, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: a rest.Config for the workload cluster is required", ErrInvalid)
	}
	if opts.WorkDir == "" {
		return nil, fmt.Errorf("%w: Options.WorkDir is required (a private directory for clones and artifacts)", ErrInvalid)
	}
	if _, err := labels.Parse(opts.WatchLabelSelector); err != nil {
		return nil, fmt.Errorf("%w: Options.WatchLabelSelector %q: %v", ErrInvalid, opts.WatchLabelSelector, err)
	}
	if opts.Profile.Name == "" {
		opts.Profile = DefaultProfile()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("create work directory %s: %w", opts.WorkDir, err)
	}
	cfg = rest.CopyConfig(cfg)
	setClientLimits(cfg, opts.Profile)
	// Server warnings (deprecated APIs and the like) go to the logger, not to klog's stderr.
	cfg.WarningHandler, cfg.WarningHandlerWithContext = nil, slogWarnings{log}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build HTTP client for cluster %q: %w", opts.Cluster, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("build REST mapper for cluster %q: %w", opts.Cluster, err)
	}
	admin, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("build client for cluster %q: %w", opts.Cluster, err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client for cluster %q: %w", opts.Cluster, err)
	}
	md, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("build metadata client for cluster %q: %w", opts.Cluster, err)
	}
	store, err := source.NewStore(filepath.Join(opts.WorkDir, "git"), opts.Clock.Now)
	if err != nil {
		return nil, err
	}
	hg, err := helm.NewGetter(cfg)
	if err != nil {
		return nil, fmt.Errorf("build Helm clients for cluster %q: %w", opts.Cluster, err)
	}
	r := &Reconciler{
		opts: opts, prof: opts.Profile, clk: opts.Clock, log: log, cfg: cfg, admin: admin, mapper: mapper, dyn: dyn, md: md,
		store: store, helm: hg, rng: rand.New(rand.NewPCG(1, 2)),
		srcs: map[srcRef]*srcState{}, kss: map[core.Key]*ksState{}, hrs: map[core.Key]*hrState{}, owners: map[core.ObjID]core.Key{},
		sched: core.NewScheduler[schedKey](), clients: map[string]client.Client{"": admin}, remotes: map[string]applyTarget{}, pending: map[core.ObjID]time.Time{},
		ksQueue:    workq.New[core.Key](),
		hrQueue:    workq.New[core.Key](),
		srcQueue:   workq.New[srcRef](),
		driftQueue: workq.New[core.ObjID](),
		wake:       make(chan struct{}, 1),
	}
	if opts.ObjectsInCluster {
		kube, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
		if err != nil {
			return nil, fmt.Errorf("build clientset for cluster %q: %w", opts.Cluster, err)
		}
		r.cluster = newInCluster(r, kube)
	}
	r.graph, _ = core.NewGraph(nil)
	if r.met, err = newMetrics(opts.Cluster, opts.Registerer, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Start begins reconciling; it returns at once. Everything stops when ctx ends or Stop is called.
func (r *Reconciler) Start(ctx context.Context) error {
	if r.cluster != nil {
		if err := r.cluster.checkCRDs(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return fmt.Errorf("reconciler for cluster %q already started", r.opts.Cluster)
	}
	if r.stopped {
		return ErrStopped
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)
	// client-go's informers and clients log through the context's logger (klog contextual logging):
	// give them this reconciler's, so a watch ending on Stop ("Warning: watch ended with error") or a
	// failed watch reaches Options.Logger -- and nothing reaches the terminal when it is nil.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(r.log.Handler()))
	sel := r.prof.OwnerGroup + "/name"
	r.watcher = drift.New(ctx, r.dyn, r.md, r.mapper, sel, r.clk.Now, r.onWatchEvent)
	r.engine = apply.New(apply.Options{FieldManager: r.prof.FieldManager, Concurrency: r.prof.ApplyConcurrency,
		StageWaitInterval: r.prof.StageWaitInterval, StageWaitTimeout: r.prof.StageWaitTimeout}, r.watcher)
	r.goRun(func() { r.runScheduler(ctx) })
	for i := 0; i < r.prof.SourceWorkers; i++ {
		r.goRun(func() { work(ctx, r.srcQueue, r.reconcileSource) })
	}
	for i := 0; i < r.prof.KustomizationWorkers; i++ {
		r.goRun(func() { work(ctx, r.ksQueue, r.reconcileKustomization) })
	}
	for i := 0; i < max(r.prof.HelmReleaseWorkers, 1); i++ {
		r.goRun(func() { work(ctx, r.hrQueue, r.reconcileHelmRelease) })
	}
	for i := 0; i < r.prof.DriftWorkers; i++ {
		r.goRun(func() { work(ctx, r.driftQueue, r.correct) })
	}
	r.goRun(func() {
		<-ctx.Done()
		r.ksQueue.ShutDown()
		r.hrQueue.ShutDown()
		r.srcQueue.ShutDown()
		r.driftQueue.ShutDown()
	})
	if r.cluster != nil {
		r.cluster.start(ctx)
	}
	// Everything applied before Start is queued now.
	for ref := range r.srcs {
		r.srcQueue.Add(ref)
	}
	for k := range r.kss {
		r.ksQueue.Add(k)
	}
	for k := range r.hrs {
		r.hrQueue.Add(k)
	}
	return nil
}

// Stop stops all work and waits for it to end. In-flight requests are cancelled.
func (r *Reconciler) Stop() {
	r.mu.Lock()
	r.stopped = true
	cancel := r.cancel
	w := r.watcher
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
	if w != nil {
		w.Wait()
	}
}

func (r *Reconciler) goRun(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// work runs f on the items of q, one at a time, until q shuts down.
func work[K comparable](ctx context.Context, q *workq.Queue[K], f func(context.Context, K)) {
	for {
		k, ok := q.Get()
		if !ok {
			return
		}
		f(ctx, k)
		q.Done(k)
	}
}

// runScheduler moves keys whose requeue time has come into their queues.
func (r *Reconciler) runScheduler(ctx context.Context) {
	for {
		r.mu.Lock()
		next, ok := r.sched.Next()
		r.mu.Unlock()
		var timer clock.Timer
		var fire <-chan time.Time
		if ok {
			timer = r.clk.NewTimer(max(next.Sub(r.clk.Now()), 0))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-r.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		r.mu.Lock()
		due := r.sched.Due(r.clk.Now())
		r.mu.Unlock()
		for _, d := range due {
			r.enqueue(d.kind, d.key)
		}
	}
}

// schedule requeues after d (replacing an earlier requeue); d <= 0 cancels it.
// Callers hold r.mu.
func (r *Reconciler) scheduleLocked(kind Kind, k core.Key, d time.Duration) {
	sk := schedKey{kind, k}
	if d <= 0 {
		r.sched.Cancel(sk)
		return
	}
	r.sched.Set(sk, r.clk.Now().Add(d))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Reconciler) enqueue(kind Kind, k core.Key) {
	switch {
	case kind == KindKustomization:
		r.ksQueue.Add(k)
	case kind == KindHelmRelease:
		r.hrQueue.Add(k)
	case isSourceKind(kind):
		r.srcQueue.Add(srcRef{kind, k})
	}
}

func (r *Reconciler) jitter(d time.Duration) time.Duration {
	if r.prof.IntervalJitter <= 0 {
		return d
	}
	r.mu.Lock()
	f := (r.rng.Float64()*2 - 1) * r.prof.IntervalJitter
	r.mu.Unlock()
	return d + time.Duration(float64(d)*f)
}

// ApplyKustomization adds or updates a Kustomization. It is rejected with a *core.CycleError-wrapping
// error (errors.Is ErrDependencyCycle) if its dependsOn would close a cycle.
func (r *Reconciler) ApplyKustomization(obj *kustomizev1.Kustomization) error {
	rules, err := validateKustomization(obj)
	if err != nil {
		return err
	}
	k := core.Key{Namespace: obj.Namespace, Name: obj.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	if err := r.graph.Set(k, dependsOn(obj)); err != nil {
		return fmt.Errorf("Kustomization %s rejected: %w", k, err)
	}
	in := obj.DeepCopy()
	st := r.kss[k]
	if st == nil {
		in.Generation = r.firstGeneration(in)
		inv := r.inventoryOf(in)
		in.Status = kustomizev1.KustomizationStatus{}
		r.kss[k] = &ksState{obj: in, ignore: rules, desired: map[core.ObjID]*unstructured.Unstructured{},
			origins: map[core.ObjID]string{}, inventory: inv}
	} else {
		var reconcile bool
		in.Generation, reconcile = r.updatedGeneration(st.obj, in, st.obj.Spec, in.Spec)
		in.Status = st.obj.Status
		st.obj = in
		st.ignore = rules
		if !reconcile {
			return nil
		}
	}
	if r.started {
		r.ksQueue.Add(k)
	}
	return nil
}

// inventoryOf is what a Kustomization first seen in the cluster already owns: its status.inventory, as
// a reconciler before this one (a restarted twin, or real Flux) wrote it. Flux reads the same field, so
// an object removed from Git while no reconciler ran is pruned at the next apply, and a deletion prunes
// what the object owns. In memory, and for entries that do not parse, nothing.
func (r *Reconciler) inventoryOf(obj *kustomizev1.Kustomization) []invEntry {
	if !r.opts.ObjectsInCluster || obj.Status.Inventory == nil {
		return nil
	}
	var out []invEntry
	for _, e := range obj.Status.Inventory.Entries {
		id, err := core.ParseObjID(e.ID)
		if err != nil {
			r.log.Warn("inventory entry skipped", "cluster", r.opts.Cluster, "object", obj.Namespace+"/"+obj.Name, "error", err)
			continue
		}
		out = append(out, invEntry{id: id, version: e.Version})
	}
	return out
}

// DeleteKustomization removes a Kustomization. As Flux's finalizer does, it first deletes the objects
// of its inventory when spec.prune is true and it is not suspended (deletionPolicy MirrorPrune, Flux's
// default; Delete and Orphan are honoured too, WaitForTermination deletes without waiting).
func (r *Reconciler) DeleteKustomization(ctx context.Context, namespace, name string) error {
	k := core.Key{Namespace: namespace, Name: name}
	r.mu.Lock()
	st := r.kss[k]
	if st == nil {
		r.mu.Unlock()
		return fmt.Errorf("Kustomization %s: %w", k, ErrNotFound)
	}
	obj := st.obj.DeepCopy()
	r.mu.Unlock()

	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	policy := obj.GetDeletionPolicy()
	// WaitForTermination deletes like Delete; the reconciler does not wait for finalizers to finish.
	prune := (policy == kustomizev1.DeletionPolicyMirrorPrune && obj.Spec.Prune) ||
		policy == kustomizev1.DeletionPolicyDelete || policy == kustomizev1.DeletionPolicyWaitForTermination
	if obj.Spec.Suspend {
		prune = false
	}
	r.mu.Lock()
	ids := make([]core.ObjID, 0, len(st.inventory))
	versions := map[core.ObjID]string{}
	for _, e := range st.inventory {
		ids = append(ids, e.id)
		versions[e.id] = e.version
	}
	st.deleted = true
	for id, owner := range r.owners {
		if owner == k {
			delete(r.owners, id)
		}
	}
	st.desired = map[core.ObjID]*unstructured.Unstructured{}
	r.mu.Unlock()
	if prune && len(ids) > 0 && r.engine != nil && !r.canImpersonate(ctx, obj) {
		// The identity it applied with is gone (its namespace is being deleted, service account first):
		// kustomize-controller skips the garbage collection then (finalize: impersonation.CanImpersonate),
		// so a namespace deletion is not blocked by its own Kustomizations' finalizers.
		prune = false
	}
	if prune && len(ids) > 0 && r.engine != nil {
		t, err := r.targetFor(ctx, obj)
		if err != nil {
			return err
		}
		if _, _, err := r.engine.Prune(ctx, t.client, t.mapper, ids, versions, r.ownerLabels(k)); err != nil {
			r.emit(KindKustomization, k, EventWarning, "PruneFailed", err.Error(), "")
			return fmt.Errorf("delete Kustomization %s: %w", k, err)
		}
	}
	r.mu.Lock()
	delete(r.kss, k)
	r.scheduleLocked(KindKustomization, k, 0)
	r.graph.Remove(k)
	dependents := r.graph.Dependents(k)
	r.mu.Unlock()
	for _, d := range dependents {
		r.ksQueue.Add(d)
	}
	return nil
}

// Kustomization returns a copy of the Kustomization with its current status.
func (r *Reconciler) Kustomization(namespace, name string) (*kustomizev1.Kustomization, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.kss[core.Key{Namespace: namespace, Name: name}]
	if st == nil {
		return nil, false
	}
	return st.obj.DeepCopy(), true
}

// Kustomizations returns copies of all Kustomizations, sorted by namespace and name.
func (r *Reconciler) Kustomizations() []kustomizev1.Kustomization {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]kustomizev1.Kustomization, 0, len(r.kss))
	for _, st := range r.kss {
		out = append(out, *st.obj.DeepCopy())
	}
	slices.SortFunc(out, func(a, b kustomizev1.Kustomization) int {
		return compareKeys(core.Key{Namespace: a.Namespace, Name: a.Name}, core.Key{Namespace: b.Namespace, Name: b.Name})
	})
	return out
}

// RequestReconcile reconciles an object now, like `flux reconcile` (the requestedAt annotation).
func (r *Reconciler) RequestReconcile(kind Kind, namespace, name string) error {
	k := core.Key{Namespace: namespace, Name: name}
	r.mu.Lock()
	var ok bool
	switch {
	case kind == KindKustomization:
		_, ok = r.kss[k]
	case kind == KindHelmRelease:
		_, ok = r.hrs[k]
	case isSourceKind(kind):
		_, ok = r.srcs[srcRef{kind, k}]
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s %s: %w", kind, k, ErrNotFound)
	}
	r.enqueue(kind, k)
	return nil
}

// Idle reports whether no work is queued or running right now (scheduled interval and retry runs do
// not count). Scenarios use it as a sync point: after Idle, the reconciler acts again only on a new
// trigger, a watch event or a due interval.
func (r *Reconciler) Idle() bool {
	r.mu.Lock()
	pending := len(r.pending)
	r.mu.Unlock()
	return pending == 0 && r.ksQueue.Idle() && r.hrQueue.Idle() && r.srcQueue.Idle() && r.driftQueue.Idle() && (r.cluster == nil || r.cluster.idle())
}

// Events returns the events emitted so far (oldest first, at most Profile.EventHistory).
func (r *Reconciler) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Corrections returns the drift corrections made so far (oldest first).
func (r *Reconciler) Corrections() []Correction {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.corrs)
}

// Gatherer returns what gathers this reconciler's metrics: its private registry when
// Options.Registerer was nil, else the Registerer if it is also a Gatherer, else nil.
func (r *Reconciler) Gatherer() prometheus.Gatherer { return r.met.gatherer }

// MetricsHandler serves this reconciler's metrics in the Prometheus exposition format.
func (r *Reconciler) MetricsHandler() http.Handler { return r.met.handler() }

func (r *Reconciler) emit(kind Kind, k core.Key, typ EventType, reason, msg, revision string) {
	ev := Event{Time: r.clk.Now(), Cluster: r.opts.Cluster, Kind: kind, Namespace: k.Namespace, Name: k.Name,
		Type: typ, Reason: reason, Message: msg, Revision: revision}
	r.mu.Lock()
	r.events = append(r.events, ev)
	if n := r.prof.EventHistory; n > 0 && len(r.events) > n {
		r.events = slices.Delete(r.events, 0, len(r.events)-n)
	}
	r.mu.Unlock()
	if typ == EventWarning {
		r.log.Warn(msg, "cluster", r.opts.Cluster, "kind", kind, "object", k.String(), "reason", reason)
	} else {
		r.log.Debug(msg, "cluster", r.opts.Cluster, "kind", kind, "object", k.String(), "reason", reason)
	}
	if r.cluster != nil {
		r.cluster.event(schedKey{kind, k}, typ, reason, msg, revision)
	}
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(ev)
	}
}

func (r *Reconciler) ownerLabels(k core.Key) map[string]string {
	return map[string]string{r.prof.OwnerGroup + "/name": k.Name, r.prof.OwnerGroup + "/namespace": k.Namespace}
}

// clientFor returns the client a Kustomization applies with: impersonating its service account
// (spec.serviceAccountName, else Options.DefaultServiceAccount), or the reconciler's own.
func (r *Reconciler) clientFor(obj *kustomizev1.Kustomization) (client.Client, error) {
	sa := obj.Spec.ServiceAccountName
	if sa == "" {
		sa = r.opts.DefaultServiceAccount
	}
	user := ""
	if sa != "" {
		user = "system:serviceaccount:" + obj.Namespace + ":" + sa
	}
	r.mu.Lock()
	c, ok := r.clients[user]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	cfg := rest.CopyConfig(r.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Mapper: r.mapper})
	if err != nil {
		return nil, fmt.Errorf("build client impersonating %s: %w", user, err)
	}
	r.mu.Lock()
	r.clients[user] = c
	r.mu.Unlock()
	return c, nil
}

// setClientLimits sets the client-side rate limit the way kustomize-controller does
// (fluxcd/pkg/runtime client.GetConfigOrDie): none when the API server runs API Priority and Fairness,
// which then protects the server; else Profile.ClientQPS/ClientBurst.
func setClientLimits(cfg *rest.Config, p Profile) {
	ctx, cancel := context.WithTimeout(context.Background(), p.ClientProbeTimeout)
	defer cancel()
	cfg.RateLimiter = nil
	if enabled, err := flowcontrol.IsEnabled(ctx, cfg); err == nil && enabled {
		cfg.QPS, cfg.Burst = -1, -1 // client-go: a negative QPS means no client-side rate limiter
		return
	}
	cfg.QPS, cfg.Burst = p.ClientQPS, p.ClientBurst
}

// slogWarnings passes the API server's warning headers (RFC 7234 code 299) to the reconciler's logger;
// client-go's default handler would print them through klog.
type slogWarnings struct{ log *slog.Logger }

func (w slogWarnings) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.log.WarnContext(ctx, "API server warning", "warning", text)
}

// compareKeys orders keys by namespace, then name.
func compareKeys(a, b core.Key) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}
