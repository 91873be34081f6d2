package hostops

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// The bridge's decisions, fed with the real hardware simulation's events for a host crash, a failover
// restart, a stranded VM and a live migration.
func TestStepsForRealSimulationEvents(t *testing.T) {
	s, err := spec.LoadSpec("../spec/testdata/specs/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	sim, err := hardware.NewSim(s.Inventory, s.Plan, hardware.WithClock(clk), hardware.WithFailoverDelay(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	host := ""
	for _, vm := range sim.VMs() {
		if vm.Role == hardware.RoleWorker {
			host = vm.Host
			break
		}
	}
	var log []string
	record := func(evs []hardware.Event) {
		for _, ev := range evs {
			var acts []string
			for _, st := range stepsFor(ev) {
				a := string(st.Action)
				if st.Host != "" {
					a += "=" + st.Host
				}
				acts = append(acts, a)
			}
			if len(acts) > 0 {
				log = append(log, fmt.Sprintf("%s %s: %s", ev.Type, ev.VM, strings.Join(acts, ",")))
			}
		}
	}
	evs, err := sim.FailHost(host)
	if err != nil {
		t.Fatal(err)
	}
	record(evs)
	downs := len(log)
	if downs == 0 {
		t.Fatalf("crashing %s cut off no node; events %v", host, evs)
	}
	for _, l := range log {
		if !strings.HasPrefix(l, "VMDown ") || !strings.HasSuffix(l, ": cut-off") {
			t.Errorf("crash step %q, want VMDown -> cut-off", l)
		}
	}
	clk.Step(30 * time.Second)
	record(sim.Advance())
	restarts := log[downs:]
	if len(restarts) != downs {
		t.Fatalf("%d nodes cut off, %d restarted: %v", downs, len(restarts), restarts)
	}
	for _, l := range restarts {
		if !strings.HasPrefix(l, "VMRestarted ") || !strings.Contains(l, "set-host=") || strings.Contains(l, "set-host="+host) || !strings.HasSuffix(l, ",restore") {
			t.Errorf("restart step %q, want set-host to a surviving host then restore", l)
		}
	}
	// Only workers are nodes.
	if steps := stepsFor(hardware.Event{Type: hardware.VMDown, VM: "dev-control-plane-0", Role: hardware.RoleControlPlane}); steps != nil {
		t.Errorf("a control-plane VM produced node steps %v", steps)
	}
	if steps := stepsFor(hardware.Event{Type: hardware.VMMigrated, VM: "dev-linux-1", Role: hardware.RoleWorker, From: "a", To: "b"}); len(steps) != 1 || steps[0].Host != "b" {
		t.Errorf("live migration steps %v, want set-host=b only", steps)
	}
	if steps := stepsFor(hardware.Event{Type: hardware.VMStranded, VM: "dev-linux-1", Role: hardware.RoleWorker}); steps != nil {
		t.Errorf("a stranded VM must stay cut off, got %v", steps)
	}
}
