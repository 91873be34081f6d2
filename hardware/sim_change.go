package hardware

import (
	"fmt"
	"strings"
	"time"
)

// Changing a running estate. A real HCI cluster never moves running VMs because a workload cluster was
// created or deleted: new VMs go where there is room now, and a deleted cluster's VMs free their hosts.
// PlaceVMs and ReleaseVMs do the same to a Sim: every VM it runs keeps its host and its address. The
// verdict is the capacity planner's own (evaluate with the running VMs pinned), so a change the planner
// says breaks N-1 or the reserve is refused for the same reason, and `hybridtwin capacity` and the twin
// never disagree about why.

// PlaceOptions tune PlaceVMs.
type PlaceOptions struct {
	// AllowUnfit places the new VMs even when the estate with them fails a capacity check (N-1, the
	// reserve, storage, a limit, an address pool), as a twin started with spec.hardware.allowUnfit runs
	// such an estate. A new VM that finds no host at all is refused all the same.
	AllowUnfit bool
}

// Change is what PlaceVMs or ReleaseVMs did.
type Change struct {
	// Placed are the VMs the change added, where the model put them; Released the VMs it removed, where
	// they ran (Host empty for a VM that was stranded).
	Placed   []VMStatus `json:"placed,omitempty"`
	Released []VMStatus `json:"released,omitempty"`
	// Events are the VMPlaced and VMReleased events (and HostDrained for a draining host whose last VM
	// was released), in plan order.
	Events []Event `json:"events,omitempty"`
	// Result is the capacity planner's verdict on the estate after the change, as it is placed.
	Result *Result `json:"result"`
}

// UnfitError is PlaceVMs' refusal: the estate with the new VMs does not fit. Result is the planner's
// verdict on that placement (its error findings say which check, which resource and how much is short);
// nothing was changed. errors.Is holds for the findings' sentinels (ErrInsufficientCapacity,
// ErrLimitExceeded, ErrPoolExhausted).
type UnfitError struct {
	// VMs are the VMs that were to be placed; Unplaced those of them no host had room for.
	VMs      []string
	Unplaced []string
	Result   *Result
}

func (e *UnfitError) Error() string {
	return fmt.Sprintf("place %s: %s; nothing was changed", strings.Join(e.VMs, ", "), strings.Join(e.Reasons(), "; "))
}

// Reasons are the verdict's error findings, each "check: message".
func (e *UnfitError) Reasons() []string {
	var out []string
	for _, f := range e.Result.Findings {
		if f.Severity == SeverityError {
			out = append(out, f.Check+": "+f.Message)
		}
	}
	return out
}

// Unwrap returns the typed errors of the verdict's findings.
func (e *UnfitError) Unwrap() error { return e.Result.Err() }

// Plan is a copy of the plan the Sim's VMs are of.
func (s *Sim) Plan() *Plan { return s.plan.Clone() }

// PlaceVMs makes the estate run next, a plan that keeps every VM the Sim has and adds some (a workload
// cluster, node pool VMs): the new VMs are placed on the capacity left now, by the rule the initial plan
// uses (pool anti-affinity, then the most free memory), and get the first free addresses of the pool;
// every running VM keeps its host and address. The estate must be at rest with every host Up.
//
// The estate with the new VMs is evaluated as Evaluate does; when it does not fit (and opts do not
// allow it) the error is an *UnfitError with the verdict and nothing changes. A plan that drops or
// resizes a running VM is an error too (ReleaseVMs removes VMs).
func (s *Sim) PlaceVMs(next *Plan, opts PlaceOptions) (*Change, error) {
	if err := s.atRest("place VMs", true); err != nil {
		return nil, err
	}
	res, err := s.evaluateChange(next)
	if err != nil {
		return nil, err
	}
	have := s.byName()
	var dropped, placing, unplaced []string
	kept := map[string]bool{}
	for _, vm := range res.VMs {
		if _, ok := have[vm.Name]; ok {
			kept[vm.Name] = true
			continue
		}
		placing = append(placing, vm.Name)
		if vm.Host == "" {
			unplaced = append(unplaced, vm.Name)
		}
	}
	for _, vm := range s.vms {
		if !kept[vm.Name] {
			dropped = append(dropped, vm.Name)
		}
	}
	if len(dropped) > 0 {
		return nil, fmt.Errorf("place VMs: the plan drops running VM(s) %s; remove VMs with ReleaseVMs: %w", strings.Join(dropped, ", "), ErrInvalidSpec)
	}
	if err := s.sameVMs(res); err != nil {
		return nil, err
	}
	if len(unplaced) > 0 || (!res.Fits && !opts.AllowUnfit) {
		return nil, &UnfitError{VMs: placing, Unplaced: unplaced, Result: res}
	}
	return s.adopt(next, res), nil
}

