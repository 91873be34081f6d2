package reconciler

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// ProcessGC is the garbage-collector setting a process hosting reconcilers runs with (SetProcessGC).
type ProcessGC struct {
	// Percent is the GC target (GOGC); Limit the soft memory limit in bytes (GOMEMLIMIT).
	Percent int
	Limit   int64
	// FromEnv lists the settings the environment fixed (GOGC, GOMEMLIMIT) and SetProcessGC left alone.
	FromEnv []string
}

// SetProcessGC applies the profile's garbage-collector setting to this process -- the twin's
// reconcilers spend most of their CPU allocating in kustomize builds, and at Go's default target (100)
// a quarter of it goes to the collector (see Profile.GCPercent). It is a process-wide setting, so only
// a program's main (or a test binary's TestMain) should call it; GOGC and GOMEMLIMIT in the environment
// win, as the Go runtime documents for them. It returns what is in force afterwards.
func SetProcessGC(p Profile) ProcessGC {
	var out ProcessGC
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		out.FromEnv = append(out.FromEnv, "GOGC")
		out.Percent = debug.SetGCPercent(-1)
		debug.SetGCPercent(out.Percent)
	} else if p.GCPercent > 0 {
		debug.SetGCPercent(p.GCPercent)
		out.Percent = p.GCPercent
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		out.FromEnv = append(out.FromEnv, "GOMEMLIMIT")
		out.Limit = debug.SetMemoryLimit(-1)
	} else if p.GCMemoryFraction > 0 {
		if total := physicalMemory(); total > 0 {
			limit := int64(float64(total) * p.GCMemoryFraction)
			limit = max(limit, p.GCMemoryFloor)
			debug.SetMemoryLimit(limit)
			out.Limit = limit
		}
	}
	return out
}

// physicalMemory is MemTotal from /proc/meminfo in bytes, 0 when unknown (not Linux).
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
