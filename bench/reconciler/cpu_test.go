package reconciler

import (
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime/stime in /proc/<pid>/stat (USER_HZ; 100 on Linux for x86 and arm,
// proc(5) "measured in clock ticks (divide by sysconf(_SC_CLK_TCK))"; getconf CLK_TCK says 100 here).
const clockTicks = 100

// cpuSample is the CPU time used so far by this test process and by its child processes (etcd and
// kube-apiserver, started by envtest; git http-backend requests are short-lived and not counted).
type cpuSample struct {
	self, children float64 // seconds
	// gc is the part of self the Go garbage collector used (runtime/metrics
	// /cpu/classes/gc/total:cpu-seconds, an estimate the runtime keeps).
	gc float64
}

// sampleCPU reads /proc. It returns zeros where /proc is unreadable: the figures are diagnostics next to
// the rates, not the rates themselves.
func sampleCPU() cpuSample {
	self := os.Getpid()
	s := cpuSample{self: procCPU(strconv.Itoa(self)), gc: gcCPU()}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(self) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 1 && f[1] == strconv.Itoa(self) { // field 4 (ppid), counted after the comm field
			s.children += cpuOf(f)
		}
	}
	return s
}

func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{self: s.self - o.self, children: s.children - o.children, gc: s.gc - o.gc}
}

func gcCPU() float64 {
	m := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return m[0].Value.Float64()
}

func procCPU(pid string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	return cpuOf(statFields(string(b)))
}

// statFields returns the fields of /proc/<pid>/stat after the parenthesised command name (which may
// contain spaces): index 0 is the state (field 3 in proc(5)), 1 the ppid, 11 utime, 12 stime.
func statFields(stat string) []string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(stat[i+1:])
}

func cpuOf(f []string) float64 {
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}
