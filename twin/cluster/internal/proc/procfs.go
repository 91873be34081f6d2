package proc

import "github.com/hybridtwin/hybridtwin/twin/internal/procgroup"

// GroupMembers returns the pids of every live process in process group pgid (procgroup.GroupMembers).
//
// It forwards for twin/cluster/integration, which imports this package; new code uses procgroup.
func GroupMembers(pgid int) []int { return procgroup.GroupMembers(pgid) }

// Alive reports whether pid is a live process, not a zombie (procgroup.Alive).
//
// It forwards for twin/cluster/integration, which imports this package; new code uses procgroup.
func Alive(pid int) bool { return procgroup.Alive(pid) }
