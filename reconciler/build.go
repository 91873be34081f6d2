package reconciler

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/ssa/normalize"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Build is the build step of a reconcile on its own: the Kustomization's spec.path in the artifact
// tree root, with a kustomization.yaml generated as Flux's generator does where there is none, built
// by kustomize and post-build substituted (inline spec.postBuild.substitute only: substituteFrom needs
// a cluster and is refused). The objects are what a reconcile would apply, before owner labels. It is
// what the benchmark measures the build floor with: CPU every reconciler of Flux's semantics spends per
// Kustomization, whatever its apply does.
func Build(ctx context.Context, root string, obj *kustomizev1.Kustomization, p Profile) ([]*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", obj.Namespace, obj.Name, err)
	}
	res, err := build.Build(ctx, nil, build.Input{Root: root, Kustomization: content, Strict: p.StrictSubstitutions})
	if err != nil {
		return nil, fmt.Errorf("Kustomization %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	return res.Objects, nil
}

// build is the build step of a reconcile: the Kustomization's decryption keys imported, then the
// build with its sources and objects decrypted (decrypt.go). An error carries kustomize-controller's
// reason: BuildFailed for keys, build and decryption, ReconciliationFailed for a Secret still
// SOPS-encrypted at apply (kustomize-controller checks that before it applies).
func (r *Reconciler) build(ctx context.Context, obj *kustomizev1.Kustomization, content map[string]any, root string) (*build.Result, error) {
	in := build.Input{Root: root, Kustomization: content, Strict: r.prof.StrictSubstitutions}
	dec, err := decryptorFor(ctx, r.admin, obj)
	if err != nil {
		return nil, fail(meta.BuildFailedReason, err)
	}
	if dec != nil {
		in.Decrypt = dec
	}
	res, err := build.Build(ctx, r.admin, in)
	if err != nil {
		return nil, fail(meta.BuildFailedReason, err)
	}
	// Normalized (native kinds through their typed form, as kustomize-controller before its apply), then
	// checked: a Secret whose values are in stringData loses its sops field here and is applied with the
	// ENC[...] text as its values, as kustomize-controller v1.9.5 does; one with encrypted data fails to
	// convert, keeps the field and is refused.
	if err := normalize.UnstructuredList(res.Objects); err != nil {
		return nil, fail(meta.BuildFailedReason, err)
	}
	if err := encryptedSecret(res.Objects); err != nil {
		return nil, fail(meta.ReconciliationFailedReason, err)
	}
	return res, nil
}
