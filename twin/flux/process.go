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
// in order) and SIGKILL when the twin dies (Pdeathsig).
type process struct {
	*procgroup.Process
	name    string
	logPath string
	done    <-chan struct{} // closed once the process has ended
}

// startProcess starts path with args and exactly env, output to logPath.
func startProcess(name, path string, args, env []string, dir, logPath string) (*process, error) {
	if env == nil {
		env = []string{} // procgroup gives a nil environment PATH and HOME; the controllers get only env
	}
	p, err := procgroup.Start(procgroup.Spec{Name: name, Path: path, Args: args, Env: env, Dir: dir, LogPath: logPath})
	if err != nil {
		return nil, err
	}
	return &process{Process: p, name: name, logPath: logPath, done: p.Done()}, nil
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
