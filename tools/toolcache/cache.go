package toolcache

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// EnvCache names the environment variable that overrides the cache directory.
const EnvCache = "HYBRIDTWIN_CACHE"

// EnvSource names the environment variable that points at a hybridtwin source tree (the folder holding
// tools/k8s/go.mod and its siblings), for builds started from outside a clone.
const EnvSource = "HYBRIDTWIN_SOURCE"

// Tool is one pinned external binary and how to build it from its wrapper module under tools/.
type Tool struct {
	Name    string   // binary name, e.g. "kube-apiserver"
	Version string   // pinned version, e.g. "v1.33.13"; part of the cache path
	Module  string   // wrapper module folder under tools/, e.g. "k8s"
	Package string   // package to build inside that module ("." for the module itself)
	Tags    []string // build tags
	CGO     bool     // build with cgo (sqlite for Gitea); every other tool builds static
	LDFlags []string // linker flags; fixed per pin so the compile cache stays valid
	// VersionArgs run the built binary to ask its version; VersionRE's first group must then match
	// Version (a leading "v" is ignored on both sides).
	VersionArgs []string
	VersionRE   *regexp.Regexp
	// VersionModule, for binaries without a version flag (the Flux controllers), names the module whose
	// version in the binary's embedded build information must match Version.
	VersionModule string
	ColdBuild     string // how long a cold build takes on 2 cores, said before the build starts
	// Optional tools are not built by default (`hybridtwin tools build` without names); they serve one
	// mode, e.g. `reconciler: flux`, and are built on first use.
	Optional bool
	// Assets are files the tool needs besides its binary, as paths (files or folders) inside AssetModule,
	// e.g. "config/crd/bases" for a Flux controller's CRDs. Ensure copies them from the module the build
	// used into <cache>/share/<name>-<version>/<path>, so they always match the binary's version and
	// nothing is fetched from the network at run time. Assets returns that folder.
	Assets []string
	// AssetModule is the Go module (a dependency of the wrapper module) holding Assets. Empty: the
	// VersionModule, else the module of Package, else the wrapper module itself.
	AssetModule string
	// Patch, when set, builds the tool from a copy of one of the wrapper module's dependencies with files
	// added: for a main package whose module zip lacks files that upstream's build generates (see
	// ModulePatch).
	Patch *ModulePatch
}

// ModulePatch names a dependency of a wrapper module and files to add to a copy of it before the build.
// The build copies the module from the module cache into a temporary folder, writes Files there, and
// builds with a temporary go.mod (`go build -modfile`) that replaces the module with the copy; the
// wrapper module and the module cache are left as they are. Flux's CLI needs it: cmd/flux embeds
// manifests/*.yaml, which `make build` generates and the module zip does not hold (fluxcd/flux2#1187).
//
// Edits change files the copy already holds, each one replacement of a text that must occur exactly once
// (else the build fails naming the file and the text, so a new upstream version that moved the line is
// caught at the build): for a binary that has to run where its upstream does not expect, such as the
// sealed-secrets controller outside its cluster.
type ModulePatch struct {
	Module string            // the dependency to copy, e.g. "github.com/fluxcd/flux2/v2"
	Files  map[string]string // slash-separated path inside the module -> content
	Edits  []FileEdit        // applied after Files, in order
}

// FileEdit replaces Old, which must occur exactly once in the file at Path, with New.
type FileEdit struct {
	Path string // slash-separated path inside the module
	Old  string
	New  string
}

// String is "name version".
func (t Tool) String() string { return t.Name + " " + t.Version }

// Cache holds built tools under Dir/bin/<name>-<version>.
type Cache struct {
	// Dir is the cache root: $HYBRIDTWIN_CACHE, else $XDG_CACHE_HOME/hybridtwin, else ~/.cache/hybridtwin.
	Dir string
	// Source is the folder holding the wrapper modules (tools/<module>/go.mod).
	Source string
	// Progress receives human progress lines; nil means silent.
	Progress io.Writer
	// ProgressEvery is how often a running build reports that it is still running.
	ProgressEvery time.Duration
	// Go is the go command used to build; "go" on PATH by default.
	Go string
}

// Result says what Ensure did.
type Result struct {
	Path    string        // the binary, ready to run
	Built   bool          // true if this call built it, false on a cache hit
	Elapsed time.Duration // build time when Built
}

// ErrBuild is wrapped by every build failure.
var ErrBuild = errors.New("tool build failed")

