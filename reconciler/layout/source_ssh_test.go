package layout_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// TestRemoteSourceOverSSH clones an ssh:// URL from Gitea's built-in SSH server with a key and a strict
// known_hosts, as Flux does; no key is a clear input error, and another host key in known_hosts is refused.
func TestRemoteSourceOverSSH(t *testing.T) {
	ctx := context.Background()
	srv, err := gitserver.Start(ctx, gitserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	_, good := testenv.GiteaRepo(t, srv, "layout-ssh", readTree(t, filepath.Join("testdata", "namespace", "pass")))
	identity, authorized, err := gitserver.NewSSHKey("validator")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Admin().AddUserKey(ctx, srv.AdminUser(), "validator", authorized); err != nil {
		t.Fatal(err)
	}
	url := srv.SSHCloneURL(gitserver.Repo{Owner: srv.AdminUser(), Name: "layout-ssh"})
	if !layout.IsRemote(url) {
		t.Fatalf("IsRemote(%s) = false", url)
	}

	src, err := layout.OpenSource(ctx, url, layout.SourceOptions{Ref: "main", SSHIdentity: identity, SSHKnownHosts: []byte(srv.SSHKnownHosts() + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Commit != good {
		t.Errorf("commit %s, want %s", src.Commit, good)
	}
	if rep := validateDir(t, src.Dir); len(of(rep, layout.RuleNamespaceScope)) > 0 {
		t.Errorf("findings in a clean layout: %+v", rep.Findings)
	}

	_, err = layout.OpenSource(ctx, url, layout.SourceOptions{Ref: "main"})
	if !errors.Is(err, layout.ErrInput) || !strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("no key: %v", err)
	}
	_, otherPub, err := gitserver.NewSSHKey("other")
	if err != nil {
		t.Fatal(err)
	}
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte(otherPub))
	if err != nil {
		t.Fatal(err)
	}
	_, err = layout.OpenSource(ctx, url, layout.SourceOptions{Ref: "main", SSHIdentity: identity,
		SSHKnownHosts: []byte(gitserver.KnownHostsLine(srv.SSHAddr(), other) + "\n")})
	if !errors.Is(err, layout.ErrSource) || !strings.Contains(err.Error(), "knownhosts: key mismatch") {
		t.Errorf("another host key: %v", err)
	}
}
