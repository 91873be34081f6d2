package toolcache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

// The tests build real, tiny Go modules from testdata with the real go command: the same code path that
// builds kube-apiserver, in a second instead of ten minutes.

func helloTool(version string) Tool {
	return Tool{
		Name:        "hello",
		Version:     version,
		Module:      "hello",
		Package:     ".",
		LDFlags:     []string{"-X", "main.version=" + version},
		VersionArgs: []string{"--version"},
		VersionRE:   regexp.MustCompile(`hello version (\S+)`),
	}
}

func testCache(t *testing.T, dir string) *Cache {
	t.Helper()
	src, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return &Cache{Dir: dir, Source: src, Go: "go", Progress: &syncBuffer{}}
}

func TestEnsureBuildsOnceThenHitsTheCache(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()

	first, err := c.Ensure(ctx, helloTool("v1.0.0"))
	if err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	if !first.Built {
		t.Fatalf("first Ensure on an empty cache did not build")
	}
	if want := filepath.Join(c.Dir, "bin", "hello-v1.0.0"); first.Path != want {
		t.Fatalf("path = %s, want %s", first.Path, want)
	}
	out, err := exec.Command(first.Path, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello version v1.0.0" {
		t.Fatalf("built binary says %q (%v)", out, err)
	}

	second, err := c.Ensure(ctx, helloTool("v1.0.0"))
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if second.Built || second.Path != first.Path {
		t.Fatalf("second Ensure = %+v, want a cache hit at %s", second, first.Path)
	}
	if st := c.Stat(ctx, helloTool("v1.0.0")); !st.Built || st.Reported != "v1.0.0" {
		t.Fatalf("Stat = %+v, want built v1.0.0", st)
	}
	if st := c.Stat(ctx, helloTool("v9.9.9")); st.Built {
		t.Fatalf("Stat of an unbuilt version says built: %+v", st)
	}
}

