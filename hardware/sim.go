package hardware

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"time"

	"k8s.io/utils/clock"
)

// EventType names what happened to a host or a VM.
type EventType string

const (
	// HostDraining: planned maintenance started; the host's VMs will live-migrate away.
	HostDraining EventType = "HostDraining"
	// HostDrained: every VM left the host; it is in maintenance.
	HostDrained EventType = "HostDrained"
	// HostDown: the host crashed; its VMs went down with it.
	HostDown EventType = "HostDown"
	// HostRepaired: the host is back; its capacity is available again.
	HostRepaired EventType = "HostRepaired"
	// VMMigrationStarted: a live migration began (the VM keeps running on the source).
	VMMigrationStarted EventType = "VMMigrationStarted"
	// VMMigrated: a live migration finished after Duration, including a Blackout pause.
	VMMigrated EventType = "VMMigrated"
	// VMMigrationBlocked: no other host has room; the VM stays on the draining host.
	VMMigrationBlocked EventType = "VMMigrationBlocked"
	// VMDown: the VM stopped because its host crashed.
	VMDown EventType = "VMDown"
	// VMRestarted: failover clustering started the VM on another host.
	VMRestarted EventType = "VMRestarted"
	// VMStranded: the VM could not be restarted: no surviving host has room (Reason says what is short).
	VMStranded EventType = "VMStranded"
	// VMPlaced: PlaceVMs put a new VM on a host (a cluster created, a node pool grown).
	VMPlaced EventType = "VMPlaced"
	// VMReleased: ReleaseVMs removed a VM (its cluster deleted, its node pool shrunk); Host is where it ran.
	VMReleased EventType = "VMReleased"
)

