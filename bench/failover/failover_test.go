package failover

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// samples is how many crashes and drains one run measures (issue 11: 3 samples). Run the benchmark with
// -benchtime 1x: go test runs a benchmark function once with b.N=1 before any larger N, and every call
// brings a whole twin up.
var samples = flag.Int("samples", 3, "host crashes and drains to measure")

var examplePath = filepath.Join("..", "..", "examples", "twin.yaml")

func BenchmarkFailover(b *testing.B) {
	// Ctrl-C or SIGTERM ends the waits; the deferred Down then stops the twin's processes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, err := result.OutPath("failover.json")
	if err != nil {
		b.Fatal(err)
	}
	spec, err := twin.LoadSpec(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	tp, err := cluster.Profile(spec.Spec.TimeProfile)
	if err != nil {
		b.Fatal(err)
	}
	bounds, err := BoundsFor(tp.Name)
	if err != nil {
		b.Fatal(err)
	}
	tc, err := toolcache.New()
	if err != nil {
		b.Fatal(err)
	}
	tools := map[string]string{}
	for _, tool := range []toolcache.Tool{toolcache.Etcd, toolcache.KubeAPIServer, toolcache.KubeControllerManager, toolcache.KubeScheduler, toolcache.Gitea} {
		if _, err := tc.Ensure(ctx, tool); err != nil {
			b.Fatal(err)
		}
		tools[tool.Name] = tool.Version
	}
	load0 := loadAverage()
	b.Logf("bringing up %s", examplePath)
	tw, err := twin.Up(ctx, spec, twin.Options{StateDir: filepath.Join(b.TempDir(), "state")})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := tw.Down(context.Background(), false); err != nil {
			b.Error(err)
		}
	}()
	kube := map[string]kubernetes.Interface{}
	for _, name := range spec.ClusterNames() {
		cfg, err := tw.RESTConfig(name)
		if err != nil {
			b.Fatal(err)
		}
		if kube[name], err = kubernetes.NewForConfig(cfg); err != nil {
			b.Fatal(err)
		}
	}
	d := New(tw, kube, bounds)
	if err := d.WaitCompliant(ctx); err != nil {
		b.Fatalf("the twin came up but did not converge: %v", err)
	}

	b.ResetTimer()
	var crashes []faultphases.CrashSample
	var drains []faultphases.DrainSample
	for i := range *samples {
		c, err := d.Crash(ctx)
		if err != nil {
			b.Fatalf("crash sample %d (host %s): %v", i+1, c.Host, err)
		}
		b.Logf("crash %d: %s (%s): NotReady %.1fs, nodes Ready elsewhere %.1fs, apps healthy %.1fs, Compliant %.1fs; model restarted %s after %.1fs",
			i+1, c.Host, strings.Join(c.Workers, ", "), c.NotReady.Seconds(), c.NodesReady.Seconds(), c.AppsHealthy.Seconds(), c.Compliant.Seconds(),
			strings.Join(c.Restarts, ", "), c.ModelRestart.Seconds())
		crashes = append(crashes, c)
	}
	for i := range *samples {
		s, err := d.Drain(ctx)
		if err != nil {
			b.Fatalf("drain sample %d (host %s): %v", i+1, s.Host, err)
		}
		b.Logf("drain %d: %s, %d VM(s) live-migrated (%s) in %.1fs (model %.1fs), %d pods undisturbed",
			i+1, s.Host, len(s.VMs), strings.Join(s.VMs, ", "), s.Drained.Seconds(), s.ModelDrain.Seconds(), s.Pods)
		drains = append(drains, s)
	}
	b.StopTimer()

	rp, err := twin.RunProfileFor(tp.Name)
	if err != nil {
		b.Fatal(err)
	}
	run := &result.Run{Schema: result.Schema, RunAt: time.Now().UTC(), Env: result.CurrentEnvironment()}
	run.Env.Tools = tools
	run.Env.PinsVersion = toolcache.PinsVersion
	run.Env.TimeProfile = string(tp.Name)
	run.Env.Notes = []string{
		fmt.Sprintf("examples/twin.yaml on the %s time profile (%s, %s, failover delay %s); %d host crashes then %d drains, each of the Up host with the most worker VMs, repaired after each sample",
			tp.Name, cluster.ProfilesVersion, rp.Version, rp.FailoverDelay, len(crashes), len(drains)),
		fmt.Sprintf("phases polled every %s (%s): the figures' resolution", bounds.Poll, bounds.Version),
		fmt.Sprintf("load average %.1f before the twin came up, %.1f at the end", load0, loadAverage()),
	}
	for _, c := range crashes {
		run.Env.Notes = append(run.Env.Notes, fmt.Sprintf("crash %s: workers %s; model restarted %s", c.Host, strings.Join(c.Workers, ", "), strings.Join(c.Restarts, ", ")))
	}
	for _, s := range drains {
		run.Env.Notes = append(run.Env.Notes, fmt.Sprintf("drain %s: live-migrated %s; %d pods kept their identity", s.Host, strings.Join(s.VMs, ", "), s.Pods))
	}
	for _, m := range Metrics(crashes, drains, tp) {
		run.Add(m)
		b.ReportMetric(m.Median, strings.TrimPrefix(strings.TrimSuffix(m.Name, ".seconds"), "failover.")+"-s")
	}
	if err := run.Write(out); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s", out)
}

// loadAverage is the 1-minute load average: other work on the machine slows every phase down, so it is
// recorded with the figures.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	l, _ := strconv.ParseFloat(f[0], 64)
	return l
}
