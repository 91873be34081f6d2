package procgroup

import (
	"sync"
	"time"
)

// Backoff is a restart policy in the kubelet's shape: the first restart after Initial, each next one after
// twice the last delay, at most Max; a process that ran Reset without ending starts over at Initial.
type Backoff struct {
	Initial, Max, Reset time.Duration
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
	onRestart func(restarts int, p *Process, err error)

	mu       sync.Mutex
	cur      *Process
	restarts int
	stopping bool
	stopped  chan struct{} // closed by Stop/Kill: ends the supervising goroutine's wait
	loopDone chan struct{}
}

// Supervise starts the process and keeps it running. onRestart, if not nil, is called after every
// restart attempt with the restart count, the new process (nil if it could not start) and the start error.
func Supervise(s Spec, b Backoff, onRestart func(restarts int, p *Process, err error)) (*Supervised, error) {
	p, err := Start(s)
	if err != nil {
		return nil, err
	}
	sv := &Supervised{spec: s, backoff: b, onRestart: onRestart, cur: p, stopped: make(chan struct{}), loopDone: make(chan struct{})}
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
				s.onRestart(n, np, err)
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