// Event is one step of the simulation. Events come in the order they happen; at the same instant, in the
// order the model processes them (plan order of the VMs).
type Event struct {
	Seq     int       `json:"seq"`
	At      time.Time `json:"at"`
	Type    EventType `json:"type"`
	Host    string    `json:"host,omitempty"` // the host concerned: the VM's host after the event (the source while migrating)
	VM      string    `json:"vm,omitempty"`   // the VM, which is also the Kubernetes node name
	Role    Role      `json:"role,omitempty"`
	Cluster string    `json:"cluster,omitempty"`
	Pool    string    `json:"pool,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	// Duration of a live migration, from start to finish, Blackout included.
	Duration time.Duration `json:"duration,omitempty"`
	Blackout time.Duration `json:"blackout,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.At.UTC().Format("15:04:05.000"), e.Type)
	if e.VM != "" {
		s += " " + e.VM
	}
	if e.Host != "" {
		s += " host=" + e.Host
	}
	if e.From != "" || e.To != "" {
		s += fmt.Sprintf(" %s->%s", e.From, e.To)
	}
	if e.Duration > 0 {
		s += " in " + e.Duration.String()
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// HostState is a host's state in the simulation.
type HostState string

const (
	HostUp          HostState = "Up"
	HostInDraining  HostState = "Draining"
	HostMaintenance HostState = "Maintenance"
	HostIsDown      HostState = "Down"
)

// VMState is a VM's state in the simulation.
type VMState string

const (
	VMRunning   VMState = "Running"
	VMMigrating VMState = "Migrating"
	VMIsDown    VMState = "Down"
	VMIsStrand  VMState = "Stranded"
)

// VMStatus is a snapshot of one VM.
type VMStatus struct {
	VM
	State VMState `json:"state"`
	// Reason is, for a Stranded VM, why no host took it when the model last tried (what is short).
	Reason string `json:"reason,omitempty"`
}

// HostStatus is a snapshot of one host. Used figures include VMs migrating to the host (their target
// is reserved for the migration); capacities are the planner's (logical processors times the vCPU
// overcommit; memory less the host reserve and S2D metadata).
type HostStatus struct {
	Name              string    `json:"name"`
	State             HostState `json:"state"`
	VCPUUsed          int       `json:"vcpuUsed"`
	VCPUCapacity      float64   `json:"vcpuCapacity"`
	MemoryUsedGiB     int       `json:"memoryUsedGiB"`
	MemoryCapacityGiB float64   `json:"memoryCapacityGiB"`
	VMs               []string  `json:"vms"`
}

// SimOption configures a Sim.
type SimOption func(*Sim)

// WithClock gives the Sim its clock; it is required (the model never reads the wall clock). Tests pass a
// k8s.io/utils/clock/testing FakeClock and Step it; the twin passes its own clock.
func WithClock(c clock.PassiveClock) SimOption { return func(s *Sim) { s.clock = c } }

// WithMigrationBandwidth overrides the live migration bandwidth per host, in Gbit/s.
func WithMigrationBandwidth(gbps float64) SimOption { return func(s *Sim) { s.gbps = gbps } }

// WithFailoverDelay overrides the delay from a host crash to the restart of its VMs.
func WithFailoverDelay(d time.Duration) SimOption { return func(s *Sim) { s.failoverDelay = d } }

// WithMigrationBlackout overrides the live migration blackout.
func WithMigrationBlackout(d time.Duration) SimOption { return func(s *Sim) { s.blackout = d } }

// WithMaxParallelMigrations overrides how many live migrations one host runs at once.
func WithMaxParallelMigrations(n int) SimOption { return func(s *Sim) { s.lanes = n } }

type simHost struct {
	cap     hostCap
	state   HostState
	queue   []int // VMs waiting to migrate away (draining)
	running int   // migrations in flight from this host
}

type simVM struct {
	host   int // current host, -1 when down or stranded
	target int // migration target while migrating, else -1
	state  VMState
	reason string // why it is stranded
}

type actionKind int

const (
	actMigrationDone actionKind = iota
	actRestart
)

type action struct {
	at   time.Time
	seq  int
	kind actionKind
	vm   int   // actMigrationDone
	vms  []int // actRestart
	dur  time.Duration
}

type actionQueue []*action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(*action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// Sim is the HCI layer over time: hosts drained for maintenance (live migration), crashed (failover
// restarts) and repaired, with the AKS VMs of a plan on them. It is deterministic and single-threaded; it
// never reads the wall clock: operations happen at clock.Now(), and Advance processes what became due.
type Sim struct {
	clock         clock.PassiveClock
	inv           *Inventory
	plan          *Plan // the plan the VMs are of: NewSim's, then as PlaceVMs and ReleaseVMs change it
	hosts         []simHost
	names         []string
	index         map[string]int
	vms           []VM
	state         []simVM
	queue         actionQueue
	seq           int
	events        int
	gbps          float64
	lanes         int
	blackout      time.Duration
	failoverDelay time.Duration
}

// NewSim places the plan's VMs on the inventory's hosts (as Evaluate does) and returns the simulation.
// VMs that find no host start Stranded. It does not require the plan to fit. The Sim keeps inv and a copy
// of plan: do not change inv afterwards.
func NewSim(inv *Inventory, plan *Plan, opts ...SimOption) (*Sim, error) {
	res, err := Evaluate(inv, plan)
	if err != nil {
		return nil, err
	}
	return simOf(inv, plan, res, opts...)
}

// NewSimOf is NewSim for a plan the caller has evaluated already (res is Evaluate(inv, plan), as a twin
// spec's capacity verdict is), so the plan is not placed a second time. res is not changed.
func NewSimOf(inv *Inventory, plan *Plan, res *Result, opts ...SimOption) (*Sim, error) {
	if res == nil {
		return NewSim(inv, plan, opts...)
	}
	own := *res
	own.VMs = slices.Clone(res.VMs)
	own.Hosts = slices.Clone(res.Hosts)
	return simOf(inv, plan, &own, opts...)
}

func simOf(inv *Inventory, plan *Plan, res *Result, opts ...SimOption) (*Sim, error) {
	prof := profileOf(inv.Spec.Profile)
	pl := inv.Spec.Planning
	s := &Sim{
		gbps:          prof.Timing.MigrationBandwidthGbps,
		lanes:         prof.Timing.MaxParallelMigrations,
		blackout:      prof.Timing.MigrationBlackout,
		failoverDelay: prof.Timing.FailoverDelay,
		index:         map[string]int{},
		inv:           inv,
		plan:          plan.Clone(),
	}
	if inv.Spec.Network.LiveMigrationGbps > 0 {
		s.gbps = inv.Spec.Network.LiveMigrationGbps
	}
	if pl.MaxParallelMigrations > 0 {
		s.lanes = pl.MaxParallelMigrations
	}
	if pl.MigrationBlackout > 0 {
		s.blackout = time.Duration(pl.MigrationBlackout)
	}
	if pl.FailoverDelay > 0 {
		s.failoverDelay = time.Duration(pl.FailoverDelay)
	}
	for _, o := range opts {
		o(s)
	}
	if s.clock == nil {
		return nil, fmt.Errorf("hardware.NewSim: pass hardware.WithClock(clock): %w", ErrNoClock)
	}
	if s.gbps <= 0 || s.lanes <= 0 || s.blackout < 0 || s.failoverDelay < 0 {
		return nil, fmt.Errorf("hardware.NewSim: migration bandwidth and parallel migrations must be positive, delays not negative: %w", ErrInvalidSpec)
	}
	groups := 0
	for _, vm := range res.VMs {
		groups = max(groups, vm.group+1)
	}
	for i, hu := range res.Hosts {
		s.hosts = append(s.hosts, simHost{cap: hostCap{vcpuCap: hu.VCPUCapacity, memCap: hu.MemoryCapacityGiB, up: true, groups: make([]int16, groups)}, state: HostUp})
		s.names = append(s.names, hu.Name)
		s.index[hu.Name] = i
	}
	s.vms = res.VMs
	s.state = make([]simVM, len(s.vms))
	for i := range s.vms {
		vm := &s.vms[i]
		st := simVM{host: -1, target: -1, state: VMIsStrand}
		if vm.Host != "" {
			st.host, st.state = s.index[vm.Host], VMRunning
			s.hosts[st.host].cap.add(vm)
		}
		s.state[i] = st
	}
	for i := range s.state {
		if s.state[i].state == VMIsStrand {
			s.state[i].reason = s.shortfall(&s.vms[i])
		}
	}
	return s, nil
}

// Now is the simulation's current time (its clock's).
func (s *Sim) Now() time.Time { return s.clock.Now() }

// VMs is a snapshot of every VM, in plan order.
func (s *Sim) VMs() []VMStatus {
	out := make([]VMStatus, len(s.vms))
	for i, vm := range s.vms {
		st := s.state[i]
		vm.Host = ""
		if st.host >= 0 {
			vm.Host = s.names[st.host]
		}
		out[i] = VMStatus{VM: vm, State: st.state}
		if st.state == VMIsStrand {
			out[i].Reason = st.reason
		}
	}
	return out
}

// Hosts is a snapshot of every host.
func (s *Sim) Hosts() []HostStatus {
	out := make([]HostStatus, len(s.hosts))
	for i, h := range s.hosts {
		out[i] = HostStatus{Name: s.names[i], State: h.state, VCPUUsed: h.cap.vcpu, VCPUCapacity: h.cap.vcpuCap,
			MemoryUsedGiB: h.cap.mem, MemoryCapacityGiB: h.cap.memCap}
	}
	for i, st := range s.state {
		if st.host >= 0 {
			out[st.host].VMs = append(out[st.host].VMs, s.vms[i].Name)
		}
	}
	return out
}

// NextAt is when the next pending step (a migration finishing, a failover restart) is due.
func (s *Sim) NextAt() (time.Time, bool) {
	if len(s.queue) == 0 {
		return time.Time{}, false
	}
	return s.queue[0].at, true
}

func (s *Sim) host(name string) (int, error) {
	i, ok := s.index[name]
	if !ok {
		return 0, fmt.Errorf("host %q is not in the inventory: %w", name, ErrUnknownHost)
	}
	return i, nil
}

func (s *Sim) emit(out *[]Event, at time.Time, t EventType, vm int, host string, fill func(*Event)) {
	e := Event{Seq: s.events, At: at, Type: t, Host: host}
	s.events++
	if vm >= 0 {
		v := s.vms[vm]
		e.VM, e.Role, e.Cluster, e.Pool = v.Name, v.Role, v.Cluster, v.Pool
	}
	if fill != nil {
		fill(&e)
	}
	*out = append(*out, e)
}

func (s *Sim) schedule(a *action) {
	a.seq = s.seq
	s.seq++
	heap.Push(&s.queue, a)
}

// DrainHost starts planned maintenance: the host takes no new VMs and its VMs live-migrate to the other
// hosts, up to the parallel migration limit at once. Each migration takes the VM's memory over the
// migration bandwidth (shared by the parallel migrations) plus the blackout. A VM no other host has room for
// stays (VMMigrationBlocked) and the host stays Draining.
func (s *Sim) DrainHost(name string) ([]Event, error) {
	h, err := s.host(name)
	if err != nil {
		return nil, err
	}
	if s.hosts[h].state != HostUp {
		return nil, fmt.Errorf("drain host %s: it is %s, only an Up host can be drained: %w", name, s.hosts[h].state, ErrHostState)
	}
	now := s.clock.Now()
	var out []Event
	s.hosts[h].state = HostInDraining
	s.hosts[h].cap.up = false
	s.emit(&out, now, HostDraining, -1, name, nil)
	for i, st := range s.state {
		if st.host == h && st.state == VMRunning {
			s.hosts[h].queue = append(s.hosts[h].queue, i)
		}
	}
	s.startMigrations(&out, h, now)
	return out, nil
}

// migrationTime is the live migration duration of a VM: its memory over this migration's share of the
// bandwidth, plus the blackout.
func (s *Sim) migrationTime(vm *VM) time.Duration {
	gbit := float64(vm.MemoryGiB) * 8 * (1 << 30) / 1e9
	secs := gbit / (s.gbps / float64(s.lanes))
	return time.Duration(math.Round(secs*1e3))*time.Millisecond + s.blackout
}

func (s *Sim) startMigrations(out *[]Event, h int, at time.Time) {
	sh := &s.hosts[h]
	for sh.running < s.lanes && len(sh.queue) > 0 {
		i := sh.queue[0]
		sh.queue = sh.queue[1:]
		vm := &s.vms[i]
		t := s.pick(vm)
		if t < 0 {
			s.emit(out, at, VMMigrationBlocked, i, s.names[h], func(e *Event) {
				e.From, e.Reason = s.names[h], s.shortfall(vm)
			})
			continue
		}
		s.hosts[t].cap.add(vm) // reserve the target for the duration of the migration
		s.state[i].state, s.state[i].target = VMMigrating, t
		sh.running++
		d := s.migrationTime(vm)
		s.emit(out, at, VMMigrationStarted, i, s.names[h], func(e *Event) { e.From, e.To, e.Duration = s.names[h], s.names[t], d })
		s.schedule(&action{at: at.Add(d), kind: actMigrationDone, vm: i, dur: d})
	}
	s.maybeDrained(out, h, at)
}

func (s *Sim) maybeDrained(out *[]Event, h int, at time.Time) {
	sh := &s.hosts[h]
	if sh.state != HostInDraining || sh.running > 0 || len(sh.queue) > 0 {
		return
	}
	for _, st := range s.state {
		if st.host == h {
			return // blocked VMs remain: the drain is incomplete
		}
	}
	sh.state = HostMaintenance
	s.emit(out, at, HostDrained, -1, s.names[h], nil)
}

// pick chooses a host with room for vm among the Up hosts, by the placement rule.
func (s *Sim) pick(vm *VM) int {
	caps := make([]hostCap, len(s.hosts))
	for i := range s.hosts {
		caps[i] = s.hosts[i].cap
	}
	return pickHost(caps, vm)
}

// shortfall says why no host can take vm.
func (s *Sim) shortfall(vm *VM) string {
	bestMem, bestCPU, up := 0.0, 0.0, 0
	for _, h := range s.hosts {
		if !h.cap.up {
			continue
		}
		up++
		bestMem = math.Max(bestMem, h.cap.memCap-float64(h.cap.mem))
		bestCPU = math.Max(bestCPU, h.cap.vcpuCap-float64(h.cap.vcpu))
	}
	if up == 0 {
		return "no host is up"
	}
	return fmt.Sprintf("needs %d GiB and %d vCPU; the most any Up host has free is %.0f GiB and %.0f vCPU", vm.MemoryGiB, vm.VCPU, bestMem, bestCPU)
}

// FailHost crashes a host: its VMs go down at once (VMDown), and after the failover delay failover
// clustering restarts each on a surviving Up host with room (VMRestarted) or leaves it down (VMStranded).
// Migrations from the host are lost with it; migrations to it go back to their source's queue.
func (s *Sim) FailHost(name string) ([]Event, error) {
	h, err := s.host(name)
	if err != nil {
		return nil, err
	}
	if s.hosts[h].state == HostIsDown {
		return nil, fmt.Errorf("fail host %s: it is already down: %w", name, ErrHostState)
	}
	now := s.clock.Now()
	var out []Event
	sh := &s.hosts[h]
	sh.state, sh.cap.up, sh.queue, sh.running = HostIsDown, false, nil, 0
	s.emit(&out, now, HostDown, -1, name, nil)
	// Cancel pending migrations that touch the host.
	var keep actionQueue
	requeue := map[int][]int{}
	for _, a := range s.queue {
		if a.kind == actMigrationDone {
			st := &s.state[a.vm]
			if st.host == h || st.target == h {
				if st.target == h && st.host != h {
					sh.cap.remove(&s.vms[a.vm]) // the reservation made on the crashed target
					s.hosts[st.host].running--
					requeue[st.host] = append(requeue[st.host], a.vm)
				} else {
					s.hosts[st.target].cap.remove(&s.vms[a.vm])
				}
				st.target = -1
				st.state = VMRunning
				continue
			}
		}
		keep = append(keep, a)
	}
	s.queue = keep
	heap.Init(&s.queue)
	var down []int
	for i := range s.state {
		st := &s.state[i]
		if st.host != h {
			continue
		}
		sh.cap.remove(&s.vms[i])
		st.host, st.state = -1, VMIsDown
		down = append(down, i)
		s.emit(&out, now, VMDown, i, name, func(e *Event) { e.Reason = "host " + name + " crashed" })
	}
	if len(down) > 0 {
		s.schedule(&action{at: now.Add(s.failoverDelay), kind: actRestart, vms: down})
	}
	for src := 0; src < len(s.hosts); src++ {
		if vms, ok := requeue[src]; ok {
			s.hosts[src].queue = append(vms, s.hosts[src].queue...)
			s.startMigrations(&out, src, now)
		}
	}
	return out, nil
}

// RepairHost brings a crashed or drained host back: its capacity is available again and stranded VMs are
// restarted on it or elsewhere at once. VMs that moved away stay where they are (no failback).
func (s *Sim) RepairHost(name string) ([]Event, error) {
	h, err := s.host(name)
	if err != nil {
		return nil, err
	}
	sh := &s.hosts[h]
	if sh.state != HostIsDown && sh.state != HostMaintenance {
		return nil, fmt.Errorf("repair host %s: it is %s; only a Down or drained (Maintenance) host can be repaired: %w", name, sh.state, ErrHostState)
	}
	now := s.clock.Now()
	var out []Event
	sh.state, sh.cap.up = HostUp, true
	s.emit(&out, now, HostRepaired, -1, name, nil)
	var stranded []int
	for i, st := range s.state {
		if st.state == VMIsStrand {
			stranded = append(stranded, i)
		}
	}
	s.restart(&out, stranded, now)
	return out, nil
}

func (s *Sim) restart(out *[]Event, vms []int, at time.Time) {
	for _, i := range vms {
		st := &s.state[i]
		if st.state != VMIsDown && st.state != VMIsStrand {
			continue
		}
		vm := &s.vms[i]
		t := s.pick(vm)
		if t < 0 {
			st.state, st.reason = VMIsStrand, s.shortfall(vm)
			s.emit(out, at, VMStranded, i, "", func(e *Event) { e.Reason = st.reason })
			continue
		}
		s.hosts[t].cap.add(vm)
		st.host, st.state, st.reason = t, VMRunning, ""
		s.emit(out, at, VMRestarted, i, s.names[t], func(e *Event) { e.To = s.names[t] })
	}
}

// Advance processes every step due by the clock's current time, in time order, and returns the events.
func (s *Sim) Advance() []Event {
	now := s.clock.Now()
	var out []Event
	for len(s.queue) > 0 && !s.queue[0].at.After(now) {
		a := heap.Pop(&s.queue).(*action)
		switch a.kind {
		case actMigrationDone:
			i := a.vm
			st := &s.state[i]
			src, dst := st.host, st.target
			vm := &s.vms[i]
			s.hosts[src].cap.remove(vm)
			s.hosts[src].running--
			st.host, st.target, st.state = dst, -1, VMRunning
			s.emit(&out, a.at, VMMigrated, i, s.names[dst], func(e *Event) {
				e.From, e.To, e.Duration, e.Blackout = s.names[src], s.names[dst], a.dur, s.blackout
			})
			s.startMigrations(&out, src, a.at)
		case actRestart:
			s.restart(&out, a.vms, a.at)
		}
	}
	return out
}
