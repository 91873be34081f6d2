package simkubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// Timing is the kubelet's clock settings, from the cluster's time profile.
type Timing struct {
	// LeaseDuration is the node lease's duration; RenewInterval how often it is renewed.
	LeaseDuration time.Duration
	RenewInterval time.Duration
	// StatusUpdateFrequency is how often node status is computed and posted if it changed;
	// StatusReportFrequency how often it is posted regardless.
	StatusUpdateFrequency time.Duration
	StatusReportFrequency time.Duration
}

// leaseRenewJitter is the jitter factor on lease renewals: the kubelet's lease controller's
// (k8s.io/component-helpers v0.33.13 apimachinery/lease/controller.go, JitterFactor 0.04).
const leaseRenewJitter = 0.04

// podWorkers is how many pods of one node are handled at once. Each action is one API request; two
// workers keep a node's pods moving when one request is slow without multiplying the goroutines of a
// twin with hundreds of nodes.
const podWorkers = 2

// podCIDRRetry is how soon a pod waiting for the node's pod CIDR (assigned by the node-ipam
// controller shortly after registration) is looked at again.
const podCIDRRetry = 250 * time.Millisecond

// Config configures one simulated kubelet.
type Config struct {
	Node   NodeConfig
	Timing Timing
	// Client speaks to the API server as system:node:<Node.Name>.
	Client kubernetes.Interface
	// Clock drives the lease and status loops; nil means the real clock.
	Clock clock.WithTicker
	// Logger receives what the kubelet does; nil means silent.
	Logger *slog.Logger
}

// Kubelet is one simulated kubelet. Start and Stop may be called repeatedly (cut-off and restore).
type Kubelet struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	running bool

	// ipMu guards assigned: pod IPs handed out whose status the informer may not show yet, so two
	// workers never give one address to two pods.
	ipMu     sync.Mutex
	assigned map[types.UID]string
}

// New returns a stopped kubelet.
func New(cfg Config) *Kubelet {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Kubelet{cfg: cfg, log: log.With("node", cfg.Node.Name), assigned: map[types.UID]string{}}
}

// Name is the node's name.
func (k *Kubelet) Name() string { return k.cfg.Node.Name }

// Running reports whether the kubelet is started.
func (k *Kubelet) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.running
}

// Start posts the node's status and lease once, then keeps renewing them and runs the node's pods until
// Stop or until ctx ends. The Node object must exist.
func (k *Kubelet) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running {
		return nil
	}
	node, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.Node.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kubelet %s: get its Node: %w", k.cfg.Node.Name, err)
	}
	if err := k.postStatus(ctx, node, k.cfg.Clock.Now()); err != nil {
		return err
	}
	lease, err := k.renewLease(ctx, nil, node)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopOnParent := context.AfterFunc(ctx, cancel)

	factory := informers.NewSharedInformerFactoryWithOptions(k.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			// A kubelet may only list and watch the pods bound to itself (the Node authorizer checks
			// for exactly this field selector).
			o.FieldSelector = "spec.nodeName=" + k.cfg.Node.Name
		}))
	podInformer := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		stopOnParent()
		cancel()
		queue.ShutDown()
		return fmt.Errorf("kubelet %s: watch pods: %w", k.cfg.Node.Name, err)
	}
	done := make(chan struct{})
	k.cancel, k.done, k.running = func() { stopOnParent(); cancel() }, done, true
	lister := podInformer.Lister()
	factory.Start(runCtx.Done())

	var wg sync.WaitGroup
	wg.Add(2 + podWorkers)
	go func() { defer wg.Done(); k.leaseLoop(runCtx, lease) }()
	go func() { defer wg.Done(); k.statusLoop(runCtx) }()
	for i := 0; i < podWorkers; i++ {
		go func() {
			defer wg.Done()
			if !cache.WaitForCacheSync(runCtx.Done(), podInformer.Informer().HasSynced) {
				return
			}
			for k.processPod(runCtx, queue, lister) {
			}
		}()
	}
	go func() {
		<-runCtx.Done()
		queue.ShutDown()
		factory.Shutdown()
		wg.Wait()
		close(done)
	}()
	k.log.Debug("kubelet started")
	return nil
}

// Stop makes the kubelet fall silent and waits until it has: after Stop returns, it sends nothing more
// to the API server.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	if !k.running {
		k.mu.Unlock()
		return
	}
	cancel, done := k.cancel, k.done
	k.running = false
	k.mu.Unlock()
	cancel()
	<-done
	k.log.Debug("kubelet stopped")
}

// leaseLoop renews the node lease every RenewInterval (with the kubelet's jitter).
func (k *Kubelet) leaseLoop(ctx context.Context, lease *coordinationv1.Lease) {
	for {
		t := k.cfg.Clock.NewTimer(wait.Jitter(k.cfg.Timing.RenewInterval, leaseRenewJitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		next, err := k.renewLease(ctx, lease, nil)
		if err != nil {
			if ctx.Err() == nil {
				k.log.Warn("renew node lease", "err", err)
			}
			lease = nil // get it afresh next time
			continue
		}
		lease = next
	}
}

// renewLease creates or updates the node's lease with renewTime now. lease is the last one written, or
// nil to read it first; node is used for the owner reference when the lease is created.
func (k *Kubelet) renewLease(ctx context.Context, lease *coordinationv1.Lease, node *corev1.Node) (*coordinationv1.Lease, error) {
	leases := k.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	name := k.cfg.Node.Name
	now := metav1.NewMicroTime(k.cfg.Clock.Now())
	seconds := int32(k.cfg.Timing.LeaseDuration / time.Second)
	if lease == nil {
		got, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if node == nil {
				if node, err = k.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
					return nil, fmt.Errorf("kubelet %s: get its Node for the lease owner: %w", name, err)
				}
			}
			created, err := leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name:      name,
					Namespace: corev1.NamespaceNodeLease,
					// Like the kubelet: the lease goes away with its Node.
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID}},
				},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(seconds), RenewTime: &now},
			}, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("kubelet %s: create node lease: %w", name, err)
			}
			return created, nil
		case err != nil:
			return nil, fmt.Errorf("kubelet %s: get node lease: %w", name, err)
		}
		lease = got
	}
	l := lease.DeepCopy()
	l.Spec.HolderIdentity = ptr.To(name)
	l.Spec.LeaseDurationSeconds = ptr.To(seconds)
	l.Spec.RenewTime = &now
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: renew node lease: %w", name, err)
	}
	return updated, nil
}

