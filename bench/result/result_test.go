package result

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestQuantiles(t *testing.T) {
	cases := []struct {
		name     string
		samples  []float64
		med, p99 float64
		min, max float64
	}{
		{"one", []float64{3}, 3, 3, 3, 3},
		{"odd", []float64{5, 1, 3}, 3, 4.96, 1, 5},
		{"even", []float64{4, 1, 3, 2}, 2.5, 3.97, 1, 4},
		{"hundred", seq(1, 100), 50.5, 99.01, 1, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMetric("m", "s", Lower, c.samples)
			for _, f := range []struct {
				what      string
				got, want float64
			}{{"median", m.Median, c.med}, {"p99", m.P99, c.p99}, {"min", m.Min, c.min}, {"max", m.Max, c.max}} {
				if math.Abs(f.got-f.want) > 1e-9 {
					t.Errorf("%s = %v, want %v", f.what, f.got, f.want)
				}
			}
		})
	}
}

func TestWriteReadRoundTripAndSchemaCheck(t *testing.T) {
	dir := t.TempDir()
	r := &Run{Env: CurrentEnvironment()}
	r.Add(NewMetric("b.metric", "s", Lower, []float64{2, 1}))
	r.Add(NewMetric("a.metric", "objects/s", Higher, []float64{10}))
	r.Add(NewMetric("b.metric", "s", Lower, []float64{3}))
	p := filepath.Join(dir, "run.json")
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metrics) != 2 || got.Metrics[0].Name != "a.metric" || got.Metrics[1].Median != 3 || got.Env.Cores == 0 {
		t.Fatalf("round trip = %+v", got)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"schema":"other/v9","metrics":[]}`), 0o644)
	if _, err := Read(bad); !errors.Is(err, ErrSchema) {
		t.Fatalf("other schema: err = %v", err)
	}
	_ = os.WriteFile(bad, []byte(`{"schema":"`+Schema+`","metrics":[{"name":"x","samples":[1],"better":"sideways"}]}`), 0o644)
	if _, err := Read(bad); !errors.Is(err, ErrSchema) {
		t.Fatalf("bad metric: err = %v", err)
	}
}

func TestGoal(t *testing.T) {
	if !(&Goal{Op: "<", Value: 15}).Met(14) || (&Goal{Op: "<", Value: 15}).Met(16) || !(&Goal{Op: ">", Value: 10000}).Met(12000) {
		t.Fatal("goal comparison wrong")
	}
}

func seq(a, b int) []float64 {
	var out []float64
	for i := a; i <= b; i++ {
		out = append(out, float64(i))
	}
	return out
}
