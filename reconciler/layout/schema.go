package layout

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Schema-stage constants.
const (
	// fieldManager names the validator's writes (CRDs and namespaces) on the schema server.
	fieldManager = "hybridtwin-validate"
	// crdEstablishTimeout bounds the wait for a repository CRD to become Established. The API server
	// establishes a CRD within about a second (apiextensions-apiserver establishing controller, a 5 s
	// resync at most); ssa.ApplyAllStaged waits up to its caller's timeout, so 60 s leaves room on a
	// loaded 2-core machine. crdEstablishPoll is the poll interval (ssa's wait uses 2 s; 200 ms here).
	crdEstablishTimeout = 60 * time.Second
	crdEstablishPoll    = 200 * time.Millisecond
)

// schema validates every object by server-side dry-run create with strict field validation against the
// API server in Options.Schema (rule HT009). CRDs the builds contain are applied for real first and
// waited for, and the namespaces objects live in are created, so the dry-runs see what a cluster would.
func (r *run) schema(ctx context.Context, all []*built) error {
	c, err := client.New(r.opts.Schema, client.Options{})
	if err != nil {
		return fmt.Errorf("%w: connect: %v", ErrSchemaServer, err)
	}
	// 1. CRDs.
	applied := map[string]bool{}
	var crds []string
	for _, b := range all {
		for _, u := range b.objects {
			if u.GroupVersionKind().Group != "apiextensions.k8s.io" || u.GetKind() != "CustomResourceDefinition" || applied[u.GetName()] {
				continue
			}
			applied[u.GetName()] = true
			obj := jsonCopy(u)
			obj.SetResourceVersion("")
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
				if isConnErr(err) {
					return fmt.Errorf("%w: apply CRD %s: %v", ErrSchemaServer, u.GetName(), err)
				}
				r.at(b, u, Finding{Rule: RuleSchema, Severity: Error, Message: "CRD rejected by the API server: " + err.Error(),
					Hint: "fix the CustomResourceDefinition so `kubectl apply --server-side --dry-run=server` accepts it"})
				continue
			}
			crds = append(crds, u.GetName())
		}
	}
	for _, name := range crds {
		err := wait.PollUntilContextTimeout(ctx, crdEstablishPoll, crdEstablishTimeout, true, func(ctx context.Context) (bool, error) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("apiextensions.k8s.io/v1")
			u.SetKind("CustomResourceDefinition")
			if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, cc := range conds {
				cm, _ := cc.(map[string]any)
				if str(cm, "type") == "Established" && str(cm, "status") == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("%w: CRD %s not Established within %s: %v", ErrSchemaServer, name, crdEstablishTimeout, err)
		}
	}
	// 2. Namespaces, so namespaced dry-runs do not fail on a namespace that the same sync creates.
	nss := map[string]bool{}
	for _, b := range all {
		for _, u := range b.objects {
			if u.GetNamespace() != "" {
				nss[u.GetNamespace()] = true
			}
			if u.GroupVersionKind().Group == "" && u.GetKind() == "Namespace" {
				nss[u.GetName()] = true
			}
		}
	}
	nss["default"] = true
	for _, ns := range sortedKeys(nss) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		if err := c.Create(ctx, u, client.FieldOwner(fieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
			if isConnErr(err) {
				return fmt.Errorf("%w: create namespace %s: %v", ErrSchemaServer, ns, err)
			}
		}
	}
	// 3. Every object, dry-run.
	for _, b := range all {
		for _, u := range b.objects {
			gvk := u.GroupVersionKind()
			if gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition" {
				continue
			}
			obj := jsonCopy(u)
			m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				if meta.IsNoMatchError(err) {
					r.at(b, u, Finding{Rule: RuleSchema, Severity: Warning,
						Message: fmt.Sprintf("no schema for %s: the API server does not serve it and the repository defines no CRD for it", u.GetAPIVersion()+" "+gvk.Kind),
						Hint:    "add the CustomResourceDefinition to the repository (a dependency Kustomization), or fix apiVersion/kind"})
					continue
				}
				return fmt.Errorf("%w: discover %s: %v", ErrSchemaServer, gvk, err)
			}
			if m.Scope.Name() == meta.RESTScopeNameNamespace && obj.GetNamespace() == "" {
				obj.SetNamespace("default")
			}
			if m.Scope.Name() == meta.RESTScopeNameRoot {
				obj.SetNamespace("")
			}
			err = c.Create(ctx, obj, client.DryRunAll, client.FieldOwner(fieldManager), client.FieldValidation(metav1.FieldValidationStrict))
			if err == nil || apierrors.IsAlreadyExists(err) {
				continue
			}
			if isConnErr(err) {
				return fmt.Errorf("%w: dry-run %s: %v", ErrSchemaServer, objectName(u), err)
			}
			r.at(b, u, Finding{Rule: RuleSchema, Severity: Error,
				Message: "rejected by the API server's validation (server-side dry-run): " + err.Error(),
				Hint:    "fix the fields the message names; `kubectl explain` shows the schema"})
		}
	}
	return nil
}

// jsonCopy copies an object through JSON: kustomize's maps hold Go ints, which unstructured's DeepCopy
// refuses.
func jsonCopy(u *unstructured.Unstructured) *unstructured.Unstructured {
	j, err := u.MarshalJSON()
	out := &unstructured.Unstructured{}
	if err == nil {
		err = out.UnmarshalJSON(j)
	}
	if err != nil {
		return u
	}
	return out
}

func isConnErr(err error) bool {
	if apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsUnauthorized(err) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host")
}
