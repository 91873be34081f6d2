package fluxcmp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime/stime in /proc/<pid>/stat (USER_HZ: proc(5) "measured in clock
// ticks (divide by sysconf(_SC_CLK_TCK))"; `getconf CLK_TCK` says 100 here, as bench/reconciler uses).
const clockTicks = 100

// procCPU is utime+stime of one process in seconds (proc(5) fields 14 and 15), or an error when /proc
// cannot be read: a figure that silently reads 0 would look like an idle engine.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces
	f := strings.Fields(s[i+1:])       // f[0] is field 3 (state)
	if i < 0 || len(f) < 13 {
		return 0, &os.PathError{Op: "parse", Path: "/proc/" + strconv.Itoa(pid) + "/stat", Err: os.ErrInvalid}
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, &os.PathError{Op: "parse", Path: "/proc/" + strconv.Itoa(pid) + "/stat", Err: os.ErrInvalid}
	}
	return (u + st) / clockTicks, nil
}

// procMem returns VmHWM (peak resident set) and VmRSS of one process in MiB from /proc/<pid>/status.
func procMem(pid int) (hwm, rss float64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, perr := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if perr != nil {
			return 0, 0, perr
		}
		if k == "VmHWM" {
			hwm = kb / 1024
		} else {
			rss = kb / 1024
		}
	}
	return hwm, rss, nil
}

// resetPeak resets a process's VmHWM to its current RSS (proc(5) /proc/<pid>/clear_refs: "5" resets the
// peak resident set size), so that a peak read later belongs to one scale run. It reports whether it
// worked; without it the peak is the process's lifetime peak, and the note says so.
func resetPeak(pid int) bool {
	return os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) == nil
}

// usage is an engine's CPU seconds and peak RSS over one measured window, summed over its processes.
type usage struct {
	pids  []int
	cpu0  float64
	reset bool
}

func startUsage(pids ...int) (*usage, error) {
	u := &usage{pids: pids, reset: true}
	for _, p := range pids {
		c, err := procCPU(p)
		if err != nil {
			return nil, err
		}
		u.cpu0 += c
		u.reset = resetPeak(p) && u.reset
	}
	return u, nil
}

// end returns the CPU seconds used since startUsage and the sum of the processes' peak RSS in MiB (an
// upper bound of their joint peak: the peaks need not coincide).
func (u *usage) end() (cpu, rssMiB float64, err error) {
	for _, p := range u.pids {
		c, err := procCPU(p)
		if err != nil {
			return 0, 0, err
		}
		cpu += c
		hwm, _, err := procMem(p)
		if err != nil {
			return 0, 0, err
		}
		rssMiB += hwm
	}
	return cpu - u.cpu0, rssMiB, nil
}
