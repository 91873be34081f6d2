package twin

import "github.com/hybridtwin/hybridtwin/twin/spec"

// The twin spec lives in package twin/spec (parsing, defaults, validation, cluster files); these are the
// names callers of package twin use most, so that `twin.LoadSpec` and `twin.Up` read together.
type (
	// Spec is a Twin document: everything one running twin is made of (spec.Spec).
	Spec = spec.Spec
	// GitOpsConfig is one fluxConfiguration of the spec (spec.GitOpsConfig).
	GitOpsConfig = spec.GitOpsConfig
	// ReconcilerName selects a cluster's GitOps engine (spec.ReconcilerName).
	ReconcilerName = spec.ReconcilerName
	// Problem is one finding in a spec or cluster file: file, line, field, message (spec.Problem).
	Problem = spec.Problem
	// ClusterFragment is a workload cluster to add to a running twin, read from its own file.
	ClusterFragment = spec.ClusterFragment
	// ClusterFileError is every problem of a cluster file; nothing was started.
	ClusterFileError = spec.ClusterFileError
	// SpecErrors is every problem of a twin spec (spec.SpecErrors).
	SpecErrors = spec.SpecErrors
	// OCISource is a configuration's OCI artifact source (spec.OCISource).
	OCISource = spec.OCISource
)

// Reconcilers a spec may name.
const (
	ReconcilerHybridtwin = spec.ReconcilerHybridtwin
	ReconcilerFlux       = spec.ReconcilerFlux
	// GitAuthSSH makes a configuration read its repository over SSH (spec.GitAuthSSH).
	GitAuthSSH = spec.GitAuthSSH
	// KindTwin is the kind of a twin spec document.
	KindTwin = spec.KindTwin
	// DefaultOCITag is an OCI source's tag when it names none.
	DefaultOCITag = spec.DefaultOCITag
)

var (
	// LoadSpec reads, defaults and validates a twin spec file (spec.LoadSpec).
	LoadSpec = spec.LoadSpec
	// ParseSpec is LoadSpec on bytes read already (spec.ParseSpec).
	ParseSpec = spec.ParseSpec
	// ParseClusterFragment reads a cluster file (spec.ParseClusterFragment).
	ParseClusterFragment = spec.ParseClusterFragment
	// ErrInvalidSpec is wrapped by every spec and cluster file refused.
	ErrInvalidSpec = spec.ErrInvalidSpec
	// ErrRefused is wrapped when a cluster operation is refused before anything changed.
	ErrRefused = spec.ErrRefused
)
