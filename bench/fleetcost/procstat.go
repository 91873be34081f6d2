package fleetcost

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (proc(5), "sysconf(_SC_CLK_TCK)"; the kernel's USER_HZ is fixed at 100 for
// user space).
const clockTicks = 100

// usage is what /proc says of one process at one moment.
type usage struct {
	RSSKiB   float64 // VmRSS, /proc/<pid>/status
	PssKiB   float64 // Pss, /proc/<pid>/smaps_rollup
	CPUTicks float64 // utime+stime, /proc/<pid>/stat, in clockTicks
}

// readUsage reads a process's memory and CPU time.
func readUsage(pid int) (usage, error) {
	base := "/proc/" + strconv.Itoa(pid)
	var u usage
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return u, err
	}
	if u.RSSKiB, err = kibField(string(status), "VmRSS:"); err != nil {
		return u, fmt.Errorf("%s/status: %w", base, err)
	}
	rollup, err := os.ReadFile(base + "/smaps_rollup")
	if err != nil {
		return u, err
	}
	if u.PssKiB, err = kibField(string(rollup), "Pss:"); err != nil {
		return u, fmt.Errorf("%s/smaps_rollup: %w", base, err)
	}
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return u, err
	}
	if u.CPUTicks, err = cpuTicks(string(stat)); err != nil {
		return u, fmt.Errorf("%s/stat: %w", base, err)
	}
	return u, nil
}

// kibField returns the number of the first line starting with key ("VmRSS:   1234 kB").
func kibField(text, key string) (float64, error) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("no %s line", key)
}

// cpuTicks is utime+stime of a /proc/<pid>/stat line: fields 14 and 15 (proc(5)), counted after the
// command name, which is in parentheses and may itself hold spaces and parentheses.
func cpuTicks(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	st, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return ut + st, nil
}

// loadAverage is the 1-minute load average (/proc/loadavg): on a machine shared with other work, CPU
// figures are read against it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	l, _ := strconv.ParseFloat(f[0], 64)
	return l
}

// memAvailableMiB is MemAvailable of /proc/meminfo.
func memAvailableMiB() (float64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	kib, err := kibField(string(b), "MemAvailable:")
	return kib / 1024, err
}
