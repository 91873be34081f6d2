package helm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/postrenderer"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// StorageDriver is Helm's storage driver the releases are kept with: Secrets of type
// helm.sh/release.v1 in the storage namespace, Helm's and helm-controller's default.
const StorageDriver = "secret"

// Release is where a release lives and whom its actions impersonate.
type Release struct {
	Name             string
	Namespace        string // of its objects (spec.targetNamespace, else the HelmRelease's)
	StorageNamespace string // of its storage Secrets (spec.storageNamespace, else the HelmRelease's)
	User             string // impersonated; "" for the reconciler's own identity
}

// Actions runs Helm actions on one release.
type Actions struct {
	g   *Getter
	rel Release
	cfg *action.Configuration
}

// NewActions returns Helm's action configuration for rel on the Getter's cluster, logging to log.
func (g *Getter) NewActions(rel Release, log *slog.Logger) (*Actions, error) {
	cfg := action.NewConfiguration()
	// Before Init, which hands the logger to the kube client and the storage driver (else they log to
	// slog's default, the terminal).
	cfg.SetLogger(log.Handler())
	if err := cfg.Init(g.forNamespace(rel.Namespace, rel.User), rel.StorageNamespace, StorageDriver); err != nil {
		return nil, fmt.Errorf("initialize Helm for release %s/%s: %w", rel.StorageNamespace, rel.Name, err)
	}
	return &Actions{g: g, rel: rel, cfg: cfg}, nil
}

func v1(r ri.Releaser) (*release.Release, error) {
	if r == nil {
		return nil, nil
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected Helm release type %T", r)
	}
	return rel, nil
}

// Last returns the newest release record in storage, nil when there is none.
func (a *Actions) Last() (*release.Release, error) {
	r, err := a.cfg.Releases.Last(a.rel.Name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to retrieve last release from storage: %w", err)
	}
	return v1(r)
}

// Get returns the release record of a version, nil when it is not in storage.
func (a *Actions) Get(version int) (*release.Release, error) {
	r, err := a.cfg.Releases.Get(a.rel.Name, version)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v1(r)
}

// Options are what a HelmRelease's spec says about one action.
type Options struct {
	Timeout time.Duration
	Wait    bool // wait for the objects to be ready (Helm's kstatus watcher); else hooks only
	// Legacy waits with Helm's legacy readiness checks instead of kstatus (spec.waitStrategy legacy).
	Legacy bool
	// StatusReaders are extra kstatus readers for the wait (spec.healthCheckExprs); Legacy ignores them,
	// as helm-controller's legacy strategy does.
	StatusReaders   []func(apimeta.RESTMapper) engine.StatusReader
	WaitForJobs     bool
	DisableHooks    bool
	Force           bool
	CreateNamespace bool // install only
	SkipCRDs        bool // install only: leave the chart's crds/ alone
	MaxHistory      int  // upgrade and rollback
	CleanupOnFail   bool // upgrade and rollback
	KeepHistory     bool // uninstall
	Labels          map[string]string
	Description     string
	// PostRenderer runs on the rendered manifest (install and upgrade), with PostRenderStrategy
	// saying whether hooks go through it ("" is Helm 4's combined).
	PostRenderer       postrenderer.PostRenderer
	PostRenderStrategy action.PostRenderStrategy
}

func (o Options) strategy() kube.WaitStrategy {
	switch {
	case !o.Wait:
		return kube.HookOnlyStrategy
	case o.Legacy:
		return kube.LegacyStrategy
	}
	return kube.StatusWatcherStrategy
}

// waitOptions hands the extra status readers to Helm's kstatus waiter, built on the release's
// cluster's REST mapper.
func (a *Actions) waitOptions(o Options) ([]kube.WaitOption, error) {
	if len(o.StatusReaders) == 0 || o.strategy() != kube.StatusWatcherStrategy {
		return nil, nil
	}
	mapper, err := a.cfg.RESTClientGetter.ToRESTMapper()
	if err != nil {
		return nil, fmt.Errorf("REST mapper for the health checks: %w", err)
	}
	readers := make([]engine.StatusReader, 0, len(o.StatusReaders))
	for _, f := range o.StatusReaders {
		readers = append(readers, f(mapper))
	}
	return []kube.WaitOption{kube.WithKStatusReaders(readers...)}, nil
}

