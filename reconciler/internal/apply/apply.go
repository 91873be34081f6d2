package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrApply is wrapped by every apply failure; ErrValidation by failures of the dry-run pass, after
// which nothing of the stage was applied.
var (
	ErrApply      = errors.New("apply failed")
	ErrValidation = errors.New("validation failed, nothing applied")
)

// Options configure the engine.
type Options struct {
	// FieldManager owns the applied fields ("kustomize-controller" in Flux).
	FieldManager string
	// Concurrency bounds the concurrent requests of one apply (kustomize-controller --concurrent-ssa).
	Concurrency int
	// StageWaitInterval and StageWaitTimeout bound the wait for CRDs and Namespaces to be ready before
	// the objects that need them are applied (fluxcd/pkg/ssa DefaultApplyOptions: 2s and 60s).
	StageWaitInterval, StageWaitTimeout time.Duration
}

// Live looks objects up in caches of the cluster.
type Live interface {
	// Live returns the object if the cache of objects this reconciler labelled holds it.
	Live(gvk schema.GroupVersionKind, namespace, name string) (obj *unstructured.Unstructured, found bool)
	// Exists says whether any object of the kind has the name; known=false when the cache cannot say.
	Exists(gvk schema.GroupVersionKind, namespace, name string) (exists, known bool)
}

// Object is one object to apply.
type Object struct {
	Desired *unstructured.Unstructured
	// LastApplied is the desired content of the last successful apply of this object, nil if unknown.
	LastApplied map[string]any
	// Ignore are the parsed JSON pointers of the spec.ignore rules selecting this object.
	Ignore [][]string
	// Origin is the file the object came from, for messages.
	Origin string
}

// Request is one apply.
type Request struct {
	Client  client.Client // the Kustomization's client (impersonating its service account, if any)
	Mapper  meta.RESTMapper
	Objects []Object
	// Force recreates objects whose immutable fields changed (spec.force), in addition to objects
	// annotated kustomize.toolkit.fluxcd.io/force: enabled.
	Force bool
}

// Entry is the outcome for one object.
type Entry struct {
	ID      core.ObjID
	Version string
	Action  core.Action
	// Applied is the payload sent (nil when nothing was sent).
	Applied *unstructured.Unstructured
}

// Engine applies. It is safe for concurrent use by different Kustomizations.
type Engine struct {
	opts Options
	live Live
}

// New returns an engine; live may be nil (every lookup then goes to the API server).
func New(opts Options, live Live) *Engine {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	return &Engine{opts: opts, live: live}
}

