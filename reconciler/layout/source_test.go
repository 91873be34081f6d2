package layout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
)

// readTree returns a testdata repository's files (slash paths -> content), to commit them.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func validateDir(t *testing.T, dir string) *layout.Report {
	t.Helper()
	rep, err := layout.Validate(context.Background(), load(t, dir), layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRemoteSource clones a repository over Git's smart HTTP (git http-backend behind basic auth) and
// validates a branch, a tag and a commit of it; bad credentials and an unknown ref are clear errors.
func TestRemoteSource(t *testing.T) {
	const user, token = "validator", "s3cret-token"
	srv := testenv.Git(t, user, token)
	repo, err := srv.CreateRepo("layout-"+strings.ToLower(t.Name()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, err := repo.Commit("main", "a clean layout", readTree(t, filepath.Join("testdata", "namespace", "pass")))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag("v1.0.0"); err != nil {
		t.Fatal(err)
	}
	bad, err := repo.Commit("feature", "a change that breaks namespace scope", readTree(t, filepath.Join("testdata", "namespace", "fail")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		ref      string
		commit   string
		findings bool
	}{
		{"main", good, false},
		{"v1.0.0", good, false},
		{"feature", bad, true},
		{bad[:10], bad, true},
		{"", good, false}, // HEAD: the default branch
	} {
		t.Run("ref="+tc.ref, func(t *testing.T) {
			src, err := layout.OpenSource(ctx, repo.URL, layout.SourceOptions{Ref: tc.ref, Username: user, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Commit != tc.commit || !strings.HasSuffix(src.Revision, "@sha1:"+tc.commit) {
				t.Errorf("revision %s, want commit %s", src.Revision, tc.commit)
			}
			if _, err := os.Stat(filepath.Join(src.Dir, ".git")); !os.IsNotExist(err) {
				t.Errorf("the tree holds .git: %v", err)
			}
			rep := validateDir(t, src.Dir)
			if got := len(of(rep, layout.RuleNamespaceScope)) > 0; got != tc.findings {
				t.Errorf("HT005 findings %v, want %v: %+v", got, tc.findings, rep.Findings)
			}
			dir := src.Dir
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("Close left %s", dir)
			}
		})
	}

	_, err = layout.OpenSource(ctx, repo.URL, layout.SourceOptions{Ref: "main", Username: user, Token: "wrong"})
	if !errors.Is(err, layout.ErrSource) || !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong token: %v", err)
	}
	_, err = layout.OpenSource(ctx, repo.URL, layout.SourceOptions{Ref: "nope", Username: user, Token: token})
	if !errors.Is(err, layout.ErrSource) || !strings.Contains(err.Error(), `--ref "nope"`) || !strings.Contains(err.Error(), "feature") {
		t.Errorf("unknown ref: %v", err)
	}
	_, err = layout.OpenSource(ctx, "ssh://git@example.invalid/x.git", layout.SourceOptions{})
	if !errors.Is(err, layout.ErrInput) {
		t.Errorf("ssh URL: %v", err)
	}
}

// TestLocalRef validates an older revision of a local repository, and a sub-folder of it, without
// touching the work tree.
func TestLocalRef(t *testing.T) {
	srv := testenv.Git(t, "u", "p")
	work := t.TempDir()
	repo, err := srv.CreateRepo("local-"+strings.ToLower(t.Name()), work)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for p, c := range readTree(t, filepath.Join("testdata", "namespace", "pass")) {
		files["platform/"+p] = c
	}
	first, err := repo.Commit("main", "clean", files)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string]string{}
	for p, c := range readTree(t, filepath.Join("testdata", "namespace", "fail")) {
		files["platform/"+p] = c
	}
	if _, err := repo.Commit("main", "broken", files); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(work, "platform")
	// The work tree (HEAD) is broken; HEAD~1 and the first commit are clean.
	if rep := validateDir(t, sub); len(of(rep, layout.RuleNamespaceScope)) == 0 {
		t.Fatal("the work tree should be broken")
	}
	for _, ref := range []string{"HEAD~1", first, first[:8]} {
		src, err := layout.OpenSource(context.Background(), sub, layout.SourceOptions{Ref: ref})
		if err != nil {
			t.Fatalf("ref %s: %v", ref, err)
		}
		if src.Commit != first {
			t.Errorf("ref %s resolved to %s, want %s", ref, src.Commit, first)
		}
		if _, err := os.Stat(filepath.Join(src.Dir, "fluxconfigs.yaml")); err != nil {
			t.Errorf("ref %s: the sub-folder's content is not at the tree's root: %v", ref, err)
		}
		if rep := validateDir(t, src.Dir); len(rep.Findings) != 0 {
			t.Errorf("ref %s: %+v", ref, rep.Findings)
		}
		_ = src.Close()
	}
	if _, err := layout.OpenSource(context.Background(), t.TempDir(), layout.SourceOptions{Ref: "main"}); !errors.Is(err, layout.ErrSource) || !strings.Contains(err.Error(), "not inside one") {
		t.Errorf("not a repository: %v", err)
	}
}
