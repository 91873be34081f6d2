package cluster

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidSpec is wrapped by every spec validation and spec file error.
	ErrInvalidSpec = errors.New("invalid cluster spec")
	// ErrUnknownProfile is wrapped when a time profile name is not known.
	ErrUnknownProfile = errors.New("unknown time profile")
	// ErrNotFound is wrapped when a cluster or node does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is wrapped when a cluster of the same name already runs.
	ErrExists = errors.New("already exists")
	// ErrStart is wrapped when a cluster fails to start; what was started has been stopped again.
	ErrStart = errors.New("cluster start failed")
	// ErrUnsupported is wrapped when a provider cannot do what was asked on this machine.
	ErrUnsupported = errors.New("not supported")
)

// fieldError is one problem with one field of a spec.
type fieldError struct {
	Field   string // e.g. nodes[2].cpu
	Problem string // what is wrong and what to do
}

type specErrors []fieldError

// SpecError lists every problem found in one cluster spec (or spec file).
type SpecError struct {
	File    string // the spec file, if the spec came from one
	Cluster string // the cluster's name, if it has one
	Prefix  string // the spec's position in its file, e.g. clusters[1]
	errs    specErrors
}

// Fields returns the fields that have problems, in the order found.
func (e *SpecError) Fields() []string {
	out := make([]string, len(e.errs))
	for i, fe := range e.errs {
		out[i] = e.field(fe.Field)
	}
	return out
}

func (e *SpecError) field(f string) string {
	if e.Prefix == "" {
		return f
	}
	if f == "" {
		return e.Prefix
	}
	return e.Prefix + "." + f
}

func (e *SpecError) Error() string {
	var b strings.Builder
	where := "cluster spec"
	if e.Cluster != "" {
		where = fmt.Sprintf("cluster %q", e.Cluster)
	}
	if e.File != "" {
		where = e.File + ": " + where
	}
	fmt.Fprintf(&b, "%s: %d problem(s):", where, len(e.errs))
	for _, fe := range e.errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.field(fe.Field), fe.Problem)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// StartError says why a cluster failed to start and what was stopped again. errors.Is(err, ErrStart)
// is true, and so is errors.Is for the cause (e.g. context.Canceled).
type StartError struct {
	Cluster string
	// Stopped are the processes the start had launched; all have been stopped.
	Stopped []Process
	// Ports were reserved for the cluster and are released.
	Ports []int
	// Logs is where the processes' logs are, or why they are gone.
	Logs string
	Err  error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("create cluster %q: %v: %v (%d started process(es) stopped; logs: %s)", e.Cluster, ErrStart, e.Err, len(e.Stopped), e.Logs)
}

// Unwrap returns ErrStart and the cause.
func (e *StartError) Unwrap() []error { return []error{ErrStart, e.Err} }
