package clusterstart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"odd", []float64{3, 1, 2}, Summary{Min: 1, Median: 2, Mean: 2, Max: 3, N: 3}},
		{"even", []float64{4, 1, 2, 3}, Summary{Min: 1, Median: 2.5, Mean: 2.5, Max: 4, N: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarize(tc.in)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResultsRoundTrip(t *testing.T) {
	met := true
	r := Results{Schema: SchemaVersion, Runs: []Run{{Clusters: 3, AllReadySeconds: []float64{7.5}, GoalMet: &met}}}
	path := filepath.Join(t.TempDir(), "sub", "cluster-start.json")
	if err := r.write(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Results
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestBenchRunCarriesTheFiguresAndGoals(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "results", "cluster-start.json"))
	if err != nil {
		t.Fatalf("the recorded bench/results/cluster-start.json: %v", err)
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	run := r.BenchRun()
	m, ok := run.Metric("cluster.start.parallel3.all_ready_seconds")
	if !ok || m.Goal == nil || m.Goal.Value != GoalReadySeconds || m.Median <= 0 {
		t.Fatalf("parallel3 metric = %+v, %v", m, ok)
	}
	p := filepath.Join(t.TempDir(), "run.json")
	if err := run.Write(p); err != nil {
		t.Fatal(err)
	}
	if _, err := result.Read(p); err != nil {
		t.Fatalf("the converted run does not read back: %v", err)
	}
}
