package clusterstart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
)

// SchemaVersion names the shape of Results; change it when a field changes meaning.
const SchemaVersion = "cluster-start/v1"

// Goals from the issue (twin/cluster, "Done when"): 3 clusters ready in < 15 s warm, < 500 MB RSS per
// cluster. RSS is counted in MiB here; 500 MB = 476.8 MiB.
const (
	GoalClusters         = 3
	GoalReadySeconds     = 15.0
	GoalRSSPerClusterMiB = 500e6 / (1 << 20)
)

// Results is bench/results/cluster-start.json.
type Results struct {
	Schema            string    `json:"schema"`
	RecordedAt        time.Time `json:"recordedAt"`
	Machine           Machine   `json:"machine"`
	KubernetesVersion string    `json:"kubernetesVersion"`
	PinsVersion       string    `json:"pinsVersion"`
	TimeProfile       string    `json:"timeProfile"`
	ProfilesVersion   string    `json:"profilesVersion"`
	Shape             Shape     `json:"clusterShape"`
	Goal              Goal      `json:"goal"`
	Runs              []Run     `json:"runs"`
}

// Machine is where the figures were taken.
type Machine struct {
	CPUs        int     `json:"cpus"`
	MemTotalMiB int64   `json:"memTotalMiB"`
	Load1m      float64 `json:"loadAverage1mAtStart"`
	Load1mEnd   float64 `json:"loadAverage1mAtEnd"`
	GoVersion   string  `json:"goVersion"`
}

// Shape is each benchmarked cluster's VMs.
type Shape struct {
	ControlPlaneVMs int `json:"controlPlaneVMs"`
	LoadBalancerVMs int `json:"loadBalancerVMs"`
	WorkerNodes     int `json:"workerNodes"`
}

// Goal restates the targets next to the figures.
type Goal struct {
	Clusters         int     `json:"clusters"`
	ReadySeconds     float64 `json:"readySeconds"`
	RSSPerClusterMiB float64 `json:"rssPerClusterMiB"`
}

// Run is one cluster count.
type Run struct {
	Clusters int `json:"clusters"`
	// AllReadySeconds is, per iteration, the wall time from starting all clusters at once until the last
	// is ready.
	AllReadySeconds []float64 `json:"allReadySeconds"`
	// ClusterReadySeconds summarises every cluster's own start time.
	ClusterReadySeconds Summary `json:"clusterReadySeconds"`
	// PhaseSeconds is the median of each start phase across clusters.
	PhaseSeconds map[string]float64 `json:"phaseSecondsMedian"`
	// IdleRSSPerClusterMiB is the sum of a cluster's four processes' VmRSS after IdleWindow.
	IdleRSSPerClusterMiB Summary `json:"idleRSSPerClusterMiB"`
	// IdleRSSByComponentMiB is each component's mean VmRSS.
	IdleRSSByComponentMiB map[string]float64 `json:"idleRSSByComponentMiB"`
	// TwinProcessRSSMiB is the benchmark process's own VmRSS at the same moment: the simulated kubelets
	// (3 per cluster) and clients live there, not in the cluster's processes.
	TwinProcessRSSMiB float64 `json:"twinProcessRSSMiB"`
	IdleWindowSeconds float64 `json:"idleWindowSeconds"`
	// GoalMet is set for the goal's cluster count: ready within GoalReadySeconds and every cluster under
	// GoalRSSPerClusterMiB.
	GoalMet *bool `json:"goalMet,omitempty"`
}

// Summary is min, median, mean and max of some samples.
type Summary struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Mean   float64 `json:"mean"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Min: s[0], Median: med, Mean: sum / float64(len(s)), Max: s[len(s)-1], N: len(s)}
}

// write stores the results as indented JSON, replacing the file atomically.
func (r Results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// BenchRun is the same figures in the project's common benchmark schema (bench/result), which
// `hybridtwin report compare` reads: per cluster count, the all-ready time and the idle RSS per cluster.
func (r Results) BenchRun() *result.Run {
	run := &result.Run{Schema: result.Schema, RunAt: r.RecordedAt, Env: result.Environment{
		Cores: r.Machine.CPUs, MemoryBytes: uint64(r.Machine.MemTotalMiB) << 20, GOOS: goruntime.GOOS, GOARCH: goruntime.GOARCH,
		GoVersion: r.Machine.GoVersion, PinsVersion: r.PinsVersion, TimeProfile: r.TimeProfile,
		Tools: map[string]string{"kubernetes": r.KubernetesVersion},
		Notes: []string{fmt.Sprintf("load average %.1f at start, %.1f at end", r.Machine.Load1m, r.Machine.Load1mEnd)},
	}}
	if cpu := result.CurrentEnvironment().CPUModel; cpu != "" {
		run.Env.CPUModel = cpu
	}
	for _, rr := range r.Runs {
		if len(rr.AllReadySeconds) == 0 {
			continue
		}
		ready := result.NewMetric(fmt.Sprintf("cluster.start.parallel%d.all_ready_seconds", rr.Clusters), "s", result.Lower, rr.AllReadySeconds)
		// RSS is kept as a summary; its median stands for the run.
		rss := result.NewMetric(fmt.Sprintf("cluster.start.parallel%d.idle_rss_per_cluster_mib", rr.Clusters), "MiB", result.Lower,
			[]float64{rr.IdleRSSPerClusterMiB.Median})
		if rr.Clusters == GoalClusters {
			src := "issue 4: 3 clusters ready in < 15 s warm, < 500 MB RSS per cluster"
			ready.Goal = &result.Goal{Op: "<", Value: GoalReadySeconds, Source: src}
			rss.Goal = &result.Goal{Op: "<", Value: GoalRSSPerClusterMiB, Source: src}
		}
		run.Add(ready)
		run.Add(rss)
	}
	return run
}
