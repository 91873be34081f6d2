package hardware

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Severity of a finding.
type Severity string

const (
	SeverityError   Severity = "error"   // the plan does not fit
	SeverityWarning Severity = "warning" // it fits, but against a recommendation
)

// CheckPlacement is the check of VMs that find no host at all (Finding.Check, CapacityError.Check); the
// others (n-1, reserve, storage, limits, ip, vip) judge an estate whose VMs all run.
const CheckPlacement = "placement"

// Finding is one verdict line: what was checked, what is wrong and the document behind the rule.
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"` // limits, storage, placement, reserve, n-1, ip, vip
	Message  string   `json:"message"`
	Source   string   `json:"source,omitempty"`
	err      error
}

// ProfileRef names the profile a result was computed with.
type ProfileRef struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Title           string `json:"title"`
	ProfilesVersion string `json:"profilesVersion"`
}

// HostUsage is one host's capacity and load. vCPU capacity is logical processors times the overcommit
// ratio; memory capacity is the host memory less S2D cache metadata and the host reserve.
type HostUsage struct {
	Name              string   `json:"name"`
	Down              bool     `json:"down,omitempty"`
	Cores             int      `json:"cores"`
	LogicalProcessors int      `json:"logicalProcessors"`
	VCPUCapacity      float64  `json:"vcpuCapacity"`
	VCPUUsed          int      `json:"vcpuUsed"`
	VCPUReserve       float64  `json:"vcpuReserve"`
	MemoryGiB         int      `json:"memoryGiB"`
	MemoryCapacityGiB float64  `json:"memoryCapacityGiB"`
	MemoryUsedGiB     int      `json:"memoryUsedGiB"`
	MemoryReserveGiB  float64  `json:"memoryReserveGiB"`
	S2DMetadataGiB    float64  `json:"s2dMetadataGiB"`
	VMs               []string `json:"vms"`
}

// Headroom is one resource summed over the cluster: capacity, what the VMs use, the failover reserve and
// what is left (negative: short by that much).
type Headroom struct {
	Resource string  `json:"resource"`
	Unit     string  `json:"unit"`
	Capacity float64 `json:"capacity"`
	Used     float64 `json:"used"`
	Reserved float64 `json:"reserved"`
	Headroom float64 `json:"headroom"`
	OK       bool    `json:"ok"`
}

// HostFailure is what losing one host does: how many VMs move, which find no room.
type HostFailure struct {
	Host     string   `json:"host"`
	VMsMoved int      `json:"vmsMoved"`
	Stranded []string `json:"stranded,omitempty"`
	// MinFreeMemoryGiB is the least free memory left on any surviving host after the restarts.
	MinFreeMemoryGiB float64 `json:"minFreeMemoryGiB"`
}

// Failover is the N-1 analysis: every single host failure, the worst one and the hosts after it.
type Failover struct {
	Checked   bool          `json:"checked"` // false for a single host: nothing to fail over to
	Fits      bool          `json:"fits"`
	WorstHost string        `json:"worstHost,omitempty"`
	Failures  []HostFailure `json:"failures"`
	After     []HostUsage   `json:"after,omitempty"`
}

// LimitCheck is one profile limit applied to the plan.
type LimitCheck struct {
	Limit   string `json:"limit"`
	Subject string `json:"subject,omitempty"`
	Value   int    `json:"value"`
	Min     int    `json:"min,omitempty"`
	Max     int    `json:"max,omitempty"`
	OK      bool   `json:"ok"`
	Source  string `json:"source"`
}

// Result is the capacity verdict of a plan on an inventory.
type Result struct {
	Inventory string     `json:"inventory"`
	Plan      string     `json:"plan,omitempty"`
	Profile   ProfileRef `json:"profile"`
	Fits      bool       `json:"fits"`
	Findings  []Finding  `json:"findings"`

	ReserveFraction float64       `json:"reserveFraction"`
	VCPUOvercommit  float64       `json:"vcpuOvercommit"`
	Hosts           []HostUsage   `json:"hosts"`
	VMs             []VM          `json:"vms"`
	Headroom        []Headroom    `json:"headroom"` // cores (vCPU), memory, storage
	Failover        Failover      `json:"failover"`
	Storage         StorageResult `json:"storage"`
	Network         NetworkResult `json:"network"`
	Limits          []LimitCheck  `json:"limits"`
	WhatIf          *WhatIf       `json:"whatIf,omitempty"`
}

