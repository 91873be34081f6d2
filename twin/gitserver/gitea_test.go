package gitserver_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// fileAt reads a file of a repository at ref through the API, as the admin.
func fileAt(t *testing.T, srv *gitserver.Server, repo gitserver.Repo, ref, path string) string {
	t.Helper()
	g, err := gitea.NewClient(srv.URL(), gitea.SetToken(srv.AdminToken()), gitea.SetGiteaVersion(srv.Profile().GiteaVersion))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := g.GetContents(repo.Owner, repo.Name, ref, path)
	if err != nil {
		t.Fatalf("read %s at %s of %s: %v", path, ref, repo, err)
	}
	b, err := base64.StdEncoding.DecodeString(*c.Content)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// persona makes a user of persona p in org and returns a client acting as them.
func persona(t *testing.T, admin *gitserver.Client, org, name string, p gitserver.Persona) *gitserver.Client {
	c, _ := personaUser(t, admin, org, name, p)
	return c
}

func personaUser(t *testing.T, admin *gitserver.Client, org, name string, p gitserver.Persona) (*gitserver.Client, *gitserver.User) {
	t.Helper()
	ctx := context.Background()
	u, err := admin.CreateUser(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.AssignPersona(ctx, org, u, p); err != nil {
		t.Fatal(err)
	}
	return admin.As(u), u
}

// TestPullRequestFlowOnProtectedMain is the Gitea acceptance test: create a repository, push a
// layout, protect main; a direct push to main is rejected; a pull request with one approval merges; the
// webhook arrives at a local receiver with a valid HMAC signature.
func TestPullRequestFlowOnProtectedMain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()
	org := unique(t, "org")

	secret := "whsec-" + unique(t, "secret")
	recv := gitserver.NewReceiver(secret, nil)
	hook := httptest.NewServer(recv)
	defer hook.Close()

	layout, err := gitserver.LoadLayout(filepath.Join(examples, "dir-per-env"))
	g.Expect(err).NotTo(HaveOccurred())
	spec := layout.SeedSpec(org)
	spec.Rewrite, spec.Protect = gitserver.RegistryRewrite("127.0.0.1:5999"), true
	spec.Webhooks = []gitserver.Webhook{{URL: hook.URL + "/hook", Secret: secret}}
	result, err := admin.Seed(ctx, spec)
	g.Expect(err).NotTo(HaveOccurred())
	seeded := result.Repos
	g.Expect(seeded).To(HaveLen(1))
	repo := seeded[0].Repo
	g.Expect(repo).To(Equal(gitserver.Repo{Owner: org, Name: "gitops-config"}))

	// The layout is on main, with the placeholder registry replaced.
	mainCommit, err := admin.BranchCommit(ctx, repo, "main")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mainCommit).To(Equal(seeded[0].Commits["main"]))
	deploy := fileAt(t, srv, repo, "main", "apps/base/podinfo/deployment.yaml")
	g.Expect(deploy).To(ContainSubstring("image: 127.0.0.1:5999/apps/podinfo:6.5.0"))
	g.Expect(deploy).NotTo(ContainSubstring(gitserver.PlaceholderRegistry))

	alice, aliceUser := personaUser(t, admin, org, unique(t, "alice"), gitserver.ApplicationOperator)
	bob := persona(t, admin, org, unique(t, "bob"), gitserver.ApplicationOperator)
	dave := persona(t, admin, org, unique(t, "dave"), gitserver.ApplicationDeveloper)

	// The change: promote podinfo 6.5.1 to prod.
	work := copyDir(t, filepath.Join(layout.Dir, "gitops-config"))
	prodApps := filepath.Join(work, "apps", "prod", "kustomization.yaml")
	edit(t, prodApps, "name: registry.twin.local/apps/podinfo\n    newTag: \"6.5.0\"", "name: registry.twin.local/apps/podinfo\n    newTag: \"6.5.1\"")

	// A direct push to protected main is rejected, even for a maintainer, and main does not move.
	_, err = alice.PushDir(ctx, repo, "main", work, "Promote podinfo 6.5.1 to prod")
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))
	g.Expect(err.Error()).To(ContainSubstring("pre-receive hook declined"))
	g.Expect(err.Error()).NotTo(ContainSubstring(aliceUser.Token()))
	g.Expect(admin.BranchCommit(ctx, repo, "main")).To(Equal(mainCommit))

	// The same change on a branch, then a pull request.
	feature := "promote-podinfo-6.5.1"
	featureCommit, err := alice.PushDir(ctx, repo, feature, work, "Promote podinfo 6.5.1 to prod")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(admin.BranchCommit(ctx, repo, feature)).To(Equal(featureCommit))
	index, err := alice.OpenPullRequest(ctx, repo, gitserver.PullRequestOptions{Head: feature, Base: "main", Title: "Promote podinfo 6.5.1 to prod"})
	g.Expect(err).NotTo(HaveOccurred())

	// The author cannot approve their own pull request.
	g.Expect(alice.Approve(ctx, repo, index, "LGTM")).To(MatchError(gitserver.ErrForbidden))
	// Without an approval the merge is refused.
	_, err = alice.Merge(ctx, repo, index, gitserver.MergeOptions{})
	g.Expect(err).To(MatchError(gitserver.ErrForbidden))
	// A developer's approval is recorded but does not count: developers are not approvers.
	g.Expect(dave.Approve(ctx, repo, index, "looks fine to me")).To(Succeed())
	_, err = alice.Merge(ctx, repo, index, gitserver.MergeOptions{})
	g.Expect(err).To(MatchError(gitserver.ErrForbidden))

	// One approval by another application operator: the merge goes through.
	g.Expect(bob.Approve(ctx, repo, index, "Approved for prod")).To(Succeed())
	merge, err := alice.Merge(ctx, repo, index, gitserver.MergeOptions{DeleteBranch: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(admin.BranchCommit(ctx, repo, "main")).To(Equal(merge))
	g.Expect(fileAt(t, srv, repo, "main", "apps/prod/kustomization.yaml")).To(ContainSubstring(`newTag: "6.5.1"`))
	pr, err := admin.GetPullRequest(ctx, repo, index)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr.Merged).To(BeTrue())

	// The merge's push reaches the receiver, signed with the secret.
	wctx, cancel := context.WithTimeout(ctx, srv.Profile().AsyncTimeout)
	defer cancel()
	d, err := recv.Wait(wctx, func(d gitserver.Delivery) bool {
		e, err := d.Push()
		return err == nil && e.Ref == "refs/heads/main" && e.After == merge
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.ID).NotTo(BeEmpty())
	e, _ := d.Push()
	g.Expect(e.Repository.FullName).To(Equal(repo.String()))
	g.Expect(recv.Rejected()).To(BeZero())
}

// TestPersonaAccess checks each persona's access on the multi-repo layout, where each repository holds one
// layer.
func TestPersonaAccess(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()
	org := unique(t, "org")

	layout, err := gitserver.LoadLayout(filepath.Join(examples, "multi-repo"))
	g.Expect(err).NotTo(HaveOccurred())
	spec := layout.SeedSpec(org)
	spec.Protect = true
	_, err = admin.Seed(ctx, spec)
	g.Expect(err).NotTo(HaveOccurred())
	clusterRepo := gitserver.Repo{Owner: org, Name: "cluster-config"}
	appRepo := gitserver.Repo{Owner: org, Name: "app-config"}
	clusterDir, _ := layout.BranchDir("cluster-config", "main")
	appDir, _ := layout.BranchDir("app-config", "main")

	carol := persona(t, admin, org, unique(t, "carol"), gitserver.ClusterOperator)
	alice := persona(t, admin, org, unique(t, "alice"), gitserver.ApplicationOperator)
	dave := persona(t, admin, org, unique(t, "dave"), gitserver.ApplicationDeveloper)

	// Developers read the application configuration and do not see the cluster-wide one.
	_, err = dave.BranchCommit(ctx, appRepo, "main")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = dave.BranchCommit(ctx, clusterRepo, "main")
	g.Expect(err).To(MatchError(gitserver.ErrNotFound))
	_, err = dave.PushDir(ctx, appRepo, unique(t, "dev-branch"), appDir, "a developer pushes")
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))

	// ... but proposes a change from a fork, which an application operator can approve.
	fork, err := dave.Fork(ctx, appRepo)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fork.Owner).To(Equal(dave.User()))
	change := copyDir(t, appDir)
	edit(t, filepath.Join(change, "orders", "base", "configmap.yaml"), `ORDERS_MAX_BATCH: "50"`, `ORDERS_MAX_BATCH: "80"`)
	branch := unique(t, "bigger-batches")
	_, err = dave.PushDir(ctx, fork, branch, change, "Raise the orders batch size")
	g.Expect(err).NotTo(HaveOccurred())
	index, err := dave.OpenPullRequest(ctx, appRepo, gitserver.PullRequestOptions{Head: dave.User() + ":" + branch, Base: "main", Title: "Raise the orders batch size"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = dave.Merge(ctx, appRepo, index, gitserver.MergeOptions{})
	g.Expect(err).To(MatchError(gitserver.ErrForbidden), "a developer cannot merge")

	// Each operator writes their own layer's repository (on a branch) and only reads the other's.
	_, err = carol.PushDir(ctx, clusterRepo, unique(t, "ops-branch"), clusterDir, "a cluster operator pushes a branch")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = carol.PushDir(ctx, appRepo, unique(t, "ops-branch"), appDir, "a cluster operator pushes to app-config")
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))
	_, err = alice.BranchCommit(ctx, clusterRepo, "main")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = alice.PushDir(ctx, clusterRepo, unique(t, "app-branch"), clusterDir, "an application operator pushes to cluster-config")
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))
	_, err = alice.PushDir(ctx, appRepo, unique(t, "app-branch"), appDir, "an application operator pushes a branch")
	g.Expect(err).NotTo(HaveOccurred())

	// A cluster operator's approval does not count on the application configuration; an application
	// operator's does, and the developer's change merges.
	g.Expect(carol.Approve(ctx, appRepo, index, "fine by the platform team")).To(Succeed())
	_, err = alice.Merge(ctx, appRepo, index, gitserver.MergeOptions{})
	g.Expect(err).To(MatchError(gitserver.ErrForbidden))
	g.Expect(alice.Approve(ctx, appRepo, index, "approved")).To(Succeed())
	_, err = alice.Merge(ctx, appRepo, index, gitserver.MergeOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fileAt(t, srv, appRepo, "main", "orders/base/configmap.yaml")).To(ContainSubstring(`ORDERS_MAX_BATCH: "80"`))
}

