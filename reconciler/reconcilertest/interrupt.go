package reconcilertest

import (
	"os"
	"os/signal"
	"syscall"
)

// StopOnInterrupt makes a Ctrl-C (SIGINT) or SIGTERM of the test binary run stop, in order, and exit
// with status 130, so the API server, etcd and Git servers a TestMain started do not outlive it (their
// processes also carry a parent-death signal, which covers only the test process being killed
// outright). Call release, deferred in TestMain, to stop listening; if a signal came, release waits for
// its stop and exit instead of letting TestMain tear down (and exit) concurrently.
func StopOnInterrupt(stop ...func()) (release func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, ok := <-sig; ok {
			for _, f := range stop {
				f()
			}
			os.Exit(130)
		}
	}()
	return func() {
		signal.Stop(sig)
		close(sig)
		<-done // a stop under way finishes (and exits 130) before TestMain goes on
	}
}