// Err joins the typed errors of the error findings (nil when the plan fits), for errors.Is/As.
func (r *Result) Err() error {
	var errs []error
	for _, f := range r.Findings {
		if f.Severity == SeverityError && f.err != nil {
			errs = append(errs, f.err)
		}
	}
	return errors.Join(errs...)
}

// Summary is one line: fits, or the first reasons it does not.
func (r *Result) Summary() string {
	if r.Fits {
		return fmt.Sprintf("plan fits on %d hosts with N-1 and a %.0f%% reserve", len(r.Hosts), r.ReserveFraction*100)
	}
	var msgs []string
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			msgs = append(msgs, f.Check+": "+f.Message)
		}
	}
	return "plan does not fit: " + strings.Join(msgs, "; ")
}

type evaluator struct {
	inv      *Inventory
	plan     *Plan
	prof     *Profile
	hosts    []Host
	res      *Result
	vms      []VM
	groups   int
	hostCaps []hostCap
	names    []string
	// pins are the VMs of a running estate that keep their host and address (Sim changes); nil plans
	// the whole estate afresh.
	pins map[string]pin
}

// round2 rounds to hundredths, so reported figures carry no floating-point noise.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

func profileOf(name string) *Profile {
	for i := range profiles {
		if profiles[i].Name == name {
			return &profiles[i]
		}
	}
	return nil
}

// Evaluate checks plan (nil: the management plane only) against inv and returns the verdict. An error means
// the input cannot be evaluated (invalid spec, unknown VM size, impossible resiliency); a plan that merely
// does not fit is a Result with Fits false and error findings. Documents built in Go are validated on first
// use; do not change them after that.
func Evaluate(inv *Inventory, plan *Plan) (*Result, error) {
	if inv == nil {
		return nil, &SpecError{File: "<inventory>", Msg: "no inventory given"}
	}
	return evaluate(inv, plan, inv.Spec.Hosts, nil)
}

func (e *evaluator) add(sev Severity, check, source string, err error) {
	e.res.Findings = append(e.res.Findings, Finding{Severity: sev, Check: check, Message: err.Error(), Source: source, err: err})
}

// evaluate checks plan on hosts. With pins, the pinned VMs keep their host and address and only the
// others are placed (by the same rule); every check then runs on that placement, so a change to a running
// estate is judged exactly as a fresh plan is.
func evaluate(inv *Inventory, plan *Plan, hosts []Host, pins map[string]pin) (*Result, error) {
	if !inv.valid {
		if err := inv.validate(); err != nil {
			return nil, err
		}
	}
	if plan != nil && !plan.shapeOK {
		if err := plan.validateShape(); err != nil {
			return nil, err
		}
	}
	prof := profileOf(inv.Spec.Profile)
	if prof == nil {
		return nil, inv.errAt("spec.profile", "%q is not a known limit profile; use one of %s", inv.Spec.Profile, strings.Join(ProfileNames(), ", "))
	}
	if plan != nil {
		if err := plan.validateFor(prof); err != nil {
			return nil, err
		}
	}
	e := &evaluator{inv: inv, plan: plan, prof: prof, hosts: hosts, pins: pins}
	e.res = &Result{
		Inventory: inv.Metadata.Name,
		Profile:   ProfileRef{Name: prof.Name, Version: prof.Version, Title: prof.Title, ProfilesVersion: ProfilesVersion},
	}
	if plan != nil {
		e.res.Plan = plan.Metadata.Name
	}
	vms, groups, err := buildVMs(prof, plan)
	if err != nil {
		return nil, err
	}
	e.vms, e.groups = vms, groups
	st, err, capErr := storage(inv, len(hosts))
	if err != nil {
		return nil, err
	}
	e.res.Storage = st
	if capErr != nil {
		e.add(SeverityError, "storage", SrcS2DPlanVolumes, capErr)
	}
	e.checkLimits()
	e.checkStorage()
	e.place()
	e.checkReserve()
	e.checkFailover()
	if err := e.allocateIPs(); err != nil {
		return nil, err
	}
	e.res.VMs = e.vms
	e.res.Fits = true
	for _, f := range e.res.Findings {
		if f.Severity == SeverityError {
			e.res.Fits = false
		}
	}
	return e.res, nil
}

