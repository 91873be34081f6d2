package twin

import "github.com/hybridtwin/hybridtwin/twin/hostops"

// Host operations live in package twin/hostops (one table of operations, the bridge, the node actions);
// these are the names callers of package twin use.
type (
	// HostOp names a host operation (hostops.Op).
	HostOp = hostops.Op
	// BridgeRecord is one hardware event and what it did to Kubernetes (hostops.Record).
	BridgeRecord = hostops.Record
)

// Host operations (hostops.Operations).
const (
	HostFail   = hostops.Fail
	HostDrain  = hostops.Drain
	HostRepair = hostops.Repair
)

// ErrHost is wrapped when a host operation is refused (hostops.ErrHost).
var ErrHost = hostops.ErrHost
