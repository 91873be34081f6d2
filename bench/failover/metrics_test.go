package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

func TestMetricsCarryTheSamplesAndTheirAnchors(t *testing.T) {
	fast, err := cluster.Profile(cluster.ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	s := time.Second
	crashes := []CrashSample{
		{NotReady: 11 * s, NodesReady: 16 * s, AppsHealthy: 17 * s, Compliant: 18 * s, ModelRestart: 15 * s},
		{NotReady: 12 * s, NodesReady: 17 * s, AppsHealthy: 19 * s, Compliant: 20 * s, ModelRestart: 15 * s},
		{NotReady: 10 * s, NodesReady: 15 * s, AppsHealthy: 16 * s, Compliant: 16 * s, ModelRestart: 15 * s},
	}
	drains := []DrainSample{{Drained: 9 * s, ModelDrain: 8 * s}, {Drained: 10 * s, ModelDrain: 8 * s}}
	ms := Metrics(crashes, drains, fast)
	got := map[string]result.Metric{}
	for _, m := range ms {
		got[m.Name] = m
	}
	want := []struct {
		name    string
		samples []float64
		median  float64
		anchor  float64 // 0: none
		source  string
	}{
		{MetricNotReady, []float64{11, 12, 10}, 11, 10, "--node-monitor-grace-period of time profile fast"},
		{MetricNodesReady, []float64{16, 17, 15}, 16, 15, "SameSubnetThreshold 10"},
		{MetricHealthy, []float64{17, 19, 16}, 17, 20, "--default-unreachable-toleration-seconds 10"},
		{MetricCompliant, []float64{18, 20, 16}, 18, 0, ""},
		{MetricDrain, []float64{9, 10}, 9.5, 8, "Optimizing Hyper-V Live Migrations"},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d metrics, want %d", len(ms), len(want))
	}
	for _, w := range want {
		m, ok := got[w.name]
		if !ok {
			t.Errorf("no metric %s", w.name)
			continue
		}
		if diff := cmp.Diff(w.samples, m.Samples); diff != "" || m.Median != w.median || m.Unit != "s" || m.Better != result.Lower || m.Goal != nil {
			t.Errorf("%s: median %v unit %q better %s goal %v samples (-want +got):\n%s", w.name, m.Median, m.Unit, m.Better, m.Goal, diff)
		}
		switch {
		case w.anchor == 0 && m.Anchor != nil:
			t.Errorf("%s: unexpected anchor %+v", w.name, m.Anchor)
		case w.anchor != 0 && (m.Anchor == nil || m.Anchor.Value != w.anchor || !strings.Contains(m.Anchor.Source, w.source)):
			t.Errorf("%s: anchor %+v, want %v citing %q", w.name, m.Anchor, w.anchor, w.source)
		}
	}
	if len(Metrics(nil, nil, fast)) != 0 {
		t.Error("metrics without samples")
	}
	real, _ := cluster.Profile(cluster.ProfileReal)
	for _, m := range Metrics(crashes[:1], nil, real) {
		if m.Name == MetricHealthy && m.Anchor.Value != 350 {
			t.Errorf("real profile eviction anchor = %v, want 50 s grace + 300 s toleration", m.Anchor.Value)
		}
	}
}

func TestBoundsFollowTheProfiles(t *testing.T) {
	fast, err := BoundsFor(cluster.ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	real, err := BoundsFor(cluster.ProfileReal)
	if err != nil {
		t.Fatal(err)
	}
	// fast: Slack x (10 s grace + 2 x 1 s period); real: Slack x (50 s + 2 x 5 s).
	if fast.NotReady != Slack*12*time.Second || real.NotReady != Slack*60*time.Second {
		t.Errorf("NotReady bounds fast %s real %s", fast.NotReady, real.NotReady)
	}
	// fast: Slack x (15 s failover + 10 s status update); real: Slack x (10 s model failover + 10 s).
	if fast.NodesBack != Slack*25*time.Second || real.NodesBack != Slack*20*time.Second {
		t.Errorf("NodesBack bounds fast %s real %s", fast.NodesBack, real.NodesBack)
	}
	if real.Healthy <= fast.Healthy || fast.Poll <= 0 || fast.Version != BoundsVersion {
		t.Errorf("bounds %+v / %+v", fast, real)
	}
	if _, err := BoundsFor("sluggish"); err == nil {
		t.Error("an unknown profile has bounds")
	}
}

func TestBusiestHostAndPodChanges(t *testing.T) {
	st := &twin.Status{
		Hosts: []twin.HostState{
			{Name: "h1", State: string(hardware.HostUp), VMs: []string{"cp", "w1"}},
			{Name: "h2", State: string(hardware.HostUp), VMs: []string{"w2", "w3"}},
			{Name: "h3", State: string(hardware.HostMaintenance), VMs: nil},
			{Name: "h4", State: string(hardware.HostIsDown), VMs: []string{"w4", "w5", "w6"}},
		},
		VMs: []twin.VMState{
			{Name: "cp", Role: string(hardware.RoleControlPlane), Cluster: "dev"},
			{Name: "w1", Role: string(hardware.RoleWorker), Cluster: "dev"},
			{Name: "w2", Role: string(hardware.RoleWorker), Cluster: "dev"},
			{Name: "w3", Role: string(hardware.RoleWorker), Cluster: "prod"},
			{Name: "w4", Role: string(hardware.RoleWorker), Cluster: "prod"},
		},
	}
	host, ws := busiestHost(st)
	if host != "h2" || cmp.Diff([]string{"dev/w2", "prod/w3"}, workerNames(ws)) != "" {
		t.Errorf("busiest = %s %v; want h2 (h4 is down)", host, workerNames(ws))
	}
	if h, _ := busiestHost(&twin.Status{}); h != "" {
		t.Errorf("busiest of nothing = %q", h)
	}
	before := map[string]string{"dev/apps/a": "1", "dev/apps/b": "2", "prod/apps/c": "3"}
	after := map[string]string{"dev/apps/a": "1", "dev/apps/b": "9", "prod/apps/d": "4"}
	want := []string{"dev/apps/b replaced", "prod/apps/c gone", "prod/apps/d new"}
	if diff := cmp.Diff(want, podChanges(before, after)); diff != "" {
		t.Errorf("pod changes (-want +got):\n%s", diff)
	}
	if len(podChanges(before, before)) != 0 {
		t.Error("no change reported as a change")
	}
}