// ID returns the inventory identity of an object.
func ID(u *unstructured.Unstructured) core.ObjID {
	gvk := u.GroupVersionKind()
	return core.ObjID{Group: gvk.Group, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Apply applies the objects stage by stage. On error the entries of the stages already applied are
// returned with it.
func (e *Engine) Apply(ctx context.Context, req Request) ([]Entry, error) {
	objs := slices.Clone(req.Objects)
	sort.SliceStable(objs, func(i, j int) bool {
		return ssa.SortableUnstructureds{objs[i].Desired, objs[j].Desired}.Less(0, 1)
	})
	var defs, classes, rest []Object
	for _, o := range objs {
		switch {
		case utils.IsClusterDefinition(o.Desired):
			defs = append(defs, o)
		case utils.IsClassDefinition(o.Desired):
			classes = append(classes, o)
		default:
			rest = append(rest, o)
		}
	}
	var out []Entry
	for i, stage := range [][]Object{defs, classes, rest} {
		if len(stage) == 0 {
			continue
		}
		entries, err := e.applyStage(ctx, req, stage)
		out = append(out, entries...)
		if err != nil {
			return out, err
		}
		if i < 2 && len(rest) > 0 {
			if err := e.waitStage(ctx, req, entries); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

type planned struct {
	obj    Object
	live   *unstructured.Unstructured
	action core.Action
}

func (e *Engine) applyStage(ctx context.Context, req Request, stage []Object) ([]Entry, error) {
	plans := make([]planned, len(stage))
	if err := e.each(ctx, len(stage), func(ctx context.Context, i int) error {
		o := stage[i]
		live, err := e.lookup(ctx, req.Client, o.Desired)
		if err != nil {
			return fmt.Errorf("%w: %s (%s): %v", ErrApply, utils.FmtUnstructured(o.Desired), o.Origin, err)
		}
		var liveMap map[string]any
		if live != nil {
			liveMap = live.Object
		}
		plans[i] = planned{obj: o, live: live, action: core.PlanObject(core.ObjectState{
			Desired: o.Desired.Object, Live: liveMap, LastApplied: o.LastApplied, Ignore: o.Ignore})}
		return nil
	}); err != nil {
		return nil, err
	}

	var todo []int
	for i, p := range plans {
		if p.action == core.ActionCreate || p.action == core.ActionUpdate {
			todo = append(todo, i)
		}
	}
	// All-or-nothing: validate every object the stage changes before changing any.
	if len(todo) > 1 {
		errs := make([]error, len(todo))
		_ = e.each(ctx, len(todo), func(ctx context.Context, k int) error {
			p := &plans[todo[k]]
			errs[k] = e.dryRun(ctx, req, p)
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrValidation, err)
		}
	}

	entries := make([]Entry, len(plans))
	var mu sync.Mutex
	var failures []error
	_ = e.each(ctx, len(plans), func(ctx context.Context, i int) error {
		p := &plans[i]
		ent := Entry{ID: ID(p.obj.Desired), Version: p.obj.Desired.GroupVersionKind().Version, Action: p.action}
		if p.action == core.ActionCreate || p.action == core.ActionUpdate {
			applied, err := e.applyOne(ctx, req, p)
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
				return nil
			}
			ent.Applied = applied
		}
		entries[i] = ent
		return nil
	})
	if len(failures) > 0 {
		sort.Slice(failures, func(i, j int) bool { return failures[i].Error() < failures[j].Error() })
		return nil, fmt.Errorf("%w: %w", ErrApply, errors.Join(failures...))
	}
	return entries, nil
}

// lookup returns the live object, or nil when it does not exist. The drift watcher's caches answer
// without a request: the full cache for objects this reconciler labelled, the metadata cache for "no
// such object". Anything else -- an existing object this reconciler does not manage yet, or a kind not
// cached yet -- is read from the API server's watch cache (resourceVersion "0"). The caches trail the
// server by a watch event; an object created by someone else in that instant is applied as if new
// (server-side apply is an upsert, so only its exclusion annotations could be missed).
func (e *Engine) lookup(ctx context.Context, c client.Client, desired *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := desired.GroupVersionKind()
	if e.live != nil {
		if u, ok := e.live.Live(gvk, desired.GetNamespace(), desired.GetName()); ok {
			return u, nil
		}
		if exists, known := e.live.Exists(gvk, desired.GetNamespace(), desired.GetName()); known && !exists {
			return nil, nil
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := c.Get(ctx, client.ObjectKeyFromObject(desired), u, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
	switch {
	case err == nil:
		return u, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	case meta.IsNoMatchError(err):
		// The kind's CRD is applied in an earlier stage of this same apply, or is missing: the dry-run
		// or apply will say which.
		return nil, nil
	}
	return nil, err
}

func (e *Engine) payload(p *planned) *unstructured.Unstructured {
	if p.live == nil || len(p.obj.Ignore) == 0 {
		return p.obj.Desired.DeepCopy()
	}
	return &unstructured.Unstructured{Object: core.AdoptIgnored(p.obj.Desired.Object, p.live.Object, p.obj.Ignore)}
}

func (e *Engine) force(req Request, p *planned) bool {
	return req.Force || core.ForceEnabled(p.obj.Desired.Object) || (p.live != nil && core.ForceEnabled(p.live.Object))
}

func (e *Engine) dryRun(ctx context.Context, req Request, p *planned) error {
	obj := e.payload(p)
	err := req.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.DryRunAll, client.ForceOwnership, client.FieldOwner(e.opts.FieldManager))
	if err != nil && p.live != nil && e.force(req, p) && ssaerrors.IsImmutableError(err) {
		// The apply will recreate it; validate the object as a new one.
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %v", utils.FmtUnstructured(p.obj.Desired), p.obj.Origin, err)
	}
	return nil
}

func (e *Engine) applyOne(ctx context.Context, req Request, p *planned) (*unstructured.Unstructured, error) {
	obj := e.payload(p)
	sent := obj.DeepCopy()
	err := req.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.ForceOwnership, client.FieldOwner(e.opts.FieldManager))
	if err != nil && p.live != nil && e.force(req, p) && ssaerrors.IsImmutableError(err) {
		if err := e.recreate(ctx, req.Client, p.live); err != nil {
			return nil, fmt.Errorf("%s (%s): immutable field changed, recreate failed: %v", utils.FmtUnstructured(p.obj.Desired), p.obj.Origin, err)
		}
		obj = p.obj.Desired.DeepCopy()
		sent = obj.DeepCopy()
		err = req.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.ForceOwnership, client.FieldOwner(e.opts.FieldManager))
		p.action = core.ActionCreate
	}
	if err != nil {
		hint := ""
		if ssaerrors.IsImmutableError(err) && p.live != nil {
			hint = "; set spec.force: true or annotate the object kustomize.toolkit.fluxcd.io/force: enabled to recreate it"
		}
		return nil, fmt.Errorf("%s (%s): %v%s", utils.FmtUnstructured(p.obj.Desired), p.obj.Origin, err, hint)
	}
	return sent, nil
}

func (e *Engine) recreate(ctx context.Context, c client.Client, live *unstructured.Unstructured) error {
	if err := c.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(live.GroupVersionKind())
	return wait.PollUntilContextTimeout(ctx, e.opts.StageWaitInterval/4+time.Millisecond, e.opts.StageWaitTimeout, true,
		func(ctx context.Context) (bool, error) {
			err := c.Get(ctx, client.ObjectKeyFromObject(live), probe)
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
}

// waitStage waits for the stage's CRDs and Namespaces to be ready (kstatus), as ssa.ApplyAllStaged does.
func (e *Engine) waitStage(ctx context.Context, req Request, entries []Entry) error {
	var set object.ObjMetadataSet
	for _, en := range entries {
		if en.Action == core.ActionSkip {
			continue
		}
		set = append(set, ObjMetadata(en.ID))
	}
	if len(set) == 0 {
		return nil
	}
	rm := ssa.NewResourceManager(req.Client, statusPoller(req.Client, req.Mapper), ssa.Owner{Field: e.opts.FieldManager})
	err := rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: e.opts.StageWaitInterval, Timeout: e.opts.StageWaitTimeout})
	if err != nil {
		return fmt.Errorf("%w: waiting for cluster definitions: %v", ErrApply, err)
	}
	return nil
}

// ObjMetadata converts an ID for fluxcd/pkg/ssa.
func ObjMetadata(id core.ObjID) object.ObjMetadata {
	return object.ObjMetadata{Namespace: id.Namespace, Name: id.Name, GroupKind: schema.GroupKind{Group: id.Group, Kind: id.Kind}}
}

// each runs f for 0..n-1 with the engine's concurrency and returns the first error.
func (e *Engine) each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	if n == 1 {
		return f(ctx, 0)
	}
	sem := make(chan struct{}, e.opts.Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := f(ctx, i); err != nil {
				once.Do(func() { first = err })
			}
		}(i)
	}
	wg.Wait()
	return first
}

// Subjects formats IDs for messages, sorted.
func Subjects(ids []core.ObjID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Subject()
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
