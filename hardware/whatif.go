package hardware

import (
	"fmt"
	"sort"
)

// WhatIf answers the planner's questions about a plan.
type WhatIf struct {
	// MinHosts is the smallest number of servers of the inventory's model on which the plan fits with N-1
	// and the reserve; 0 when no count the profile allows is enough.
	MinHosts     int    `json:"minHosts"`
	MinHostsNote string `json:"minHostsNote"`
	// MoreWorkers says, per node pool, how many more workers of its size would still fit.
	MoreWorkers []MoreWorkers `json:"moreWorkers"`
	// WorstFailure is the host whose loss hurts most (most VMs stranded, then least memory left).
	WorstFailure string `json:"worstFailure,omitempty"`
}

// MoreWorkers is the answer for one node pool (or for a new cluster when the plan has none).
type MoreWorkers struct {
	Cluster string `json:"cluster"`
	Pool    string `json:"pool"`
	VMSize  string `json:"vmSize"`
	Current int    `json:"current"`
	More    int    `json:"more"`
	// LimitedBy is the check that fails with one more worker.
	LimitedBy string `json:"limitedBy"`
}

// Analyze evaluates the plan and answers the what-if questions.
func Analyze(inv *Inventory, plan *Plan) (*Result, error) {
	res, err := Evaluate(inv, plan)
	if err != nil {
		return nil, err
	}
	wi := &WhatIf{WorstFailure: res.Failover.WorstHost}
	n, note, err := MinHosts(inv, plan)
	if err != nil {
		return nil, err
	}
	wi.MinHosts, wi.MinHostsNote = n, note
	if plan != nil && len(plan.Spec.WorkloadClusters) > 0 {
		for _, c := range plan.Spec.WorkloadClusters {
			for _, np := range c.NodePools {
				mw, err := MoreWorkersFor(inv, plan, c.Name, np.Name)
				if err != nil {
					return nil, err
				}
				wi.MoreWorkers = append(wi.MoreWorkers, mw)
			}
		}
	} else {
		mw, err := probeNewCluster(inv, plan)
		if err != nil {
			return nil, err
		}
		wi.MoreWorkers = append(wi.MoreWorkers, mw)
	}
	res.WhatIf = wi
	return res, nil
}

// hostsOf returns n servers of the inventory's model: the inventory's own first, then clones named
// <first host>-extra-<k>.
func hostsOf(inv *Inventory, n int) []Host {
	hs := make([]Host, 0, n)
	for i := 0; i < n && i < len(inv.Spec.Hosts); i++ {
		hs = append(hs, inv.Spec.Hosts[i])
	}
	for k := 1; len(hs) < n; k++ {
		h := inv.Spec.Hosts[0]
		h.Name = fmt.Sprintf("%s-extra-%d", inv.Spec.Hosts[0].Name, k)
		hs = append(hs, h)
	}
	return hs
}

// MinHosts is the smallest host count of the inventory's server model, within the profile's limits, on which
// the plan fits (N-1, reserve, storage, IP pools). It returns 0 and a note when none does.
func MinHosts(inv *Inventory, plan *Plan) (int, string, error) {
	prof := profileOf(inv.Spec.Profile)
	if prof == nil {
		return 0, "", inv.errAt("spec.profile", "unknown profile %q", inv.Spec.Profile)
	}
	lo, hi := max(prof.Hosts.Min, 1), prof.Hosts.Max
	var last *Result
	prev := ""
	for n := lo; n <= hi; n++ {
		res, err := evaluate(inv, plan, hostsOf(inv, n), nil)
		if err != nil {
			prev = err.Error() // e.g. a volume's resiliency needs more servers: not a fit at this count
			continue
		}
		last = res
		if res.Fits {
			note := fmt.Sprintf("%d servers of this model fit the plan with N-1 and a %.0f%% reserve (profile %s allows %d-%d)", n, res.ReserveFraction*100, prof.Name, lo, hi)
			if n > lo {
				note += fmt.Sprintf("; with %d: %s", n-1, prev)
			}
			return n, note, nil
		}
		prev = firstError(res)
	}
	why := "no host count evaluates"
	if last != nil {
		why = firstError(last)
	}
	return 0, fmt.Sprintf("no count of %d-%d servers (profile %s) fits; at %d: %s", lo, hi, prof.Name, hi, why), nil
}

func firstError(r *Result) string {
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			return f.Check + ": " + f.Message
		}
	}
	return ""
}

func withPoolCount(plan *Plan, cluster, pool string, count int) *Plan {
	p := plan.Clone()
	p.shapeOK = plan.shapeOK // only a count changes; evaluate checks the limits
	for i := range p.Spec.WorkloadClusters {
		c := &p.Spec.WorkloadClusters[i]
		if c.Name != cluster {
			continue
		}
		for j := range c.NodePools {
			if c.NodePools[j].Name == pool {
				c.NodePools[j].Count = count
			}
		}
	}
	return p
}