// New returns a cache at the default location, finding the wrapper modules from the working directory.
func New() (*Cache, error) {
	dir, err := DefaultDir()
	if err != nil {
		return nil, err
	}
	return &Cache{Dir: dir, Source: FindSource(), Go: "go", ProgressEvery: 30 * time.Second}, nil
}

// DefaultDir is $HYBRIDTWIN_CACHE, else $XDG_CACHE_HOME/hybridtwin, else ~/.cache/hybridtwin.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "hybridtwin"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the tool cache: no $%s, $XDG_CACHE_HOME or home directory: %w; set %s", EnvCache, err, EnvCache)
	}
	return filepath.Join(home, ".cache", "hybridtwin"), nil
}

// FindSource returns $HYBRIDTWIN_SOURCE/tools, else the tools folder of the hybridtwin clone that holds the
// working directory, else "" (cached tools still work; building one then fails with a clear error).
func FindSource() string {
	if d := os.Getenv(EnvSource); d != "" {
		return filepath.Join(d, "tools")
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "tools", "k8s", "go.mod")); err == nil {
			return filepath.Join(d, "tools")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Path is where the tool's binary lives in the cache, built or not.
func (c *Cache) Path(t Tool) string {
	return filepath.Join(c.Dir, "bin", t.Name+"-"+t.Version)
}

// Status reports whether the tool is built and, if so, the version it reports.
type Status struct {
	Tool     Tool
	Path     string
	Built    bool   // the binary exists and reports the pinned version
	Reported string // the version the binary reported, if it exists
	Problem  string // why a binary that exists does not count as built
}

// Stat looks at the cached binary without building anything.
func (c *Cache) Stat(ctx context.Context, t Tool) Status {
	s := Status{Tool: t, Path: c.Path(t)}
	if _, err := os.Stat(s.Path); err != nil {
		return s
	}
	got, err := c.reportedVersion(ctx, t, s.Path)
	s.Reported = got
	if err != nil {
		s.Problem = err.Error()
		return s
	}
	s.Built = true
	return s
}

// Ensure returns the path of the pinned tool, building it first if the cache does not hold a binary that
// reports the pinned version, and copying its Assets if the cache does not hold them yet (a binary built
// before its tool declared assets gets them here). Concurrent callers, in this process or others, wait
// for one build.
func (c *Cache) Ensure(ctx context.Context, t Tool) (Result, error) {
	path := c.Path(t)
	if _, err := c.reportedVersion(ctx, t, path); err == nil && c.assetsReady(t) {
		return Result{Path: path}, nil
	}
	for _, d := range []string{"bin", "locks", "tmp", "share"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return Result{}, fmt.Errorf("prepare tool cache %s: %w; set %s to a writable folder", c.Dir, err, EnvCache)
		}
	}
	unlock, err := c.lock(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	// Another process may have built it while we waited for the lock.
	res := Result{Path: path}
	built := false
	if _, err := os.Stat(path); err == nil {
		got, verr := c.reportedVersion(ctx, t, path)
		if verr == nil {
			built = true
		} else {
			c.say("%s in the cache reports %q, not %s: rebuilding\n", path, got, t.Version)
		}
	}
	if !built {
		start := time.Now()
		if err := c.build(ctx, t, path); err != nil {
			return Result{}, err
		}
		res.Built, res.Elapsed = true, time.Since(start)
	}
	if !c.assetsReady(t) {
		if err := c.copyAssets(ctx, t); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// EnsureAll ensures every tool in order, stopping at the first failure.
func (c *Cache) EnsureAll(ctx context.Context, tools []Tool) ([]Result, error) {
	var out []Result
	for _, t := range tools {
		r, err := c.Ensure(ctx, t)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *Cache) lock(ctx context.Context, t Tool) (func(), error) {
	name := filepath.Join(c.Dir, "locks", t.Name+"-"+t.Version+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s for building %s: %w", name, t, err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return func() { _ = syscall.Flock(fd, syscall.LOCK_UN); _ = f.Close() }, nil
	}
	c.say("waiting for another process that is building %s (lock %s)\n", t, name)
	// flock blocks without a context; wait for it in the background and give up on cancellation.
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(fd, syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		return func() { _ = syscall.Flock(fd, syscall.LOCK_UN); _ = f.Close() }, nil
	case <-ctx.Done():
		_ = f.Close() // releases a lock taken after we stopped waiting
		return nil, fmt.Errorf("waiting to build %s: %w", t, ctx.Err())
	}
}

func (c *Cache) build(ctx context.Context, t Tool, dst string) error {
	if c.Source == "" {
		return fmt.Errorf("build %s: %w: the wrapper module tools/%s is not found; run from a hybridtwin clone or set %s to one",
			t, ErrBuild, t.Module, EnvSource)
	}
	modDir := filepath.Join(c.Source, t.Module)
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		return fmt.Errorf("build %s: %w: %s has no go.mod; set %s to a hybridtwin clone", t, ErrBuild, modDir, EnvSource)
	}
	tmp, err := os.MkdirTemp(filepath.Join(c.Dir, "tmp"), t.Name+"-")
	if err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	defer os.RemoveAll(tmp) // a failed build leaves nothing behind
	out := filepath.Join(tmp, t.Name)

	args := []string{"build", "-trimpath", "-o", out}
	if t.Patch != nil {
		modfile, err := c.patchModule(ctx, t, modDir, tmp)
		if err != nil {
			return err
		}
		args = append(args, "-modfile", modfile)
	}
	if len(t.Tags) > 0 {
		args = append(args, "-tags", strings.Join(t.Tags, ","))
	}
	if len(t.LDFlags) > 0 {
		args = append(args, "-ldflags", strings.Join(t.LDFlags, " "))
	}
	args = append(args, t.Package)

	goCmd := c.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = modDir
	cgo := "0"
	if t.CGO {
		cgo = "1"
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOFLAGS=-buildvcs=false", "GOWORK=off")
	var log tail
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // the build dies with us
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	cold := ""
	if t.ColdBuild != "" {
		cold = fmt.Sprintf(" (a cold build takes %s on 2 cores; later runs reuse %s)", t.ColdBuild, dst)
	}
	c.say("building %s from tools/%s%s\n", t, t.Module, cold)
	start := time.Now()
	stop := c.heartbeat(t, start)
	err = cmd.Run()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build %s: %w", t, ctx.Err())
		}
		return fmt.Errorf("build %s in %s: %w: %v; the build's last lines:\n%s", t, modDir, ErrBuild, err, log.String())
	}
	if got, err := c.reportedVersion(ctx, t, out); err != nil {
		return fmt.Errorf("build %s: %w: the built binary reports %q: %v; check the pins in tools/toolcache/pins.go", t, ErrBuild, got, err)
	}
	if err := os.Rename(out, dst); err != nil {
		return fmt.Errorf("install %s into %s: %w", t, dst, err)
	}
	c.say("built %s in %s -> %s\n", t, time.Since(start).Round(time.Second), dst)
	return nil
}

func (c *Cache) heartbeat(t Tool, start time.Time) func() {
	if c.Progress == nil || c.ProgressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(c.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				c.say("  still building %s: %s elapsed\n", t, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// reportedVersion runs the binary's version command and checks it against the pin.
func (c *Cache) reportedVersion(ctx context.Context, t Tool, path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	if t.VersionModule != "" {
		return moduleVersion(t, path)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, t.VersionArgs...).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("run %s %s: %w", path, strings.Join(t.VersionArgs, " "), err)
	}
	m := t.VersionRE.FindSubmatch(out)
	if m == nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("no version matching %s in the output of %s", t.VersionRE, path)
	}
	got := string(m[1])
	if strings.TrimPrefix(got, "v") != strings.TrimPrefix(t.Version, "v") {
		return got, fmt.Errorf("%s reports version %s, pinned %s", path, got, t.Version)
	}
	return got, nil
}

// moduleVersion reads the version of t.VersionModule from the binary's embedded build information.
func moduleVersion(t Tool, path string) (string, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read build information of %s: %w", path, err)
	}
	// Built from a wrapper module, the tool's own module is the binary's main module ("mod" line);
	// otherwise it is one of its dependencies.
	mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
	for _, d := range mods {
		if d.Path == t.VersionModule {
			got := d.Version
			if d.Replace != nil && d.Replace.Version != "" && d.Replace.Version != "(devel)" {
				got = d.Replace.Version
			}
			if got != t.Version {
				return got, fmt.Errorf("%s embeds %s %s, pinned %s", path, t.VersionModule, got, t.Version)
			}
			return got, nil
		}
	}
	return "", fmt.Errorf("%s does not embed module %s", path, t.VersionModule)
}

func (c *Cache) say(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format, args...)
	}
}

