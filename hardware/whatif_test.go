package hardware

import (
	"strings"
	"testing"
)

func TestMinHosts(t *testing.T) {
	cases := []struct {
		example string
		want    int
		because string // why one fewer does not fit
	}{
		{"edge-2node", 3, "n-1"}, // 2 hosts fail N-1 (the example's point)
		{"branch-4node", 4, "mirror-accelerated-parity needs at least 4"}, // its MAP volume needs 4 fault domains
		{"datacenter-8node", 4, "dual-parity needs at least 4"},
	}
	for _, c := range cases {
		i, p := loadExample(t, c.example)
		n, note, err := MinHosts(i, p)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.want || !strings.Contains(note, c.because) {
			t.Errorf("%s: min hosts %d (%s), want %d because %q", c.example, n, note, c.want, c.because)
		}
		// Cross-check: the answer fits and one fewer does not.
		if r, err := evaluate(i, p, hostsOf(i, n), nil); err != nil || !r.Fits {
			t.Errorf("%s: %d hosts should fit: %v %v", c.example, n, err, r.Summary())
		}
	}
}

func TestMoreWorkers(t *testing.T) {
	cases := []struct {
		example, cluster, pool string
		more                   int
		limitedBy              string
	}{
		// 23H2: 64 nodes per pool is the binding limit on eight big hosts.
		{"datacenter-8node", "prod", "linux", 58, "nodes in a node pool is 65"},
		// 4 hosts x 64 vCPU; after losing one, 192 vCPU: 76 used + 29 x 4 = 192.
		{"branch-4node", "prod", "linux", 29, "losing host"},
		// The 2-node plan does not fit to begin with.
		{"edge-2node", "dev", "linux", 0, "does not fit as it is"},
	}
	for _, c := range cases {
		i, p := loadExample(t, c.example)
		mw, err := MoreWorkersFor(i, p, c.cluster, c.pool)
		if err != nil {
			t.Fatal(err)
		}
		if mw.More != c.more || !strings.Contains(mw.LimitedBy, c.limitedBy) {
			t.Errorf("%s %s/%s: %d more (%s), want %d limited by %q", c.example, c.cluster, c.pool, mw.More, mw.LimitedBy, c.more, c.limitedBy)
		}
		if c.more > 0 {
			at := func(n int) bool {
				r, err := Evaluate(i, withPoolCount(p, c.cluster, c.pool, mw.Current+n))
				return err == nil && r.Fits
			}
			if !at(c.more) || at(c.more+1) {
				t.Errorf("%s: %d more should fit and %d not", c.example, c.more, c.more+1)
			}
		}
	}
	i, p := loadExample(t, "branch-4node")
	if _, err := MoreWorkersFor(i, p, "prod", "nope"); err == nil {
		t.Error("unknown pool: no error")
	}
}

func TestWhatIfWithoutPlan(t *testing.T) {
	i, _ := loadExample(t, "branch-4node")
	r, err := Analyze(i, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Fits || len(r.VMs) != 1 || len(r.WhatIf.MoreWorkers) != 1 {
		t.Fatalf("management only: %s %+v", r.Summary(), r.WhatIf)
	}
	// 4 hosts x 64 vCPU, N-1 leaves 192 vCPU: management 4, new cluster's control plane 4 and load balancer 4,
	// so 45 Standard_K8S3_v1 (4 vCPU) workers.
	if mw := r.WhatIf.MoreWorkers[0]; mw.More != 45 || mw.VMSize != "Standard_K8S3_v1" {
		t.Fatalf("a new cluster could hold %+v, want 45", mw)
	}
}

func TestWorstFailures(t *testing.T) {
	i, p := loadExample(t, "edge-2node")
	r := mustEval(t, i, p)
	ws := WorstFailures(r)
	if len(ws) != 2 || ws[0].Host != r.Failover.WorstHost || len(ws[0].Stranded) < len(ws[1].Stranded) {
		t.Fatalf("ranking %+v, worst %s", ws, r.Failover.WorstHost)
	}
}