// MoreWorkersFor answers how many more workers the named pool could take with the plan still fitting.
func MoreWorkersFor(inv *Inventory, plan *Plan, cluster, pool string) (MoreWorkers, error) {
	return moreWorkers(inv, plan, cluster, pool, nil)
}

// moreWorkers is MoreWorkersFor on a fresh placement (pins nil) or on a running estate whose VMs keep
// their hosts (a Sim's pins).
func moreWorkers(inv *Inventory, plan *Plan, cluster, pool string, pins map[string]pin) (MoreWorkers, error) {
	prof := profileOf(inv.Spec.Profile)
	if prof == nil {
		return MoreWorkers{}, inv.errAt("spec.profile", "unknown profile %q", inv.Spec.Profile)
	}
	var np *NodePool
	for i := range plan.Spec.WorkloadClusters {
		c := &plan.Spec.WorkloadClusters[i]
		if c.Name != cluster {
			continue
		}
		for j := range c.NodePools {
			if c.NodePools[j].Name == pool {
				np = &c.NodePools[j]
			}
		}
	}
	if np == nil {
		return MoreWorkers{}, plan.errAt("spec.workloadClusters", "no cluster %q with a node pool %q", cluster, pool)
	}
	size := np.VMSize
	if size == "" {
		size = prof.LinuxWorkerSize
		if np.OSType == Windows {
			size = prof.WindowsWorker
		}
	}
	mw := MoreWorkers{Cluster: cluster, Pool: pool, VMSize: size, Current: np.Count}
	fits := func(n int) (*Result, error) {
		return evaluate(inv, withPoolCount(plan, cluster, pool, np.Count+n), inv.Spec.Hosts, pins)
	}
	more, why, err := largestFit(inv, prof, size, fits)
	if err != nil {
		return mw, err
	}
	mw.More, mw.LimitedBy = more, why
	return mw, nil
}

// probeNewCluster answers, for an estate with no workload clusters yet, how many default-size Linux workers
// a first cluster (one control plane node) could hold.
func probeNewCluster(inv *Inventory, plan *Plan) (MoreWorkers, error) {
	prof := profileOf(inv.Spec.Profile)
	base := Plan{APIVersion: APIVersion, Kind: KindClusterPlan, Metadata: ObjectMeta{Name: "probe"}}
	if plan != nil {
		base.Spec.Management = plan.Spec.Management
	}
	mw := MoreWorkers{Cluster: "(a new cluster)", Pool: "workers", VMSize: prof.LinuxWorkerSize}
	fits := func(n int) (*Result, error) {
		p := base
		if n == 0 {
			return Evaluate(inv, &p)
		}
		p.Spec.WorkloadClusters = []WorkloadCluster{{Name: "new", NodePools: []NodePool{{Name: "workers", Count: n}}}}
		return Evaluate(inv, &p)
	}
	more, why, err := largestFit(inv, prof, prof.LinuxWorkerSize, fits)
	mw.More, mw.LimitedBy = more, why
	return mw, err
}

// largestFit finds the largest n for which fits(n) holds, by doubling then bisection (fitting is monotone in
// the worker count: more VMs never free capacity, addresses or limits).
func largestFit(inv *Inventory, prof *Profile, size string, fits func(int) (*Result, error)) (int, string, error) {
	r0, err := fits(0)
	if err != nil {
		return 0, "", err
	}
	if !r0.Fits {
		return 0, "the plan does not fit as it is (" + firstError(r0) + ")", nil
	}
	// Upper bound: all host memory divided by the size's memory.
	s, _ := prof.Size(size)
	bound := 1
	for _, h := range inv.Spec.Hosts {
		bound += h.MemoryGiB / max(1, s.MemoryGiB)
	}
	lo, hi := 0, 1
	var failAt *Result
	for {
		if hi > bound {
			hi = bound + 1
			break
		}
		r, err := fits(hi)
		if err != nil {
			return 0, "", err
		}
		if !r.Fits {
			failAt = r
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		r, err := fits(mid)
		if err != nil {
			return 0, "", err
		}
		if r.Fits {
			lo = mid
		} else {
			hi, failAt = mid, r
		}
	}
	why := ""
	if failAt == nil || hi != lo+1 {
		r, err := fits(lo + 1)
		if err != nil {
			return 0, "", err
		}
		failAt = r
	}
	if failAt != nil {
		why = firstError(failAt)
	}
	return lo, why, nil
}

// WorstFailures ranks the single-host failures of a result, worst first.
func WorstFailures(r *Result) []HostFailure {
	out := append([]HostFailure(nil), r.Failover.Failures...)
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i].Stranded) != len(out[j].Stranded) {
			return len(out[i].Stranded) > len(out[j].Stranded)
		}
		return out[i].MinFreeMemoryGiB < out[j].MinFreeMemoryGiB
	})
	return out
}
