package failover

import (
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/faultphases"
)

// BoundsVersion names the benchmark's bounds: its Slack over faultphases.BoundsFor's derivation
// (faultphases.BoundsVersion). Change it whenever Slack changes. Results record it.
const BoundsVersion = "failover-bench/v1+" + faultphases.BoundsVersion

// Slack multiplies every expected duration into a bound. The bounds only stop a sample that hangs; they
// are never the measurement (RECIPES.md: the machine is a loaded 2-core runner, "Times were taken under
// load").
const Slack = 4

// Bounds are the phases' bounds (faultphases.Bounds) with the version of their derivation, which results
// record.
type Bounds struct {
	Version string
	faultphases.Bounds
}

// BoundsFor derives the bounds from a twin's time profile: faultphases.BoundsFor with Slack, as the scenario
// suite's failover specs do with theirs (scenarios.WaitsFor).
func BoundsFor(profile cluster.TimeProfileName) (Bounds, error) {
	b, err := faultphases.BoundsFor(profile, Slack)
	if err != nil {
		return Bounds{}, err
	}
	return Bounds{Version: BoundsVersion, Bounds: b}, nil
}
