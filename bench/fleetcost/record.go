package fleetcost

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// resultFile is the driver's result, in the run directory or bench/results/ (result.OutPath).
const resultFile = "fleetcost.json"

// prefix is a point's metric name prefix: fleet.cost.<variant>.clusters<N>.
func (pt *point) prefix() string {
	return fmt.Sprintf("fleet.cost.%s.clusters%d.", pt.variant.Name, pt.clusters)
}

// metrics are a point's figures: per cluster (one sample per cluster) the total and each part's RSS, Pss
// and idle CPU, and the time all clusters took to be ready.
func (pt *point) metrics() []result.Metric {
	pre := pt.prefix()
	ms := []result.Metric{
		result.NewMetric(pre+"rss_per_cluster_mib", "MiB", result.Lower, pt.clusterTotals("rss")),
		result.NewMetric(pre+"pss_per_cluster_mib", "MiB", result.Lower, pt.clusterTotals("pss")),
		result.NewMetric(pre+"idle_cpu_per_cluster_millicores", "millicores", result.Lower, pt.clusterTotals("cpu")),
		result.NewMetric(pre+"all_ready_seconds", "s", result.Lower, []float64{pt.startSeconds}),
	}
	for _, name := range pt.partNames() {
		ms = append(ms,
			result.NewMetric(pre+"part."+name+".rss_mib", "MiB", result.Lower, pt.partValues(name, "rss")),
			result.NewMetric(pre+"part."+name+".pss_mib", "MiB", result.Lower, pt.partValues(name, "pss")),
			result.NewMetric(pre+"part."+name+".idle_cpu_millicores", "millicores", result.Lower, pt.partValues(name, "cpu")))
	}
	return ms
}

// note is the point's line in the result's notes: what the variant is and the machine's load.
func (pt *point) note() string {
	var shared []string
	for c, k := range pt.shared {
		shared = append(shared, fmt.Sprintf("%s shared by %d", c, k))
	}
	sort.Strings(shared)
	s := fmt.Sprintf("%s%s: %s; load average (1m) %.2f at start, %.2f at end; %.0f MiB available before",
		pt.prefix(), "point", pt.variant.Note, pt.load1mStart, pt.load1mEnd, pt.memAvailableMiB)
	if len(shared) > 0 {
		s += "; " + strings.Join(shared, ", ") + " (each cluster counts its share)"
	}
	return s
}

// generalNotes explain the figures; they head the notes of every run.
var generalNotes = []string{
	"fleetcost: per cluster, per part; RSS is VmRSS (/proc/<pid>/status), Pss from /proc/<pid>/smaps_rollup (shared binary text split among the processes mapping it); idle CPU is utime+stime (/proc/<pid>/stat) over a " + idleWindow.String() + " window after " + settle.String() + " of settling, in thousandths of a core",
	"fleetcost: simulated-kubelets and engine run in the twin's (here the benchmark's) own process: their figures are its growth once the clusters, then the engines, were up, divided by the cluster count; their CPU is that process's over the window",
	"fleetcost: the machine is shared with other engineers' work: memory figures are robust to that, CPU figures are not; read them against the load average noted at each point",
}

// record merges a point into the result file: the point's metrics and note replace earlier ones of the
// same variant and count, the others stay.
func record(path string, pt *point) error {
	run := &result.Run{Schema: result.Schema}
	if old, err := result.Read(path); err == nil {
		run = old
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s exists but is not a result to add to: %w; move it away", path, err)
	}
	env := result.CurrentEnvironment()
	env.PinsVersion = toolcache.PinsVersion
	env.TimeProfile = string(cluster.ProfileFast)
	env.Tools = map[string]string{"kubernetes": toolcache.KubernetesVersion}
	pre := pt.prefix()
	notes := append([]string(nil), generalNotes...)
	for _, n := range run.Env.Notes {
		if !strings.HasPrefix(n, "fleetcost:") && !strings.HasPrefix(n, pre) {
			notes = append(notes, n)
		}
	}
	notes = append(notes, pt.note())
	sort.Strings(notes[len(generalNotes):])
	env.Notes = notes
	run.Env = env
	run.RunAt = time.Now().UTC()
	kept := run.Metrics[:0]
	for _, m := range run.Metrics {
		if !strings.HasPrefix(m.Name, pre) {
			kept = append(kept, m)
		}
	}
	run.Metrics = kept
	for _, m := range pt.metrics() {
		run.Add(m)
	}
	return run.Write(path)
}
