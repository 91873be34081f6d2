package reconciler

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type ignoreRule struct {
	sel   *jsondiff.SelectorRegex // nil selects every object
	paths [][]string
}

// pathsFor returns the ignore pointers of the rules that select obj.
func pathsFor(rules []ignoreRule, obj *unstructured.Unstructured) [][]string {
	var out [][]string
	for _, r := range rules {
		if r.sel == nil || r.sel.MatchUnstructured(obj) {
			out = append(out, r.paths...)
		}
	}
	return out
}

func invalid(kind, ns, name, field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s/%s: %s: %s", ErrInvalid, kind, ns, name, field, fmt.Sprintf(format, args...))
}

func validateKustomization(o *kustomizev1.Kustomization) ([]ignoreRule, error) {
	if o == nil {
		return nil, fmt.Errorf("%w: nil Kustomization", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("Kustomization", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return nil, bad("metadata", "name and namespace are required")
	}
	if o.Spec.Interval.Duration <= 0 {
		return nil, bad("spec.interval", "must be a positive duration, e.g. 10m")
	}
	if o.Spec.RetryInterval != nil && o.Spec.RetryInterval.Duration <= 0 {
		return nil, bad("spec.retryInterval", "must be a positive duration when set")
	}
	if o.Spec.Timeout != nil && o.Spec.Timeout.Duration <= 0 {
		return nil, bad("spec.timeout", "must be a positive duration when set")
	}
	if k := o.Spec.SourceRef.Kind; !isKustomizationSource(Kind(k)) {
		return nil, bad("spec.sourceRef.kind", "%q is not supported by the twin's reconciler; use %s", k, sourceKindNames())
	}
	if o.Spec.SourceRef.Name == "" {
		return nil, bad("spec.sourceRef.name", "is required")
	}
	switch {
	case o.Spec.KubeConfig != nil && o.Spec.KubeConfig.SecretRef == nil:
		return nil, bad("spec.kubeConfig.configMapRef", "workload identity for remote clusters is not supported by the twin's reconciler; use spec.kubeConfig.secretRef with a kubeconfig Secret")
	case o.Spec.Decryption != nil && o.Spec.Decryption.Provider != decryptionProviderSOPS:
		return nil, bad("spec.decryption.provider", "%q is not a decryption provider; use sops", o.Spec.Decryption.Provider)
	case o.Spec.Decryption != nil && o.Spec.Decryption.SecretRef == nil:
		// kustomize-controller would fall back to its --sops-age-secret or cloud workload identity,
		// neither of which the twin has (decrypt.go).
		return nil, bad("spec.decryption.secretRef", "is required by the twin's reconciler: name a Secret of age keys (entries ending in .agekey) in the Kustomization's namespace")
	case o.Spec.Decryption != nil && o.Spec.Decryption.ServiceAccountName != "":
		return nil, bad("spec.decryption.serviceAccountName", "cloud KMS workload identity is not supported by the twin's reconciler; decrypt with age keys from spec.decryption.secretRef")
	}
	for i, d := range o.Spec.DependsOn {
		if d.Name == "" {
			return nil, bad(fmt.Sprintf("spec.dependsOn[%d].name", i), "is required")
		}
	}
	for i, h := range o.Spec.HealthChecks {
		if h.Kind == "" || h.Name == "" {
			return nil, bad(fmt.Sprintf("spec.healthChecks[%d]", i), "kind and name are required")
		}
	}
	if pb := o.Spec.PostBuild; pb != nil {
		for i, s := range pb.SubstituteFrom {
			if s.Kind != "ConfigMap" && s.Kind != "Secret" {
				return nil, bad(fmt.Sprintf("spec.postBuild.substituteFrom[%d].kind", i), "%q must be ConfigMap or Secret", s.Kind)
			}
			if s.Name == "" {
				return nil, bad(fmt.Sprintf("spec.postBuild.substituteFrom[%d].name", i), "is required")
			}
		}
	}
	var rules []ignoreRule
	for i, ig := range o.Spec.Ignore {
		var r ignoreRule
		for j, p := range ig.Paths {
			toks, err := core.ParsePointer(p)
			if err != nil {
				return nil, bad(fmt.Sprintf("spec.ignore[%d].paths[%d]", i, j), "%v", err)
			}
			r.paths = append(r.paths, toks)
		}
		if t := ig.Target; t != nil {
			sel, err := jsondiff.NewSelectorRegex(&jsondiff.Selector{Group: t.Group, Version: t.Version, Kind: t.Kind,
				Name: t.Name, Namespace: t.Namespace, AnnotationSelector: t.AnnotationSelector, LabelSelector: t.LabelSelector})
			if err != nil {
				return nil, bad(fmt.Sprintf("spec.ignore[%d].target", i), "%v", err)
			}
			r.sel = sel
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// dependsOn returns the dependency keys, defaulting the namespace to the Kustomization's.
func dependsOn(o *kustomizev1.Kustomization) []core.Key {
	out := make([]core.Key, 0, len(o.Spec.DependsOn))
	for _, d := range o.Spec.DependsOn {
		ns := d.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		out = append(out, core.Key{Namespace: ns, Name: d.Name})
	}
	return out
}

func sourceKey(o *kustomizev1.Kustomization) srcRef {
	ns := o.Spec.SourceRef.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	return srcRef{kind: Kind(o.Spec.SourceRef.Kind), key: core.Key{Namespace: ns, Name: o.Spec.SourceRef.Name}}
}

func requestedAt(ann map[string]string) string { return ann[meta.ReconcileRequestAnnotation] }

func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	return string(ja) == string(jb)
}

func timing(o *kustomizev1.Kustomization, p Profile) core.Timing {
	return core.Timing{Interval: o.Spec.Interval.Duration, RetryInterval: o.GetRetryInterval(), DependencyRequeue: p.DependencyRequeue}
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }
