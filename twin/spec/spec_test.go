package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

func TestLoadValidSpec(t *testing.T) {
	s, err := LoadSpec("testdata/specs/valid.yaml")
	if err != nil {
		t.Fatalf("LoadSpec: %v", err)
	}
	if got := strings.Join(s.ClusterNames(), ","); got != "dev,prod" {
		t.Errorf("clusters = %s", got)
	}
	if s.Spec.Provider != cluster.ProviderEmbedded || s.Spec.TimeProfile != cluster.ProfileFast {
		t.Errorf("provider %s, time profile %s", s.Spec.Provider, s.Spec.TimeProfile)
	}
	if s.ReconcilerFor("dev") != ReconcilerFlux || s.ReconcilerFor("prod") != ReconcilerHybridtwin {
		t.Errorf("reconcilers: dev %s prod %s", s.ReconcilerFor("dev"), s.ReconcilerFor("prod"))
	}
	if s.Spec.Azure.ResourceGroup != DefaultResourceGroup || s.Spec.Git.Org != DefaultGitOrg || s.Spec.GitOps[0].Namespace != "flux-system" {
		t.Errorf("defaults not applied: %+v %+v", s.Spec.Azure, s.Spec.Git)
	}
	if got := strings.Join(s.TargetsOf(s.Spec.GitOps[0]), ","); got != "dev,prod" {
		t.Errorf(`"*" resolves to %s`, got)
	}
	if s.Capacity == nil || !s.Capacity.Fits || s.Inventory.Metadata.Name != "branch-4node" {
		t.Errorf("capacity verdict missing or not fitting: %+v", s.Capacity)
	}
}

// A spec with ten deliberate errors reports all ten, each with file, line and field, in one run.
func TestTenErrorsAllReported(t *testing.T) {
	_, err := LoadSpec("testdata/specs/ten-errors.yaml")
	var se *SpecErrors
	if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("err = %v, want *SpecErrors", err)
	}
	want := []struct {
		line  int
		field string
		msg   string
	}{
		{5, "metadata.name", "DNS label"},
		{9, "spec.provider", `"docker" is not a provider`},
		{10, "spec.timeProfile", "warp"},
		{11, "spec.reconcilers", "unknown field"},
		{13, "spec.azure.subscriptionID", "not a subscription ID"},
		{17, "spec.git.repos[0].path", "does not exist"},
		{19, "spec.images[0].repository", "not an image repository"},
		{23, "spec.gitops[0].clusters[1]", `"staging" is not a workload cluster`},
		{24, "spec.gitops[0].repo", `"flet" is not a repository`},
		{27, "spec.gitops[0].kustomizations", "cycle: a -> b -> a"},
	}
	if len(se.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(se.Problems), len(want), err)
	}
	for i, w := range want {
		p := se.Problems[i]
		if p.File != "testdata/specs/ten-errors.yaml" || p.Line != w.line || p.Field != w.field || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %s\n  want line %d field %s containing %q", i, p, w.line, w.field, w.msg)
		}
	}
	if !strings.Contains(err.Error(), "10 problem(s)") || !strings.Contains(err.Error(), "nothing was started") {
		t.Errorf("message: %v", err)
	}
}

func TestSpecWithoutPlanOrWithOverfullPlan(t *testing.T) {
	_, err := ParseSpec("twin.yaml", []byte(`apiVersion: hybridtwin.io/v1alpha1
kind: Twin
metadata: {name: x}
spec:
  hardware: {inventory: testdata/specs/../../../../examples/hardware/edge-2node.yaml}
`))
	if err == nil || !strings.Contains(err.Error(), "spec.hardware.plan: no ClusterPlan") {
		t.Fatalf("missing plan: %v", err)
	}
	// The 2-node estate fails N-1 with the example plan: the planner's verdict is a spec problem.
	_, err = ParseSpec("twin.yaml", []byte(`apiVersion: hybridtwin.io/v1alpha1
kind: Twin
metadata: {name: x}
spec:
  hardware:
    inventory: ../../examples/hardware/edge-2node.yaml
    plan: ../../examples/hardware/plan.yaml
`))
	if err == nil || !strings.Contains(err.Error(), "capacity planner says the plan does not fit") || !strings.Contains(err.Error(), "losing host") {
		t.Fatalf("overfull plan: %v", err)
	}
}

