package arcagent

import (
	"context"
	"errors"
	"fmt"
	"time"

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
)

var (
	gitRepositoryGVR = sourcev1.GroupVersion.WithResource("gitrepositories")
	// ociRepositoryGVR is served as source.toolkit.fluxcd.io/v1 by source-controller v1.9.6 (its
	// config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml: v1 served and stored), the CRD Start
	// installs from the tool cache.
	ociRepositoryGVR = sourcev1.GroupVersion.WithResource("ocirepositories")
	kustomizationGVR = kustomizev1.GroupVersion.WithResource("kustomizations")
	// bucketGVR is served as source.toolkit.fluxcd.io/v1 by source-controller v1.9.6 (its
	// config/crd/bases/source.toolkit.fluxcd.io_buckets.yaml: v1 served and stored).
	bucketGVR = sourcev1.GroupVersion.WithResource("buckets")
)

// FieldManager is the field manager the ClusterTarget server-side applies Flux's objects with.
const FieldManager = "hybridtwin"

// apiTimeout bounds each API request the ClusterTarget makes for the agent (its interface carries no
// context). client-go's default for a single request is no timeout; 30 s is kubectl's --request-timeout
// guidance for a loaded API server and keeps a stuck server from hanging the agent.
const apiTimeout = 30 * time.Second

// ClusterTarget is the agent's view of the cluster's GitOps engine, whichever engine runs, as the real
// fluxconfig-agent's: it server-side applies Flux's own GitRepository, OCIRepository and Kustomization
// objects (field manager hybridtwin) and reads them back from the API server with the status the engine
// wrote (the twin's reconciler in ObjectsInCluster mode, or real Flux). The engine must run for the
// status to move.
type ClusterTarget struct {
	dyn dynamic.Interface
}

var (
	_ Target       = (*ClusterTarget)(nil)
	_ OCITarget    = (*ClusterTarget)(nil)
	_ BucketTarget = (*ClusterTarget)(nil)
)

// NewClusterTarget returns a ClusterTarget for the cluster cfg points at.
func NewClusterTarget(cfg *rest.Config) (*ClusterTarget, error) {
	if cfg == nil {
		return nil, errors.New("arc agent cluster target: the rest config is nil")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("arc agent cluster target for %s: %w", cfg.Host, err)
	}
	return &ClusterTarget{dyn: dyn}, nil
}

// ApplyGitRepository server-side applies the GitRepository.
func (t *ClusterTarget) ApplyGitRepository(obj *sourcev1.GitRepository) error {
	return t.apply(gitRepositoryGVR, sourcev1.GitRepositoryKind, obj)
}

// ApplyOCIRepository server-side applies the OCIRepository; source-controller pulls the artifact (for the
// twin's plain-HTTP registry the object needs spec.insecure, as with real Flux).
func (t *ClusterTarget) ApplyOCIRepository(obj *sourcev1.OCIRepository) error {
	return t.apply(ociRepositoryGVR, sourcev1.OCIRepositoryKind, obj)
}

// ApplyBucket server-side applies the Bucket; source-controller (or the twin's engine) lists and fetches
// the bucket.
func (t *ClusterTarget) ApplyBucket(obj *sourcev1.Bucket) error {
	return t.apply(bucketGVR, sourcev1.BucketKind, obj)
}

// DeleteBucket deletes the Bucket; source-controller's finalizer removes its stored artifact. A missing
// object is not an error.
func (t *ClusterTarget) DeleteBucket(namespace, name string) error {
	return t.deleteSource(bucketGVR, sourcev1.BucketKind, namespace, name)
}

// Bucket reads the Bucket from the cluster, its Ready condition current for its generation as for
// GitRepository; false if it does not exist or cannot be read.
func (t *ClusterTarget) Bucket(namespace, name string) (*sourcev1.Bucket, bool) {
	var obj sourcev1.Bucket
	u, ok := t.get(bucketGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

// ApplyKustomization server-side applies the Kustomization.
func (t *ClusterTarget) ApplyKustomization(obj *kustomizev1.Kustomization) error {
	return t.apply(kustomizationGVR, kustomizev1.KustomizationKind, obj)
}

func (t *ClusterTarget) apply(gvr schema.GroupVersionResource, kind string, obj runtime.Object) error {
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
func (t *ClusterTarget) DeleteKustomization(ctx context.Context, namespace, name string) error {
	err := t.dyn.Resource(kustomizationGVR).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Kustomization %s/%s: %w", namespace, name, err)
	}
	return nil
}

// DeleteGitRepository deletes the GitRepository. A missing object is not an error.
func (t *ClusterTarget) DeleteGitRepository(namespace, name string) error {
	return t.deleteSource(gitRepositoryGVR, sourcev1.GitRepositoryKind, namespace, name)
}

// DeleteOCIRepository deletes the OCIRepository; source-controller's finalizer removes its stored
// artifact. A missing object is not an error.
func (t *ClusterTarget) DeleteOCIRepository(namespace, name string) error {
	return t.deleteSource(ociRepositoryGVR, sourcev1.OCIRepositoryKind, namespace, name)
}

func (t *ClusterTarget) deleteSource(gvr schema.GroupVersionResource, kind, namespace, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	err := t.dyn.Resource(gvr).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}

// GitRepository reads the GitRepository from the cluster; false if it does not exist or cannot be read.
func (t *ClusterTarget) GitRepository(namespace, name string) (*sourcev1.GitRepository, bool) {
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
func (t *ClusterTarget) OCIRepository(namespace, name string) (*sourcev1.OCIRepository, bool) {
	var obj sourcev1.OCIRepository
	u, ok := t.get(ociRepositoryGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

// Kustomization reads the Kustomization from the cluster; false if it does not exist or cannot be read.
func (t *ClusterTarget) Kustomization(namespace, name string) (*kustomizev1.Kustomization, bool) {
	var obj kustomizev1.Kustomization
	u, ok := t.get(kustomizationGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	obj.Status.Conditions = currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions)
	return &obj, true
}

// HelmRelease reads a HelmRelease's conditions (for its generation, as Kustomization's) from the cluster;
// false if it does not exist or cannot be read.
func (t *ClusterTarget) HelmRelease(namespace, name string) ([]metav1.Condition, bool) {
	var obj struct {
		Spec struct {
			Suspend bool `json:"suspend"`
		} `json:"spec"`
		Status struct {
			Conditions []metav1.Condition `json:"conditions"`
		} `json:"status"`
	}
	u, ok := t.get(helmReleaseGVR, namespace, name, &obj)
	if !ok {
		return nil, false
	}
	return currentConditions(u.GetGeneration(), obj.Spec.Suspend, obj.Status.Conditions), true
}

// helmReleaseGVR is helm-controller's HelmRelease (v2, the version the pinned release serves).
var helmReleaseGVR = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}

func (t *ClusterTarget) get(gvr schema.GroupVersionResource, namespace, name string, into any) (*unstructured.Unstructured, bool) {
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