// TestBranchPerEnvironmentSeed pushes the branch-per-env layout: one branch per environment, the default
// branch first, the others starting from it so promotion pull requests share history; seeding again
// pushes nothing.
func TestBranchPerEnvironmentSeed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()
	org := unique(t, "org")

	layout, err := gitserver.LoadLayout(filepath.Join(examples, "branch-per-env"))
	g.Expect(err).NotTo(HaveOccurred())
	spec := layout.SeedSpec(org)
	spec.Protect = true
	result, err := admin.Seed(ctx, spec)
	g.Expect(err).NotTo(HaveOccurred())
	seeded := result.Repos
	repo := seeded[0].Repo
	g.Expect(seeded[0].Commits).To(HaveLen(3))
	g.Expect(admin.DefaultBranch(ctx, repo)).To(Equal("dev"))
	g.Expect(fileAt(t, srv, repo, "prod", "apps/podinfo/hpa.yaml")).To(ContainSubstring("minReplicas: 3"))
	g.Expect(fileAt(t, srv, repo, "dev", "apps/podinfo/hpa.yaml")).To(ContainSubstring("minReplicas: 1"))

	sdk, err := gitea.NewClient(srv.URL(), gitea.SetToken(srv.AdminToken()), gitea.SetGiteaVersion(srv.Profile().GiteaVersion))
	g.Expect(err).NotTo(HaveOccurred())
	for _, env := range []string{"staging", "prod"} {
		c, _, err := sdk.GetSingleCommit(repo.Owner, repo.Name, seeded[0].Commits[env])
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Parents).To(HaveLen(1), "branch %s starts from dev", env)
		g.Expect(c.Parents[0].SHA).To(Equal(seeded[0].Commits["dev"]))
	}

	// Seeding again changes nothing, protection included.
	again, err := admin.Seed(ctx, spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Repos[0].Commits).To(Equal(seeded[0].Commits))

	// Every environment branch is protected: changed content cannot be seeded over it.
	changed := copyDir(t, layout.Dir)
	edit(t, filepath.Join(changed, "branches", "prod", "apps", "podinfo", "hpa.yaml"), "minReplicas: 3", "minReplicas: 4")
	changedLayout, err := gitserver.LoadLayout(changed)
	g.Expect(err).NotTo(HaveOccurred())
	changedSpec := changedLayout.SeedSpec(org)
	changedSpec.Protect = true
	_, err = admin.Seed(ctx, changedSpec)
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))
	g.Expect(err.Error()).To(ContainSubstring("branch prod"))
}

