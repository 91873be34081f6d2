package gitserver_test

import (
	"context"
	"testing"

	"github.com/go-git/go-git/v5"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// sshClone clones url into memory with identity, verifying the host key against knownHostsLine.
func sshClone(t *testing.T, url string, identity []byte, knownHostsLine string) error {
	t.Helper()
	auth, err := gitssh.NewPublicKeys(gitserver.SSHUser, identity, "")
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/known_hosts"
	writeFile(t, file, knownHostsLine+"\n")
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	auth.HostKeyCallback = cb
	_, err = git.CloneContext(context.Background(), memory.NewStorage(), nil, &git.CloneOptions{URL: url, Auth: auth})
	return err
}

// TestSSHCloneWithUserKey: a user's key registered by the admin reads the repositories the user may read
// over Gitea's built-in SSH server, on loopback, whose host key is the one SSHKnownHosts names; a key Gitea
// does not know and a known_hosts line with another key are refused.
func TestSSHCloneWithUserKey(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv := server(t)
	admin := srv.Admin()
	g.Expect(srv.SSHAddr()).To(HavePrefix("127.0.0.1:"))
	g.Expect(srv.SSHKnownHosts()).To(MatchRegexp(`^\[127\.0\.0\.1\]:\d+ ssh-ed25519 \S+$`))

	org := unique(t, "org")
	dir := t.TempDir()
	writeFile(t, dir+"/README.md", "over ssh\n")
	reader := unique(t, "reader")
	seeded, err := admin.Seed(ctx, gitserver.SeedSpec{Org: org, Reader: reader,
		Repos: []gitserver.SeedRepo{{Name: "config", Branches: map[string]string{"main": dir}}}})
	g.Expect(err).NotTo(HaveOccurred())
	url := srv.SSHCloneURL(seeded.Repos[0].Repo)
	g.Expect(url).To(Equal("ssh://git@" + srv.SSHAddr() + "/" + org + "/config.git"))

	identity, authorized, err := gitserver.NewSSHKey("twin-test")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sshClone(t, url, identity, srv.SSHKnownHosts())).To(HaveOccurred(), "a key Gitea does not know is refused")
	g.Expect(admin.AddUserKey(ctx, reader, "flux", authorized)).To(Succeed())
	g.Expect(sshClone(t, url, identity, srv.SSHKnownHosts())).To(Succeed())

	// Strict host key checking: a known_hosts line with another key for the address is refused.
	_, otherPub, err := gitserver.NewSSHKey("other")
	g.Expect(err).NotTo(HaveOccurred())
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte(otherPub))
	g.Expect(err).NotTo(HaveOccurred())
	err = sshClone(t, url, identity, gitserver.KnownHostsLine(srv.SSHAddr(), other))
	g.Expect(err).To(MatchError(ContainSubstring("knownhosts: key mismatch")))
}
