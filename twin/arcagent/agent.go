// Package arcagent is the twin's stand-in for the Azure Arc agents of one connected cluster that handle
// GitOps (the fluxconfig-agent and fluxconfig-controller of the microsoft.flux extension): it reads the
// cluster's fluxConfigurations from Azure (the fakes/arc server), turns each into Flux's own objects -- a
// source named after the configuration (a GitRepository, or an OCIRepository for sourceKind OCIRepository)
// and a Kustomization "<configuration>-<kustomization>" per kustomization reading it, in the configuration's
// namespace -- hands them to the cluster's GitOps engine, and writes compliance back to Azure from the
// objects' Ready conditions, as the real agent reports Flux's status.
//
// ociRepository fields the twin cannot honour (verify, useWorkloadIdentity, serviceAccountName, tlsConfig)
// make the configuration Non-Compliant with an errorMessage naming the field; they are never dropped
// silently. OCI sources need a Target that is also an OCITarget (ClusterTarget is).
//
// Namespace scope is enforced the way the Flux extension's multi-tenancy does it: the Kustomizations of a
// namespace-scoped configuration apply as the service account flux-applier of that namespace, bound to the
// admin role there only, so objects outside the namespace are refused by the API server's RBAC.
//
// In the twin the Target is ClusterTarget for every engine, as for the real agent: Flux's objects are
// written into the cluster and their status read back from it, whichever engine (the twin's reconciler,
// real Flux) reconciles them. It imports fakes/arc's types and Flux's API types.
package arcagent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
)

// Target is where the agent puts Flux's objects and reads their status: ClusterTarget (the cluster's API
// server, whichever engine runs); the twin's reconciler in memory satisfies it too (unit tests, benches).
type Target interface {
	ApplyGitRepository(obj *sourcev1.GitRepository) error
	ApplyKustomization(obj *kustomizev1.Kustomization) error
	DeleteKustomization(ctx context.Context, namespace, name string) error
	DeleteGitRepository(namespace, name string) error
	GitRepository(namespace, name string) (*sourcev1.GitRepository, bool)
	Kustomization(namespace, name string) (*kustomizev1.Kustomization, bool)
}

// OCITarget is a Target that also takes OCIRepository sources; ClusterTarget is one. With a
// Target that is not, OCIRepository configurations are reported Non-Compliant, saying so.
type OCITarget interface {
	ApplyOCIRepository(obj *sourcev1.OCIRepository) error
	DeleteOCIRepository(namespace, name string) error
	OCIRepository(namespace, name string) (*sourcev1.OCIRepository, bool)
}

// BucketTarget is a Target that also takes Bucket sources; ClusterTarget is one. With a Target that is
// not, Bucket configurations are reported Non-Compliant, saying so.
type BucketTarget interface {
	ApplyBucket(obj *sourcev1.Bucket) error
	DeleteBucket(namespace, name string) error
	Bucket(namespace, name string) (*sourcev1.Bucket, bool)
}

// ErrUnsupported is wrapped by the errors about configurations, or fields of them, that the twin's
// cluster side cannot honour; they become the configuration's errorMessage.
var ErrUnsupported = errors.New("not supported by the twin")

// Azure is what the agent needs of Azure's side: fakes/arc.Server satisfies it.
type Azure interface {
	FluxConfigurations(clusterID string) []arc.FluxConfiguration
	ProtectedSettings(configID string) map[string]string
	ReportCompliance(configID string, rep arc.ComplianceReport) error
	Changed() <-chan struct{}
}

// Names and labels of what the agent creates.
const (
	// ApplierServiceAccount is the service account namespace-scoped Kustomizations apply as (the Flux
	// extension's multi-tenancy: "flux-applier").
	ApplierServiceAccount = "flux-applier"
	// LabelConfiguration marks every object the agent creates with its fluxConfiguration's name.
	LabelConfiguration = "clusterconfig.azure.com/name"
	// DefaultPollInterval is how often the agent re-reads status when nothing woke it. The Arc agents
	// report status periodically; the twin reports within a quarter second so scenarios can time it.
	DefaultPollInterval = 250 * time.Millisecond
)

// Options configure an Agent.
type Options struct {
	ClusterID    string       // the connected cluster's ARM ID
	Config       *rest.Config // the cluster (admin), to create namespaces, service accounts and secrets
	Target       Target
	Azure        Azure
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Agent syncs one cluster.
type Agent struct {
	opts Options
	kube kubernetes.Interface
	log  *slog.Logger

	mu       sync.Mutex
	applied  map[string]appliedConfig // by configuration name
	reported map[string][32]byte      // configuration ID -> hash of the last report
	applyErr map[string]string        // configuration name -> why its objects were refused
}

type appliedConfig struct {
	namespace      string
	sourceKind     string   // sourcev1.GitRepositoryKind, OCIRepositoryKind or BucketKind
	kustomizations []string // object names
	secret         string
}

// New returns an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.ClusterID == "" || opts.Config == nil || opts.Target == nil || opts.Azure == nil {
		return nil, errors.New("arc agent: ClusterID, Config, Target and Azure are required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kube, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("arc agent for %s: %w", opts.ClusterID, err)
	}
	return &Agent{opts: opts, kube: kube, log: log, applied: map[string]appliedConfig{},
		reported: map[string][32]byte{}, applyErr: map[string]string{}}, nil
}