// TestStartStopRestart runs a second Gitea: Stop ends its whole process group and frees its port, and a
// start on the same directory keeps the repositories and makes a new admin token.
func TestStartStopRestart(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	var logs syncBuffer
	srv, err := gitserver.Start(ctx, gitserver.Options{Dir: dir, Logger: textLogger(&logs)})
	g.Expect(err).NotTo(HaveOccurred())
	repo := gitserver.Repo{Owner: srv.AdminUser(), Name: unique(t, "repo")}
	g.Expect(srv.Admin().CreateRepo(ctx, repo, gitserver.RepoOptions{})).To(Succeed())
	firstToken, pid, url := srv.AdminToken(), srv.PID(), srv.URL()

	g.Expect(srv.Stop(ctx)).To(Succeed())
	g.Expect(srv.Stop(ctx)).To(Succeed(), "a second Stop is harmless")
	g.Expect(processGroupAlive(pid)).To(BeFalse(), "gitea's process group is gone")
	g.Expect(dialable(url)).To(BeFalse(), "the port is closed")
	g.Expect(childProcesses()).To(BeEmpty())
	// Each start writes its own output to LogFile (procgroup truncates it), so the first run's is read here.
	g.Expect(readFile(t, srv.LogFile())).To(ContainSubstring(fmt.Sprintf("Starting Gitea on PID: %d", pid)), "this run's output is in LogFile")
	g.Expect(readFile(t, srv.LogFile())).NotTo(ContainSubstring(firstToken))

	srv2, err := gitserver.Start(ctx, gitserver.Options{Dir: dir})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(srv2.Stop(ctx)).To(Succeed()) }()
	g.Expect(srv2.AdminToken()).NotTo(Equal(firstToken))
	_, err = srv2.Admin().DefaultBranch(ctx, repo)
	g.Expect(err).NotTo(HaveOccurred(), "the repository survives a restart")

	g.Expect(logs.String()).To(ContainSubstring("gitea started"))
	g.Expect(logs.String()).NotTo(ContainSubstring(firstToken))
	g.Expect(readFile(t, srv2.LogFile())).NotTo(ContainSubstring(firstToken))
	g.Expect(readFile(t, srv2.LogFile())).NotTo(ContainSubstring(srv2.AdminToken()))
}

