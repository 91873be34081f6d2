package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/twin"
)

// The text status counts each component's restarts and lists every restart: when, the new pid, and how
// the crashed process ended.
func TestPrintStatusRestarts(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 40, 5, 0, time.UTC)
	st := &twin.Status{Name: "example",
		Components: []twin.ComponentStatus{{Name: "dev/kube-apiserver", PID: 4242, Ports: []int{6443}, Up: true, Restarts: 1}},
		Restarts: []twin.ProcessRestart{
			{At: at, Component: "dev/kube-apiserver", Restarts: 1, PID: 4242, Exited: "signal: killed"},
			{At: at.Add(time.Second), Component: "gitea", Restarts: 2, Exited: "exit status 1", Error: "start gitea web: no such file"},
		}}
	var b bytes.Buffer
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"dev/kube-apiserver  4242  6443   true  1",
		"RESTARTED", "dev/kube-apiserver  21:40:05  1         4242     signal: killed",
		"gitea               21:40:06  2         0        exit status 1; restart failed: start gitea web: no such file",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// The text status shows each host's used vCPU and memory against its capacity, why each stranded VM is
// stranded, and each configuration's Kustomizations.
func TestPrintStatus(t *testing.T) {
	st := &twin.Status{Name: "edge-n1",
		Hosts: []twin.HostState{
			{Name: "edge-hci-01", State: "Down", VMs: nil, VCPUCapacity: 32, MemoryCapacityGiB: 121.6},
			{Name: "edge-hci-02", State: "Up", VMs: []string{"edge-linux-1"}, VCPUUsed: 28, VCPUCapacity: 32, MemoryUsedGiB: 94, MemoryCapacityGiB: 121.6},
		},
		VMs: []twin.VMState{
			{Name: "edge-linux-1", Role: "worker", Cluster: "edge", State: "Running", Host: "edge-hci-02", NodeReady: "True"},
			{Name: "edge-linux-3", Role: "worker", Cluster: "edge", State: "Stranded", NodeReady: "Unknown",
				Reason: "needs 32 GiB and 8 vCPU; the most any Up host has free is 27 GiB and 4 vCPU"},
		},
		GitOps: []twin.GitOpsStatus{{Name: "store", Cluster: "edge", ComplianceState: "Compliant", SyncedCommit: "main@sha1:abc",
			Kustomizations: []twin.KustomizationStatus{{Name: "store-apps", ComplianceState: "Compliant", Ready: "True", Message: "Applied revision: main@sha1:abc"}}}},
	}
	var b bytes.Buffer
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"VCPU USED", "MEMORY USED",
		"edge-hci-02  Up     28/32      94/121.6 GiB",
		"edge-hci-01  Down   0/32       0/121.6 GiB",
		"STRANDED VM", "edge-linux-3  needs 32 GiB and 8 vCPU; the most any Up host has free is 27 GiB and 4 vCPU",
		"kustomization store-apps", "Applied revision: main@sha1:abc",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "RESTARTED") {
		t.Errorf("a twin with no restarts lists some:\n%s", out)
	}
	if strings.Contains(out, "edge-linux-1  needs") {
		t.Errorf("a running VM is listed as stranded:\n%s", out)
	}
}