func (o Options) postRenderStrategy() action.PostRenderStrategy {
	if o.PostRenderStrategy == "" {
		return action.PostRenderStrategyCombined
	}
	return o.PostRenderStrategy
}

// Install installs the chart as a new release.
func (a *Actions) Install(ctx context.Context, ch *chart.Chart, values map[string]any, o Options) (*release.Release, error) {
	a.g.Invalidate()
	wo, err := a.waitOptions(o)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(a.cfg)
	in.ReleaseName, in.Namespace = a.rel.Name, a.rel.Namespace
	in.Timeout, in.WaitStrategy, in.WaitOptions, in.WaitForJobs = o.Timeout, o.strategy(), wo, o.WaitForJobs
	in.DisableHooks, in.ForceReplace, in.CreateNamespace, in.SkipCRDs = o.DisableHooks, o.Force, o.CreateNamespace, o.SkipCRDs
	in.Labels, in.Description = o.Labels, o.Description
	in.PostRenderer, in.PostRenderStrategy = o.PostRenderer, o.postRenderStrategy()
	r, err := in.RunWithContext(ctx, ch, values)
	rel, cerr := v1(r)
	return rel, errors.Join(err, cerr)
}

// Upgrade upgrades the release to the chart and values (Helm's upgrade: a new release version).
func (a *Actions) Upgrade(ctx context.Context, ch *chart.Chart, values map[string]any, o Options) (*release.Release, error) {
	a.g.Invalidate()
	wo, err := a.waitOptions(o)
	if err != nil {
		return nil, err
	}
	up := action.NewUpgrade(a.cfg)
	up.Namespace = a.rel.Namespace
	up.Timeout, up.WaitStrategy, up.WaitOptions, up.WaitForJobs = o.Timeout, o.strategy(), wo, o.WaitForJobs
	up.DisableHooks, up.ForceReplace, up.MaxHistory, up.CleanupOnFail = o.DisableHooks, o.Force, o.MaxHistory, o.CleanupOnFail
	up.SkipCRDs = true // Helm's upgrade never touches crds/; the CRDs policy is applied by ApplyCRDs
	up.ResetValues = true
	up.Labels, up.Description = o.Labels, o.Description
	up.PostRenderer, up.PostRenderStrategy = o.PostRenderer, o.postRenderStrategy()
	r, err := up.RunWithContext(ctx, a.rel.Name, ch, values)
	rel, cerr := v1(r)
	return rel, errors.Join(err, cerr)
}

// Rollback rolls the release back to version (a new release version with that version's chart and
// values).
func (a *Actions) Rollback(version int, o Options) error {
	a.g.Invalidate()
	wo, err := a.waitOptions(o)
	if err != nil {
		return err
	}
	rb := action.NewRollback(a.cfg)
	rb.Version = version
	rb.Timeout, rb.WaitStrategy, rb.WaitOptions, rb.WaitForJobs = o.Timeout, o.strategy(), wo, o.WaitForJobs
	rb.DisableHooks, rb.ForceReplace, rb.MaxHistory, rb.CleanupOnFail = o.DisableHooks, o.Force, o.MaxHistory, o.CleanupOnFail
	return rb.Run(a.rel.Name)
}

