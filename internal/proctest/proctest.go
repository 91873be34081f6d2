// Package proctest finds the processes a test left behind: the twin's children (etcd, API servers,
// Gitea, controllers) all name their state directory on their command line, so a test asks which
// processes name its directory once the twin is down.
//
// It serves tests only; it imports only the standard library and must not import the project's packages.
package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Under lists the live processes other than this one whose command line names dir, each as "PID
// command line". Zombies are left out: they hold no port or file.
func Under(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue
		}
		if s := strings.ReplaceAll(string(cmdline), "\x00", " "); strings.Contains(s, dir) {
			out = append(out, fmt.Sprintf("%d %s", pid, s))
		}
	}
	return out
}
