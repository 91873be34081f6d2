package clusterstart

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

// Result files, in the run directory of $HYBRIDTWIN_BENCH_DIR or bench/results/ (result.OutPath):
// cluster-start.json in this driver's own schema (Results), and the same run in the common schema
// (bench/result) as cluster-start.bench.json, which `hybridtwin report merge` and `compare` read.
const (
	resultsFile  = "cluster-start.json"
	benchRunFile = "cluster-start.bench.json"
)

// IdleWindow is how long clusters sit idle before their RSS is read. The controller-manager's
// informers finish syncing about 5 s after a cluster is ready on a loaded 2-core machine (its log,
// "Caches are synced"); the RSS is averaged over the last idleSamples seconds of the window.
const (
	IdleWindow  = 20 * time.Second
	idleSamples = 5
)

// counts are the cluster counts the issue asks for.
var counts = []int{1, 3, 6}

// spec is one benchmark cluster: the example's shape (1 control-plane VM, 1 load-balancer VM, 3 workers).
func spec(name string) cluster.Spec {
	vm := func(n, host string) cluster.VMSpec {
		return cluster.VMSpec{Name: n, Host: host, Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192}
	}
	s := cluster.Spec{
		Name:          name,
		TimeProfile:   cluster.ProfileFast,
		ControlPlane:  []cluster.VMSpec{vm(name+"-cp1", "hci-1")},
		LoadBalancers: []cluster.VMSpec{vm(name+"-lb1", "hci-2")},
	}
	for i := 1; i <= 3; i++ {
		s.Nodes = append(s.Nodes, cluster.NodeSpec{
			Name: fmt.Sprintf("%s-w%d", name, i), Pool: "linuxpool", Host: fmt.Sprintf("hci-%d", i),
			Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192,
		})
	}
	return s
}

