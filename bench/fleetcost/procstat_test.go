package fleetcost

import (
	"os"
	"testing"
)

func TestCPUTicks(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    float64
		wantErr bool
	}{
		// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
		{"plain", "1234 (etcd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0", 325, false},
		{"name with spaces and parens", "77 (kube (api) server) R 1 77 77 0 -1 0 1 0 0 0 7 3 0 0 20 0 1 0", 10, false},
		{"truncated", "77 (x) S 1 2 3", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuTicks(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("cpuTicks = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKibField(t *testing.T) {
	text := "Name:\tetcd\nVmPeak:\t  900 kB\nVmRSS:\t  51200 kB\n"
	got, err := kibField(text, "VmRSS:")
	if err != nil || got != 51200 {
		t.Fatalf("kibField = %v, %v; want 51200", got, err)
	}
	if _, err := kibField(text, "Pss:"); err == nil {
		t.Fatal("a missing field gave no error")
	}
}

// TestReadUsageOfSelf reads this process: it is resident, its proportional share is at most its RSS,
// and it has used some CPU.
func TestReadUsageOfSelf(t *testing.T) {
	u, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSKiB <= 0 || u.PssKiB <= 0 || u.PssKiB > u.RSSKiB {
		t.Fatalf("usage = %+v: want 0 < Pss <= RSS", u)
	}
	if u.CPUTicks < 0 {
		t.Fatalf("cpu ticks = %v", u.CPUTicks)
	}
}

func TestMillicores(t *testing.T) {
	// 150 ticks (1.5 CPU-seconds) over 30 s is 50 thousandths of a core.
	if got := millicores(150, 30e9); got != 50 {
		t.Fatalf("millicores = %v, want 50", got)
	}
}

func TestSelectionRefusesUnknownNamesAndCounts(t *testing.T) {
	t.Setenv(envVariants, "full,nosuch")
	if _, _, err := selection(); err == nil {
		t.Fatal("an unknown variant was accepted")
	}
	t.Setenv(envVariants, "full")
	t.Setenv(envCounts, "1,9")
	if _, _, err := selection(); err == nil {
		t.Fatal("9 clusters at once were accepted")
	}
	t.Setenv(envCounts, "1, 2")
	vs, cs, err := selection()
	if err != nil || len(vs) != 1 || len(cs) != 2 || cs[1] != 2 {
		t.Fatalf("selection = %v, %v, %v", vs, cs, err)
	}
}
