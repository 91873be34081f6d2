package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GitServer serves bare repositories over Git's smart HTTP protocol (git http-backend), behind HTTP
// basic auth: the light Git server, in process, for tests that need Git's wire protocol but none of
// Gitea's features (for those: Gitea). The wire protocol go-git speaks to it is the same.
type GitServer struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234; repositories are at URL/<name>.git.
	URL                string
	Username, Password string

	root    string
	srv     *http.Server
	ln      net.Listener
	mu      sync.Mutex
	served  int
	servers sync.WaitGroup
}

// Git serves repositories for this test on an OS-assigned loopback port, behind basic auth with user and
// password; it stops when the test ends.
func Git(t testing.TB, user, password string) *GitServer {
	t.Helper()
	g, err := StartGitServer(t.TempDir(), user, password)
	if err != nil {
		t.Fatalf("start a Git server: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// SeededRepo creates the repository name on g, with a work clone, and commits and pushes files
// (slash-separated path -> content) as the first commit of main. It returns the repository and that
// commit's SHA.
func SeededRepo(t testing.TB, g *GitServer, name string, files map[string]string) (*Repo, string) {
	t.Helper()
	repo, err := g.CreateRepo(name, t.TempDir())
	if err != nil {
		t.Fatalf("create repository %s: %v", name, err)
	}
	sha, err := repo.Commit("main", "seed", files)
	if err != nil {
		t.Fatalf("seed repository %s: %v", name, err)
	}
	return repo, sha
}

// StartGitServer serves repositories below root on an OS-assigned loopback port; Close stops it. Git
// is the same for one test. An empty username serves without authentication, as a public repository is
// (a GitRepository without secretRef), and takes any credentials sent.
func StartGitServer(root, username, password string) (*GitServer, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git is needed to serve test repositories: %w", err)
	}
	out, err := exec.Command(gitPath, "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	g := &GitServer{URL: "http://" + ln.Addr().String(), Username: username, Password: password, root: root, ln: ln}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	g.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if username != "" && (!ok || u != username || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.served++
		g.mu.Unlock()
		h.ServeHTTP(w, r)
	})}
	g.servers.Add(1)
	go func() {
		defer g.servers.Done()
		_ = g.srv.Serve(ln)
	}()
	return g, nil
}

// Requests is how many authenticated requests the server has answered.
func (g *GitServer) Requests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.served
}

// Close stops serving.
func (g *GitServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := g.srv.Shutdown(ctx)
	g.servers.Wait()
	return err
}

// Repo is a bare repository on the server plus a working clone to commit from.
type Repo struct {
	// URL is the repository's HTTP URL (needs the server's basic-auth credentials).
	URL  string
	bare string
	work string
	mu   sync.Mutex
}

// CreateRepo creates an empty bare repository name.git with default branch main, and a working
// clone in workDir.
func (g *GitServer) CreateRepo(name, workDir string) (*Repo, error) {
	bare := filepath.Join(g.root, name+".git")
	if _, err := runGit("", "init", "--bare", "--initial-branch=main", bare); err != nil {
		return nil, err
	}
	if _, err := runGit("", "init", "--initial-branch=main", workDir); err != nil {
		return nil, err
	}
	if _, err := runGit(workDir, "remote", "add", "origin", bare); err != nil {
		return nil, err
	}
	return &Repo{URL: g.URL + "/" + name + ".git", bare: bare, work: workDir}, nil
}

// Commit writes files (path -> content), removes the paths in remove, commits everything in the work
// tree on branch, and pushes it. It returns the commit SHA.
func (r *Repo) Commit(branch, message string, files map[string]string, remove ...string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.commitLocked(branch, message, files, remove)
	if err != nil {
		return "", err
	}
	if _, err := runGit(r.work, "push", "-q", "-f", "origin", branch); err != nil {
		return "", err
	}
	return sha, nil
}

// CommitWithoutPush is Commit without the push; Push sends it. Benchmarks time the push alone.
func (r *Repo) CommitWithoutPush(branch, message string, files map[string]string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commitLocked(branch, message, files, nil)
}

// commitLocked writes files, removes the paths in remove and commits on branch; it returns the commit
// SHA. Callers hold r.mu.
func (r *Repo) commitLocked(branch, message string, files map[string]string, remove []string) (string, error) {
	if _, err := runGit(r.work, "checkout", "-B", branch); err != nil {
		return "", err
	}
	for p, content := range files {
		full := filepath.Join(r.work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, p := range remove {
		if err := os.RemoveAll(filepath.Join(r.work, filepath.FromSlash(p))); err != nil {
			return "", err
		}
	}
	if _, err := runGit(r.work, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := runGit(r.work, "commit", "--allow-empty", "-q", "-m", message); err != nil {
		return "", err
	}
	sha, err := runGit(r.work, "rev-parse", "HEAD")
	return strings.TrimSpace(sha), err
}

// Push pushes branch to the remote.
func (r *Repo) Push(branch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := runGit(r.work, "push", "-q", "-f", "origin", branch)
	return err
}

// Tag creates an annotated tag at the work tree's HEAD and pushes it.
func (r *Repo) Tag(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := runGit(r.work, "tag", "-a", "-f", "-m", name, name); err != nil {
		return err
	}
	_, err := runGit(r.work, "push", "-q", "-f", "origin", "refs/tags/"+name)
	return err
}

func runGit(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=hybridtwin", "GIT_AUTHOR_EMAIL=twin@example.invalid",
		"GIT_COMMITTER_NAME=hybridtwin", "GIT_COMMITTER_EMAIL=twin@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// NewWorkRepo makes a working clone in workDir whose pushes go to pushURL (which may carry
// credentials, e.g. a Gitea token as the password); url is the repository's URL as a GitRepository
// names it. Use it to commit to a repository on another Git server, such as Gitea.
func NewWorkRepo(url, pushURL, workDir string) (*Repo, error) {
	if _, err := runGit("", "init", "--initial-branch=main", workDir); err != nil {
		return nil, err
	}
	if _, err := runGit(workDir, "remote", "add", "origin", pushURL); err != nil {
		return nil, err
	}
	return &Repo{URL: url, work: workDir}, nil
}
