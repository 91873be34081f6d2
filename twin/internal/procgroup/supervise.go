package procgroup

import (
	"sync"
	"syscall"
	"time"
)

// Backoff is a restart policy in the kubelet's shape: the first restart after Initial, each next one after
// twice the last delay, at most Max; a process that ran Reset without ending starts over at Initial. The
// zero Backoff means KubeletBackoff.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// KubeletBackoff is the kubelet's CrashLoopBackOff. Kubernetes docs, Pod Lifecycle, "Container restarts":
// "the kubelet restarts them with an exponential backoff delay (10s, 20s, 40s, ...), that is capped at 300
// seconds (5 minutes). Once a container has executed for 10 minutes without any problems, the kubelet
// resets the restart backoff timer" (k8s.io/kubernetes v1.33.13 pkg/kubelet/kubelet.go backOffPeriod 10 s,
// MaxContainerBackOff 300 s). The time profiles (twin/cluster timeprofiles/v2) carry these values; this is
// their one source.
var KubeletBackoff = Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// orDefault is b, or KubeletBackoff when b is zero.
func (b Backoff) orDefault() Backoff {
	if b == (Backoff{}) {
		return KubeletBackoff
	}
	return b
}

// Restart is one restart attempt of a supervised process, as its supervisor reports it.
type Restart struct {
	Name     string    // the process's Spec.Name
	At       time.Time // when the restart was attempted
	Restarts int       // restarts so far, this one included
	PID      int       // the new process's pid; 0 if it could not start
	Err      error     // why it could not start, or nil
	Exited   string    // how the previous process ended (its exit status)
}

// next returns the delay before the restart that follows a run of length ran, given the last delay.
func (b Backoff) next(last, ran time.Duration) time.Duration {
	if last == 0 || ran >= b.Reset {
		return b.Initial
	}
	return min(2*last, b.Max)
}

// Supervised is a process restarted with backoff whenever it ends without Stop or Kill, as a kubelet
// restarts a static pod's container (restartPolicy Always). Restarts reuse the Spec unchanged (same
// arguments, ports and data), and append to its log.
type Supervised struct {
	spec      Spec
	backoff   Backoff
	onRestart func(Restart)

	mu       sync.Mutex
	cur      *Process
	restarts int
	stopping bool
	stopped  chan struct{} // closed by Stop/Kill: ends the supervising goroutine's wait
	loopDone chan struct{}
}

// Supervise starts the process and keeps it running (b zero: KubeletBackoff). onRestart, if not nil, is
// called after every restart attempt.
func Supervise(s Spec, b Backoff, onRestart func(Restart)) (*Supervised, error) {
	p, err := Start(s)
	if err != nil {
		return nil, err
	}
	sv := &Supervised{spec: s, backoff: b.orDefault(), onRestart: onRestart, cur: p, stopped: make(chan struct{}), loopDone: make(chan struct{})}
	go sv.loop()
	return sv, nil
}

func (s *Supervised) loop() {
	defer close(s.loopDone)
	var delay time.Duration
	for {
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		started := time.Now()
		select {
		case <-s.stopped:
			return
		case <-p.Done():
		}
		delay = s.backoff.next(delay, time.Since(started))
		// A container's restart starts from nothing: whatever the dead process left in its group (a child
		// without a parent-death signal, e.g. a git process Gitea ran) is killed first. While a member
		// lives, its group id cannot be handed to a new process, so the signal cannot reach a stranger.
		if len(GroupMembers(p.PID())) > 0 {
			_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		}
		exited := "exited"
		if _, err := p.Exited(); err != nil {
			exited = err.Error()
		}
		for {
			t := time.NewTimer(delay)
			select {
			case <-s.stopped:
				t.Stop()
				return
			case <-t.C:
			}
			s.mu.Lock()
			if s.stopping {
				s.mu.Unlock()
				return
			}
			spec := s.spec
			spec.appendLog = true
			np, err := Start(spec)
			s.restarts++
			n := s.restarts
			if err == nil {
				s.cur = np
			}
			s.mu.Unlock()
			if s.onRestart != nil {
				r := Restart{Name: s.spec.Name, At: time.Now(), Restarts: n, Err: err, Exited: exited}
				if np != nil {
					r.PID = np.PID()
				}
				s.onRestart(r)
			}
			if err == nil {
				break
			}
			delay = s.backoff.next(delay, 0)
		}
	}
}

// Current is the process running now (or the last one, if it ended and waits for its restart).
func (s *Supervised) Current() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Restarts is how many times the process was restarted after it ended.
func (s *Supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Done is closed when the current process has ended (a restart makes a new one: call Done again).
func (s *Supervised) Done() <-chan struct{} { return s.Current().Done() }

// LogTail is the last n lines of the log, which every restart appends to.
func (s *Supervised) LogTail(n int) string { return Tail(s.spec.LogPath, n) }

// Name, PID, LogPath, Exited and ExitError are the current process's.
func (s *Supervised) Name() string          { return s.spec.Name }
func (s *Supervised) PID() int              { return s.Current().PID() }
func (s *Supervised) LogPath() string       { return s.spec.LogPath }
func (s *Supervised) Exited() (bool, error) { return s.Current().Exited() }
func (s *Supervised) ExitError() error      { return s.Current().ExitError() }

// Stop ends supervision, then stops the current process (Process.Stop).
func (s *Supervised) Stop(grace time.Duration) { s.end().Stop(grace) }

// Kill ends supervision, then kills the current process.
func (s *Supervised) Kill() { s.end().Kill() }

func (s *Supervised) end() *Process {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopped)
	}
	s.mu.Unlock()
	<-s.loopDone
	return s.Current()
}