func (e *evaluator) limit(name, subject string, value int, l Limit) {
	ok := (l.Max == 0 || value <= l.Max) && value >= l.Min
	e.res.Limits = append(e.res.Limits, LimitCheck{Limit: name, Subject: subject, Value: value, Min: l.Min, Max: l.Max, OK: ok, Source: l.Source})
	if !ok {
		e.add(SeverityError, "limits", l.Source, &LimitError{Profile: e.prof.Name, Limit: name, Subject: subject, Max: l.Max, Min: l.Min, Got: value, Source: l.Source})
	}
}

func (e *evaluator) checkLimits() {
	p := e.prof
	e.limit("physical servers", "", len(e.hosts), p.Hosts)
	var clusters []WorkloadCluster
	if e.plan != nil {
		clusters = e.plan.Spec.WorkloadClusters
	}
	e.limit("workload clusters", "", len(clusters), p.WorkloadClusters)
	if p.TotalVMs.Max > 0 {
		e.limit("AKS VMs in total", "", len(e.vms), p.TotalVMs)
	}
	for _, c := range clusters {
		subject := fmt.Sprintf("cluster %s", c.Name)
		nodes := 0
		for _, np := range c.NodePools {
			nodes += np.Count
			if p.NodesPerPool.Max > 0 || np.Count < p.NodesPerPool.Min {
				e.limit("nodes in a node pool", fmt.Sprintf("cluster %s pool %s", c.Name, np.Name), np.Count, p.NodesPerPool)
			}
		}
		if p.PoolsPerCluster.Max > 0 {
			e.limit("node pools in a cluster", subject, len(c.NodePools), p.PoolsPerCluster)
		}
		if p.NodesPerCluster.Max > 0 {
			e.limit("worker nodes in a cluster", subject, nodes, p.NodesPerCluster)
		}
	}
	for _, vm := range e.vms {
		if vm.Size == "Standard_K8S_v1" || vm.Size == "Standard_K8S2_v1" {
			e.add(SeverityWarning, "vm-size", p.VMSizesSource, fmt.Errorf("%s uses %s, which is supported but \"may result in unexpected failures due to out of memory issues\"", vm.Name, vm.Size))
			break
		}
	}
}

func (e *evaluator) checkStorage() {
	st := &e.res.Storage
	if e.plan != nil {
		st.DemandGB = float64(e.plan.Spec.Management.StorageGB)
		for _, c := range e.plan.Spec.WorkloadClusters {
			st.DemandGB += float64(c.StorageGB)
		}
	}
	st.HeadroomGB = st.UsableGB - st.DemandGB
	e.res.Headroom = append(e.res.Headroom[:0], Headroom{}, Headroom{}, Headroom{
		Resource: "storage", Unit: "GB", Capacity: st.UsableGB, Used: st.DemandGB, Headroom: st.HeadroomGB, OK: st.HeadroomGB >= 0,
	})
	if st.HeadroomGB < 0 {
		e.add(SeverityError, "storage", SrcS2DPlanVolumes, &CapacityError{Check: "storage", Detail: fmt.Sprintf("the plan needs %.0f GB on the volumes but they hold %.0f GB usable: %.0f GB short", st.DemandGB, st.UsableGB, -st.HeadroomGB)})
	}
	for _, v := range st.Volumes {
		if v.Resiliency == TwoWayMirror && len(e.hosts) > 2 {
			e.add(SeverityWarning, "storage", SrcS2DFaultTolerance, fmt.Errorf("volume %s is a two-way mirror on %d servers: \"If you have more than two servers, we recommend using three-way mirroring instead\"", v.Name, len(e.hosts)))
		}
	}
}

