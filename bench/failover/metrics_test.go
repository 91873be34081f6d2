package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

func TestMetricsCarryTheSamplesAndTheirAnchors(t *testing.T) {
	fast, err := cluster.Profile(cluster.ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	s := time.Second
	crashes := []faultphases.CrashSample{
		{NotReady: 11 * s, NodesReady: 16 * s, AppsHealthy: 17 * s, Compliant: 18 * s, ModelRestart: 15 * s},
		{NotReady: 12 * s, NodesReady: 17 * s, AppsHealthy: 19 * s, Compliant: 20 * s, ModelRestart: 15 * s},
		{NotReady: 10 * s, NodesReady: 15 * s, AppsHealthy: 16 * s, Compliant: 16 * s, ModelRestart: 15 * s},
	}
	drains := []faultphases.DrainSample{{Drained: 9 * s, ModelDrain: 8 * s}, {Drained: 10 * s, ModelDrain: 8 * s}}
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
