package toolcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withdepAssets is testdata/withdep with its dependency's config/crd/bases as assets, the way the Flux
// controllers' pins take their CRDs.
func withdepAssets() Tool {
	return Tool{Name: "withdep", Version: "v1.2.3", Module: "withdep", Package: ".", VersionModule: "example.com/lib",
		Assets: []string{"config/crd/bases"}}
}

func TestEnsureCopiesAssetsFromTheToolsModule(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	tool := withdepAssets()

	dir, err := c.Assets(ctx, tool)
	if err != nil {
		t.Fatalf("Assets: %v", err)
	}
	if dir != filepath.Join(c.Dir, "share", "withdep-v1.2.3") {
		t.Fatalf("assets dir = %s", dir)
	}
	got, err := os.ReadFile(filepath.Join(dir, "config", "crd", "bases", "example.com_things.yaml"))
	if err != nil || !strings.Contains(string(got), "things.example.com") {
		t.Fatalf("the CRD asset was not copied from example.com/lib: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config", "rbac")); !os.IsNotExist(err) {
		t.Fatalf("a path the pin does not name was copied (stat err %v)", err)
	}
	if st := c.Stat(ctx, tool); !st.Built {
		t.Fatalf("Assets did not build the binary: %+v", st)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))

	// A cache hit copies nothing again: a file added to the copy survives.
	marker := filepath.Join(dir, "config", "crd", "bases", "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Ensure(ctx, tool); err != nil || r.Built {
		t.Fatalf("second Ensure = %+v, %v; want a cache hit", r, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a cache hit recopied the assets: %v", err)
	}
}

// A binary built before its pin declared assets gets them on the next Ensure, without a rebuild.
func TestEnsureAddsAssetsToAnAlreadyBuiltBinary(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	bare := withdepAssets()
	bare.Assets = nil
	if r, err := c.Ensure(ctx, bare); err != nil || !r.Built {
		t.Fatalf("Ensure without assets = %+v, %v", r, err)
	}
	if _, err := os.Stat(c.AssetsDir(bare)); !os.IsNotExist(err) {
		t.Fatalf("a tool without assets got a share folder (stat err %v)", err)
	}

	r, err := c.Ensure(ctx, withdepAssets())
	if err != nil {
		t.Fatal(err)
	}
	if r.Built {
		t.Fatal("Ensure rebuilt a binary that only lacked its assets")
	}
	if _, err := os.Stat(filepath.Join(c.AssetsDir(bare), "config", "crd", "bases", "example.com_things.yaml")); err != nil {
		t.Fatalf("assets not added: %v", err)
	}

	// Another asset list in the pin replaces the copy.
	more := withdepAssets()
	more.Assets = []string{"config/crd/bases", "config/rbac/role.yaml"}
	if _, err := c.Ensure(ctx, more); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.AssetsDir(more), "config", "rbac", "role.yaml")); err != nil {
		t.Fatalf("a changed asset list did not refresh the copy: %v", err)
	}
}

func TestMissingAssetSaysWhichAndLeavesNothingBehind(t *testing.T) {
	c := testCache(t, t.TempDir())
	tool := withdepAssets()
	tool.Assets = []string{"config/crd/bases", "config/no-such-folder"}
	_, err := c.Ensure(context.Background(), tool)
	if !errors.Is(err, ErrAssets) {
		t.Fatalf("err = %v, want ErrAssets", err)
	}
	for _, want := range []string{"example.com/lib", "config/no-such-folder", "pins.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if _, err := os.Stat(c.AssetsDir(tool)); !os.IsNotExist(err) {
		t.Fatalf("a failed copy left %s (stat err %v)", c.AssetsDir(tool), err)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))
}

func TestBadAssetDeclarations(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	if _, err := c.Assets(ctx, helloTool("v1.0.0")); !errors.Is(err, ErrAssets) || !strings.Contains(err.Error(), "declares no Assets") {
		t.Errorf("Assets of a tool without assets: %v", err)
	}
	for _, bad := range []string{"../escape", "/etc", ""} {
		tool := withdepAssets()
		tool.Assets = []string{bad}
		if _, err := c.Ensure(ctx, tool); !errors.Is(err, ErrAssets) || !strings.Contains(err.Error(), "relative path") {
			t.Errorf("asset %q: err = %v, want ErrAssets about a relative path", bad, err)
		}
	}
	other := withdepAssets()
	other.AssetModule = "example.com/not/required"
	if _, err := c.Ensure(ctx, other); !errors.Is(err, ErrAssets) || !strings.Contains(err.Error(), "example.com/not/required") {
		t.Errorf("assets from a module the wrapper does not require: %v", err)
	}
}

// Assets of the wrapper module itself (Package "." and no VersionModule): testdata/hello's main.go.
func TestAssetsFromTheWrapperModule(t *testing.T) {
	c := testCache(t, t.TempDir())
	tool := helloTool("v1.0.0")
	tool.Assets = []string{"main.go"}
	dir, err := c.Assets(context.Background(), tool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		t.Fatalf("main.go not copied: %v", err)
	}
}

// EnsureAssets copies a tool's assets without building its binary, and a later Ensure then builds the
// binary and keeps the copy.
func TestEnsureAssetsDoesNotBuild(t *testing.T) {
	c := testCache(t, t.TempDir())
	ctx := context.Background()
	tool := withdepAssets()

	dir, err := c.EnsureAssets(ctx, tool)
	if err != nil {
		t.Fatalf("EnsureAssets: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config", "crd", "bases", "example.com_things.yaml")); err != nil {
		t.Fatalf("the CRD asset was not copied: %v", err)
	}
	if st := c.Stat(ctx, tool); st.Built {
		t.Fatalf("EnsureAssets built the binary: %+v", st)
	}
	assertEmptyDir(t, filepath.Join(c.Dir, "tmp"))
	if again, err := c.EnsureAssets(ctx, tool); err != nil || again != dir {
		t.Fatalf("second EnsureAssets = %q, %v", again, err)
	}
	if r, err := c.Ensure(ctx, tool); err != nil || !r.Built {
		t.Fatalf("Ensure after EnsureAssets = %+v, %v; want a build", r, err)
	}

	bare := withdepAssets()
	bare.Assets = nil
	if _, err := c.EnsureAssets(ctx, bare); !errors.Is(err, ErrAssets) {
		t.Fatalf("EnsureAssets of a tool without assets: %v, want ErrAssets", err)
	}
}
