package hardware

import (
	"fmt"
	"testing"
)

// inv builds a valid inventory of n identical hosts in Go, for table tests.
func inv(profile string, n, cores int, ht bool, memGiB int, drives ...DriveGroup) *Inventory {
	if len(drives) == 0 {
		drives = []DriveGroup{{Tier: TierSSD, SizeGB: 1000, Count: 4}} // one tier: no cache, no S2D metadata
	}
	i := &Inventory{
		APIVersion: APIVersion, Kind: KindHCICluster, Metadata: ObjectMeta{Name: "test"},
		Spec: InventorySpec{
			Profile: profile,
			Network: NetworkSpec{
				Mode:             Static,
				ManagementSubnet: "10.0.0.0/16",
				IPPools:          []IPRange{{Start: "10.0.1.1", End: "10.0.1.250"}},
				VIPPool:          IPRange{Start: "10.0.2.1", End: "10.0.2.100"},
			},
		},
	}
	for k := 1; k <= n; k++ {
		i.Spec.Hosts = append(i.Spec.Hosts, Host{Name: fmt.Sprintf("h%d", k), Model: "m", Cores: cores, HyperThreading: ht, MemoryGiB: memGiB, Drives: drives})
	}
	return i
}

func plan(clusters ...WorkloadCluster) *Plan {
	return &Plan{APIVersion: APIVersion, Kind: KindClusterPlan, Metadata: ObjectMeta{Name: "p"}, Spec: PlanSpec{WorkloadClusters: clusters}}
}

func mustEval(t *testing.T, i *Inventory, p *Plan) *Result {
	t.Helper()
	if err := i.Validate(); err != nil {
		t.Fatalf("inventory: %v", err)
	}
	if p != nil {
		if err := p.validateShape(); err != nil {
			t.Fatalf("plan: %v", err)
		}
	}
	r, err := Evaluate(i, p)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return r
}

func findings(r *Result, sev Severity, check string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == sev && (check == "" || f.Check == check) {
			out = append(out, f)
		}
	}
	return out
}

func loadExample(t *testing.T, name string) (*Inventory, *Plan) {
	t.Helper()
	i, p, err := LoadFiles("../examples/hardware/"+name+".yaml", "../examples/hardware/plan.yaml")
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return i, p
}
