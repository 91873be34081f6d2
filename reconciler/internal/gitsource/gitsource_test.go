package gitsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler/reconcilertest"
)

func newServer(t *testing.T) *reconcilertest.GitServer {
	t.Helper()
	g, err := reconcilertest.StartGitServer(t.TempDir(), "flux", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func newRepo(t *testing.T, g *reconcilertest.GitServer) *reconcilertest.Repo {
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

func mustCommit(t *testing.T, r *reconcilertest.Repo, branch string, files map[string]string, remove ...string) string {
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