// ReleaseVMs makes the estate run next, a plan that keeps some of the Sim's VMs and adds none (a
// workload cluster deleted, a node pool shrunk): the VMs next no longer has are removed, freeing their
// host capacity and addresses; every other VM keeps its host and address. Releasing never needs
// capacity, so it is not gated on the verdict (Change.Result has it). No live migration or failover
// restart may be pending; hosts may be down or in maintenance.
func (s *Sim) ReleaseVMs(next *Plan) (*Change, error) {
	res, _, err := s.prepareRelease(next)
	if err != nil {
		return nil, err
	}
	ch := s.adopt(next, res)
	for h := range s.hosts {
		s.maybeDrained(&ch.Events, h, s.clock.Now())
	}
	return ch, nil
}

// Releasing is what ReleaseVMs(next) would release, where the VMs run, changing nothing: a node pool
// scaled down drains these VMs' nodes before the VMs go.
func (s *Sim) Releasing(next *Plan) ([]VMStatus, error) {
	_, out, err := s.prepareRelease(next)
	return out, err
}

func (s *Sim) prepareRelease(next *Plan) (*Result, []VMStatus, error) {
	if err := s.atRest("release VMs", false); err != nil {
		return nil, nil, err
	}
	res, err := s.evaluateChange(next)
	if err != nil {
		return nil, nil, err
	}
	have := s.byName()
	var added []string
	kept := map[string]bool{}
	for _, vm := range res.VMs {
		kept[vm.Name] = true
		if _, ok := have[vm.Name]; !ok {
			added = append(added, vm.Name)
		}
	}
	if len(added) > 0 {
		return nil, nil, fmt.Errorf("release VMs: the plan adds VM(s) %s; place new VMs with PlaceVMs: %w", strings.Join(added, ", "), ErrInvalidSpec)
	}
	if err := s.sameVMs(res); err != nil {
		return nil, nil, err
	}
	var out []VMStatus
	for _, v := range s.VMs() {
		if !kept[v.Name] {
			out = append(out, v)
		}
	}
	return res, out, nil
}

// MoreWorkers is MoreWorkersFor on the running estate: how many more workers the pool takes with every
// running VM where it is, the new ones placed as PlaceVMs would. PlaceVMs with that many more accepts,
// one more is refused for LimitedBy.
func (s *Sim) MoreWorkers(cluster, pool string) (MoreWorkers, error) {
	if s.plan == nil {
		return MoreWorkers{}, fmt.Errorf("the estate runs no workload cluster, so no pool %s/%s: %w", cluster, pool, ErrInvalidSpec)
	}
	return moreWorkers(s.inv, s.plan, cluster, pool, s.pins())
}

// atRest refuses a change while a live migration or failover restart is pending (those refer to VMs by
// position) and, for placement, while a host is not Up (the planner's N-1 and reserve count every host).
func (s *Sim) atRest(verb string, everyHostUp bool) error {
	if at, ok := s.NextAt(); ok {
		return fmt.Errorf("%s: a live migration or failover restart is pending (due %s); advance the simulation past it first: %w",
			verb, at.UTC().Format(time.RFC3339), ErrNotAtRest)
	}
	if everyHostUp {
		for i, h := range s.hosts {
			if h.state != HostUp {
				return fmt.Errorf("%s: host %s is %s; new VMs are placed on an estate whose hosts are all Up (N-1 and the reserve count every host): repair it first: %w",
					verb, s.names[i], h.state, ErrHostState)
			}
		}
	}
	return nil
}