// TestBadConfiguration: each bad configuration gets a clear error and leaves no process behind.
func TestBadConfiguration(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "a-file")
	writeFile(t, file, "not a directory")
	script := filepath.Join(t.TempDir(), "not-gitea")
	writeFile(t, script, "#!/bin/sh\necho 'this is not gitea' >&2\nexit 3\n")
	chmodX(t, script)
	silent := filepath.Join(t.TempDir(), "silent")
	writeFile(t, silent, "#!/bin/sh\nexit 0\n")
	chmodX(t, silent)
	garbage := filepath.Join(t.TempDir(), "garbage")
	writeFile(t, garbage, "\x7fELF but not really")
	chmodX(t, garbage)
	plain := filepath.Join(t.TempDir(), "plain")
	writeFile(t, plain, "not executable")
	badProfile := gitserver.DefaultProfile()
	badProfile.AsyncPoll = 0

	cases := []struct {
		name    string
		opts    gitserver.Options
		wantErr error
		mention []string
	}{
		{"empty dir", gitserver.Options{}, gitserver.ErrInvalidOptions, []string{"Options.Dir is empty"}},
		{"dir is a file", gitserver.Options{Dir: file}, gitserver.ErrInvalidOptions, []string{file, "is a file"}},
		{"binary missing", gitserver.Options{Dir: t.TempDir(), Binary: "/nonexistent/gitea"}, gitserver.ErrInvalidOptions, []string{"Options.Binary", "/nonexistent/gitea"}},
		{"binary not executable", gitserver.Options{Dir: t.TempDir(), Binary: plain}, gitserver.ErrInvalidOptions, []string{"not an executable"}},
		{"binary fails", gitserver.Options{Dir: t.TempDir(), Binary: script}, gitserver.ErrStart, []string{"gitea migrate", "this is not gitea"}},
		{"binary is not a program", gitserver.Options{Dir: t.TempDir(), Binary: garbage}, gitserver.ErrStart, []string{"gitea migrate", "exec format error"}},
		{"binary prints no token", gitserver.Options{Dir: t.TempDir(), Binary: silent}, gitserver.ErrStart, []string{"Access token was successfully created"}},
		{"bad profile", gitserver.Options{Dir: t.TempDir(), Profile: &badProfile}, gitserver.ErrInvalidOptions, []string{"Profile"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv, err := gitserver.Start(ctx, tc.opts)
			if srv != nil {
				_ = srv.Stop(ctx)
			}
			g.Expect(err).To(MatchError(tc.wantErr))
			for _, m := range tc.mention {
				g.Expect(err.Error()).To(ContainSubstring(m))
			}
			g.Expect(childProcesses()).To(BeEmpty())
		})
	}
}