func BenchmarkClusterStart(b *testing.B) {
	ctx := context.Background()
	resultsPath, err := result.OutPath(resultsFile)
	if err != nil {
		b.Fatal(err)
	}
	benchRunPath, err := result.OutPath(benchRunFile)
	if err != nil {
		b.Fatal(err)
	}
	// Build or find the binaries first: a tool build must not count as start time.
	bins, err := embedded.ToolCacheBinaries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	p := embedded.New(embedded.Options{Binaries: bins})
	defer func() {
		if err := p.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	// Warm-up (the goal is for a warm machine): the binaries and libraries in the page cache.
	if _, err := startAll(ctx, p, []cluster.Spec{spec("warmup")}); err != nil {
		b.Fatal(err)
	}
	if err := p.Delete(ctx, "warmup"); err != nil {
		b.Fatal(err)
	}

	fast, _ := cluster.Profile(cluster.ProfileFast)
	res := Results{
		Schema:            SchemaVersion,
		RecordedAt:        time.Now().UTC(),
		Machine:           machine(),
		KubernetesVersion: toolcache.KubernetesVersion,
		PinsVersion:       toolcache.PinsVersion,
		TimeProfile:       string(fast.Name),
		ProfilesVersion:   cluster.ProfilesVersion,
		Shape:             Shape{ControlPlaneVMs: 1, LoadBalancerVMs: 1, WorkerNodes: 3},
		Goal:              Goal{Clusters: GoalClusters, ReadySeconds: GoalReadySeconds, RSSPerClusterMiB: GoalRSSPerClusterMiB},
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			run := Run{Clusters: n, PhaseSeconds: map[string]float64{}, IdleRSSByComponentMiB: map[string]float64{}, IdleWindowSeconds: IdleWindow.Seconds()}
			var clusterReady, rssPerCluster []float64
			phases := map[string][]float64{}
			comps := map[string][]float64{}
			var twin []float64
			for i := 0; i < b.N; i++ {
				var specs []cluster.Spec
				for k := 0; k < n; k++ {
					specs = append(specs, spec(fmt.Sprintf("bench-%d-%d-%d", n, i, k)))
				}
				b.StartTimer()
				start := time.Now()
				infos, err := startAll(ctx, p, specs)
				wall := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				run.AllReadySeconds = append(run.AllReadySeconds, wall.Seconds())
				for _, in := range infos {
					clusterReady = append(clusterReady, in.Start.Total.Seconds())
					for _, ph := range in.Start.Phases {
						phases[string(ph.Phase)] = append(phases[string(ph.Phase)], ph.Took.Seconds())
					}
				}
				perCluster, perComp, self := idleRSS(infos)
				rssPerCluster = append(rssPerCluster, perCluster...)
				for c, v := range perComp {
					comps[c] = append(comps[c], v...)
				}
				twin = append(twin, self)
				for _, in := range infos {
					if err := p.Delete(ctx, in.Name); err != nil {
						b.Fatal(err)
					}
				}
			}
			run.ClusterReadySeconds = summarize(clusterReady)
			run.IdleRSSPerClusterMiB = summarize(rssPerCluster)
			for ph, v := range phases {
				run.PhaseSeconds[ph] = summarize(v).Median
			}
			for c, v := range comps {
				run.IdleRSSByComponentMiB[c] = summarize(v).Mean
			}
			run.TwinProcessRSSMiB = summarize(twin).Max
			if n == GoalClusters {
				met := summarize(run.AllReadySeconds).Max < GoalReadySeconds && run.IdleRSSPerClusterMiB.Max < GoalRSSPerClusterMiB
				run.GoalMet = &met
			}
			b.ReportMetric(summarize(run.AllReadySeconds).Median, "s/all-ready")
			b.ReportMetric(run.IdleRSSPerClusterMiB.Mean, "MiB-rss/cluster")
			res.Runs = append(res.Runs, run)
			res.Machine.Load1mEnd = loadAverage()
			if err := res.write(resultsPath); err != nil {
				b.Fatal(err)
			}
			if br := res.BenchRun(); len(br.Metrics) > 0 {
				if err := br.Write(benchRunPath); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startAll creates the clusters in parallel and returns their Info once all are ready.
func startAll(ctx context.Context, p *embedded.Provider, specs []cluster.Spec) ([]cluster.Info, error) {
	infos := make([]cluster.Info, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func(i int, s cluster.Spec) {
			defer wg.Done()
			infos[i], errs[i] = p.Create(ctx, s)
		}(i, s)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return infos, nil
}

// idleRSS lets the clusters idle for IdleWindow and returns each cluster's RSS (MiB, the mean of the
// window's last samples), every component's, and this process's.
func idleRSS(infos []cluster.Info) (perCluster []float64, perComponent map[string][]float64, self float64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.Now().Add(IdleWindow)
	type sample map[string]float64 // "<cluster>/<component>" -> MiB
	var samples []sample
	for now := range tick.C {
		s := sample{}
		for _, in := range infos {
			for _, pr := range in.Processes {
				s[in.Name+"/"+string(pr.Component)] = rssMiB(pr.PID)
			}
		}
		s["self"] = rssMiB(os.Getpid())
		samples = append(samples, s)
		if !now.Before(deadline) {
			break
		}
	}
	if len(samples) > idleSamples {
		samples = samples[len(samples)-idleSamples:]
	}
	mean := func(key string) float64 {
		sum := 0.0
		for _, s := range samples {
			sum += s[key]
		}
		return sum / float64(len(samples))
	}
	perComponent = map[string][]float64{}
	for _, in := range infos {
		total := 0.0
		for _, pr := range in.Processes {
			v := mean(in.Name + "/" + string(pr.Component))
			perComponent[string(pr.Component)] = append(perComponent[string(pr.Component)], v)
			total += v
		}
		perCluster = append(perCluster, total)
	}
	return perCluster, perComponent, mean("self")
}

// rssMiB is VmRSS of a process in MiB (0 if it cannot be read).
func rssMiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kib, _ := strconv.ParseFloat(f[0], 64)
				return kib / 1024
			}
		}
	}
	return 0
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Load1m: loadAverage()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kib, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemTotalMiB = kib / 1024
				}
			}
		}
	}
	return m
}

// loadAverage is the 1-minute load average: other work on the machine slows starts down, so it is
// recorded with the figures.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	l, _ := strconv.ParseFloat(f[0], 64)
	return l
}
