package fleetcost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/engine/hybridtwin"
)

// Environment variables that pick what to run; empty means everything.
const (
	envVariants = "HYBRIDTWIN_FLEETCOST_VARIANTS"
	envCounts   = "HYBRIDTWIN_FLEETCOST_COUNTS"
)

// defaultCounts are the cluster counts measured. Eight is the most the machine's owners allow at once
// while other engineers share it (the brief); at ~450 MiB each it is ~3.5 GiB.
var defaultCounts = []int{1, 2, 4, 8}

// Windows. settle: the controller-manager's informers finish syncing about 5 s after a cluster is ready
// on a loaded 2-core machine (bench/clusterstart); the engines' informers likewise after their start.
// kubeletWindow: the in-process parts' CPU before the engines start, over at least one node-status
// report of the fast profile (twin/cluster/profile.go). idleWindow: every process's idle CPU, three lease
// renewals of the fast profile's 10 s lease; memory is the mean of the window's last memSamples samples.
const (
	settle        = 10 * time.Second
	kubeletWindow = 20 * time.Second
	idleWindow    = 30 * time.Second
	sampleEvery   = 3 * time.Second
	memSamples    = 4
)

// memPerClusterMiB is the headroom asked of the machine per cluster before a point starts: the full
// variant's measured ~450 MiB (bench/results/cluster-start.json) with a margin; plus memReserveMiB for the
// other engineers on the machine.
const (
	memPerClusterMiB = 700
	memReserveMiB    = 4096
)

// selection is the variants and counts asked for in the environment.
func selection() ([]Variant, []int, error) {
	names := []string{}
	for _, v := range Variants {
		names = append(names, v.Name)
	}
	if s := os.Getenv(envVariants); s != "" {
		names = strings.Split(s, ",")
	}
	vs, err := variantsByName(names)
	if err != nil {
		return nil, nil, err
	}
	counts := defaultCounts
	if s := os.Getenv(envCounts); s != "" {
		counts = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 8 {
				return nil, nil, fmt.Errorf("%s=%s: %q is not a cluster count from 1 to 8 (at most 8 at once on a shared machine)", envCounts, s, f)
			}
			counts = append(counts, n)
		}
	}
	return vs, counts, nil
}

// measure starts n clusters of a variant with their engines, lets them idle and reads every part.
func measure(ctx context.Context, p *embedded.Provider, crdDirs []string, v Variant, n int) (*point, error) {
	avail, err := memAvailableMiB()
	if err != nil {
		return nil, err
	}
	if need := float64(n*memPerClusterMiB + memReserveMiB); avail < need {
		return nil, fmt.Errorf("%d clusters need about %.0f MiB available (with %d MiB left for the others on the machine); %.0f MiB are: run fewer (%s)", n, need, memReserveMiB, avail, envCounts)
	}
	pt := &point{variant: v, clusters: n, load1mStart: loadAverage(), memAvailableMiB: avail}
	self := os.Getpid()

	debug.FreeOSMemory()
	base, err := readUsage(self)
	if err != nil {
		return nil, err
	}
	var specs []cluster.Spec
	for k := 0; k < n; k++ {
		specs = append(specs, v.spec(fmt.Sprintf("fc-%s-%d-%d", v.Name, n, k)))
	}
	start := time.Now()
	infos, err := startAll(ctx, p, specs)
	if err != nil {
		return nil, err
	}
	pt.startSeconds = time.Since(start).Seconds()
	defer func() {
		for _, in := range infos {
			_ = p.Delete(context.WithoutCancel(ctx), in.Name)
		}
	}()

	// The simulated kubelets alone in this process.
	time.Sleep(settle)
	debug.FreeOSMemory()
	k0, err := readUsage(self)
	if err != nil {
		return nil, err
	}
	time.Sleep(kubeletWindow)
	debug.FreeOSMemory()
	k1, err := readUsage(self)
	if err != nil {
		return nil, err
	}
	pt.kubelets = part{RSSMiB: (k1.RSSKiB - base.RSSKiB) / 1024, PssMiB: (k1.PssKiB - base.PssKiB) / 1024,
		CPUMilli: millicores(k1.CPUTicks-k0.CPUTicks, kubeletWindow)}

	// Flux's CRDs and the engine, as the twin's bring-up adds them (twin/internal/estate startEngine).
	runCtx, stopEngines := context.WithCancel(ctx)
	defer stopEngines()
	running, err := startEngines(ctx, runCtx, infos, crdDirs)
	defer func() {
		for _, r := range running {
			_ = r.Stop(context.WithoutCancel(ctx))
		}
	}()
	if err != nil {
		return nil, err
	}
	time.Sleep(settle)
	if err := pt.idle(infos, k1); err != nil {
		return nil, err
	}
	pt.load1mEnd = loadAverage()
	return pt, nil
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
	var ok []cluster.Info
	var firstErr error
	for i, err := range errs {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok = append(ok, infos[i])
	}
	if firstErr != nil {
		for _, in := range ok {
			_ = p.Delete(context.WithoutCancel(ctx), in.Name)
		}
		return nil, firstErr
	}
	return infos, nil
}

// startEngines installs Flux's CRDs into every cluster and starts the twin's engine on it.
func startEngines(ctx, runCtx context.Context, infos []cluster.Info, crdDirs []string) ([]engine.Running, error) {
	var out []engine.Running
	for _, in := range infos {
		cfg, err := clientcmd.BuildConfigFromFlags("", in.Kubeconfig)
		if err != nil {
			return out, err
		}
		if _, err := fluxcrd.Install(ctx, cfg, nil, crdDirs); err != nil {
			return out, fmt.Errorf("cluster %s: %w", in.Name, err)
		}
		dir := filepath.Join(in.StateDir, "engine")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return out, err
		}
		r, err := hybridtwin.Engine{}.Start(ctx, engine.Cluster{Name: in.Name, Config: cfg, Kubeconfig: in.Kubeconfig, Dir: dir, Run: runCtx})
		if err != nil {
			return out, fmt.Errorf("engine of %s: %w", in.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// millicores is CPU ticks over a window as thousandths of a core.
func millicores(ticks float64, window time.Duration) float64 {
	return ticks / clockTicks / window.Seconds() * 1000
}
