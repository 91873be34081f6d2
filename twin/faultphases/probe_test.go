package faultphases

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/twin"
)

func TestBusiestHostAndPodChanges(t *testing.T) {
	st := &twin.Status{
		Hosts: []twin.HostState{
			{Name: "h1", State: string(hardware.HostUp), VMs: []string{"cp", "w1"}},
			{Name: "h2", State: string(hardware.HostUp), VMs: []string{"w2", "w3"}},
			{Name: "h3", State: string(hardware.HostMaintenance), VMs: nil},
			{Name: "h4", State: string(hardware.HostIsDown), VMs: []string{"w4", "w5", "w6"}},
		},
		VMs: []twin.VMState{
			{Name: "cp", Role: string(hardware.RoleControlPlane), Cluster: "dev"},
			{Name: "w1", Role: string(hardware.RoleWorker), Cluster: "dev"},
			{Name: "w2", Role: string(hardware.RoleWorker), Cluster: "dev"},
			{Name: "w3", Role: string(hardware.RoleWorker), Cluster: "prod"},
			{Name: "w4", Role: string(hardware.RoleWorker), Cluster: "prod"},
		},
	}
	host, ws := BusiestHost(st)
	if host != "h2" || cmp.Diff([]string{"dev/w2", "prod/w3"}, WorkerNames(ws)) != "" {
		t.Errorf("busiest = %s %v; want h2 (h4 is down)", host, WorkerNames(ws))
	}
	if h, _ := BusiestHost(&twin.Status{}); h != "" {
		t.Errorf("busiest of nothing = %q", h)
	}
	before := map[string]string{"dev/apps/a": "1", "dev/apps/b": "2", "prod/apps/c": "3"}
	after := map[string]string{"dev/apps/a": "1", "dev/apps/b": "9", "prod/apps/d": "4"}
	want := []string{"dev/apps/b replaced", "prod/apps/c gone", "prod/apps/d new"}
	if diff := cmp.Diff(want, PodChanges(before, after)); diff != "" {
		t.Errorf("pod changes (-want +got):\n%s", diff)
	}
	if len(PodChanges(before, before)) != 0 {
		t.Error("no change reported as a change")
	}
}

func TestStatusChecksNameWhatIsWrong(t *testing.T) {
	st := &twin.Status{
		Hosts: []twin.HostState{
			{Name: "h1", State: string(hardware.HostUp), VMs: []string{"w1"}},
			{Name: "h2", State: string(hardware.HostMaintenance)},
			{Name: "h3", State: string(hardware.HostMaintenance), VMs: []string{"w3"}},
		},
		GitOps: []twin.GitOpsStatus{
			{Cluster: "dev", Name: "apps", ComplianceState: "Compliant"},
			{Cluster: "prod", Name: "apps", ComplianceState: "Pending", Message: "health check"},
		},
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"up host is up", HostIs(st, "h1", hardware.HostUp), ""},
		{"drained host is not up", HostIs(st, "h2", hardware.HostUp), "host h2 is Maintenance, not Up"},
		{"unknown host", HostIs(st, "h9", hardware.HostUp), "host h9 is not in the twin's status"},
		{"empty maintenance host is drained", Drained(st, "h2"), ""},
		{"host with a VM is not drained", Drained(st, "h3"), "host h3 is Maintenance with VMs [w3]"},
		{"up host is not drained", Drained(st, "h1"), "host h1 is Up with VMs [w1]"},
		{"one configuration pending", Compliant(st), "prod/apps is Pending: health check"},
		{"no configuration yet", Compliant(&twin.Status{}), "no GitOps configuration reported yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.want == "" && tc.err != nil:
				t.Errorf("err = %v, want none", tc.err)
			case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)):
				t.Errorf("err = %v, want one saying %q", tc.err, tc.want)
			}
		})
	}
	st.GitOps[1].ComplianceState = "Compliant"
	if err := Compliant(st); err != nil {
		t.Errorf("every configuration Compliant: %v", err)
	}
}

func TestRecordsSinceKeepsTheRecordsAtOrAfterT(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &twin.Status{Events: []twin.BridgeRecord{
		{At: t0.Add(-time.Second), Event: hardware.Event{VM: "old"}},
		{At: t0, Event: hardware.Event{VM: "at"}},
		{At: t0.Add(time.Second), Event: hardware.Event{VM: "after"}},
	}}
	var got []string
	for _, r := range RecordsSince(st, t0) {
		got = append(got, r.Event.VM)
	}
	if diff := cmp.Diff([]string{"at", "after"}, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestPollStopsOnSuccessOnErrPhaseAndAtTheBound(t *testing.T) {
	ctx := context.Background()
	wait := Poll(time.Millisecond, "bounds/v0")
	calls := 0
	if err := wait(ctx, "third time", time.Minute, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("succeeding check: err %v after %d calls, want none after 3", err, calls)
	}

	calls = 0
	stranded := errors.New("VM w1 stranded")
	err := wait(ctx, "never", time.Minute, func(context.Context) error {
		calls++
		return errors.Join(ErrPhase, stranded)
	})
	if !errors.Is(err, stranded) || calls != 1 {
		t.Errorf("ErrPhase check: err %v after %d calls, want the check's error after 1", err, calls)
	}

	err = wait(ctx, "nodes NotReady", time.Millisecond, func(context.Context) error { return errors.New("nodes not NotReady: dev/w1") })
	if !errors.Is(err, ErrPhase) || !strings.Contains(err.Error(), "nodes NotReady: not within 1ms (bounds/v0): nodes not NotReady: dev/w1") {
		t.Errorf("bound passed: err %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = wait(cancelled, "anything", time.Minute, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrPhase) {
		t.Errorf("cancelled: err %v, want context.Canceled and not a phase failure", err)
	}
}
