package registry_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/twin/registry"
)

func start(t *testing.T, opts registry.Options) *registry.Registry {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	r, err := registry.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

// repoName makes a repository name unique to the test.
func repoName(t *testing.T, suffix string) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return "apps/" + n + "-" + suffix
}

func TestPushTwoTagsListPullByDigest(t *testing.T) {
	ctx := context.Background()
	r := start(t, registry.Options{})
	c := r.Client()
	repo := repoName(t, "podinfo")

	v1, err := c.Publish(ctx, repo, "6.5.0")
	if err != nil {
		t.Fatalf("Publish 6.5.0: %v", err)
	}
	v2, err := c.Publish(ctx, repo, "6.5.1")
	if err != nil {
		t.Fatalf("Publish 6.5.1: %v", err)
	}
	if v1.Digest == v2.Digest {
		t.Fatalf("two tags of generated images share digest %s; each tag's image must differ", v1.Digest)
	}
	if want := r.Host() + "/" + repo + ":6.5.0"; v1.Ref != want {
		t.Errorf("Ref = %q, want %q", v1.Ref, want)
	}

	tags, err := c.Tags(ctx, repo)
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"6.5.0", "6.5.1"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}

	got, err := c.Manifest(ctx, repo, v1.Digest)
	if err != nil {
		t.Fatalf("Manifest by digest %s: %v", v1.Digest, err)
	}
	if got.Digest != v1.Digest {
		t.Errorf("manifest digest = %s, want %s", got.Digest, v1.Digest)
	}
	if !bytes.Equal(got.Manifest, v1.Manifest) {
		t.Errorf("manifest by digest differs from the pushed one:\n got %s\nwant %s", got.Manifest, v1.Manifest)
	}
	if got.MediaType != v1.MediaType || got.MediaType == "" {
		t.Errorf("media type = %q, want %q", got.MediaType, v1.MediaType)
	}
	if want := r.Host() + "/" + repo + "@" + v1.Digest; v1.DigestRef() != want {
		t.Errorf("DigestRef = %q, want %q", v1.DigestRef(), want)
	}

	byTag, err := c.Manifest(ctx, repo, "6.5.1")
	if err != nil {
		t.Fatalf("Manifest by tag: %v", err)
	}
	if byTag.Digest != v2.Digest {
		t.Errorf("tag 6.5.1 resolves to %s, want %s", byTag.Digest, v2.Digest)
	}

	catalog, err := c.Catalog(ctx)
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	if !contains(catalog, repo) {
		t.Errorf("catalog %v lacks %s", catalog, repo)
	}

	// The blobs live under the registry's directory, in distribution's filesystem layout.
	if _, err := os.Stat(filepath.Join(r.Dir(), "storage", "docker", "registry", "v2", "repositories", repo)); err != nil {
		t.Errorf("repository not stored under Dir: %v", err)
	}
}

func TestDeleteTagThenManifest(t *testing.T) {
	ctx := context.Background()
	r := start(t, registry.Options{})
	c := r.Client()
	repo := repoName(t, "web")

	a, err := c.Publish(ctx, repo, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, repo, "1.1.0"); err != nil {
		t.Fatal(err)
	}

	if err := c.Delete(ctx, repo, "1.1.0"); err != nil {
		t.Fatalf("Delete tag: %v", err)
	}
	tags, err := c.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1.0.0"}, tags); diff != "" {
		t.Errorf("tags after deleting 1.1.0 (-want +got):\n%s", diff)
	}

	if err := c.Delete(ctx, repo, a.Digest); err != nil {
		t.Fatalf("Delete digest: %v", err)
	}
	if _, err := c.Manifest(ctx, repo, a.Digest); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Manifest after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := c.Manifest(ctx, repo, "1.0.0"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("tag of a deleted manifest: err = %v, want ErrNotFound", err)
	}
}

func TestDeleteRefusedWhenDisabled(t *testing.T) {
	ctx := context.Background()
	p := registry.DefaultProfile()
	p.DeleteEnabled = false
	r := start(t, registry.Options{Profile: &p})
	repo := repoName(t, "app")
	if _, err := r.Client().Publish(ctx, repo, "1"); err != nil {
		t.Fatal(err)
	}
	err := r.Client().Delete(ctx, repo, "1")
	if err == nil || !strings.Contains(err.Error(), "DeleteEnabled") {
		t.Errorf("Delete with deletes disabled: err = %v, want a refusal naming Profile.DeleteEnabled", err)
	}
}

func TestStoragePersistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo := repoName(t, "api")

	r1, err := registry.Start(ctx, registry.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := r1.Client().Publish(ctx, repo, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	r2 := start(t, registry.Options{Dir: dir})
	got, err := r2.Client().Manifest(ctx, repo, "2.0.0")
	if err != nil {
		t.Fatalf("manifest after restart: %v", err)
	}
	if got.Digest != pushed.Digest {
		t.Errorf("digest after restart = %s, want %s", got.Digest, pushed.Digest)
	}
}

func TestStopReleasesThePort(t *testing.T) {
	ctx := context.Background()
	r, err := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	host := r.Host()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if conn, err := net.Dial("tcp", host); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Stop", host)
	}
	// The same address can be taken again at once: nothing holds it.
	again := start(t, registry.Options{Addr: host})
	if again.Host() != host {
		t.Errorf("restarted on %s, want %s", again.Host(), host)
	}
}

func TestBadOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	noCatalog := registry.DefaultProfile()
	noCatalog.CatalogMaxEntries = 0

	cases := []struct {
		name    string
		opts    registry.Options
		wantErr error
		mention string
	}{
		{"empty dir", registry.Options{}, registry.ErrInvalidOptions, "Options.Dir is empty"},
		{"dir is a file", registry.Options{Dir: file}, registry.ErrInvalidOptions, file},
		{"not loopback", registry.Options{Dir: t.TempDir(), Addr: "0.0.0.0:0"}, registry.ErrInvalidOptions, "loopback"},
		{"hostname", registry.Options{Dir: t.TempDir(), Addr: "localhost:0"}, registry.ErrInvalidOptions, "loopback"},
		{"no port", registry.Options{Dir: t.TempDir(), Addr: "127.0.0.1"}, registry.ErrInvalidOptions, "Options.Addr"},
		{"port in use", registry.Options{Dir: t.TempDir(), Addr: busy.Addr().String()}, registry.ErrStart, busy.Addr().String()},
		{"catalog limit", registry.Options{Dir: t.TempDir(), Profile: &noCatalog}, registry.ErrInvalidOptions, "CatalogMaxEntries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := registry.Start(context.Background(), tc.opts)
			if err == nil {
				_ = r.Stop(context.Background())
				t.Fatal("Start succeeded, want an error")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %q, want it to mention %q", err, tc.mention)
			}
		})
	}
}

func TestBadReferences(t *testing.T) {
	ctx := context.Background()
	r := start(t, registry.Options{})
	c := r.Client()
	for _, tc := range []struct{ repo, ref, mention string }{
		{"", "1", "repository name is empty"},
		{"Apps/Upper", "1", "lower-case"},
		{"apps/x", "", "tag or digest is empty"},
		{"apps/x", "sha256:nothex", "digest"},
		{"apps/x", "bad tag", "tag"},
	} {
		if _, err := c.Manifest(ctx, tc.repo, tc.ref); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("Manifest(%q, %q): err = %v, want it to mention %q", tc.repo, tc.ref, err, tc.mention)
		}
	}
	if _, err := c.Tags(ctx, repoName(t, "never-pushed")); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Tags of an unknown repository: err = %v, want ErrNotFound", err)
	}
	if _, err := c.Push(ctx, nil, "apps/x", "sha256:"+strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "push under a tag") {
		t.Errorf("Push to a digest: err = %v, want a refusal", err)
	}
}

func TestGeneratedImagesAreReproducible(t *testing.T) {
	a, err := registry.GenerateImage("apps/podinfo", "6.5.0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := registry.GenerateImage("apps/podinfo", "6.5.0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry.GenerateImage("apps/podinfo", "6.5.1")
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if da != db {
		t.Errorf("same repo:tag gave digests %s and %s", da, db)
	}
	if da == dc {
		t.Errorf("different tags gave the same digest %s", da)
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
}

func TestLogsGoToTheCallersLogger(t *testing.T) {
	ctx := context.Background()
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := start(t, registry.Options{Logger: log})
	if _, err := r.Client().Publish(ctx, repoName(t, "logged"), "1"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"registry started", "component=registry", "response completed", r.Host()} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// A push starts with HEAD probes answered 404; they are not the registry's errors.
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("a clean push logged errors:\n%s", out)
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestStopLeavesNoGoroutines: after Stop, the registry's goroutines (server, connections) are gone. One
// idle goroutine per started registry stays: distribution v3.1.2 starts a notifications broadcaster
// (github.com/docker/go-events) in handlers.NewApp that App.Shutdown never closes, and it is unexported.
func TestStopLeavesNoGoroutines(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	r, err := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Client().Publish(ctx, repoName(t, "leak"), "1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leftGoroutines()).NotTo(BeEmpty(), "while running, the registry has goroutines")
	g.Expect(r.Stop(ctx)).To(Succeed())
	g.Eventually(leftGoroutines).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(BeEmpty())
}

// leftGoroutines are the stacks of goroutines other than the test machinery's and distribution's
// unclosable broadcaster.
func leftGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, st := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(st, "testing.(*T).Run") || strings.Contains(st, "testing.tRunner") ||
			strings.Contains(st, "go-events.(*Broadcaster).run") || strings.Contains(st, "runtime.Stack") ||
			strings.Contains(st, "os/signal.signal_recv") || strings.TrimSpace(st) == "" {
			continue
		}
		out = append(out, st)
	}
	return out
}