// statusLoop checks node status every StatusUpdateFrequency and posts it when it differs from what a
// healthy kubelet reports, or when StatusReportFrequency has passed since the last post.
func (k *Kubelet) statusLoop(ctx context.Context) {
	lastPost := k.cfg.Clock.Now()
	for {
		t := k.cfg.Clock.NewTimer(k.cfg.Timing.StatusUpdateFrequency)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		node, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.Node.Name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() == nil {
				k.log.Warn("get node for status", "err", err)
			}
			continue
		}
		now := k.cfg.Clock.Now()
		if !NeedsStatusPost(node, k.cfg.Node, now, lastPost, k.cfg.Timing.StatusReportFrequency) {
			continue
		}
		if err := k.postStatus(ctx, node, now); err != nil {
			if ctx.Err() == nil {
				k.log.Warn("post node status", "err", err)
			}
			continue
		}
		lastPost = now
	}
}

func (k *Kubelet) postStatus(ctx context.Context, node *corev1.Node, now time.Time) error {
	patch, err := nodeStatusPatch(NodeStatus(node, k.cfg.Node, now))
	if err != nil {
		return fmt.Errorf("kubelet %s: %w", k.cfg.Node.Name, err)
	}
	if _, err := k.cfg.Client.CoreV1().Nodes().PatchStatus(ctx, k.cfg.Node.Name, patch); err != nil {
		return fmt.Errorf("kubelet %s: post node status: %w", k.cfg.Node.Name, err)
	}
	return nil
}

// processPod handles one queued pod; it returns false when the queue is shut down.
func (k *Kubelet) processPod(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], lister corelisters.PodLister) bool {
	key, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(key)
	retry, err := k.syncPod(ctx, key, lister)
	switch {
	case err != nil && ctx.Err() == nil:
		k.log.Debug("sync pod", "pod", key, "err", err)
		queue.AddRateLimited(key)
	case retry > 0:
		queue.AddAfter(key, retry)
	default:
		queue.Forget(key)
	}
	return true
}

// syncPod moves one pod on: confirm its deletion, start it, or complete it. It returns a delay after
// which to look again, when the pod waits for something.
func (k *Kubelet) syncPod(ctx context.Context, key string, lister corelisters.PodLister) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pods := k.cfg.Client.CoreV1().Pods(ns)
	now := k.cfg.Clock.Now()
	switch next := NextPodAction(pod); next {
	case ActionConfirmDeletion:
		// The containers are "stopped" at once; the kubelet then removes the pod for good.
		err := pods.Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	case ActionStart:
		node, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.Node.Name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		podIP := k.cfg.Node.IP
		if !pod.Spec.HostNetwork {
			if node.Spec.PodCIDR == "" {
				return podCIDRRetry, nil // the node-ipam controller has not assigned one yet
			}
			if podIP, err = k.allocatePodIP(node.Spec.PodCIDR, pod, lister); err != nil {
				return 0, err
			}
		}
		return 0, k.patchPodStatus(ctx, pod, RunningStatus(pod, k.cfg.Node.IP, podIP, now))
	case ActionComplete:
		return 0, k.patchPodStatus(ctx, pod, SucceededStatus(pod, now))
	case ActionUpdateReadiness:
		return 0, k.patchPodStatus(ctx, pod, ReadinessStatus(pod, now))
	case ActionNone:
		return 0, nil
	default:
		return 0, fmt.Errorf("unknown pod action %q", next)
	}
}

// allocatePodIP picks the pod's IP from the node's pod CIDR, avoiding every IP the node's live pods hold
// and every IP handed out but not yet visible in the informer.
func (k *Kubelet) allocatePodIP(podCIDR string, pod *corev1.Pod, lister corelisters.PodLister) (string, error) {
	k.ipMu.Lock()
	defer k.ipMu.Unlock()
	if ip, ok := k.assigned[pod.UID]; ok {
		return ip, nil
	}
	all, err := lister.List(everything)
	if err != nil {
		return "", err
	}
	used := UsedPodIPs(all, pod.UID)
	live := map[types.UID]bool{}
	for _, p := range all {
		live[p.UID] = true
	}
	for uid, ip := range k.assigned {
		if !live[uid] {
			delete(k.assigned, uid) // the pod is gone: its address is free again
			continue
		}
		used[ip] = true
	}
	ip, err := AllocatePodIP(podCIDR, pod, used)
	if err != nil {
		return "", err
	}
	k.assigned[pod.UID] = ip
	return ip, nil
}

func (k *Kubelet) patchPodStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	patch, err := podStatusPatch(pod.UID, status)
	if err != nil {
		return err
	}
	_, err = k.cfg.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, strategicMerge, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone or replaced meanwhile; the informer brings the new state
	}
	if err != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
