package testenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // envtest logs through it, and without a logger prints a stack trace
	os.Exit(testenv.Run(m))
}

// clone clones url (credentials in it) into a new folder and returns the folder's file at path.
func clone(t *testing.T, url, path string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("git", "clone", "-q", url, dir)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withAuth puts user and password into an http URL.
func withAuth(url, user, password string) string {
	return strings.Replace(url, "://", "://"+user+":"+password+"@", 1)
}

// The light Git server serves a seeded repository behind basic auth, at the commit SeededRepo returns.
func TestSeededRepoOnGit(t *testing.T) {
	g := testenv.Git(t, "reader", "s3cret")
	repo, sha := testenv.SeededRepo(t, g, "fleet", map[string]string{"apps/cm.yaml": "kind: ConfigMap\n"})
	if len(sha) != 40 {
		t.Fatalf("SeededRepo's commit %q is not a SHA", sha)
	}
	if got := clone(t, withAuth(repo.URL, "reader", "s3cret"), "apps/cm.yaml"); got != "kind: ConfigMap\n" {
		t.Errorf("apps/cm.yaml = %q", got)
	}
	if g.Requests() == 0 {
		t.Error("the clone made no authenticated request")
	}
}

// The shared Gitea holds a seeded repository under its admin user, readable with the admin's token.
func TestGiteaRepo(t *testing.T) {
	srv := testenv.Gitea(t)
	if again := testenv.Gitea(t); again != srv {
		t.Fatal("Gitea started a second server; the tests of a binary share one")
	}
	repo, sha := testenv.GiteaRepo(t, srv, "testenv-seeded", map[string]string{"apps/cm.yaml": "kind: ConfigMap\n"})
	got, err := srv.Admin().BranchCommit(context.Background(), gitserver.Repo{Owner: srv.AdminUser(), Name: "testenv-seeded"}, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got != sha {
		t.Errorf("main is at %s, GiteaRepo said %s", got, sha)
	}
	if got := clone(t, withAuth(repo.URL, srv.AdminUser(), srv.AdminToken()), "apps/cm.yaml"); got != "kind: ConfigMap\n" {
		t.Errorf("apps/cm.yaml = %q", got)
	}
}

// APIServer and SharedAPIServer answer as admins; the shared one is the same server for every caller.
func TestAPIServers(t *testing.T) {
	own := kubernetes.NewForConfigOrDie(testenv.APIServer(t))
	shared := kubernetes.NewForConfigOrDie(testenv.SharedAPIServer(t))
	again := kubernetes.NewForConfigOrDie(testenv.SharedAPIServer(t))
	ctx := context.Background()
	if _, err := shared.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "testenv-shared"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := again.CoreV1().Namespaces().Get(ctx, "testenv-shared", metav1.GetOptions{}); err != nil {
		t.Errorf("the shared API server's second caller does not see the first's namespace: %v", err)
	}
	if _, err := own.CoreV1().Namespaces().Get(ctx, "testenv-shared", metav1.GetOptions{}); err == nil {
		t.Error("a test's own API server holds the shared one's namespace")
	}
}
