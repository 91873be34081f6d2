package reconciler

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// applyTarget is where a Kustomization applies, prunes and checks health: the reconciler's own cluster
// (impersonating its service account), or the cluster of its spec.kubeConfig (Flux's remote clusters,
// the hub-and-spoke layout: "The KubeConfig field references a Kubernetes secret that contains a
// kubeconfig file ... the Kustomization is reconciled on the remote cluster", Flux Kustomization API,
// spec.kubeConfig).
type applyTarget struct {
	client client.Client
	mapper meta.RESTMapper
	// remote names the kubeconfig Secret ("<namespace>/<name>") of a remote target; empty for the own
	// cluster. Objects on a remote cluster are not watched for drift (the reconciler watches its own
	// cluster): they are corrected at the Kustomization's interval, as Flux corrects every drift.
	remote string
}

// canImpersonate reports whether the identity obj applies with still exists: its service account
// (spec.serviceAccountName, else Options.DefaultServiceAccount) and its kubeconfig Secret
// (fluxcd/pkg/runtime client.Impersonator.CanImpersonate). A failed lookup other than NotFound counts as
// existing, so a passing API error does not skip a prune.
func (r *Reconciler) canImpersonate(ctx context.Context, obj *kustomizev1.Kustomization) bool {
	exists := func(o client.Object, name string) bool {
		err := r.admin.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: name}, o)
		return !apierrors.IsNotFound(err)
	}
	sa := obj.Spec.ServiceAccountName
	if sa == "" {
		sa = r.opts.DefaultServiceAccount
	}
	if sa != "" && !exists(&corev1.ServiceAccount{}, sa) {
		return false
	}
	if ref := obj.Spec.KubeConfig; ref != nil && ref.SecretRef != nil && !exists(&corev1.Secret{}, ref.SecretRef.Name) {
		return false
	}
	return true
}

// kubeConfigKeys are the Secret keys Flux reads a kubeconfig from when secretRef.key is empty
// (kustomize-controller: "value" or "value.yaml").
var kubeConfigKeys = []string{"value", "value.yaml"}

// targetFor resolves where obj applies. A remote target's client is built once per Secret revision and
// service account.
func (r *Reconciler) targetFor(ctx context.Context, obj *kustomizev1.Kustomization) (applyTarget, error) {
	ref := obj.Spec.KubeConfig
	if ref == nil {
		c, err := r.clientFor(obj)
		return applyTarget{client: c, mapper: r.mapper}, err
	}
	if ref.SecretRef == nil {
		return applyTarget{}, fmt.Errorf("spec.kubeConfig: a secretRef is required (configMapRef, workload identity, is refused at validation)")
	}
	var s corev1.Secret
	key := client.ObjectKey{Namespace: obj.Namespace, Name: ref.SecretRef.Name}
	if err := r.admin.Get(ctx, key, &s); err != nil {
		return applyTarget{}, fmt.Errorf("failed to get kubeconfig secret '%s': %w", key, err)
	}
	keys := kubeConfigKeys
	if ref.SecretRef.Key != "" {
		keys = []string{ref.SecretRef.Key}
	}
	var data []byte
	for _, k := range keys {
		if d, ok := s.Data[k]; ok {
			data = d
			break
		}
	}
	if data == nil {
		return applyTarget{}, fmt.Errorf("kubeconfig secret '%s' has none of the keys %v", key, keys)
	}
	sa := obj.Spec.ServiceAccountName
	cacheKey := "kubeconfig:" + key.String() + "@" + s.ResourceVersion + "#" + sa
	r.mu.Lock()
	t, ok := r.remotes[cacheKey]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return applyTarget{}, fmt.Errorf("kubeconfig secret '%s': %w", key, err)
	}
	if sa != "" {
		// With both, Flux impersonates the service account on the remote cluster.
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + obj.Namespace + ":" + sa}
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return applyTarget{}, fmt.Errorf("kubeconfig secret '%s': %w", key, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return applyTarget{}, fmt.Errorf("remote cluster of kubeconfig secret '%s': %w", key, err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper})
	if err != nil {
		return applyTarget{}, fmt.Errorf("remote cluster of kubeconfig secret '%s': %w", key, err)
	}
	t = applyTarget{client: c, mapper: mapper, remote: key.String()}
	r.mu.Lock()
	r.remotes[cacheKey] = t
	r.mu.Unlock()
	return t, nil
}
