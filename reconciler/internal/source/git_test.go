package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
)

func newServer(t *testing.T) *testenv.GitServer {
	t.Helper()
	return testenv.Git(t, "flux", "s3cret")
}

func newRepo(t *testing.T, g *testenv.GitServer) *testenv.Repo {
	t.Helper()
	r, err := g.CreateRepo(strings.ReplaceAll(t.Name(), "/", "-"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCommit(t *testing.T, r *testenv.Repo, branch string, files map[string]string, remove ...string) string {
	t.Helper()
	sha, err := r.Commit(branch, "test", files, remove...)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

func TestFetchRefsAndRevisions(t *testing.T) {
	g := newServer(t)
	r := newRepo(t, g)
	auth := &Auth{Username: g.Username, Password: g.Password}
	c1 := mustCommit(t, r, "main", map[string]string{"apps/cm.yaml": "a: 1\n"})
	if err := r.Tag("v1.0.0"); err != nil {
		t.Fatal(err)
	}
	c2 := mustCommit(t, r, "main", map[string]string{"apps/cm.yaml": "a: 2\n"})
	if err := r.Tag("v1.2.0"); err != nil {
		t.Fatal(err)
	}
	c3 := mustCommit(t, r, "main", map[string]string{"apps/cm.yaml": "a: 3\n"})
	if err := r.Tag("v2.0.0"); err != nil {
		t.Fatal(err)
	}
	dev := mustCommit(t, r, "dev", map[string]string{"apps/cm.yaml": "a: dev\n"})

	cases := []struct {
		name    string
		ref     Ref
		want    string
		content string
	}{
		{name: "branch", ref: Ref{Branch: "main"}, want: "main@sha1:" + c3, content: "a: 3\n"},
		{name: "other branch", ref: Ref{Branch: "dev"}, want: "dev@sha1:" + dev, content: "a: dev\n"},
		{name: "tag", ref: Ref{Tag: "v1.0.0"}, want: "v1.0.0@sha1:" + c1, content: "a: 1\n"},
		{name: "semver", ref: Ref{SemVer: "1.x"}, want: "v1.2.0@sha1:" + c2, content: "a: 2\n"},
		{name: "semver over tag", ref: Ref{SemVer: ">=1.0.0", Tag: "v1.0.0"}, want: "v2.0.0@sha1:" + c3, content: "a: 3\n"},
		{name: "commit wins over branch", ref: Ref{Branch: "main", Commit: c1}, want: "main@sha1:" + c1, content: "a: 1\n"},
		{name: "commit alone", ref: Ref{Commit: c2}, want: "sha1:" + c2, content: "a: 2\n"},
		{name: "name", ref: Ref{Name: "refs/heads/dev"}, want: "refs/heads/dev@sha1:" + dev, content: "a: dev\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			a, changed, err := s.Fetch(context.Background(), "ns/"+tc.name, Request{URL: r.URL, Ref: tc.ref, Auth: auth})
			if err != nil {
				t.Fatal(err)
			}
			if !changed || a.Revision != tc.want {
				t.Fatalf("revision %q changed=%v, want %q", a.Revision, changed, tc.want)
			}
			b, err := os.ReadFile(filepath.Join(a.Dir, "apps", "cm.yaml"))
			if err != nil || string(b) != tc.content {
				t.Fatalf("content %q (%v), want %q", b, err, tc.content)
			}
		})
	}
}

func TestFetchUpdatesAndRetiresArtifacts(t *testing.T) {
	g := newServer(t)
	r := newRepo(t, g)
	s := newStore(t)
	req := Request{URL: r.URL, Ref: Ref{Branch: "main"}, Auth: &Auth{Username: g.Username, Password: g.Password}}
	mustCommit(t, r, "main", map[string]string{"a.yaml": "x: 1\n"})
	a1, _, err := s.Fetch(context.Background(), "k", req)
	if err != nil {
		t.Fatal(err)
	}
	held := s.Acquire("k")
	same, changed, err := s.Fetch(context.Background(), "k", req)
	if err != nil || changed || same != a1 {
		t.Fatalf("unchanged fetch: changed=%v err=%v", changed, err)
	}
	c2 := mustCommit(t, r, "main", map[string]string{"b.yaml": "x: 2\n"})
	a2, changed, err := s.Fetch(context.Background(), "k", req)
	if err != nil || !changed || a2.Revision != "main@sha1:"+c2 {
		t.Fatalf("new commit: %v %v %v", a2, changed, err)
	}
	if _, err := os.Stat(a1.Dir); err != nil {
		t.Fatalf("a held artifact must survive: %v", err)
	}
	held.Release()
	if _, err := os.Stat(a1.Dir); !os.IsNotExist(err) {
		t.Fatalf("released old artifact must be deleted, stat: %v", err)
	}
	if a1.Digest == a2.Digest {
		t.Fatal("digest must change with content")
	}
}

func TestIgnore(t *testing.T) {
	g := newServer(t)
	r := newRepo(t, g)
	s := newStore(t)
	mustCommit(t, r, "main", map[string]string{
		"apps/cm.yaml": "a: 1\n", "apps/logo.png": "png", "docs/readme.yaml": "doc: 1\n",
		"apps/.sourceignore": "secret.yaml\n", "apps/secret.yaml": "s: 1\n", "keep/keep.yaml": "k: 1\n", "keep/drop.yaml": "d: 1\n",
	})
	ignore := "/docs/\n/keep/*\n!/keep/keep.yaml\n"
	a, _, err := s.Fetch(context.Background(), "k", Request{URL: r.URL, Ref: Ref{Branch: "main"}, Ignore: &ignore,
		Auth: &Auth{Username: g.Username, Password: g.Password}})
	if err != nil {
		t.Fatal(err)
	}
	// Patterns exist, so they replace the default exclusions: the .png stays.
	for p, want := range map[string]bool{"apps/cm.yaml": true, "apps/logo.png": true, "docs/readme.yaml": false,
		"apps/secret.yaml": false, "keep/keep.yaml": true, "keep/drop.yaml": false} {
		_, err := os.Stat(filepath.Join(a.Dir, p))
		if got := err == nil; got != want {
			t.Errorf("%s present=%v, want %v", p, got, want)
		}
	}

	// Without any pattern the defaults exclude images.
	r2 := newRepo(t, g)
	mustCommit(t, r2, "main", map[string]string{"apps/cm.yaml": "a: 1\n", "apps/logo.png": "png"})
	a2, _, err := newStore(t).Fetch(context.Background(), "k2", Request{URL: r2.URL, Ref: Ref{Branch: "main"},
		Auth: &Auth{Username: g.Username, Password: g.Password}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(a2.Dir, "apps", "logo.png")); !os.IsNotExist(err) {
		t.Errorf("default exclusions must drop *.png, stat: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	g := newServer(t)
	r := newRepo(t, g)
	mustCommit(t, r, "main", map[string]string{"a.yaml": "x: 1\n"})
	good := &Auth{Username: g.Username, Password: g.Password}
	cases := []struct {
		name string
		req  Request
		want error
		msg  string
	}{
		{name: "bad password", req: Request{URL: r.URL, Ref: Ref{Branch: "main"}, Auth: &Auth{Username: "flux", Password: "wrong"}}, want: ErrAuth},
		{name: "no such branch", req: Request{URL: r.URL, Ref: Ref{Branch: "nope"}, Auth: good}, want: ErrRefNotFound, msg: "branch 'nope'"},
		{name: "default branch is master", req: Request{URL: r.URL, Auth: good}, want: ErrRefNotFound, msg: "branch 'master'"},
		{name: "bad semver", req: Request{URL: r.URL, Ref: Ref{SemVer: "not a range"}, Auth: good}, want: ErrInvalidSemVer},
		{name: "no matching tag", req: Request{URL: r.URL, Ref: Ref{SemVer: ">=9"}, Auth: good}, want: ErrRefNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newStore(t).Fetch(context.Background(), "k", tc.req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// BenchmarkFetch1000 fetches flux-benchmark's repository shape (1000 app directories of one file each)
// into an empty store: the clone, the checkout of the tree into an artifact, ignore rules and digest.
func BenchmarkFetch1000(b *testing.B) {
	g := testenv.Git(b, "flux", "s3cret")
	files := map[string]string{}
	for i := 0; i < 1000; i++ {
		files[fmt.Sprintf("apps/app-%04d/cm.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%04d\ndata:\n  index: ${INDEX}\n", i)
	}
	r, _ := testenv.SeededRepo(b, g, "bench-1000", files)
	req := Request{URL: r.URL, Ref: Ref{Branch: "main"}, Auth: &Auth{Username: g.Username, Password: g.Password}}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		s, err := NewStore(b.TempDir(), time.Now)
		if err != nil {
			b.Fatal(err)
		}
		a, _, err := s.Fetch(context.Background(), "ns/repo", req)
		if err != nil {
			b.Fatal(err)
		}
		if a.Size == 0 {
			b.Fatal("empty artifact")
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIgnoreMatchesFluxOnDisk checks the in-memory ignore evaluation against fluxcd/pkg/sourceignore
// applied the way source-controller applies it: every file checked out, .sourceignore files loaded
// from disk (LoadIgnorePatterns), then a walk that drops what the matcher excludes. Nested
// .sourceignore files, negations, directory patterns and spec.ignore all take part; the kept files and
// the digest must be the same.
func TestIgnoreMatchesFluxOnDisk(t *testing.T) {
	g := newServer(t)
	r := newRepo(t, g)
	files := map[string]string{
		".sourceignore":               "*.md\n!keep.md\n/build/\n",
		"README.md":                   "r\n",
		"keep.md":                     "k\n",
		"build/out.yaml":              "o: 1\n",
		"apps/.sourceignore":          "secret*.yaml\n!secret-public.yaml\ntmp/\n",
		"apps/a.yaml":                 "a: 1\n",
		"apps/secret.yaml":            "s: 1\n",
		"apps/secret-public.yaml":     "p: 1\n",
		"apps/tmp/x.yaml":             "x: 1\n",
		"apps/sub/.sourceignore":      "!README.md\n",
		"apps/sub/README.md":          "sub\n",
		"apps/sub/b.yaml":             "b: 1\n",
		"apps-extra/c.yaml":           "c: 1\n",
		"apps-extra/.sourceignore":    "c.yaml\n",
		"infra/logo.png":              "png",
		"infra/deep/er/d.yaml":        "d: 1\n",
		"infra/deep/er/.sourceignore": "/d.yaml\n",
	}
	mustCommit(t, r, "main", files)
	for _, ignore := range []*string{nil, ptrTo("/infra/deep/\n"), ptrTo("!/build/out.yaml\n*.yaml\n!apps/a.yaml\n"), ptrTo("!/build/out.yaml\n")} {
		a, _, err := newStore(t).Fetch(context.Background(), "k", Request{URL: r.URL, Ref: Ref{Branch: "main"}, Ignore: ignore,
			Auth: &Auth{Username: g.Username, Password: g.Password}})
		if err != nil {
			t.Fatal(err)
		}
		full := t.TempDir()
		for p, c := range files {
			fp := filepath.Join(full, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fp, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := fluxIgnoreOnDisk(full, ignore); err != nil {
			t.Fatal(err)
		}
		desc := "none"
		if ignore != nil {
			desc = fmt.Sprintf("%q", *ignore)
		}
		want, wantDigest := listAndDigest(t, full)
		got, gotDigest := listAndDigest(t, a.Dir)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("spec.ignore %s: kept %v, source-controller keeps %v", desc, got, want)
		}
		if gotDigest != wantDigest || a.Digest != wantDigest {
			t.Errorf("spec.ignore %s: digest %s (artifact %s), want %s", desc, gotDigest, a.Digest, wantDigest)
		}
	}
}

func ptrTo(s string) *string { return &s }

// fluxIgnoreOnDisk removes what source-controller's storage.SourceIgnoreFilter would leave out.
func fluxIgnoreOnDisk(dir string, ignore *string) error {
	domain := strings.Split(dir, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(dir, domain)
	if err != nil {
		return err
	}
	if ignore != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*ignore), domain)...)
	}
	m := sourceignore.NewDefaultMatcher(nil, domain)
	if len(ps) > 0 {
		m = gitignore.NewMatcher(append(sourceignore.VCSPatterns(domain), ps...))
	}
	var drop []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if m.Match(strings.Split(p, string(filepath.Separator)), d.IsDir()) {
			drop = append(drop, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	for _, p := range drop {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return err
}

// listAndDigest lists the regular files under dir and digests them as Artifact.Digest is defined.
func listAndDigest(t *testing.T, dir string) ([]string, string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return files, "sha256:" + hex.EncodeToString(h.Sum(nil))
}
