package toolcache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrAssets is wrapped by every failure to provide a tool's assets.
var ErrAssets = errors.New("tool assets unavailable")

// assetsManifest is the file in a share folder that says which assets it holds; a folder whose
// manifest differs from the tool's pin (another asset list) is replaced on the next Ensure.
const assetsManifest = ".hybridtwin-assets"

// AssetsDir is where the tool's assets live in the cache, copied or not: <cache>/share/<name>-<version>.
// An asset "config/crd/bases" is then AssetsDir(t)/config/crd/bases.
func (c *Cache) AssetsDir(t Tool) string {
	return filepath.Join(c.Dir, "share", t.Name+"-"+t.Version)
}

// Assets ensures the tool (building it and copying its assets if needed, see Ensure) and returns the
// folder holding its assets. A tool that declares no Assets is an error.
func (c *Cache) Assets(ctx context.Context, t Tool) (string, error) {
	if len(t.Assets) == 0 {
		return "", fmt.Errorf("assets of %s: %w: the pin declares no Assets (tools/toolcache/pins.go)", t, ErrAssets)
	}
	if _, err := c.Ensure(ctx, t); err != nil {
		return "", err
	}
	return c.AssetsDir(t), nil
}

// EnsureAssets provides the tool's assets without building its binary: the asset module is downloaded
// into the module cache (seconds, where a build takes minutes) and its Assets copied as Assets does. The
// twin uses it for what every workload cluster needs whichever engine runs, such as Flux's CRDs, so a
// twin that does not run the Flux controllers never builds them. Concurrent callers wait for one copy.
func (c *Cache) EnsureAssets(ctx context.Context, t Tool) (string, error) {
	if len(t.Assets) == 0 {
		return "", fmt.Errorf("assets of %s: %w: the pin declares no Assets (tools/toolcache/pins.go)", t, ErrAssets)
	}
	if c.assetsReady(t) {
		return c.AssetsDir(t), nil
	}
	for _, d := range []string{"locks", "tmp", "share"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return "", fmt.Errorf("prepare tool cache %s: %w; set %s to a writable folder", c.Dir, err, EnvCache)
		}
	}
	unlock, err := c.lock(ctx, t)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !c.assetsReady(t) { // another process may have copied them while we waited
		if err := c.copyAssets(ctx, t); err != nil {
			return "", err
		}
	}
	return c.AssetsDir(t), nil
}

func (t Tool) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tool %s %s\nmodule %s\n", t.Name, t.Version, t.assetModule())
	for _, a := range t.Assets {
		fmt.Fprintf(&b, "asset %s\n", a)
	}
	return b.String()
}

// assetModule is the module the Assets paths are inside; "" means the wrapper module itself.
func (t Tool) assetModule() string {
	switch {
	case t.AssetModule != "":
		return t.AssetModule
	case t.VersionModule != "":
		return t.VersionModule
	case t.Package != ".":
		return t.Package
	}
	return ""
}

// assetsReady reports whether the cache holds the tool's assets as its pin declares them.
func (c *Cache) assetsReady(t Tool) bool {
	if len(t.Assets) == 0 {
		return true
	}
	got, err := os.ReadFile(filepath.Join(c.AssetsDir(t), assetsManifest))
	return err == nil && string(got) == t.manifest()
}

// copyAssets copies the tool's assets from the module the wrapper module resolves into a temporary
// folder, then moves that folder into place: a failed copy leaves nothing behind. The caller holds the
// tool's lock.
func (c *Cache) copyAssets(ctx context.Context, t Tool) error {
	if c.Source == "" {
		return fmt.Errorf("assets of %s: %w: the wrapper module tools/%s is not found; run from a hybridtwin clone or set %s to one",
			t, ErrAssets, t.Module, EnvSource)
	}
	for _, a := range t.Assets {
		if a == "" || filepath.IsAbs(a) || !filepath.IsLocal(a) {
			return fmt.Errorf("assets of %s: %w: asset %q must be a relative path inside module %s; fix Assets in tools/toolcache/pins.go",
				t, ErrAssets, a, t.assetModule())
		}
	}
	modDir, err := c.moduleDir(ctx, t)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Join(c.Dir, "tmp"), t.Name+"-assets-")
	if err != nil {
		return fmt.Errorf("assets of %s: %w", t, err)
	}
	defer os.RemoveAll(tmp)
	for _, a := range t.Assets {
		src := filepath.Join(modDir, a)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("assets of %s: %w: %s has no %s (%v); fix Assets in tools/toolcache/pins.go",
				t, ErrAssets, describeModule(t), a, err)
		}
		if err := copyTree(src, filepath.Join(tmp, a)); err != nil {
			return fmt.Errorf("assets of %s: copy %s: %w", t, src, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, assetsManifest), []byte(t.manifest()), 0o644); err != nil {
		return fmt.Errorf("assets of %s: %w", t, err)
	}
	dst := c.AssetsDir(t)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("assets of %s: remove the stale %s: %w", t, dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("assets of %s: install into %s: %w", t, dst, err)
	}
	c.say("copied the assets of %s (%s) -> %s\n", t, strings.Join(t.Assets, ", "), dst)
	return nil
}

func describeModule(t Tool) string {
	if m := t.assetModule(); m != "" {
		return "module " + m
	}
	return "the wrapper module tools/" + t.Module
}

// moduleDir finds the folder of the asset module as the wrapper module resolves it (`go list -m -json`,
// which honours its replace directives), downloading the module into the module cache if needed.
func (c *Cache) moduleDir(ctx context.Context, t Tool) (string, error) {
	wrapper := filepath.Join(c.Source, t.Module)
	mod := t.assetModule()
	args := []string{"list", "-m", "-json"}
	if mod != "" {
		args = append(args, mod)
	}
	var info struct{ Dir string }
	if err := c.goJSON(ctx, wrapper, &info, args...); err != nil {
		return "", fmt.Errorf("assets of %s: %w: find %s: %v", t, ErrAssets, describeModule(t), err)
	}
	if info.Dir == "" && mod != "" {
		// Required but not in the module cache yet (e.g. a fresh GOMODCACHE with the binary cached).
		if err := c.goJSON(ctx, wrapper, &info, "mod", "download", "-json", mod); err != nil {
			return "", fmt.Errorf("assets of %s: %w: download %s: %v", t, ErrAssets, describeModule(t), err)
		}
	}
	if info.Dir == "" {
		return "", fmt.Errorf("assets of %s: %w: the go command gave no folder for %s; is it required by tools/%s/go.mod?",
			t, ErrAssets, describeModule(t), t.Module)
	}
	return info.Dir, nil
}

// goJSON runs the go command in dir and decodes its JSON output into v.
func (c *Cache) goJSON(ctx context.Context, dir string, v any, args ...string) error {
	goCmd := c.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("go %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		return fmt.Errorf("go %s in %s: decode its output: %w", strings.Join(args, " "), dir, err)
	}
	return nil
}

// copyTree copies a file or a folder (recursively) to dst; files become 0644, folders 0755 (the module
// cache's files are read-only).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return copyFile(p, to)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
