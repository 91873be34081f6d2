package fleetcost

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// Parts of a cluster besides its control-plane processes: they run in the twin's own process.
const (
	partKubelets = "simulated-kubelets"
	partEngine   = "engine"
)

// part is one part's figures: resident memory, proportional memory and idle CPU.
type part struct {
	RSSMiB, PssMiB, CPUMilli float64
}

func (p part) add(o part) part {
	return part{RSSMiB: p.RSSMiB + o.RSSMiB, PssMiB: p.PssMiB + o.PssMiB, CPUMilli: p.CPUMilli + o.CPUMilli}
}

func (p part) scale(f float64) part {
	return part{RSSMiB: p.RSSMiB * f, PssMiB: p.PssMiB * f, CPUMilli: p.CPUMilli * f}
}

// point is one variant at one cluster count.
type point struct {
	variant  Variant
	clusters int

	startSeconds    float64
	load1mStart     float64
	load1mEnd       float64
	memAvailableMiB float64

	// kubelets and engine are this process's growth over the point, for all clusters together.
	kubelets, engine part
	// perPart is, per cluster (in start order), each part's share: a process shared by k clusters (one
	// etcd for several API servers) counts 1/k in each.
	perPart []map[string]part
	// shared lists the processes that several clusters share (component -> how many share it).
	shared map[string]int
}

// idle samples every process of the clusters and this process over idleWindow; before is this process's
// usage before the engines started.
func (pt *point) idle(infos []cluster.Info, before usage) error {
	self := os.Getpid()
	sharers := map[int]int{}
	for _, in := range infos {
		for _, pr := range in.Processes {
			sharers[pr.PID]++
		}
	}
	pids := []int{self}
	for pid := range sharers {
		pids = append(pids, pid)
	}
	sort.Ints(pids)

	read := func() (map[int]usage, error) {
		m := map[int]usage{}
		for _, pid := range pids {
			u, err := readUsage(pid)
			if err != nil {
				return nil, fmt.Errorf("read process %d: %w", pid, err)
			}
			m[pid] = u
		}
		return m, nil
	}
	first, err := read()
	if err != nil {
		return err
	}
	var samples []map[int]usage
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	began := time.Now()
	for range tick.C {
		s, err := read()
		if err != nil {
			return err
		}
		samples = append(samples, s)
		if time.Since(began) >= idleWindow {
			break
		}
	}
	window := time.Since(began)
	last := samples[len(samples)-1]
	if len(samples) > memSamples {
		samples = samples[len(samples)-memSamples:]
	}
	mem := func(pid int) (rss, pss float64) {
		for _, s := range samples {
			rss += s[pid].RSSKiB
			pss += s[pid].PssKiB
		}
		return rss / float64(len(samples)) / 1024, pss / float64(len(samples)) / 1024
	}
	cpu := func(pid int) float64 { return millicores(last[pid].CPUTicks-first[pid].CPUTicks, window) }

	rss, pss := mem(self)
	inProc := part{RSSMiB: rss - before.RSSKiB/1024, PssMiB: pss - before.PssKiB/1024, CPUMilli: cpu(self)}
	// The engines' share of this process is what it grew by once they started, and its CPU above the
	// kubelets' alone.
	pt.engine = part{RSSMiB: inProc.RSSMiB, PssMiB: inProc.PssMiB, CPUMilli: inProc.CPUMilli - pt.kubelets.CPUMilli}
	n := float64(len(infos))
	pt.shared = map[string]int{}
	for _, in := range infos {
		parts := map[string]part{
			partKubelets: pt.kubelets.scale(1 / n),
			partEngine:   pt.engine.scale(1 / n),
		}
		for _, pr := range in.Processes {
			r, p := mem(pr.PID)
			k := float64(sharers[pr.PID])
			parts[string(pr.Component)] = parts[string(pr.Component)].add(part{RSSMiB: r, PssMiB: p, CPUMilli: cpu(pr.PID)}.scale(1 / k))
			if sharers[pr.PID] > 1 {
				pt.shared[string(pr.Component)] = sharers[pr.PID]
			}
		}
		pt.perPart = append(pt.perPart, parts)
	}
	if len(pt.perPart) == 0 {
		return errors.New("no clusters to measure")
	}
	return nil
}

// perCluster is the mean over clusters of a cluster's total: "rss", "pss" or "cpu".
func (pt *point) perCluster(what string) float64 {
	s := pt.clusterTotals(what)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

// clusterTotals is each cluster's total over its parts.
func (pt *point) clusterTotals(what string) []float64 {
	var out []float64
	for _, parts := range pt.perPart {
		t := part{}
		for _, p := range parts {
			t = t.add(p)
		}
		out = append(out, pick(t, what))
	}
	return out
}

// partValues is one part's value in every cluster.
func (pt *point) partValues(name, what string) []float64 {
	var out []float64
	for _, parts := range pt.perPart {
		out = append(out, pick(parts[name], what))
	}
	return out
}

// partNames are the parts measured, sorted.
func (pt *point) partNames() []string {
	set := map[string]bool{}
	for _, parts := range pt.perPart {
		for n := range parts {
			set[n] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func pick(p part, what string) float64 {
	switch what {
	case "rss":
		return p.RSSMiB
	case "pss":
		return p.PssMiB
	default:
		return p.CPUMilli
	}
}