// capacities builds each host's placement capacity.
func (e *evaluator) capacities() {
	pl := e.inv.Spec.Planning
	over := e.prof.VCPUOvercommit
	if pl.VCPUOvercommit > 0 {
		over = pl.VCPUOvercommit
	}
	hostReserve := e.prof.HostReservedMemoryGiB
	if pl.HostReservedMemoryGiB > 0 {
		hostReserve = pl.HostReservedMemoryGiB
	}
	reserve := e.prof.ReserveFraction
	if pl.ReservePercent > 0 {
		reserve = pl.ReservePercent / 100
	}
	e.res.ReserveFraction, e.res.VCPUOvercommit = reserve, over
	meta := round2(float64(e.res.Storage.CacheGBPerHost) / 1000 * e.prof.S2D.CacheMetadataGiBPerTB)
	e.hostCaps = make([]hostCap, len(e.hosts))
	e.names = make([]string, len(e.hosts))
	groups := make([]int16, len(e.hosts)*e.groups)
	e.res.Hosts = make([]HostUsage, len(e.hosts))
	for i, h := range e.hosts {
		lp := h.LogicalProcessors()
		hc := hostCap{
			vcpuCap: float64(lp) * over,
			memCap:  round2(float64(h.MemoryGiB-hostReserve) - meta),
			up:      true,
			groups:  groups[i*e.groups : (i+1)*e.groups : (i+1)*e.groups],
		}
		e.hostCaps[i] = hc
		e.names[i] = h.Name
		e.res.Hosts[i] = HostUsage{
			Name: h.Name, Cores: h.Cores, LogicalProcessors: lp,
			VCPUCapacity: hc.vcpuCap, VCPUReserve: round2(hc.vcpuCap * reserve),
			MemoryGiB: h.MemoryGiB, MemoryCapacityGiB: hc.memCap, MemoryReserveGiB: round2(hc.memCap * reserve),
			S2DMetadataGiB: meta,
		}
	}
}

func (e *evaluator) place() {
	e.capacities()
	pinVMs(e.vms, e.pins, e.hostCaps, e.names)
	unplaced := placeAll(e.vms, e.hostCaps, e.names)
	counts := make([]int, len(e.hosts))
	for _, vm := range e.vms {
		if vm.hostIdx >= 0 {
			counts[vm.hostIdx]++
		}
	}
	for i := range e.res.Hosts {
		e.res.Hosts[i].VMs = make([]string, 0, counts[i])
	}
	for _, vm := range e.vms {
		if vm.hostIdx >= 0 {
			hu := &e.res.Hosts[vm.hostIdx]
			hu.VMs = append(hu.VMs, vm.Name)
		}
	}
	for i := range e.res.Hosts {
		e.res.Hosts[i].VCPUUsed = e.hostCaps[i].vcpu
		e.res.Hosts[i].MemoryUsedGiB = e.hostCaps[i].mem
	}
	if len(unplaced) > 0 {
		first := e.vms[unplaced[0]]
		e.add(SeverityError, CheckPlacement, SrcBaseline, &CapacityError{Check: CheckPlacement, Detail: fmt.Sprintf("%d VM(s) find no host with room, the first %s (%s, %d vCPU, %d GiB); memory is never overcommitted and vCPUs only up to %.2g per logical processor", len(unplaced), first.Name, first.Size, first.VCPU, first.MemoryGiB, e.res.VCPUOvercommit)})
	}
}

func (e *evaluator) checkReserve() {
	var vcpuCap, memCap float64
	for _, h := range e.hostCaps {
		vcpuCap += h.vcpuCap
		memCap += h.memCap
	}
	// Count unplaced VMs too: the reserve is about what the plan needs, not what happened to fit.
	vcpu, mem := 0, 0
	for _, vm := range e.vms {
		vcpu += vm.VCPU
		mem += vm.MemoryGiB
	}
	f := e.res.ReserveFraction
	mk := func(name, unit string, capacity, used float64) Headroom {
		h := Headroom{Resource: name, Unit: unit, Capacity: round2(capacity), Used: used, Reserved: round2(capacity * f)}
		h.Headroom = round2(capacity - capacity*f - used)
		h.OK = h.Headroom >= 0
		return h
	}
	e.res.Headroom[0] = mk("cores", "vCPU", vcpuCap, float64(vcpu))
	e.res.Headroom[1] = mk("memory", "GiB", memCap, float64(mem))
	for _, h := range e.res.Headroom[:2] {
		if !h.OK {
			e.add(SeverityError, "reserve", e.prof.ReserveSource, &CapacityError{Check: "reserve", Detail: fmt.Sprintf("the VMs use %.0f of %.0f %s %s; keeping %.0f%% (%.0f) in reserve leaves %.0f %s short", h.Used, h.Capacity, h.Unit, h.Resource, f*100, h.Reserved, -h.Headroom, h.Unit)})
		}
	}
}

