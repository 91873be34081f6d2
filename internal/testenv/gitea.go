package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// Gitea is the test binary's one real Gitea (twin/gitserver, from the tool cache), started on first use
// in a temporary state directory on a port the OS assigns, and stopped (its directory removed) by Run,
// which the package's TestMain must call. Gitea takes seconds to start, so the tests of a binary share
// it and keep apart by unique organization, user and repository names. A failed start fails every test
// that asks, with the same error.
func Gitea(t testing.TB) *gitserver.Server {
	t.Helper()
	return sharedGitea.get(t, "Gitea", startGitea).srv
}

// giteaServer is a Gitea with the state directory testenv made for it.
type giteaServer struct {
	srv *gitserver.Server
	dir string
}

func startGitea() (*giteaServer, error) {
	dir, err := os.MkdirTemp("", "testenv-gitea-")
	if err != nil {
		return nil, fmt.Errorf("create Gitea's state directory: %w", err)
	}
	srv, err := gitserver.Start(context.Background(), gitserver.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &giteaServer{srv: srv, dir: dir}, nil
}

func (g *giteaServer) stop(ctx context.Context) error {
	err := g.srv.Stop(ctx)
	if err != nil {
		err = fmt.Errorf("stop the shared Gitea: %w", err)
	}
	return errors.Join(err, os.RemoveAll(g.dir))
}

// GiteaRepo creates the repository name under srv's admin user (default branch main) and returns a work
// clone that pushes to it with the admin's token, with files (slash-separated path -> content) committed
// and pushed as the first commit of main, and that commit's SHA, once Gitea's API shows main at it. The
// Repo's URL is the clone URL without credentials: a GitRepository reads it with the admin's user name
// and token (srv.AdminUser(), srv.AdminToken()) in its Secret.
func GiteaRepo(t testing.TB, srv *gitserver.Server, name string, files map[string]string) (*Repo, string) {
	t.Helper()
	admin := srv.Admin()
	repo := gitserver.Repo{Owner: admin.User(), Name: name}
	if err := admin.CreateRepo(context.Background(), repo, gitserver.RepoOptions{DefaultBranch: "main"}); err != nil {
		t.Fatalf("create Gitea repository %s: %v", repo, err)
	}
	cloneURL := admin.CloneURL(repo)
	push, err := url.Parse(cloneURL)
	if err != nil {
		t.Fatalf("Gitea clone URL %q: %v", cloneURL, err)
	}
	push.User = url.UserPassword(admin.User(), srv.AdminToken())
	work, err := NewWorkRepo(cloneURL, push.String(), t.TempDir())
	if err != nil {
		t.Fatalf("work clone of %s: %v", repo, err)
	}
	sha, err := work.Commit("main", "seed", files)
	if err != nil {
		t.Fatalf("seed %s: %v", repo, srv.Redact(err.Error()))
	}
	// Gitea takes the push at once but updates its branch table asynchronously: wait, so the API (pull
	// requests, branch queries) agrees with Git from the start.
	if err := admin.WaitBranch(context.Background(), repo, "main", sha); err != nil {
		t.Fatalf("seed %s: %v", repo, err)
	}
	return work, sha
}