// TestVersionMismatchStopsTheServer: Gitea starts and answers, but with another version than the profile
// pins; Start fails and kills what it started.
func TestVersionMismatchStopsTheServer(t *testing.T) {
	g := NewWithT(t)
	p := gitserver.DefaultProfile()
	p.GiteaVersion = "1.99.0"
	// The assets of the real version, taken from the shared server (there is no Gitea 1.99.0 module).
	assets := filepath.Join(server(t).Dir(), "static")
	_, err := gitserver.Start(context.Background(), gitserver.Options{Dir: t.TempDir(), Profile: &p, Assets: assets})
	g.Expect(err).To(MatchError(gitserver.ErrStart))
	g.Expect(err.Error()).To(ContainSubstring("pins 1.99.0"))
	g.Expect(childProcesses()).To(BeEmpty())
}

// TestClientErrors: bad arguments are refused before a request, and Gitea's refusals carry sentinels.
func TestClientErrors(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()

	g.Expect(admin.CreateOrg(ctx, "bad name")).To(MatchError(gitserver.ErrInvalidOptions))
	_, err := admin.CreateUser(ctx, "")
	g.Expect(err).To(MatchError(gitserver.ErrInvalidOptions))
	_, err = admin.BranchCommit(ctx, gitserver.Repo{Owner: srv.AdminUser(), Name: unique(t, "missing")}, "main")
	g.Expect(err).To(MatchError(gitserver.ErrNotFound))

	org := unique(t, "org")
	g.Expect(admin.CreateOrg(ctx, org)).To(Succeed())
	g.Expect(admin.CreateOrg(ctx, org)).To(MatchError(gitserver.ErrExists))
	_, err = admin.CreateWebhook(ctx, gitserver.Repo{Owner: org, Name: "x"}, gitserver.Webhook{URL: "http://127.0.0.1:1/", Secret: ""})
	g.Expect(err).To(MatchError(gitserver.ErrInvalidOptions))
	_, err = admin.PushDir(ctx, gitserver.Repo{Owner: org, Name: "x"}, "main", "/nonexistent", "msg")
	g.Expect(err).To(MatchError(gitserver.ErrInvalidOptions))

	// A wrong token is refused, and the error does not show it.
	bogus, err := gitserver.NewClient(srv.URL(), "nobody", strings.Repeat("f", 40), srv.Profile())
	g.Expect(err).NotTo(HaveOccurred())
	err = bogus.CreateOrg(ctx, unique(t, "org"))
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring(strings.Repeat("f", 40)))
	g.Expect(errors.Is(err, gitserver.ErrExists)).To(BeFalse())
}

// TestWaitBranchTimesOut: waiting for a commit that never comes ends with the profile's timeout, naming
// what was awaited.
func TestWaitBranchTimesOut(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	p := srv.Profile()
	p.AsyncTimeout = 300 * time.Millisecond
	c, err := gitserver.NewClient(srv.URL(), srv.AdminUser(), srv.AdminToken(), p)
	g.Expect(err).NotTo(HaveOccurred())
	repo := gitserver.Repo{Owner: srv.AdminUser(), Name: unique(t, "repo")}
	g.Expect(c.CreateRepo(ctx, repo, gitserver.RepoOptions{})).To(Succeed())
	err = c.WaitBranch(ctx, repo, "main", strings.Repeat("a", 40))
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(err.Error()).To(ContainSubstring("branch main of " + repo.String()))
}

// TestGiteaDiesWithItsParent: when the process that started Gitea dies without calling Stop (Ctrl-C, a
// crash, SIGKILL), Gitea dies with it (Pdeathsig), so nothing is left running.
func TestGiteaDiesWithItsParent(t *testing.T) {
	g := NewWithT(t)
	assets := filepath.Join(server(t).Dir(), "static")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartGiteaAndHang$")
	cmd.Env = append(os.Environ(), "GITSERVER_HELPER_DIR="+t.TempDir(), "GITSERVER_HELPER_ASSETS="+assets)
	out, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "GITEA-PID %d", &pid); err == nil {
			break
		}
		if strings.HasPrefix(sc.Text(), "GITEA-ERR") {
			t.Fatal(sc.Text())
		}
	}
	g.Expect(pid).To(BeNumerically(">", 0), "the helper reports gitea's pid")
	g.Expect(processGroupAlive(pid)).To(BeTrue())

	g.Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	_ = cmd.Wait()
	g.Eventually(func() bool { return processGroupAlive(pid) }).
		WithTimeout(gitserver.DefaultProfile().StopTimeout).WithPolling(20 * time.Millisecond).Should(BeFalse())
}