// Run syncs until ctx ends: at once, whenever Azure changes, and every poll interval for status.
func (a *Agent) Run(ctx context.Context) error {
	tick := time.NewTicker(a.opts.PollInterval)
	defer tick.Stop()
	for {
		changed := a.opts.Azure.Changed()
		if err := a.Sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("arc agent sync", "cluster", a.opts.ClusterID, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// Sync does one pass: apply every configuration, remove what was deleted, report compliance.
func (a *Agent) Sync(ctx context.Context) error {
	cfgs := a.opts.Azure.FluxConfigurations(a.opts.ClusterID)
	want := map[string]bool{}
	var errs []error
	for _, c := range cfgs {
		if c.Properties.ProvisioningState == "Deleting" {
			continue
		}
		want[c.Name] = true
		if err := a.applyConfig(ctx, c); err != nil {
			a.mu.Lock()
			a.applyErr[c.Name] = err.Error()
			a.mu.Unlock()
			errs = append(errs, err)
		} else {
			a.mu.Lock()
			delete(a.applyErr, c.Name)
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	var stale []string
	for name := range a.applied {
		if !want[name] {
			stale = append(stale, name)
		}
	}
	a.mu.Unlock()
	sort.Strings(stale)
	for _, name := range stale {
		if err := a.removeConfig(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range cfgs {
		if c.Properties.ProvisioningState == "Deleting" {
			continue
		}
		if err := a.report(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// KustomizationName is the Flux object name of a configuration's kustomization, as Arc names it.
func KustomizationName(config, kustomization string) string { return config + "-" + kustomization }

func seconds(p *int64, def time.Duration) metav1.Duration {
	if p == nil || *p <= 0 {
		return metav1.Duration{Duration: def}
	}
	return metav1.Duration{Duration: time.Duration(*p) * time.Second}
}

func (a *Agent) applyConfig(ctx context.Context, c arc.FluxConfiguration) error {
	p := c.Properties
	ns := p.Namespace
	labels := map[string]string{LabelConfiguration: c.Name}
	if err := a.ensureNamespace(ctx, ns); err != nil {
		return err
	}
	a.mu.Lock()
	prev := a.applied[c.Name]
	a.mu.Unlock()
	kind, secret, err := a.applySource(ctx, c, labels)
	if err != nil {
		return err
	}
	// A PATCH that switched the source kind leaves the old source behind: it goes.
	if prev.sourceKind != "" && prev.sourceKind != kind {
		if err := a.deleteSource(prev.namespace, c.Name, prev.sourceKind); err != nil {
			return fmt.Errorf("configuration %s: remove its old %s: %w", c.Name, prev.sourceKind, err)
		}
	}
	if prev.secret != "" && prev.secret != secret {
		if err := a.kube.CoreV1().Secrets(prev.namespace).Delete(ctx, prev.secret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("configuration %s: remove its old credentials secret %s/%s: %w", c.Name, prev.namespace, prev.secret, err)
		}
	}
	namespaced := p.Scope == "namespace"
	if namespaced {
		if err := a.ensureApplier(ctx, ns, labels); err != nil {
			return err
		}
	}
	var names []string
	var errs []error
	for _, kn := range sortedKeys(p.Kustomizations) {
		kd := p.Kustomizations[kn]
		k := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Name: KustomizationName(c.Name, kn), Namespace: ns, Labels: labels},
			Spec: kustomizev1.KustomizationSpec{
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: c.Name},
				Path:      kd.Path,
				Interval:  seconds(kd.SyncIntervalInSeconds, time.Duration(arc.DefaultSyncIntervalSeconds)*time.Second),
				Prune:     kd.Prune != nil && *kd.Prune,
				Force:     kd.Force != nil && *kd.Force,
				Wait:      kd.Wait == nil || *kd.Wait,
				Suspend:   p.Suspend != nil && *p.Suspend,
			},
		}
		retry := seconds(kd.RetryIntervalInSeconds, time.Duration(arc.DefaultRetryIntervalSeconds)*time.Second)
		k.Spec.RetryInterval = &retry
		to := seconds(kd.TimeoutInSeconds, time.Duration(arc.DefaultTimeoutSeconds)*time.Second)
		k.Spec.Timeout = &to
		for _, d := range kd.DependsOn {
			k.Spec.DependsOn = append(k.Spec.DependsOn, kustomizev1.DependencyReference{Name: KustomizationName(c.Name, d)})
		}
		if pb := kd.PostBuild; pb != nil {
			k.Spec.PostBuild = &kustomizev1.PostBuild{Substitute: pb.Substitute}
			for _, f := range pb.SubstituteFrom {
				k.Spec.PostBuild.SubstituteFrom = append(k.Spec.PostBuild.SubstituteFrom,
					kustomizev1.SubstituteReference{Kind: f.Kind, Name: f.Name, Optional: f.Optional != nil && *f.Optional})
			}
		}
		if namespaced {
			k.Spec.ServiceAccountName = ApplierServiceAccount
		}
		if err := a.opts.Target.ApplyKustomization(k); err != nil {
			errs = append(errs, fmt.Errorf("configuration %s: Kustomization %s: %w", c.Name, k.Name, err))
			continue
		}
		names = append(names, k.Name)
	}
	// Kustomizations removed from the configuration are deleted (pruning what they applied if prune).
	a.mu.Lock()
	a.applied[c.Name] = appliedConfig{namespace: ns, sourceKind: kind, kustomizations: names, secret: secret}
	a.mu.Unlock()
	for _, old := range prev.kustomizations {
		if !slices.Contains(names, old) {
			if err := a.opts.Target.DeleteKustomization(ctx, prev.namespace, old); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) removeConfig(ctx context.Context, name string) error {
	a.mu.Lock()
	ac := a.applied[name]
	a.mu.Unlock()
	var errs []error
	for _, k := range ac.kustomizations {
		if err := a.opts.Target.DeleteKustomization(ctx, ac.namespace, k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.deleteSource(ac.namespace, name, ac.sourceKind); err != nil {
		errs = append(errs, err)
	}
	if ac.secret != "" {
		if err := a.kube.CoreV1().Secrets(ac.namespace).Delete(ctx, ac.secret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		a.mu.Lock()
		delete(a.applied, name)
		a.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (a *Agent) ensureNamespace(ctx context.Context, ns string) error {
	_, err := a.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

func (a *Agent) ensureSecret(ctx context.Context, ns, name string, labels map[string]string, data map[string][]byte) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Data: data}
	_, err := a.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = a.kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write source credentials secret %s/%s: %w", ns, name, err)
	}
	return nil
}

// ensureApplier creates flux-applier in ns, bound to the built-in admin role in ns only.
func (a *Agent) ensureApplier(ctx context.Context, ns string, labels map[string]string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ApplierServiceAccount, Namespace: ns, Labels: labels}}
	if _, err := a.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/%s: %w", ns, ApplierServiceAccount, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ApplierServiceAccount, Namespace: ns, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ApplierServiceAccount, Namespace: ns}},
	}
	if _, err := a.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind %s/%s to admin: %w", ns, ApplierServiceAccount, err)
	}
	return nil
}

// report computes the configuration's compliance from its Flux objects and writes it when it changed.
func (a *Agent) report(c arc.FluxConfiguration) error {
	rep := a.Compliance(c)
	sum := hashReport(rep)
	a.mu.Lock()
	same := a.reported[c.ID] == sum
	a.mu.Unlock()
	if same {
		return nil
	}
	if err := a.opts.Azure.ReportCompliance(c.ID, rep); err != nil {
		return err
	}
	a.mu.Lock()
	a.reported[c.ID] = sum
	a.mu.Unlock()
	return nil
}

// Compliance maps the Flux objects' Ready conditions onto Azure's compliance states:
// suspended -> Suspended; an object refused or Ready=False for a failure -> Non-Compliant with its
// message; every object Ready=True -> Compliant; anything else (not yet reconciled, progressing, waiting
// on a dependency) -> Pending.
func (a *Agent) Compliance(c arc.FluxConfiguration) arc.ComplianceReport {
	p := c.Properties
	ns := p.Namespace
	if p.Suspend != nil && *p.Suspend {
		return arc.ComplianceReport{State: arc.Suspended}
	}
	a.mu.Lock()
	applyErr := a.applyErr[c.Name]
	a.mu.Unlock()
	rep := arc.ComplianceReport{State: arc.Compliant}
	var failures []string
	pending := false
	consider := func(kind, namespace, name string, conds []metav1.Condition, found bool, appliedBy *arc.ObjectReference) {
		st := arc.ObjectStatus{Name: name, Namespace: namespace, Kind: kind, ComplianceState: arc.Pending, AppliedBy: appliedBy}
		ready := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
		switch {
		case !found || ready == nil || ready.Status == metav1.ConditionUnknown:
			pending = true
		case ready.Status == metav1.ConditionTrue:
			st.ComplianceState = arc.Compliant
		case ready.Reason == meta.DependencyNotReadyReason || ready.Reason == meta.ProgressingReason:
			pending = true
		default:
			st.ComplianceState = arc.NonCompliant
			failures = append(failures, fmt.Sprintf("%s/%s: %s", kind, name, ready.Message))
		}
		for _, cd := range conds {
			t := cd.LastTransitionTime.Time.UTC()
			st.StatusConditions = append(st.StatusConditions, arc.StatusCondition{LastTransitionTime: &t,
				Message: cd.Message, Reason: cd.Reason, Status: string(cd.Status), Type: cd.Type})
		}
		rep.Statuses = append(rep.Statuses, st)
	}
	kind, srcConds, art, ok := a.source(p, c.Name)
	if art != nil {
		rep.SyncedCommit = art.Revision
		rep.SourceUpdatedAt = art.LastUpdateTime.Time
	}
	consider(kind, ns, c.Name, srcConds, ok, nil)
	// The configuration's Kustomizations, then the Flux objects they applied, recursively: ARM's
	// statuses are "the Flux Kubernetes resources created by the fluxConfiguration or created by the
	// managed objects provisioned by the fluxConfiguration", each nested one with appliedBy, and
	// complianceState is their combined status (fluxConfigurations REST reference, api-version
	// 2023-05-01: statuses, complianceState, ObjectStatusDefinition.appliedBy).
	seen := map[string]bool{}
	var walk func(k *kustomizev1.Kustomization)
	walk = func(k *kustomizev1.Kustomization) {
		if k.Status.Inventory == nil {
			return
		}
		parent := &arc.ObjectReference{Name: k.Name, Namespace: k.Namespace}
		for _, e := range k.Status.Inventory.Entries {
			if hns, hname, ok := inventoryObject(e.ID, helmGroup, helmReleaseKind); ok {
				if t, can := a.opts.Target.(HelmReleaseTarget); can && !seen["hr:"+hns+"/"+hname] {
					seen["hr:"+hns+"/"+hname] = true
					conds, found := t.HelmRelease(hns, hname)
					consider(helmReleaseKind, hns, hname, conds, found, parent)
				}
				continue
			}
			cns, cname, ok := nestedKustomization(e.ID)
			if !ok || seen[cns+"/"+cname] {
				continue
			}
			seen[cns+"/"+cname] = true
			child, found := a.opts.Target.Kustomization(cns, cname)
			var conds []metav1.Condition
			if found {
				conds = child.Status.Conditions
			}
			consider(kustomizev1.KustomizationKind, cns, cname, conds, found, parent)
			if found {
				walk(child)
			}
		}
	}
	var own []*kustomizev1.Kustomization
	for _, kn := range sortedKeys(p.Kustomizations) {
		name := KustomizationName(c.Name, kn)
		seen[ns+"/"+name] = true
		k, ok := a.opts.Target.Kustomization(ns, name)
		var conds []metav1.Condition
		if ok {
			conds = k.Status.Conditions
			own = append(own, k)
		}
		consider(kustomizev1.KustomizationKind, ns, name, conds, ok, nil)
	}
	for _, k := range own {
		walk(k)
	}
	switch {
	case applyErr != "":
		rep.State, rep.Message = arc.NonCompliant, applyErr
	case len(failures) > 0:
		rep.State, rep.Message = arc.NonCompliant, strings.Join(failures, "; ")
	case pending:
		rep.State = arc.Pending
	}
	return rep
}

// nestedKustomization parses an inventory entry ID naming a Kustomization.
func nestedKustomization(id string) (namespace, name string, ok bool) {
	return inventoryObject(id, kustomizev1.GroupVersion.Group, kustomizev1.KustomizationKind)
}

// inventoryObject parses an inventory entry ID (Flux's "<namespace>_<name>_<group>_<kind>", names and
// namespaces having no underscore) naming an object of group and kind.
func inventoryObject(id, group, kind string) (namespace, name string, ok bool) {
	parts := strings.Split(id, "_")
	if len(parts) != 4 || parts[2] != group || parts[3] != kind {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// HelmReleaseTarget is a Target that also reads HelmReleases, so a configuration's statuses include
// the HelmReleases its Kustomizations applied; ClusterTarget is one.
type HelmReleaseTarget interface {
	HelmRelease(namespace, name string) ([]metav1.Condition, bool)
}

const (
	helmGroup       = "helm.toolkit.fluxcd.io"
	helmReleaseKind = "HelmRelease"
)

func hashReport(r arc.ComplianceReport) [32]byte {
	// Condition times change only on transitions, so equal reports hash equal.
	data, _ := json.Marshal(r)
	return sha256.Sum256(data)
}

// sortedKeys are a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