// evaluateChange evaluates next with the running VMs pinned where they are.
func (s *Sim) evaluateChange(next *Plan) (*Result, error) {
	if next == nil {
		return nil, fmt.Errorf("change the estate: no plan given: %w", ErrInvalidSpec)
	}
	// A plan built in Go may have been changed since it was last checked (a copy of a checked one is).
	if err := next.validateShape(); err != nil {
		return nil, err
	}
	return evaluate(s.inv, next, s.inv.Spec.Hosts, s.pins())
}

// pins are the running VMs' hosts and addresses.
func (s *Sim) pins() map[string]pin {
	out := make(map[string]pin, len(s.vms))
	for i, vm := range s.vms {
		p := pin{IP: vm.IP}
		if h := s.state[i].host; h >= 0 {
			p.Host = s.names[h]
		}
		out[vm.Name] = p
	}
	return out
}

func (s *Sim) byName() map[string]int {
	out := make(map[string]int, len(s.vms))
	for i, vm := range s.vms {
		out[vm.Name] = i
	}
	return out
}

// sameVMs refuses a plan in which a running VM has another size, role, cluster or pool.
func (s *Sim) sameVMs(res *Result) error {
	have := s.byName()
	for _, vm := range res.VMs {
		i, ok := have[vm.Name]
		if !ok {
			continue
		}
		old := s.vms[i]
		if old.Size != vm.Size || old.Role != vm.Role || old.Cluster != vm.Cluster || old.Pool != vm.Pool {
			return fmt.Errorf("change the estate: VM %s runs as a %s %s of cluster %q pool %q, the plan makes it a %s %s of cluster %q pool %q; a running VM is not resized: release it first: %w",
				vm.Name, old.Size, old.Role, old.Cluster, old.Pool, vm.Size, vm.Role, vm.Cluster, vm.Pool, ErrInvalidSpec)
		}
	}
	return nil
}

// adopt makes the Sim run the evaluated plan: its VMs in plan order, the running ones with their state
// and host, the new ones Running where the evaluation placed them; the hosts' books are rebuilt (the
// anti-affinity groups are renumbered with the plan). Only called at rest: no action refers to a VM.
func (s *Sim) adopt(next *Plan, res *Result) *Change {
	now := s.clock.Now()
	ch := &Change{Result: res}
	have := s.byName()
	groups := 0
	for _, vm := range res.VMs {
		groups = max(groups, vm.group+1)
	}
	kept := map[string]bool{}
	vms := append([]VM(nil), res.VMs...)
	state := make([]simVM, len(vms))
	var placed []int
	for i := range vms {
		vm := &vms[i]
		vm.pinned = false // pinned only for the evaluation
		if j, ok := have[vm.Name]; ok {
			kept[vm.Name] = true
			state[i] = s.state[j]
			continue
		}
		state[i] = simVM{host: s.index[vm.Host], target: -1, state: VMRunning}
		placed = append(placed, i)
	}
	// The released VMs' events first, while they are still the Sim's.
	for j, v := range s.VMs() {
		if !kept[v.Name] {
			ch.Released = append(ch.Released, v)
			s.emit(&ch.Events, now, VMReleased, j, v.Host, nil)
		}
	}
	s.vms, s.state, s.plan = vms, state, next.Clone()
	for h := range s.hosts {
		c := &s.hosts[h].cap
		c.vcpu, c.mem, c.groups = 0, 0, make([]int16, groups)
	}
	for i := range s.vms {
		if h := s.state[i].host; h >= 0 {
			s.hosts[h].cap.add(&s.vms[i])
		}
	}
	snap := s.VMs()
	for _, i := range placed {
		ch.Placed = append(ch.Placed, snap[i])
		s.emit(&ch.Events, now, VMPlaced, i, snap[i].Host, func(e *Event) { e.To = snap[i].Host })
	}
	return ch
}