// spec.hardware.allowUnfit: the default refusal names the failing check and the way out; with the field
// a plan that fails N-1 loads (its verdict kept in Capacity), and one whose VMs find no host still does
// not.
func TestAllowUnfit(t *testing.T) {
	spec := func(plan string, allow bool) []byte {
		return []byte(fmt.Sprintf(`apiVersion: hybridtwin.io/v1alpha1
kind: Twin
metadata: {name: x}
spec:
  hardware:
    inventory: ../../examples/hardware/edge-2node.yaml
    plan: %s
    allowUnfit: %v
`, plan, allow))
	}
	_, err := ParseSpec("twin.yaml", spec("../../scenarios/testdata/edge-n1/plan-grown.yaml", false))
	var se *SpecErrors
	if !errors.As(err, &se) || len(se.Problems) != 1 {
		t.Fatalf("a plan that fails N-1 without allowUnfit: want one problem, got %v", err)
	}
	if p := se.Problems[0]; p.Field != "spec.hardware" || !strings.Contains(p.Msg, "(n-1 check)") || !strings.Contains(p.Msg, "set spec.hardware.allowUnfit: true") || p.Line != 6 {
		t.Fatalf("the refusal names the check and the field to set: %s", p)
	}

	s, err := ParseSpec("twin.yaml", spec("../../scenarios/testdata/edge-n1/plan-grown.yaml", true))
	if err != nil {
		t.Fatalf("allowUnfit: %v", err)
	}
	if !s.Spec.Hardware.AllowUnfit || s.Capacity == nil || s.Capacity.Fits || s.Capacity.Failover.Fits {
		t.Fatalf("the spec loads with its verdict (fails N-1): allowUnfit=%v capacity=%v", s.Spec.Hardware.AllowUnfit, s.Capacity.Summary())
	}

	// The example plan on two edge servers: VMs that find no host at all are refused even so.
	dir := t.TempDir()
	big := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(big, []byte(`apiVersion: hybridtwin.io/v1alpha1
kind: ClusterPlan
metadata: {name: big}
spec:
  workloadClusters:
  - name: edge
    nodePools:
    - {name: linux, vmSize: Standard_D8s_v3, count: 40}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("../../examples/hardware/edge-2node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Replace(spec(big, true), []byte("../../examples/hardware/edge-2node.yaml"), []byte(abs), 1)
	_, err = ParseSpec(filepath.Join(dir, "twin.yaml"), data)
	if !errors.As(err, &se) {
		t.Fatalf("VMs that find no host with allowUnfit: want a spec problem, got %v", err)
	}
	found := false
	for _, p := range se.Problems {
		if p.Field == "spec.hardware.allowUnfit" && strings.Contains(p.Msg, "find no host") && p.Line == 8 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no problem at spec.hardware.allowUnfit (line 8) about VMs that find no host:\n%v", err)
	}
}

// spec.reconciler names an engine of the engine room (twin/engine/engines); an unknown one is refused
// with its line and the engines there are.
func TestUnknownReconcilerListsTheEngines(t *testing.T) {
	data, err := os.ReadFile("testdata/specs/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("dev: {reconciler: flux}"), []byte("dev: {reconciler: argo}"), 1)
	_, err = ParseSpec("testdata/specs/valid.yaml", data)
	var se *SpecErrors
	if !errors.As(err, &se) || len(se.Problems) != 1 {
		t.Fatalf("err = %v, want one problem", err)
	}
	p := se.Problems[0]
	if p.Line != 11 || !strings.Contains(p.Msg, `unknown reconciler "argo"; use one of flux, hybridtwin`) {
		t.Errorf("problem = %s", p)
	}
}

// spec.clusters.<name>.tier picks a cluster's tier; an unknown tier, or light with a provider other than
// embedded, is refused at its line.
func TestClusterTier(t *testing.T) {
	data, err := os.ReadFile("testdata/specs/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	light := bytes.Replace(data, []byte("dev: {reconciler: flux}"), []byte("dev: {reconciler: flux, tier: light}"), 1)
	s, err := ParseSpec("testdata/specs/valid.yaml", light)
	if err != nil {
		t.Fatal(err)
	}
	if s.TierFor("dev") != cluster.TierLight || s.TierFor("prod") != "" {
		t.Errorf("tiers: dev %q prod %q", s.TierFor("dev"), s.TierFor("prod"))
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown tier", "tier: light", "tier: tiny", `"tiny" is not a tier; use full`},
		{"light on kind", "timeProfile: fast", "timeProfile: fast\n  provider: kind", "light needs provider embedded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Replace(light, []byte(tc.from), []byte(tc.to), 1)
			_, err := ParseSpec("testdata/specs/valid.yaml", in)
			var se *SpecErrors
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want spec problems", err)
			}
			found := false
			for _, p := range se.Problems {
				found = found || (strings.Contains(p.Field, "spec.clusters.dev.tier") && strings.Contains(p.Msg, tc.want))
			}
			if !found {
				t.Fatalf("no problem at spec.clusters.dev.tier saying %q:\n%v", tc.want, err)
			}
		})
	}
}