// Uninstall uninstalls the release: its objects are deleted, and its storage Secrets unless KeepHistory.
// A release that is not in storage is not an error.
func (a *Actions) Uninstall(o Options) (*release.Release, error) {
	a.g.Invalidate()
	un := action.NewUninstall(a.cfg)
	un.Timeout, un.WaitStrategy = o.Timeout, o.strategy()
	un.DisableHooks, un.KeepHistory, un.Description = o.DisableHooks, o.KeepHistory, o.Description
	un.IgnoreNotFound = true
	un.DeletionPropagation = "background"
	res, err := un.Run(a.rel.Name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil || res == nil {
		return nil, err
	}
	return v1(res.Release)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ApplyCRDs creates the CRDs of the chart's crds/ folders (its dependencies' too) that the cluster
// lacks, and with replace also replaces those it has: helm-controller's CRDs policies Create and
// CreateReplace, which it applies itself before an install or upgrade (Helm's own install only
// creates, and its upgrade never touches crds/). It then waits, up to Helm's 60 s for CRDs
// (pkg/action install.go installCRDs), until each CRD it created or replaced is Established and
// served by discovery, so the release's custom resources map. It returns how many it created or
// replaced.
func (a *Actions) ApplyCRDs(ctx context.Context, ch *chart.Chart, replace bool) (int, error) {
	crds := ch.CRDObjects()
	if len(crds) == 0 {
		return 0, nil
	}
	cfg, err := a.g.forNamespace(a.rel.Namespace, a.rel.User).ToRESTConfig()
	if err != nil {
		return 0, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	var applied []*unstructured.Unstructured
	for _, c := range crds {
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(c.File.Data)), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return len(applied), fmt.Errorf("read CRDs of %s: %w", c.Filename, err)
			}
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			_, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{})
			switch {
			case err == nil:
				applied = append(applied, u)
			case apierrors.IsAlreadyExists(err) && replace:
				cur, err := dyn.Resource(crdGVR).Get(ctx, u.GetName(), metav1.GetOptions{})
				if err != nil {
					return len(applied), fmt.Errorf("replace CRD %s: %w", u.GetName(), err)
				}
				u.SetResourceVersion(cur.GetResourceVersion())
				if _, err := dyn.Resource(crdGVR).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
					return len(applied), fmt.Errorf("replace CRD %s: %w", u.GetName(), err)
				}
				applied = append(applied, u)
			case apierrors.IsAlreadyExists(err):
			default:
				return len(applied), fmt.Errorf("create CRD %s: %w", u.GetName(), err)
			}
		}
	}
	if len(applied) > 0 {
		if err := waitCRDs(ctx, cfg, dyn, applied); err != nil {
			return len(applied), err
		}
		a.g.Invalidate()
	}
	return len(applied), nil
}

// crdWait is how long CRDs may take to be recognized (Helm's 60 s, pkg/action install.go) and how
// often they are checked meanwhile.
const (
	crdWait     = 60 * time.Second
	crdInterval = 100 * time.Millisecond
)

// waitCRDs waits until each CRD is Established and its served versions are in discovery.
func waitCRDs(ctx context.Context, cfg *rest.Config, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	pending := ""
	err = wait.PollUntilContextTimeout(ctx, crdInterval, crdWait, true, func(ctx context.Context) (bool, error) {
		for _, c := range crds {
			pending = c.GetName()
			cur, err := dyn.Resource(crdGVR).Get(ctx, c.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
			established := false
			for _, ci := range conds {
				if m, ok := ci.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return false, nil
			}
			group, _, _ := unstructured.NestedString(cur.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(cur.Object, "spec", "names", "plural")
			versions, _, _ := unstructured.NestedSlice(cur.Object, "spec", "versions")
			for _, vi := range versions {
				v, _ := vi.(map[string]any)
				if served, _ := v["served"].(bool); !served {
					continue
				}
				name, _ := v["name"].(string)
				rl, err := dc.ServerResourcesForGroupVersion(group + "/" + name)
				if err != nil {
					return false, nil
				}
				found := false
				for _, r := range rl.APIResources {
					found = found || r.Name == plural
				}
				if !found {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for CustomResourceDefinition %s: %w", pending, err)
	}
	return nil
}

// Unlock marks a release left pending (an action interrupted mid-way) as failed, so the next action
// can proceed (helm-controller's unlock).
func (a *Actions) Unlock(rel *release.Release) error {
	was := rel.Info.Status
	rel.Info.Status = rcommon.StatusFailed
	rel.Info.Description = "Release unlocked from stale '" + was.String() + "' state"
	if err := a.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("unlock release %s.v%d: %w", rel.Name, rel.Version, err)
	}
	return nil
}

// The manager of the fields a release applies: helm-controller's name, as helm-controller itself sets
// it (main.go: kube.ManagedFieldsManager = controllerName), so kubectl and a later takeover by real Flux
// see the same owner. Helm keeps it in a package variable; the twin's process runs no other Helm client.
func init() { kube.ManagedFieldsManager = "helm-controller" }
