package procgroup

import (
	"errors"
	"os"
	"path/filepath"
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

func TestRSSOfThisProcess(t *testing.T) {
	if kib, ok := RSSKiB(os.Getpid()); !ok || kib <= 0 {
		t.Fatalf("RSSKiB(self) = %d, %v", kib, ok)
	}
	if !Alive(os.Getpid()) {
		t.Fatal("Alive(self) = false")
	}
}

func TestTailKeepsTheLastLinesValidUTF8(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"last lines, indented", "one\ntwo\nthree\n", "    two\n    three"},
		{"invalid bytes dropped", "ok\nbad \xff\xfe byte\n", "    ok\n    bad  byte"},
		{"empty log", "", "    (log is empty)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".log")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := Tail(p, 2); got != tc.want {
				t.Errorf("Tail = %q, want %q", got, tc.want)
			}
		})
	}
	if got := Tail(filepath.Join(dir, "missing.log"), 2); !strings.HasPrefix(got, "    (no log: ") {
		t.Errorf("Tail of a missing file = %q", got)
	}
}
