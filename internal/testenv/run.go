package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// running is set while Run runs the tests: the shared components are only started under Run, which
// stops them.
var running atomic.Bool

// Shared components of the test binary: started on first use, stopped by Run.
var (
	sharedAPI   sharedOne[*apiServer]
	sharedGitea sharedOne[*giteaServer]
)

// Run runs the package's tests and then stops the components they shared (SharedAPIServer, Gitea),
// returning the exit code for os.Exit; a component that fails to stop makes it 1. A Ctrl-C (SIGINT) or
// SIGTERM of the test binary stops them too and exits with status 130, so no API server, etcd or Gitea
// outlives the run (their processes also carry a parent-death signal, which covers only the test
// process being killed outright). Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
func Run(m *testing.M) int {
	running.Store(true)
	release := stopOnInterrupt(func() { _ = stopShared() })
	code := m.Run()
	release()
	running.Store(false)
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		code = max(code, 1)
	}
	return code
}

// stopShared stops every shared component that was started.
func stopShared() error {
	return errors.Join(
		sharedAPI.stop(func(s *apiServer) error { return s.stop() }),
		sharedGitea.stop(func(g *giteaServer) error { return g.stop(context.Background()) }),
	)
}

// sharedOne is one component shared by the tests of a binary.
type sharedOne[T any] struct {
	mu      sync.Mutex
	tried   bool
	v       T
	err     error
	stopped bool
}

// get starts the component on first use and returns it; a failed start fails t, and every later
// caller, with the same error.
func (s *sharedOne[T]) get(t testing.TB, what string, start func() (T, error)) T {
	t.Helper()
	if !running.Load() {
		t.Fatalf("testenv: the shared %s is stopped by testenv.Run: call os.Exit(testenv.Run(m)) from the package's TestMain", what)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		t.Fatalf("testenv: the shared %s was stopped (the run is ending)", what)
	}
	if !s.tried {
		s.tried = true
		s.v, s.err = start()
	}
	if s.err != nil {
		t.Fatalf("testenv: start the shared %s: %v", what, s.err)
	}
	return s.v
}

// stop stops the component if it was started; later calls do nothing.
func (s *sharedOne[T]) stop(stop func(T) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || !s.tried || s.err != nil {
		s.stopped = true
		return nil
	}
	s.stopped = true
	return stop(s.v)
}

// stopOnInterrupt makes a Ctrl-C (SIGINT) or SIGTERM of the test binary run stop and exit with status
// 130. Call release to stop listening; if a signal came, release waits for its stop and exit instead of
// letting Run tear down (and exit) concurrently.
func stopOnInterrupt(stop func()) (release func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, ok := <-sig; ok {
			stop()
			os.Exit(130)
		}
	}()
	return func() {
		signal.Stop(sig)
		close(sig)
		<-done // a stop under way finishes (and exits 130) before Run goes on
	}
}