// failHost re-places the VMs of host h on the others, as failover clustering restarts them, in after (a
// scratch buffer of len(hosts) with groups of len(hosts)*groups); it returns after, the VMs that found no
// room and, when moved is not nil, records each moved VM's new host index in it.
func (e *evaluator) failHost(h int, after []hostCap, groups []int16, moved map[int]int) ([]hostCap, []int) {
	for i, hc := range e.hostCaps {
		g := groups[i*e.groups : (i+1)*e.groups : (i+1)*e.groups]
		if i == h {
			clear(g)
			after[i] = hostCap{groups: g}
			continue
		}
		copy(g, hc.groups)
		after[i] = hc
		after[i].groups = g
	}
	var stranded []int
	for i := range e.vms {
		vm := &e.vms[i]
		if vm.hostIdx != h {
			continue
		}
		t := pickHost(after, vm)
		if t < 0 {
			stranded = append(stranded, i)
			continue
		}
		after[t].add(vm)
		if moved != nil {
			moved[i] = t
		}
	}
	return after, stranded
}

func (e *evaluator) checkFailover() {
	fo := &e.res.Failover
	if len(e.hosts) < 2 {
		fo.Checked = false
		e.add(SeverityError, "n-1", e.prof.ReserveSource, &CapacityError{Check: "n-1", Detail: "a single server has nothing to fail over to: losing it stops every VM; plan at least two servers"})
		return
	}
	fo.Checked, fo.Fits = true, true
	worst, worstStranded, worstFree := -1, -1, math.Inf(1)
	worstAfter := make([]hostCap, len(e.hostCaps))
	scratch := make([]hostCap, len(e.hostCaps))
	groups := make([]int16, len(e.hostCaps)*e.groups)
	for h := range e.hostCaps {
		after, stranded := e.failHost(h, scratch, groups, nil)
		hf := HostFailure{Host: e.names[h], VMsMoved: len(e.res.Hosts[h].VMs), MinFreeMemoryGiB: math.Inf(1)}
		for _, i := range stranded {
			hf.Stranded = append(hf.Stranded, e.vms[i].Name)
		}
		for i, a := range after {
			if i != h {
				hf.MinFreeMemoryGiB = math.Min(hf.MinFreeMemoryGiB, round2(a.memCap-float64(a.mem)))
			}
		}
		fo.Failures = append(fo.Failures, hf)
		if len(stranded) > worstStranded || (len(stranded) == worstStranded && hf.MinFreeMemoryGiB < worstFree) {
			worst, worstStranded, worstFree = h, len(stranded), hf.MinFreeMemoryGiB
			copy(worstAfter, after) // usage figures only; the groups are not read from it
		}
		if len(stranded) > 0 {
			fo.Fits = false
		}
	}
	fo.WorstHost = e.names[worst]
	moved := map[int]int{}
	e.failHost(worst, scratch, groups, moved)
	fo.After = make([]HostUsage, len(e.hosts))
	for i := range e.res.Hosts {
		hu := e.res.Hosts[i]
		hu.VMs = make([]string, 0, len(hu.VMs)+len(moved))
		hu.VCPUUsed, hu.MemoryUsedGiB = worstAfter[i].vcpu, worstAfter[i].mem
		hu.Down = i == worst
		fo.After[i] = hu
	}
	for i, vm := range e.vms {
		switch t, ok := moved[i]; {
		case ok:
			fo.After[t].VMs = append(fo.After[t].VMs, vm.Name)
		case vm.hostIdx >= 0 && vm.hostIdx != worst:
			fo.After[vm.hostIdx].VMs = append(fo.After[vm.hostIdx].VMs, vm.Name)
		}
	}
	if !fo.Fits {
		wf := fo.Failures[worst]
		var first *VM
		for i := range e.vms {
			if e.vms[i].Name == wf.Stranded[0] {
				first = &e.vms[i]
			}
		}
		freeCPU, freeMem := 0.0, 0.0
		for i, a := range worstAfter {
			if i != worst {
				freeCPU = math.Max(freeCPU, a.vcpuCap-float64(a.vcpu))
				freeMem = math.Max(freeMem, a.memCap-float64(a.mem))
			}
		}
		e.add(SeverityError, "n-1", e.prof.ReserveSource, &CapacityError{Check: "n-1", Detail: fmt.Sprintf("losing host %s leaves %d of its %d VMs with no room on the surviving hosts: %s needs %d vCPU and %d GiB, the most any survivor has free is %.0f vCPU and %.1f GiB (\"if one node goes offline ... the remaining nodes can have enough capacity\")", wf.Host, len(wf.Stranded), wf.VMsMoved, first.Name, first.VCPU, first.MemoryGiB, freeCPU, round2(freeMem))})
	}
}
