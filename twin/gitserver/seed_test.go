package gitserver_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"code.gitea.io/sdk/gitea"
	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// TestSeedAsTheTwinDoes seeds the way `hybridtwin up` seeds spec.git: a repository pushed to main from a
// folder and a branch-per-environment one without main, a reader user, the registry placeholder
// rewritten, progress per branch. The reader reads and cannot push; the default branch goes first and the
// others start from it; seeding again pushes nothing; a second reader of the same name is refused, naming it.
func TestSeedAsTheTwinDoes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()
	org := unique(t, "org")
	reader := unique(t, "reader")

	var pushes []gitserver.SeedPush
	spec := gitserver.SeedSpec{
		Org:  org,
		Root: examples,
		Repos: []gitserver.SeedRepo{
			{Name: "gitops-config", Description: "seeded by the test", Branches: map[string]string{"main": "dir-per-env/gitops-config"}},
			{Name: "envs", Branches: map[string]string{
				"staging": "branch-per-env/branches/staging",
				"dev":     "branch-per-env/branches/dev",
				"prod":    "branch-per-env/branches/prod",
			}},
		},
		Reader:   reader,
		Rewrite:  gitserver.RegistryRewrite("127.0.0.1:5999"),
		Progress: func(p gitserver.SeedPush) { pushes = append(pushes, p) },
	}
	seeded, err := admin.Seed(ctx, spec)
	g.Expect(err).NotTo(HaveOccurred())

	// What was made, in order: the default branch of each repository first (main; else the first by
	// name), then the others by name, each pushed.
	cfg, envs := gitserver.Repo{Owner: org, Name: "gitops-config"}, gitserver.Repo{Owner: org, Name: "envs"}
	var order []string
	for _, p := range pushes {
		g.Expect(p.Pushed).To(BeTrue(), "%s@%s", p.Repo, p.Branch)
		order = append(order, p.Repo.Name+"@"+p.Branch+"<-"+p.Dir)
	}
	g.Expect(order).To(Equal([]string{
		"gitops-config@main<-dir-per-env/gitops-config",
		"envs@dev<-branch-per-env/branches/dev",
		"envs@prod<-branch-per-env/branches/prod",
		"envs@staging<-branch-per-env/branches/staging",
	}))
	g.Expect(seeded.Repos).To(HaveLen(2))
	g.Expect(seeded.Repos[0].Repo).To(Equal(cfg))
	g.Expect(seeded.Repos[0].Layers).To(Equal([]gitserver.Layer{gitserver.ClusterLayer, gitserver.AppLayer}))
	g.Expect(seeded.Repos[1].DefaultBranch).To(Equal("dev"))
	g.Expect(seeded.CloneURLs()).To(Equal(map[string]string{"gitops-config": admin.CloneURL(cfg), "envs": admin.CloneURL(envs)}))
	for _, p := range pushes {
		want := seeded.Repos[0].Commits
		if p.Repo == envs {
			want = seeded.Repos[1].Commits
		}
		g.Expect(want).To(HaveKeyWithValue(p.Branch, p.Commit))
		g.Expect(admin.BranchCommit(ctx, p.Repo, p.Branch)).To(Equal(p.Commit))
	}
	g.Expect(admin.DefaultBranch(ctx, cfg)).To(Equal("main"))
	g.Expect(admin.DefaultBranch(ctx, envs)).To(Equal("dev"))

	// The folders' content, the placeholder registry rewritten; one commit per branch, named after its
	// folder; the other environments start from dev.
	deploy := fileAt(t, srv, cfg, "main", "apps/base/podinfo/deployment.yaml")
	g.Expect(deploy).To(ContainSubstring("image: 127.0.0.1:5999/apps/podinfo:6.5.0"))
	g.Expect(deploy).NotTo(ContainSubstring(gitserver.PlaceholderRegistry))
	g.Expect(fileAt(t, srv, envs, "prod", "apps/podinfo/hpa.yaml")).To(ContainSubstring("minReplicas: 3"))
	sdk, err := gitea.NewClient(srv.URL(), gitea.SetToken(srv.AdminToken()), gitea.SetGiteaVersion(srv.Profile().GiteaVersion))
	g.Expect(err).NotTo(HaveOccurred())
	first, _, err := sdk.GetSingleCommit(org, "gitops-config", seeded.Repos[0].Commits["main"])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.TrimSpace(first.RepoCommit.Message)).To(Equal("Seed main from dir-per-env/gitops-config"))
	for _, env := range []string{"staging", "prod"} {
		c, _, err := sdk.GetSingleCommit(org, "envs", seeded.Repos[1].Commits[env])
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Parents).To(HaveLen(1), "branch %s starts from dev", env)
		g.Expect(c.Parents[0].SHA).To(Equal(seeded.Repos[1].Commits["dev"]))
	}

	// The reader is an application developer: it reads the repositories and pushes to none.
	g.Expect(seeded.Reader).NotTo(BeNil())
	g.Expect(seeded.Reader.Name).To(Equal(reader))
	asReader := admin.As(seeded.Reader)
	g.Expect(asReader.BranchCommit(ctx, cfg, "main")).To(Equal(seeded.Repos[0].Commits["main"]))
	_, err = asReader.PushDir(ctx, cfg, unique(t, "branch"), filepath.Join(examples, "dir-per-env", "gitops-config"), "a reader pushes")
	g.Expect(err).To(MatchError(gitserver.ErrPushRejected))

	// Seeding again pushes nothing; a reader of a taken name is refused, and the error names it.
	pushes = nil
	again := spec
	again.Reader = ""
	seededAgain, err := admin.Seed(ctx, again)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(seededAgain.Reader).To(BeNil())
	g.Expect(seededAgain.Repos[1].Commits).To(Equal(seeded.Repos[1].Commits))
	g.Expect(pushes).To(HaveLen(4))
	for _, p := range pushes {
		g.Expect(p.Pushed).To(BeFalse(), "%s@%s holds its folder already", p.Repo, p.Branch)
	}
	_, err = admin.Seed(ctx, spec)
	var se *gitserver.SeedError
	g.Expect(errors.As(err, &se)).To(BeTrue(), "%v", err)
	g.Expect(se.Target).To(Equal(reader))
	g.Expect(err).To(MatchError(gitserver.ErrExists))
}

// A repository without branches, or with a default branch that is not one of them, is refused before
// anything is created, naming the repository.
func TestSeedRefusesBadRepos(t *testing.T) {
	// No server: nothing is asked of one.
	c, err := gitserver.NewClient("http://127.0.0.1:1", "admin", strings.Repeat("f", 40), gitserver.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		repo gitserver.SeedRepo
	}{
		{"no branches", gitserver.SeedRepo{Name: "empty"}},
		{"default not a branch", gitserver.SeedRepo{Name: "odd", DefaultBranch: "main", Branches: map[string]string{"dev": "."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Seed(context.Background(), gitserver.SeedSpec{Org: "platform", Repos: []gitserver.SeedRepo{tc.repo}})
			var se *gitserver.SeedError
			if !errors.As(err, &se) || se.Target != "platform/"+tc.repo.Name || !errors.Is(err, gitserver.ErrInvalidOptions) {
				t.Fatalf("err = %v; want a SeedError for platform/%s wrapping ErrInvalidOptions", err, tc.repo.Name)
			}
		})
	}
}