// TestHelperStartGiteaAndHang is TestGiteaDiesWithItsParent's child process: it starts Gitea, reports its
// pid and waits to be killed. It does nothing in a normal run.
func TestHelperStartGiteaAndHang(t *testing.T) {
	dir := os.Getenv("GITSERVER_HELPER_DIR")
	if dir == "" {
		t.Skip("the child process of TestGiteaDiesWithItsParent")
	}
	s, err := gitserver.Start(context.Background(), gitserver.Options{Dir: dir, Assets: os.Getenv("GITSERVER_HELPER_ASSETS")})
	if err != nil {
		fmt.Println("GITEA-ERR", err)
		os.Exit(2)
	}
	fmt.Printf("GITEA-PID %d\n", s.PID())
	select {}
}

// TestKilledGiteaIsRestarted: `kill -9` of `gitea web` (issue 22): it is restarted after the back-off on
// the same port with the same database and repositories, the admin token still signs in, the restart is
// counted and reported, and pushes work again.
func TestKilledGiteaIsRestarted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var restarts atomic.Int32
	srv, err := gitserver.Start(ctx, gitserver.Options{Dir: t.TempDir(),
		Restart: procgroup.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Reset: time.Minute},
		OnRestart: func(r procgroup.Restart) {
			if r.Name == "gitea" && r.PID > 0 {
				restarts.Add(1)
			}
		}})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = srv.Stop(ctx) }()
	repo := gitserver.Repo{Owner: srv.AdminUser(), Name: unique(t, "repo")}
	g.Expect(srv.Admin().CreateRepo(ctx, repo, gitserver.RepoOptions{})).To(Succeed())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
	first, err := srv.Admin().Push(ctx, gitserver.PushRequest{Repo: repo, Branch: "main", Dir: dir, Message: "first"})
	g.Expect(err).NotTo(HaveOccurred())
	pid, url := srv.PID(), srv.URL()

	g.Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	g.Eventually(srv.Restarts).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(1))
	g.Expect(srv.PID()).NotTo(Equal(pid))
	g.Expect(srv.URL()).To(Equal(url), "the same app.ini: the same port")
	g.Eventually(func() error { _, err := srv.Admin().DefaultBranch(ctx, repo); return err }).
		WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the repository and the admin token survive")
	g.Expect(fileAt(t, srv, repo, first.Commit, "a.yaml")).To(Equal("a: 1\n"))
	writeFile(t, filepath.Join(dir, "a.yaml"), "a: 2\n")
	second, err := srv.Admin().Push(ctx, gitserver.PushRequest{Repo: repo, Branch: "main", Dir: dir, Message: "second", From: "main"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second.Pushed).To(BeTrue())
	g.Expect(restarts.Load()).To(Equal(int32(1)))
	g.Expect(readFile(t, srv.LogFile())).To(ContainSubstring(fmt.Sprintf("Starting Gitea on PID: %d", srv.PID())), "the restart appends to LogFile")
}

// TestStopOfACrashedGiteaRestartsNothing: Stop while a crashed `gitea web` waits for its restart reports
// the crash and ends the supervision: no Gitea comes back after it.
func TestStopOfACrashedGiteaRestartsNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// The back-off leaves Stop two seconds to come before the restart would.
	backoff := procgroup.Backoff{Initial: 2 * time.Second, Max: 4 * time.Second, Reset: time.Minute}
	srv, err := gitserver.Start(ctx, gitserver.Options{Dir: t.TempDir(), Restart: backoff})
	g.Expect(err).NotTo(HaveOccurred())
	pid := srv.PID()
	g.Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	g.Eventually(func() bool { return processGroupAlive(pid) }).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(BeFalse())
	err = srv.Stop(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("had already exited")))
	g.Consistently(childProcesses).WithTimeout(backoff.Initial+time.Second).WithPolling(20*time.Millisecond).Should(BeEmpty(), "nothing restarted after Stop")
	g.Expect(srv.Restarts()).To(Equal(0))
}
