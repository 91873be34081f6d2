package gitserver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// BenchmarkPushVisible measures one GitOps change: commit a changed file of the dir-per-env layout, push
// it over HTTP and wait until the API shows the branch at the new commit (what a pull request or a
// webhook-triggered reconcile waits for). Results as JSON:
//
//	go test -run '^$' -bench PushVisible -json ./twin/gitserver/
func BenchmarkPushVisible(b *testing.B) {
	ctx := context.Background()
	srv := server(b)
	admin := srv.Admin()
	repo := gitserver.Repo{Owner: srv.AdminUser(), Name: unique(b, "repo")}
	if err := admin.CreateRepo(ctx, repo, gitserver.RepoOptions{}); err != nil {
		b.Fatal(err)
	}
	dir := copyDir(b, filepath.Join(examples, "dir-per-env", "gitops-config"))
	file := filepath.Join(dir, "apps", "dev", "kustomization.yaml")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		writeFile(b, file, fmt.Sprintf("# change %d\n", i)+readFile(b, file))
		b.StartTimer()
		if _, err := admin.PushDir(ctx, repo, "main", dir, fmt.Sprintf("change %d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStart measures a cold Start (fresh state directory: migrate, admin, web, ready) and Stop.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		s, err := gitserver.Start(ctx, gitserver.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
