package admission_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hybridtwin/hybridtwin/internal/admission"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const policyHead = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: %s}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
`

func policy(name, rest string) string { return strings.Replace(policyHead, "%s", name, 1) + rest }

func binding(name, policy, actions string) string {
	return "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: " + name +
		"}\nspec: {policyName: " + policy + ", validationActions: " + actions + "}\n"
}

// TestLoadRefusesWhatTheAPIServerRefuses: each bad policy folder is ErrInput naming file:line and field.
func TestLoadRefusesWhatTheAPIServerRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"beta":       {map[string]string{"p.yaml": strings.Replace(policy("p", "  validations: [{expression: 'true'}]\n"), "/v1\n", "/v1beta1\n", 1)}, `p.yaml:1: ValidatingAdmissionPolicy has apiVersion "admissionregistration.k8s.io/v1beta1"`},
		"no actions": {map[string]string{"p.yaml": policy("p", "  validations: [{expression: 'true'}]\n") + "---\n" + binding("b", "p", "[]")}, "spec.validationActions is required"},
		"bad action": {map[string]string{"p.yaml": policy("p", "  validations: [{expression: 'true'}]\n") + "---\n" + binding("b", "p", "[Refuse]")}, `unknown action "Refuse"`},
		"no rules":   {map[string]string{"p.yaml": strings.Replace(policy("p", "  validations: [{expression: 'true'}]\n"), "resourceRules", "excludeResourceRules", 1)}, "spec.matchConstraints.resourceRules is required"},
		"duplicate":  {map[string]string{"a.yaml": policy("p", "  validations: [{expression: 'true'}]\n"), "b/b.yaml": policy("p", "  validations: [{expression: 'true'}]\n")}, `b/b.yaml:1: ValidatingAdmissionPolicy "p" is also declared at a.yaml:1`},
		"unknown":    {map[string]string{"p.yaml": policy("p", "  validation: [{expression: 'true'}]\n")}, `unknown field "validation"`},
		"empty":      {map[string]string{"kustomization.yaml": "resources: []\n"}, "holds no ValidatingAdmissionPolicy"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := admission.Load(writeDir(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNotesAndActions: unbound policies, bindings without their policy, params and CEL that does not
// compile are notes; Warn and Audit bindings give decisions of their action, Deny the API server's
// refusal, and the failurePolicy of a broken policy decides.
func TestNotesAndActions(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"unbound.yaml": policy("unbound", "  validations: [{expression: 'true'}]\n"),
		"orphan.yaml":  binding("orphan", "missing", "[Deny]"),
		"params.yaml": policy("params", "  paramKind: {apiVersion: v1, kind: ConfigMap}\n  validations: [{expression: 'true'}]\n") +
			"---\n" + binding("params", "params", "[Deny]"),
		"broken.yaml": policy("broken", "  validations: [{expression: 'object.data.'}]\n") + "---\n" + binding("broken", "broken", "[Deny]"),
		"size.yaml": policy("size", "  validations: [{expression: \"!has(object.data) || size(object.data) <= 1\", messageExpression: \"'too many keys: ' + string(size(object.data))\"}]\n") +
			"---\n" + binding("size-warn", "size", "[Warn, Audit]") + "---\n" + binding("size-deny", "size", "[Deny]"),
	})
	set, err := admission.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := admission.NewEvaluator(set, admission.Options{KubernetesMinor: 33})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[admission.NoteKind]string{}
	for _, n := range ev.Notes() {
		kinds[n.Kind] = n.Name
	}
	want := map[admission.NoteKind]string{admission.NoteUnbound: "unbound", admission.NoteNoPolicy: "orphan", admission.NoteParams: "params", admission.NoteCompile: "broken"}
	for k, v := range want {
		if kinds[k] != v {
			t.Errorf("note %s: got %q, want %q (notes %+v)", k, kinds[k], v, ev.Notes())
		}
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "big", "namespace": "team"}, "data": map[string]any{"a": "1", "b": "2"}}}
	decisions, err := ev.Check(t.Context(), []*unstructured.Unstructured{cm})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range decisions {
		got[d.Binding.Name+"/"+string(d.Action)] = d.Message
	}
	for key, msg := range map[string]string{
		"broken/" + string(admissionregistrationv1.Deny):     `configmaps "big" is forbidden: ValidatingAdmissionPolicy 'broken' with binding 'broken' denied request: compilation error`,
		"size-deny/" + string(admissionregistrationv1.Deny):  `configmaps "big" is forbidden: ValidatingAdmissionPolicy 'size' with binding 'size-deny' denied request: too many keys: 2`,
		"size-warn/" + string(admissionregistrationv1.Warn):  "Validation failed for ValidatingAdmissionPolicy 'size' with binding 'size-warn': too many keys: 2",
		"size-warn/" + string(admissionregistrationv1.Audit): "ValidatingAdmissionPolicy 'size' with binding 'size-warn' (audit): too many keys: 2",
	} {
		if !strings.HasPrefix(got[key], msg) {
			t.Errorf("%s: got %q, want it to start with %q", key, got[key], msg)
		}
	}
	if len(decisions) != 4 {
		t.Errorf("decisions: %+v, want 4", decisions)
	}
}
