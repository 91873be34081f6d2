package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/internal/admission"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
)

// verdict is what one object met at admission: refused (with the message), or admitted with warnings.
type verdict struct {
	Refused  bool
	Message  string
	Warnings []string
}

// TestDifferentialAgainstAPIServer installs the example policies (examples/policies) and a Warn policy
// into a real kube-apiserver (the pinned v1.33), applies every layout of testdata/cases to it by
// server-side apply, and checks that exactly the objects the API server refuses are the ones the
// offline evaluation denies, with the same message, and that the warnings agree. A case named deny-*
// must have at least one refusal and allow-* none, so the test cannot pass on an inert setup.
func TestDifferentialAgainstAPIServer(t *testing.T) {
	set := loadSets(t, filepath.Join("..", "..", "examples", "policies"), filepath.Join("testdata", "warn"))
	ev, err := admission.NewEvaluator(set, admission.Options{KubernetesMinor: 33})
	if err != nil {
		t.Fatal(err)
	}
	if n := ev.Notes(); len(n) != 0 {
		t.Fatalf("notes on the example policies: %+v", n)
	}

	cfg := testenv.APIServer(t)
	rec := &warningRecorder{}
	cfg.WarningHandler = rec
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := t.Context()
	install(ctx, t, kube, set)

	cases, err := filepath.Glob(filepath.Join("testdata", "cases", "*.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	refused, admitted := 0, 0
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			objects := readObjects(t, file)
			decisions, err := ev.Check(ctx, objects)
			if err != nil {
				t.Fatal(err)
			}
			offline := map[string]verdict{}
			denials := map[string][]string{}
			for _, d := range decisions {
				key := admission.ObjectName(objects[d.Object])
				v := offline[key]
				switch d.Action {
				case admissionregistrationv1.Deny:
					v.Refused = true
					denials[key] = append(denials[key], d.Message)
				case admissionregistrationv1.Warn:
					v.Warnings = append(v.Warnings, d.Message)
				}
				offline[key] = v
			}

			for key, v := range offline {
				sort.Strings(v.Warnings)
				offline[key] = v
			}
			server := map[string]verdict{}
			for _, u := range objects {
				key := admission.ObjectName(u)
				rec.reset()
				err := apply(ctx, dyn, u)
				v := verdict{}
				switch {
				case err == nil:
					admitted++
					v.Warnings = rec.take()
				case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
					refused++
					v.Refused, v.Message = true, err.Error()
				default:
					t.Fatalf("apply %s: %v", key, err)
				}
				// Warnings of a refused request are not compared: the refusal is what Flux reports.
				if v.Refused || len(v.Warnings) > 0 {
					server[key] = v
				}
			}

			// The server reports the first denying policy only; offline lists every denying binding.
			for key, v := range server {
				if !v.Refused {
					continue
				}
				if !contains(denials[key], v.Message) {
					t.Errorf("%s: the API server refused it with\n  %s\nbut offline evaluation said\n  %s", key, v.Message, strings.Join(denials[key], "\n  "))
				}
				v.Message, v.Warnings = "", nil
				server[key] = v
			}
			for key, v := range offline {
				if v.Refused {
					v.Warnings = nil
				}
				offline[key] = v
			}
			if diff := cmp.Diff(server, offline); diff != "" {
				t.Errorf("admission (-) and validate --policies (+) disagree:\n%s", diff)
			}
			for key, msgs := range denials {
				t.Logf("%s refused offline: %s", key, strings.Join(msgs, " | "))
			}
			anyRefused := false
			for _, v := range server {
				anyRefused = anyRefused || v.Refused
			}
			if strings.HasPrefix(name, "deny-") != anyRefused {
				t.Errorf("case %s: the API server refused something: %v; the case's name says otherwise", name, anyRefused)
			}
		})
	}
	if refused == 0 || admitted == 0 {
		t.Fatalf("%d objects refused, %d admitted: the cases must exercise both", refused, admitted)
	}
}

// TestAPIServerServesValidatingAdmissionPolicy checks the pinned kube-apiserver serves
// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy and Binding and that its admission plugin
// is on: a server-side dry-run of a violating Pod is refused with the policy's message.
func TestAPIServerServesValidatingAdmissionPolicy(t *testing.T) {
	cfg := testenv.APIServer(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	res, err := kube.Discovery().ServerResourcesForGroupVersion("admissionregistration.k8s.io/v1")
	if err != nil {
		t.Fatalf("discovery of admissionregistration.k8s.io/v1: %v", err)
	}
	served := map[string]bool{}
	for _, r := range res.APIResources {
		served[r.Kind] = true
	}
	for _, k := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if !served[k] {
			t.Errorf("admissionregistration.k8s.io/v1 does not serve %s (serves %v)", k, served)
		}
	}
	set := loadSets(t, filepath.Join("..", "..", "examples", "policies"))
	install(t.Context(), t, kube, set)
}

func loadSets(t *testing.T, dirs ...string) *admission.Set {
	t.Helper()
	out := &admission.Set{Dir: strings.Join(dirs, ",")}
	for _, d := range dirs {
		s, err := admission.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		out.Policies = append(out.Policies, s.Policies...)
		out.Bindings = append(out.Bindings, s.Bindings...)
	}
	return out
}

// install creates the policies and bindings and waits until the API server enforces them: a
// server-side dry-run of a Pod that violates every example policy is refused.
func install(ctx context.Context, t *testing.T, kube kubernetes.Interface, set *admission.Set) {
	t.Helper()
	api := kube.AdmissionregistrationV1()
	for _, p := range set.Policies {
		if _, err := api.ValidatingAdmissionPolicies().Create(ctx, p.ValidatingAdmissionPolicy.DeepCopy(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ValidatingAdmissionPolicy %s: %v", p.Name, err)
		}
	}
	for _, b := range set.Bindings {
		if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, b.ValidatingAdmissionPolicyBinding.DeepCopy(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ValidatingAdmissionPolicyBinding %s: %v", b.Name, err)
		}
	}
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "docker.io/library/busybox"}}}}
	// The plugin learns policies through an informer: poll until it enforces.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy"), nil
	})
	if err != nil {
		t.Fatalf("the API server does not enforce the policies: a violating Pod's dry-run was admitted: %v", err)
	}
}

func readObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// apply server-side applies one object as Flux does (field manager kustomize-controller, force).
func apply(ctx context.Context, dyn dynamic.Interface, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	plural := strings.ToLower(gvk.Kind) + "s"
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	force := true
	var ri dynamic.ResourceInterface = dyn.Resource(gvk.GroupVersion().WithResource(plural))
	if u.GetNamespace() != "" {
		ri = dyn.Resource(gvk.GroupVersion().WithResource(plural)).Namespace(u.GetNamespace())
	}
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "kustomize-controller", Force: &force})
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// warningRecorder keeps the warnings of the last request.
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

var _ rest.WarningHandler = (*warningRecorder)(nil)

func (w *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningRecorder) reset() { w.mu.Lock(); w.list = nil; w.mu.Unlock() }

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]string(nil), w.list...)
	sort.Strings(out)
	return out
}
