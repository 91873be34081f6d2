package flux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrExited is wrapped when a controller process ended while it was expected to run.
var ErrExited = errors.New("flux controller exited")

// process is one controller in its own process group.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}

	mu      sync.Mutex
	exitErr error
}

// startProcess starts path with args and env, output to logPath. The process gets its own process group
// (a terminal's Ctrl-C reaches the twin, which stops it in order) and SIGKILL when the twin dies
// (Pdeathsig; the Go runtime does not end the threads that start children).
func startProcess(name, path string, args, env []string, dir, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open its log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an unexpected end with the last lines of the log; it wraps ErrExited.
func (p *process) exitError() error {
	p.mu.Lock()
	status := "exited"
	if p.exitErr != nil {
		status = p.exitErr.Error()
	}
	p.mu.Unlock()
	return fmt.Errorf("%s (pid %d) %w: %s; last lines of %s:\n%s", p.name, p.pid(), ErrExited, status, p.logPath, tail(p.logPath, 20))
}

// stop SIGTERMs the process group, waits up to grace, then SIGKILLs the group and waits for the end.
// The group is signalled only while its leader is unreaped, so a recycled pid is never hit.
func (p *process) stop(grace time.Duration) {
	if p.signal(syscall.SIGTERM) {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
		}
	}
	p.signal(syscall.SIGKILL) // a no-op if it ended within the grace
	<-p.done
}

func (p *process) signal(sig syscall.Signal) bool {
	if p.exited() {
		return false
	}
	return syscall.Kill(-p.pid(), sig) == nil
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	defer f.Close()
	const maxBytes = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		_, _ = f.Seek(st.Size()-maxBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, nil)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
