package layout

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hybridtwin/hybridtwin/internal/admission"
)

// admission evaluates every built object against Options.Policies, one cluster at a time (a cluster's
// Namespaces and CRDs decide namespace selectors and resource names), and reports each binding that
// would refuse (Deny: error) or flag (Warn, Audit: warning) an object as HT016, in the API server's
// words. Policies that are not evaluated (params, no binding) are reported once each.
func (r *run) admission(ctx context.Context, all []*built) error {
	set := r.opts.Policies
	ev, err := admission.NewEvaluator(set, admission.Options{KubernetesMinor: r.target})
	if err != nil {
		return fmt.Errorf("--policies %s: %w", set.Dir, err)
	}
	for _, n := range ev.Notes() {
		sev, hint := Info, "bind it with a ValidatingAdmissionPolicyBinding, or remove it"
		switch n.Kind {
		case admission.NoteParams:
			sev, hint = Warning, "check this policy on a cluster (--converge), or inline its parameters"
		case admission.NoteCompile:
			sev, hint = Error, "fix the CEL expression; the API server compiles it the same way"
		case admission.NoteNoPolicy:
			hint = "add the policy to " + set.Dir + ", or remove the binding"
		}
		r.report.Findings = append(r.report.Findings, Finding{Rule: RuleAdmission, Severity: sev,
			File: filepath.ToSlash(filepath.Join(set.Dir, n.Origin.File)), Line: n.Origin.Line, Object: n.Name, Message: n.Message, Hint: hint})
	}

	type at struct {
		b *built
		u *unstructured.Unstructured
	}
	byCluster := map[string][]at{}
	for _, b := range all {
		for _, u := range b.objects {
			byCluster[b.cfg.Cluster] = append(byCluster[b.cfg.Cluster], at{b, u})
		}
	}
	clusters := make([]string, 0, len(byCluster))
	for c := range byCluster {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	for _, c := range clusters {
		objs := byCluster[c]
		us := make([]*unstructured.Unstructured, len(objs))
		for i, o := range objs {
			us[i] = o.u
		}
		decisions, err := ev.Check(ctx, us)
		if err != nil {
			return fmt.Errorf("--policies: cluster %q: %w", c, err)
		}
		for _, d := range decisions {
			sev := Warning
			if d.Action == admissionregistrationv1.Deny {
				sev = Error
			}
			o := objs[d.Object]
			r.at(o.b, o.u, Finding{Rule: RuleAdmission, Severity: sev,
				Message: fmt.Sprintf("%s: %s", d.Action, d.Message),
				Hint: fmt.Sprintf("policy %s (%s:%d), binding %s (%s:%d): change the object so the policy admits it, or scope the binding",
					d.Policy.Name, filepath.ToSlash(filepath.Join(set.Dir, d.Policy.File)), d.Policy.Line,
					d.Binding.Name, filepath.ToSlash(filepath.Join(set.Dir, d.Binding.File)), d.Binding.Line)})
		}
	}
	return nil
}
