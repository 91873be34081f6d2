package flux

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/twin/arcagent"
)

var (
	gitRepositoryGVR = sourcev1.GroupVersion.WithResource("gitrepositories")
	// ociRepositoryGVR is served as source.toolkit.fluxcd.io/v1 by source-controller v1.9.6 (its
	// config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml: v1 served and stored), the CRD Start
	// installs from the tool cache.
	ociRepositoryGVR = sourcev1.GroupVersion.WithResource("ocirepositories")
	kustomizationGVR = kustomizev1.GroupVersion.WithResource("kustomizations")
)

// Target is the Arc agent's view of real Flux on one cluster: it server-side applies Flux's own
// GitRepository, OCIRepository and Kustomization objects (field manager hybridtwin) and reads them back from the API
// server, status written by the controllers. Flux must be running (Start) for the status to move.
type Target struct {
	dyn dynamic.Interface
}

var (
	_ arcagent.Target    = (*Target)(nil)
	_ arcagent.OCITarget = (*Target)(nil)
)

// NewTarget returns a Target for the cluster cfg points at.
func NewTarget(cfg *rest.Config) (*Target, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: flux target: the rest config is nil", ErrInvalidOptions)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("flux target for %s: %w", cfg.Host, err)
	}
	return &Target{dyn: dyn}, nil
}

// ApplyGitRepository server-side applies the GitRepository.
func (t *Target) ApplyGitRepository(obj *sourcev1.GitRepository) error {
	return t.apply(gitRepositoryGVR, sourcev1.GitRepositoryKind, obj)
}

// ApplyOCIRepository server-side applies the OCIRepository; source-controller pulls the artifact (for the
// twin's plain-HTTP registry the object needs spec.insecure, as with real Flux).
func (t *Target) ApplyOCIRepository(obj *sourcev1.OCIRepository) error {
	return t.apply(ociRepositoryGVR, sourcev1.OCIRepositoryKind, obj)
}

// ApplyKustomization server-side applies the Kustomization.
func (t *Target) ApplyKustomization(obj *kustomizev1.Kustomization) error {
	return t.apply(kustomizationGVR, kustomizev1.KustomizationKind, obj)
}

func (t *Target) apply(gvr schema.GroupVersionResource, kind string, obj runtime.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(gvr.GroupVersion().String())
	u.SetKind(kind)
	// An apply configuration carries only what the agent declares: no status (the controllers own it),
	// no server-set metadata.
	delete(u.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", kind, u.GetNamespace(), u.GetName(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	force := true
	if _, err := t.dyn.Resource(gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
		return fmt.Errorf("server-side apply %s %s/%s: %w", kind, u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// DeleteKustomization deletes the Kustomization; kustomize-controller's finalizer then prunes what it
// applied if spec.prune is set, as in a real cluster. A missing object is not an error.
func (t *Target) DeleteKustomization(ctx context.Context, namespace, name string) error {
	err := t.dyn.Resource(kustomizationGVR).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Kustomization %s/%s: %w", namespace, name, err)
	}
	return nil
}

// DeleteGitRepository deletes the GitRepository. A missing object is not an error.
func (t *Target) DeleteGitRepository(namespace, name string) error {
	return t.deleteSource(gitRepositoryGVR, sourcev1.GitRepositoryKind, namespace, name)
}

// DeleteOCIRepository deletes the OCIRepository; source-controller's finalizer removes its stored
// artifact. A missing object is not an error.
func (t *Target) DeleteOCIRepository(namespace, name string) error {
	return t.deleteSource(ociRepositoryGVR, sourcev1.OCIRepositoryKind, namespace, name)
}

func (t *Target) deleteSource(gvr schema.GroupVersionResource, kind, namespace, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	err := t.dyn.Resource(gvr).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}

// GitRepository reads the GitRepository from the cluster; false if it does not exist or cannot be read.
func (t *Target) GitRepository(namespace, name string) (*sourcev1.GitRepository, bool) {
	var obj sourcev1.GitRepository
	u, ok := t.get(gitRepositoryGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

// OCIRepository reads the OCIRepository from the cluster, its Ready condition current for its generation
// as for GitRepository; false if it does not exist or cannot be read.
func (t *Target) OCIRepository(namespace, name string) (*sourcev1.OCIRepository, bool) {
	var obj sourcev1.OCIRepository
	u, ok := t.get(ociRepositoryGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

// Kustomization reads the Kustomization from the cluster; false if it does not exist or cannot be read.
func (t *Target) Kustomization(namespace, name string) (*kustomizev1.Kustomization, bool) {
	var obj kustomizev1.Kustomization
	u, ok := t.get(kustomizationGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

func (t *Target) get(gvr schema.GroupVersionResource, namespace, name string, into any) (*unstructured.Unstructured, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	u, err := t.dyn.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return nil, false
	}
	return u, true
}

// currentConditions returns the conditions as they stand for the object's current generation. Flux
// stamps every condition it sets with the generation it reconciled (fluxcd/pkg/runtime/conditions sets
// ObservedGeneration on each condition; status.observedGeneration itself moves only on success). Until
// Flux has reconciled the generation the agent last applied, Ready describes the previous spec, so it
// becomes Unknown with reason Progressing and the agent reports Pending instead of a stale Compliant or
// Non-Compliant.
//
// A suspended object is the exception: Flux never reconciles it (the controllers return before touching
// status), so the generation that set spec.suspend is never observed and the last verdict stands, as
// `flux get` shows it (SUSPENDED True, READY as before) and as the twin's reconciler reports it. Marking
// it Progressing would report a suspended configuration Pending for as long as it stays suspended (the
// scenarios' fidelity table found this difference).
func currentConditions(generation int64, suspended bool, conds []metav1.Condition) []metav1.Condition {
	old := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
	if old == nil || old.ObservedGeneration >= generation || suspended {
		return conds
	}
	out := append([]metav1.Condition(nil), conds...)
	apimeta.SetStatusCondition(&out, metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionUnknown,
		Reason: meta.ProgressingReason, ObservedGeneration: old.ObservedGeneration,
		// A fixed time, so equal reports hash equal in the agent.
		LastTransitionTime: old.LastTransitionTime,
		Message:            fmt.Sprintf("Flux has not yet reconciled generation %d (Ready is for generation %d)", generation, old.ObservedGeneration)})
	return out
}
