package reconciler

import (
	"runtime/debug"
	"testing"
)

// TestSetProcessGC: the profile's setting is applied, and GOGC/GOMEMLIMIT in the environment are
// left in force.
func TestSetProcessGC(t *testing.T) {
	oldPct, oldLimit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(oldPct)
	t.Cleanup(func() { debug.SetGCPercent(oldPct); debug.SetMemoryLimit(oldLimit) })

	p := DefaultProfile()
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	got := SetProcessGC(p)
	if pct := debug.SetGCPercent(-1); pct != p.GCPercent || got.Percent != p.GCPercent {
		t.Errorf("GC percent %d (reported %d), want the profile's %d", pct, got.Percent, p.GCPercent)
	}
	debug.SetGCPercent(oldPct)
	if total := physicalMemory(); total > 0 {
		want := max(int64(float64(total)*p.GCMemoryFraction), p.GCMemoryFloor)
		if lim := debug.SetMemoryLimit(-1); lim != want || got.Limit != want {
			t.Errorf("memory limit %d (reported %d), want %d (%.2f of %d, at least %d)", lim, got.Limit, want, p.GCMemoryFraction, total, p.GCMemoryFloor)
		}
	}

	debug.SetGCPercent(77)
	debug.SetMemoryLimit(123 << 20)
	t.Setenv("GOGC", "77")
	t.Setenv("GOMEMLIMIT", "123MiB")
	got = SetProcessGC(p)
	if pct := debug.SetGCPercent(-1); pct != 77 || got.Percent != 77 {
		t.Errorf("with GOGC=77 set: GC percent %d (reported %d), want 77 left alone", pct, got.Percent)
	}
	debug.SetGCPercent(oldPct)
	if lim := debug.SetMemoryLimit(-1); lim != 123<<20 || got.Limit != 123<<20 {
		t.Errorf("with GOMEMLIMIT set: limit %d (reported %d), want 123 MiB left alone", lim, got.Limit)
	}
	if len(got.FromEnv) != 2 {
		t.Errorf("FromEnv %v, want GOGC and GOMEMLIMIT", got.FromEnv)
	}
}
