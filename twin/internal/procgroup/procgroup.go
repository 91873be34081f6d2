package procgroup

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

// Spec describes a process to start.
type Spec struct {
	Name    string   // what it is, for errors (e.g. "kube-apiserver")
	Path    string   // the binary
	Args    []string // its arguments
	Env     []string // its environment; nil means an empty one plus PATH and HOME
	Dir     string   // its working directory
	LogPath string   // where stdout and stderr go; created or truncated

	appendLog bool // a restart appends to the log instead
}

// Process is a started process in its own process group.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}

	mu      sync.Mutex
	exitErr error
}

// ErrExited is wrapped when a process ended while it was expected to run.
var ErrExited = errors.New("process exited")

// Start starts the process. It runs in a new process group (so a terminal's Ctrl-C reaches the parent,
// which stops it in order, not the child directly) and gets SIGKILL if the parent dies (Linux
// Pdeathsig; the Go runtime does not end the threads that started children, so the signal fires only
// when the parent process ends).
func Start(s Spec) (*Process, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if s.appendLog {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	logFile, err := os.OpenFile(s.LogPath, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", s.Name, err)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = s.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", s.Name, s.Path, err)
	}
	p := &Process{name: s.Name, logPath: s.LogPath, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	_ = p.logFile.Close()
	p.mu.Lock()
	p.exitErr = err
	p.mu.Unlock()
	close(p.done)
}

// Name is the process's name from its Spec.
func (p *Process) Name() string { return p.name }

// PID is the process id, which is also its process group id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file its output goes to.
func (p *Process) LogPath() string { return p.logPath }

// Done is closed once the process has ended and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.exitErr
	default:
		return false, nil
	}
}

// ExitError describes an unexpected end: the exit status and the last lines of the log. It wraps
// ErrExited.
func (p *Process) ExitError() error {
	_, err := p.Exited()
	status := "exited"
	if err != nil {
		status = err.Error()
	}
	return fmt.Errorf("%s (pid %d) %w: %s; last lines of %s:\n%s", p.name, p.PID(), ErrExited, status, p.logPath, p.LogTail(20))
}

// Stop signals the process group with SIGTERM, waits up to grace, then SIGKILLs the group and waits for
// the end. The group is only signalled while its leader is unreaped, so a recycled pid is never hit.
func (p *Process) Stop(grace time.Duration) {
	if p.signal(syscall.SIGTERM) {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Kill SIGKILLs the process group at once and waits for the end.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// signal sends sig to the process group unless the process has ended; it reports whether it sent it.
func (p *Process) signal(sig syscall.Signal) bool {
	select {
	case <-p.done:
		return false
	default:
	}
	// The leader cannot be reaped between the check and the kill: only wait() reaps it, and a zombie
	// leader still owns its pid and group id.
	return syscall.Kill(-p.PID(), sig) == nil
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	return Tail(p.logPath, n)
}

// Tail returns the last n lines of a file, indented, or a note that it cannot be read.
func Tail(path string, n int) string {
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
	// Seeking may land inside a multi-byte character, and a process may write anything: the tail goes
	// into error messages, so it is kept valid UTF-8.
	b = bytes.TrimRight(bytes.ToValidUTF8(b, nil), "\n")
	if len(b) == 0 {
		return "    (log is empty)"
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
