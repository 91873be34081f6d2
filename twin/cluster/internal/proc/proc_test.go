package proc

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

func TestStopKillsTheWholeProcessGroup(t *testing.T) {
	g := gomega.NewWithT(t)
	dir := t.TempDir()
	// A shell that starts a grandchild and waits: stopping the shell alone would leave the sleep behind.
	p, err := Start(Spec{Name: "group", Path: "/bin/sh", Args: []string{"-c", "echo started; sleep 300 & wait"}, LogPath: filepath.Join(dir, "group.log")})
	if err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() []int { return GroupMembers(p.PID()) }).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.HaveLen(2))
	g.Eventually(func() string { return p.LogTail(5) }).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.ContainSubstring("started"))

	p.Stop(5 * time.Second)
	if exited, _ := p.Exited(); !exited {
		t.Fatal("Stop returned before the process ended")
	}
	g.Eventually(func() []int { return GroupMembers(p.PID()) }).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.BeEmpty())
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	g := gomega.NewWithT(t)
	dir := t.TempDir()
	p, err := Start(Spec{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, LogPath: filepath.Join(dir, "stubborn.log")})
	if err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() string { return p.LogTail(5) }).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.ContainSubstring("ready"))
	p.Stop(100 * time.Millisecond)
	exited, err := p.Exited()
	if !exited || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("exited=%v err=%v, want killed by SIGKILL", exited, err)
	}
	g.Eventually(func() []int { return GroupMembers(p.PID()) }).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.BeEmpty())
}

func TestExitErrorCarriesTheLogTail(t *testing.T) {
	g := gomega.NewWithT(t)
	dir := t.TempDir()
	p, err := Start(Spec{Name: "failing", Path: "/bin/sh", Args: []string{"-c", "echo 'bad flag --nope' >&2; exit 3"}, LogPath: filepath.Join(dir, "failing.log")})
	if err != nil {
		t.Fatal(err)
	}
	g.Eventually(p.Done()).WithTimeout(10 * time.Second).Should(gomega.BeClosed())
	err = p.ExitError()
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "bad flag --nope") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("ExitError = %v", err)
	}
	p.Stop(time.Second) // stopping an ended process is a no-op
}

func TestStartReportsAMissingBinary(t *testing.T) {
	_, err := Start(Spec{Name: "missing", Path: filepath.Join(t.TempDir(), "nope"), LogPath: filepath.Join(t.TempDir(), "x.log")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v, want a start error naming the process", err)
	}
}

func TestPortsAreDistinctAndFree(t *testing.T) {
	p := NewPorts()
	a, err := p.Take(20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Take(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range append(a, b...) {
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		_ = l.Close()
	}
	p.Release(a)
	if len(p.taken) != len(b) {
		t.Fatalf("after release %d ports are taken, want %d", len(p.taken), len(b))
	}
}

func TestRSSOfThisProcess(t *testing.T) {
	if kib, ok := RSSKiB(os.Getpid()); !ok || kib <= 0 {
		t.Fatalf("RSSKiB(self) = %d, %v", kib, ok)
	}
	if !Alive(os.Getpid()) {
		t.Fatal("Alive(self) = false")
	}
}
