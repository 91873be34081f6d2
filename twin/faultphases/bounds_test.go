package faultphases

import (
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

func TestBoundsForDerivesFromTheTimeProfileWithTheCallersSlack(t *testing.T) {
	fast, err := BoundsFor(cluster.ProfileFast, 1)
	if err != nil {
		t.Fatal(err)
	}
	real, err := BoundsFor(cluster.ProfileReal, 1)
	if err != nil {
		t.Fatal(err)
	}
	// fast: 10 s grace + 2 x 1 s period; real: 50 s + 2 x 5 s (cluster.TimeProfile).
	if fast.NotReady != 12*time.Second || real.NotReady != 60*time.Second {
		t.Errorf("NotReady fast %s real %s, want 12s and 1m0s", fast.NotReady, real.NotReady)
	}
	// fast: 15 s run-profile failover + 10 s status update; real: the hardware model's 10 s + 10 s.
	if fast.NodesBack != 25*time.Second || real.NodesBack != 20*time.Second {
		t.Errorf("NodesBack fast %s real %s, want 25s and 20s", fast.NodesBack, real.NodesBack)
	}
	if fast.Drain != DrainVMs*fast.NodesBack || real.Healthy <= fast.Healthy || fast.Compliant <= 0 || fast.Poll <= 0 {
		t.Errorf("fast %+v real %+v: Drain must be DrainVMs x NodesBack, real Healthy above fast's, Compliant and Poll set", fast, real)
	}

	four, err := BoundsFor(cluster.ProfileFast, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := Bounds{Poll: fast.Poll, NotReady: 4 * fast.NotReady, NodesBack: 4 * fast.NodesBack, Healthy: 4 * fast.Healthy,
		Compliant: 4 * fast.Compliant, Drain: 4 * fast.Drain}
	if four != want {
		t.Errorf("slack 4 gives %+v, want every bound but Poll four times slack 1's: %+v", four, want)
	}

	if _, err := BoundsFor("sluggish", 4); err == nil || !strings.Contains(err.Error(), "sluggish") {
		t.Errorf("an unknown profile gives %v, want an error naming it", err)
	}
	if _, err := BoundsFor(cluster.ProfileFast, 0); err == nil || !strings.Contains(err.Error(), "slack 0") {
		t.Errorf("slack 0 gives %v, want an error naming it", err)
	}
}
