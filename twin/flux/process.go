package flux

import (
	"errors"
	"fmt"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// ErrExited is wrapped when a controller process ended while it was expected to run.
var ErrExited = errors.New("flux controller exited")

// process is one controller, run by twin/internal/procgroup (the same code that runs the embedded
// clusters' control planes): its own process group (a terminal's Ctrl-C reaches the twin, which stops it
// in order), SIGKILL when the twin dies (Pdeathsig), and restarted with back-off when it crashes, as the
// kubelet restarts a controller's container in flux-system (the same flags, ports and storage folder).
type process struct {
	*procgroup.Supervised
	name    string
	logPath string
}

// startProcess starts path with args and exactly env, output to logPath, supervised with b.
func startProcess(name, path string, args, env []string, dir, logPath string, b procgroup.Backoff, onRestart func(procgroup.Restart)) (*process, error) {
	if env == nil {
		env = []string{} // procgroup gives a nil environment PATH and HOME; the controllers get only env
	}
	p, err := procgroup.Supervise(procgroup.Spec{Name: name, Path: path, Args: args, Env: env, Dir: dir, LogPath: logPath}, b, onRestart)
	if err != nil {
		return nil, err
	}
	return &process{Supervised: p, name: name, logPath: logPath}, nil
}

func (p *process) pid() int { return p.PID() }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	done, _ := p.Exited()
	return done
}

// exitError describes an unexpected end with the last lines of the log; it wraps ErrExited (and
// procgroup.ErrExited).
func (p *process) exitError() error { return fmt.Errorf("%w: %w", ErrExited, p.ExitError()) }

// stop SIGTERMs the process group, waits up to grace, then SIGKILLs the group and waits for the end.
func (p *process) stop(grace time.Duration) { p.Stop(grace) }

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string { return procgroup.Tail(path, n) }