// tail keeps the last lines a build printed, for the error message.
type tail struct{ buf bytes.Buffer }

const tailBytes = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 4*tailBytes {
		b := t.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-tailBytes:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *tail) String() string {
	b := t.buf.Bytes()
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// patchModule copies t.Patch.Module (as the wrapper module in modDir resolves it) into tmp, adds
// t.Patch.Files, and writes tmp/go.mod and tmp/go.sum: the wrapper's, with the module replaced by the copy.
// It returns the go.mod for `go build -modfile`.
func (c *Cache) patchModule(ctx context.Context, t Tool, modDir, tmp string) (string, error) {
	p := t.Patch
	var info struct{ Dir string }
	if err := c.goJSON(ctx, modDir, &info, "mod", "download", "-json", p.Module); err != nil || info.Dir == "" {
		// A module replaced by a local folder is not downloadable; list it instead.
		if lerr := c.goJSON(ctx, modDir, &info, "list", "-m", "-json", p.Module); lerr != nil || info.Dir == "" {
			return "", fmt.Errorf("build %s: %w: find module %s of tools/%s: %v; fix Patch in tools/toolcache/pins.go", t, ErrBuild, p.Module, t.Module, errors.Join(err, lerr))
		}
	}
	src := filepath.Join(tmp, "patched")
	if err := copyTree(info.Dir, src); err != nil {
		return "", fmt.Errorf("build %s: copy %s: %w", t, info.Dir, err)
	}
	for name, content := range p.Files {
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return "", fmt.Errorf("build %s: %w: patch file %q must be a relative path inside %s; fix Patch in tools/toolcache/pins.go", t, ErrBuild, name, p.Module)
		}
		f := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return "", fmt.Errorf("build %s: %w", t, err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("build %s: %w", t, err)
		}
	}
	for _, ed := range p.Edits {
		if !filepath.IsLocal(filepath.FromSlash(ed.Path)) {
			return "", fmt.Errorf("build %s: %w: patch edit %q must be a relative path inside %s; fix Patch in tools/toolcache/pins.go", t, ErrBuild, ed.Path, p.Module)
		}
		f := filepath.Join(src, filepath.FromSlash(ed.Path))
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("build %s: %w: patch edit of %s in %s: %v; fix Patch in tools/toolcache/pins.go", t, ErrBuild, ed.Path, p.Module, err)
		}
		if n := strings.Count(string(data), ed.Old); n != 1 {
			return "", fmt.Errorf("build %s: %w: patch edit of %s in %s: %q occurs %d times, want exactly once; fix Patch in tools/toolcache/pins.go for this version",
				t, ErrBuild, ed.Path, p.Module, ed.Old, n)
		}
		if err := os.WriteFile(f, []byte(strings.Replace(string(data), ed.Old, ed.New, 1)), 0o644); err != nil {
			return "", fmt.Errorf("build %s: %w", t, err)
		}
	}
	modfile := filepath.Join(tmp, "go.mod")
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil && !(f == "go.sum" && os.IsNotExist(err)) {
			return "", fmt.Errorf("build %s: %w", t, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o644); err != nil {
			return "", fmt.Errorf("build %s: %w", t, err)
		}
	}
	goCmd := c.Go
	if goCmd == "" {
		goCmd = "go"
	}
	// `go mod edit -replace` replaces an existing replacement of the module instead of adding a second.
	cmd := exec.CommandContext(ctx, goCmd, "mod", "edit", "-replace", p.Module+"="+src, modfile)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w: replace %s in a copy of tools/%s/go.mod: %v: %s", t, ErrBuild, p.Module, t.Module, err, strings.TrimSpace(string(out)))
	}
	return modfile, nil
}

// Binary is the path of tool t for a component that also takes an explicit binary: override when set (it
// must be an executable file; badOverride then says the override is at fault), else the cached tool,
// built first if the cache lacks it.
func Binary(ctx context.Context, t Tool, override string) (path string, badOverride bool, err error) {
	if override != "" {
		fi, err := os.Stat(override)
		if err != nil {
			return "", true, fmt.Errorf("Options.Binary %s: %w; leave it empty to use the tool cache", override, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", true, fmt.Errorf("Options.Binary %s is not an executable file; leave it empty to use the tool cache", override)
		}
		return override, false, nil
	}
	c, err := New()
	if err != nil {
		return "", false, fmt.Errorf("open the tool cache: %w", err)
	}
	r, err := c.Ensure(ctx, t)
	if err != nil {
		return "", false, fmt.Errorf("get %s from the tool cache: %w", t, err)
	}
	return r.Path, false, nil
}
