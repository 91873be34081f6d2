package hardware

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them, so callers can use errors.Is.
var (
	// ErrInvalidSpec: an inventory or plan is malformed or inconsistent (a SpecError carries the details).
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrMixedHosts: the inventory's servers are not all the same model.
	ErrMixedHosts = errors.New("servers are not all the same model")
	// ErrResiliency: a volume's resiliency is impossible with this many fault domains.
	ErrResiliency = errors.New("resiliency not possible with this node count")
	// ErrLimitExceeded: the plan goes beyond its limit profile.
	ErrLimitExceeded = errors.New("beyond the limit profile")
	// ErrPoolExhausted: an IP or VIP pool has too few addresses.
	ErrPoolExhausted = errors.New("address pool exhausted")
	// ErrInsufficientCapacity: VMs do not fit on the hosts, with the reserve, or after a host failure.
	ErrInsufficientCapacity = errors.New("insufficient capacity")
	// ErrHostState: a Sim operation does not apply to the host in its current state.
	ErrHostState = errors.New("host is not in a state for this operation")
	// ErrUnknownHost: a Sim operation names a host that is not in the inventory.
	ErrUnknownHost = errors.New("unknown host")
	// ErrNotAtRest: a Sim change was asked for while a live migration or failover restart is pending.
	ErrNotAtRest = errors.New("estate is not at rest")
	// ErrNoClock: NewSim was called without WithClock.
	ErrNoClock = errors.New("no clock")
)

// SpecError is a problem in an input file: which file, line and field, what is wrong and what to do.
type SpecError struct {
	File  string // file name as given, or "<input>"
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path, e.g. spec.hosts[2].cores; empty for document-level problems
	Msg   string // what is wrong and what to do about it
	Err   error  // the sentinel it wraps (ErrInvalidSpec, ErrMixedHosts, ErrResiliency)
}

func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *SpecError) Unwrap() error {
	if e.Err == nil {
		return ErrInvalidSpec
	}
	return e.Err
}

// LimitError is a plan going beyond a profile limit; Source names the document and figure.
type LimitError struct {
	Profile string
	Limit   string // what is limited, e.g. "nodes in a node pool"
	Subject string // which object, e.g. `workload cluster "prod" pool "linux"`
	Max     int
	Min     int
	Got     int
	Source  string
}

func (e *LimitError) Error() string {
	bound := fmt.Sprintf("at most %d", e.Max)
	if e.Got < e.Min {
		bound = fmt.Sprintf("at least %d", e.Min)
	}
	subj := ""
	if e.Subject != "" {
		subj = e.Subject + ": "
	}
	return fmt.Sprintf("%s%s is %d, profile %s allows %s (%s)", subj, e.Limit, e.Got, e.Profile, bound, e.Source)
}

func (e *LimitError) Unwrap() error { return ErrLimitExceeded }

// PoolExhaustedError says which pool ran out and how many more addresses it needs.
type PoolExhaustedError struct {
	Pool string // "network.ipPools" or "network.vipPool"
	Have int
	Need int
}

// More is how many addresses the pool lacks.
func (e *PoolExhaustedError) More() int { return e.Need - e.Have }

func (e *PoolExhaustedError) Error() string {
	return fmt.Sprintf("%s has %d addresses but the plan needs %d: add %d more", e.Pool, e.Have, e.Need, e.More())
}

func (e *PoolExhaustedError) Unwrap() error { return ErrPoolExhausted }

// CapacityError is a capacity shortfall: which check, and why.
type CapacityError struct {
	Check  string // "placement", "reserve", "n-1", "storage"
	Detail string
}

func (e *CapacityError) Error() string { return e.Detail }
func (e *CapacityError) Unwrap() error { return ErrInsufficientCapacity }
