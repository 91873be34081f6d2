package procgroup

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

// TestBackoffDoublesToMaxAndResets: the kubelet's CrashLoopBackOff shape.
func TestBackoffDoublesToMaxAndResets(t *testing.T) {
	b := Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}
	var got []time.Duration
	var last time.Duration
	for range 7 {
		last = b.next(last, time.Second)
		got = append(got, last)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := b.next(5*time.Minute, 10*time.Minute); d != 10*time.Second {
		t.Fatalf("after a 10 min run the delay is %v, want it reset to 10s", d)
	}
}

// TestSupervisedRestartsAfterSIGKILL: a process killed from outside comes back (a new pid, the same
// spec, its log appended), the restarts are counted, and after Stop nothing restarts.
func TestSupervisedRestartsAfterSIGKILL(t *testing.T) {
	g := gomega.NewWithT(t)
	log := filepath.Join(t.TempDir(), "svc.log")
	var calls atomic.Int32
	s, err := Supervise(Spec{Name: "svc", Path: "/bin/sh", Args: []string{"-c", "echo up; exec sleep 300"}, LogPath: log},
		Backoff{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond, Reset: time.Hour},
		func(r Restart) {
			if r.PID > 0 && r.Exited != "" {
				calls.Add(1)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	poll := func(f any) gomega.AsyncAssertion {
		return g.Eventually(f).WithTimeout(20 * time.Second).WithPolling(10 * time.Millisecond)
	}
	for round := 1; round <= 2; round++ {
		first := s.PID()
		poll(func() int { return strings.Count(readFile(log), "up") }).Should(gomega.Equal(round))
		if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		poll(s.Restarts).Should(gomega.Equal(round))
		g.Expect(s.PID()).NotTo(gomega.Equal(first))
		poll(func() int { return strings.Count(readFile(log), "up") }).Should(gomega.Equal(round+1), "the restart appends to the log")
		exited, _ := s.Exited()
		g.Expect(exited).To(gomega.BeFalse())
	}
	g.Expect(calls.Load()).To(gomega.Equal(int32(2)))

	s.Stop(time.Second)
	exited, _ := s.Exited()
	g.Expect(exited).To(gomega.BeTrue())
	// Stop returns only once supervision has ended, so nothing can restart the process after it.
	g.Expect(s.Restarts()).To(gomega.Equal(2))
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestRestartKillsWhatTheDeadProcessLeft: a child the crashed process left in its group (as Gitea leaves a
// git process) is killed before the restart, as a container restart starts from nothing; the restart
// event says how the process ended.
func TestRestartKillsWhatTheDeadProcessLeft(t *testing.T) {
	g := gomega.NewWithT(t)
	log := filepath.Join(t.TempDir(), "svc.log")
	events := make(chan Restart, 4)
	s, err := Supervise(Spec{Name: "svc", Path: "/bin/sh", Args: []string{"-c", "sleep 300 & echo up; wait"}, LogPath: log},
		Backoff{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond, Reset: time.Hour}, func(r Restart) { events <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	first := s.PID()
	g.Eventually(func() []int { return GroupMembers(first) }).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(gomega.HaveLen(2))
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil { // the shell only: its sleep stays
		t.Fatal(err)
	}
	var r Restart
	g.Eventually(events).WithTimeout(10 * time.Second).Should(gomega.Receive(&r))
	g.Expect(r).To(gomega.HaveField("Name", "svc"))
	g.Expect(r.Exited).To(gomega.ContainSubstring("killed"))
	g.Expect(r.PID).NotTo(gomega.Equal(first))
	g.Eventually(func() []int { return GroupMembers(first) }).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(gomega.BeEmpty())
}

// TestZeroBackoffIsTheKubelets: a zero Backoff is never a tight restart loop.
func TestZeroBackoffIsTheKubelets(t *testing.T) {
	if got := (Backoff{}).orDefault(); got != KubeletBackoff || got.Initial != 10*time.Second {
		t.Fatalf("zero Backoff = %+v, want KubeletBackoff %+v", got, KubeletBackoff)
	}
}