func TestVersionMismatchRebuilds(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	old, err := c.Ensure(ctx, helloTool("v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	// A binary at v2's path that reports v1: e.g. built with the wrong flags, or copied by hand.
	v2 := helloTool("v2.0.0")
	data, err := os.ReadFile(old.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(v2), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if st := c.Stat(ctx, v2); st.Built || st.Reported != "v1.0.0" || st.Problem == "" {
		t.Fatalf("Stat of a mismatched binary = %+v, want not built, reported v1.0.0, with a problem", st)
	}

	r, err := c.Ensure(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Built {
		t.Fatalf("Ensure kept a binary reporting the wrong version")
	}
	out, _ := exec.Command(r.Path, "--version").Output()
	if got := strings.TrimSpace(string(out)); got != "hello version v2.0.0" {
		t.Fatalf("rebuilt binary says %q", got)
	}
}

func TestFailedBuildLeavesNothingBehind(t *testing.T) {
	c := testCache(t, t.TempDir())
	broken := helloTool("v1.0.0")
	broken.Name, broken.Module = "broken", "broken"

	_, err := c.Ensure(context.Background(), broken)
	if !errors.Is(err, ErrBuild) {
		t.Fatalf("Ensure of a broken module: err = %v, want ErrBuild", err)
	}
	// The error carries the build's last lines, so the user sees the compiler's complaint.
	if !strings.Contains(err.Error(), "undefinedFunctionForTheFailedBuildTest") {
		t.Fatalf("error does not show the build output:\n%v", err)
	}
	if _, err := os.Stat(c.Path(broken)); !os.IsNotExist(err) {
		t.Fatalf("a failed build left %s (stat err %v)", c.Path(broken), err)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))
}

func TestCancelledBuildLeavesNothingBehind(t *testing.T) {
	c := testCache(t, t.TempDir())
	// The progress writer cancels as soon as the build says it started.
	ctx, cancel := context.WithCancel(context.Background())
	c.Progress = writerFunc(func(p []byte) {
		if bytes.Contains(p, []byte("building hello")) {
			cancel()
		}
	})
	_, err := c.Ensure(ctx, helloTool("v1.0.0"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(c.Path(helloTool("v1.0.0"))); !os.IsNotExist(err) {
		t.Fatalf("a cancelled build left a binary")
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))
}

func TestBuildWithoutSourceSaysWhatToDo(t *testing.T) {
	c := testCache(t, t.TempDir())
	c.Source = ""
	_, err := c.Ensure(context.Background(), helloTool("v1.0.0"))
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), EnvSource) {
		t.Fatalf("err = %v, want ErrBuild naming %s", err, EnvSource)
	}
}

// TestConcurrentEnsureBuildsOnce starts three processes that all ask for the same tool while a lock holder
// keeps them waiting, then lets them go: exactly one builds, the others take its binary.
func TestConcurrentEnsureBuildsOnce(t *testing.T) {
	dir := t.TempDir()
	c := testCache(t, dir)
	tool := helloTool("v1.0.0")
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o755); err != nil {
		t.Fatal(err)
	}
	lockFile, err := os.OpenFile(filepath.Join(dir, "locks", "hello-v1.0.0.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lockFile.Close()
	if err := syscall.Flock(int(lockFile.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	const n = 3
	outs := make([]*syncBuffer, n)
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		outs[i] = &syncBuffer{}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEnsure$")
		cmd.Env = append(os.Environ(), "TOOLCACHE_HELPER_DIR="+dir, "TOOLCACHE_HELPER_SRC="+c.Source)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	// Wait until every process is blocked on the lock, then release it.
	g := gomega.NewWithT(t)
	for i := range n {
		g.Eventually(outs[i].String).WithTimeout(2*time.Minute).WithPolling(20*time.Millisecond).
			Should(gomega.ContainSubstring("waiting for another process"), "helper %d never waited for the lock", i)
	}
	if err := syscall.Flock(int(lockFile.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}

	builds := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d failed: %v\n%s", i, err, outs[i])
		}
		switch {
		case strings.Contains(outs[i].String(), "RESULT built"):
			builds++
		case strings.Contains(outs[i].String(), "RESULT cached"):
		default:
			t.Fatalf("helper %d gave no result:\n%s", i, outs[i])
		}
	}
	if builds != 1 {
		t.Fatalf("%d processes built the tool, want exactly 1", builds)
	}
	if st := c.Stat(context.Background(), tool); !st.Built {
		t.Fatalf("after the concurrent ensure the tool is not built: %+v", st)
	}
}

// TestHelperEnsure is the child process of TestConcurrentEnsureBuildsOnce.
func TestHelperEnsure(t *testing.T) {
	dir := os.Getenv("TOOLCACHE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestConcurrentEnsureBuildsOnce")
	}
	c := &Cache{Dir: dir, Source: os.Getenv("TOOLCACHE_HELPER_SRC"), Go: "go", Progress: os.Stdout}
	r, err := c.Ensure(context.Background(), helloTool("v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Built {
		os.Stdout.WriteString("RESULT built\n")
	} else {
		os.Stdout.WriteString("RESULT cached\n")
	}
}

func TestPinsMatchTheirWrapperModules(t *testing.T) {
	seen := map[string]bool{}
	for _, tool := range Pinned() {
		if seen[tool.Name] {
			t.Errorf("tool %s pinned twice", tool.Name)
		}
		seen[tool.Name] = true
		gomod, err := os.ReadFile(filepath.Join("..", tool.Module, "go.mod"))
		if err != nil {
			t.Errorf("%s: wrapper module tools/%s: %v", tool, tool.Module, err)
			continue
		}
		if tool.Package != "." && !strings.Contains(string(gomod), tool.Package) {
			t.Errorf("%s: tools/%s/go.mod does not declare package %s as a tool", tool, tool.Module, tool.Package)
		}
		if tool.VersionModule == "" && (tool.VersionRE == nil || len(tool.VersionArgs) == 0) {
			t.Errorf("%s: no way to check the built binary's version", tool)
		}
		if tool.ColdBuild == "" {
			t.Errorf("%s: no cold build time to tell the user", tool)
		}
		if got, ok := Lookup(tool.Name); !ok || got.Version != tool.Version {
			t.Errorf("Lookup(%q) = %v, %v", tool.Name, got, ok)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(EnvCache, "")
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, _ := DefaultDir(); d != "/x/cache/hybridtwin" {
		t.Errorf("with XDG_CACHE_HOME: %s", d)
	}
	t.Setenv(EnvCache, "/y")
	if d, _ := DefaultDir(); d != "/y" {
		t.Errorf("with %s: %s", EnvCache, d)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%s is not empty: %v", dir, entries)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// The Flux controllers have no version flag; the cache reads the pinned module's version from the built
// binary's build information. testdata/withdep is such a tool.
func TestVersionFromBuildInformation(t *testing.T) {
	c := testCache(t, t.TempDir())
	tool := Tool{Name: "withdep", Version: "v1.2.3", Module: "withdep", Package: ".", VersionModule: "example.com/lib"}
	r, err := c.Ensure(context.Background(), tool)
	if err != nil || !r.Built {
		t.Fatalf("Ensure = %+v, %v", r, err)
	}
	if st := c.Stat(context.Background(), tool); !st.Built || st.Reported != "v1.2.3" {
		t.Fatalf("Stat = %+v", st)
	}
	wrong := tool
	wrong.Version = "v9.9.9"
	if _, err := c.reportedVersion(context.Background(), wrong, r.Path); err == nil || !strings.Contains(err.Error(), "pinned v9.9.9") {
		t.Fatalf("a mismatched module version was accepted: %v", err)
	}
	wrong.VersionModule = "example.com/not/linked"
	if _, err := c.reportedVersion(context.Background(), wrong, r.Path); err == nil {
		t.Fatal("a module the binary does not embed was accepted")
	}
}

func TestDefaultLeavesOutOptionalTools(t *testing.T) {
	for _, tool := range Default() {
		if tool.Optional {
			t.Errorf("Default() includes optional %s", tool)
		}
	}
	if len(Default()) >= len(Pinned()) {
		t.Errorf("Default() = %d tools, Pinned() = %d: the Flux controllers should be optional", len(Default()), len(Pinned()))
	}
}

// A tool whose main package embeds files its module lacks fails to build as it is, and builds with a
// ModulePatch that adds them; the dependency's own folder is left untouched.
func TestModulePatchAddsMissingFiles(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	tool := Tool{Name: "hello", Version: "v0.1.0", Module: "withembed", Package: "example.com/embedder/cmd/hello",
		VersionArgs: []string{"--version"}, VersionRE: regexp.MustCompile(`hello (v\S+)`)}
	if _, err := c.Ensure(ctx, tool); !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "gen/*.txt") {
		t.Fatalf("build without the patch: %v, want ErrBuild naming the embed pattern", err)
	}
	tool.Patch = &ModulePatch{Module: "example.com/embedder", Files: map[string]string{"cmd/hello/gen/greeting.txt": "hi from the patch\n"}}
	r, err := c.Ensure(ctx, tool)
	if err != nil || !r.Built {
		t.Fatalf("build with the patch = %+v, %v", r, err)
	}
	out, err := exec.Command(r.Path).Output()
	if err != nil || string(out) != "hi from the patch\n" {
		t.Fatalf("the patched binary printed %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join("testdata", "withembed", "embedder", "cmd", "hello", "gen")); !os.IsNotExist(err) {
		t.Fatalf("the patch wrote into the dependency's own folder (stat err %v)", err)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))

	bad := tool
	bad.Name = "hello-bad"
	bad.Patch = &ModulePatch{Module: "example.com/embedder", Files: map[string]string{"../escape.txt": "x"}}
	if _, err := c.Ensure(ctx, bad); !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "relative path") {
		t.Fatalf("a patch file outside the module: %v", err)
	}
}

// A ModulePatch edit changes one line of the dependency's copy; an edit whose text is not there exactly
// once fails the build and names the file, so a new upstream version that moved the line is caught.
func TestModulePatchEditsAFile(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	files := map[string]string{"cmd/hello/gen/greeting.txt": "hi\n"}
	tool := Tool{Name: "hello-edit", Version: "v0.1.0", Module: "withembed", Package: "example.com/embedder/cmd/hello",
		VersionArgs: []string{"--version"}, VersionRE: regexp.MustCompile(`hello (v\S+)`),
		Patch: &ModulePatch{Module: "example.com/embedder", Files: files, Edits: []FileEdit{
			{Path: "cmd/hello/main.go", Old: "fmt.Print(string(b))", New: `fmt.Print("edited: " + string(b))`}}}}
	r, err := c.Ensure(ctx, tool)
	if err != nil || !r.Built {
		t.Fatalf("build with the edit = %+v, %v", r, err)
	}
	out, err := exec.Command(r.Path).Output()
	if err != nil || string(out) != "edited: hi\n" {
		t.Fatalf("the edited binary printed %q, %v", out, err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "withembed", "embedder", "cmd", "hello", "main.go"))
	if err != nil || strings.Contains(string(src), "edited") {
		t.Fatalf("the edit changed the dependency's own folder (%v)", err)
	}

	bad := tool
	bad.Name = "hello-edit-bad"
	bad.Patch = &ModulePatch{Module: "example.com/embedder", Files: files, Edits: []FileEdit{
		{Path: "cmd/hello/main.go", Old: "no such line", New: "x"}}}
	if _, err := c.Ensure(ctx, bad); !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "cmd/hello/main.go") || !strings.Contains(err.Error(), "occurs 0 times") {
		t.Fatalf("an edit whose text is missing: %v", err)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))
}
