package reconciler_test

import (
	"context"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// TestGitRepositoryOverSSH reads a repository from Gitea's built-in SSH server with a Secret holding
// source-controller's keys identity and known_hosts, and gets source-controller v1.9.6's conditions and
// messages for what goes wrong: a Secret without known_hosts (the options are checked before any fetch),
// a known_hosts line with another host key (verified strictly), a key Gitea does not know; each makes the GitRepository not Ready while
// the Kustomization keeps its last artifact, and the right Secret recovers.
func TestGitRepositoryOverSSH(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv := testenv.Gitea(t)
	_, sha := testenv.GiteaRepo(t, srv, e.ns, map[string]string{"apps/a.yaml": configMap(e.ns, "a", map[string]string{"v": "1"})})
	url := srv.SSHCloneURL(gitserver.Repo{Owner: srv.AdminUser(), Name: e.ns})

	identity, authorized, err := gitserver.NewSSHKey(e.ns)
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(srv.Admin().AddUserKey(ctx, srv.AdminUser(), e.ns, authorized)).To(Succeed())
	stranger, _, err := gitserver.NewSSHKey(e.ns + "-stranger")
	e.g.Expect(err).NotTo(HaveOccurred())
	_, otherPub, err := gitserver.NewSSHKey("other-host")
	e.g.Expect(err).NotTo(HaveOccurred())
	otherHost, _, _, _, err := ssh.ParseAuthorizedKey([]byte(otherPub))
	e.g.Expect(err).NotTo(HaveOccurred())

	secret := func(name string, data map[string][]byte) {
		e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Data: data})).To(Succeed())
	}
	knownHosts := []byte(srv.SSHKnownHosts() + "\n")
	secret("ssh-auth", map[string][]byte{"identity": identity, "known_hosts": knownHosts})
	secret("ssh-no-known-hosts", map[string][]byte{"identity": identity})
	secret("ssh-wrong-host", map[string][]byte{"identity": identity, "known_hosts": []byte(gitserver.KnownHostsLine(srv.SSHAddr(), otherHost) + "\n")})
	secret("ssh-stranger", map[string][]byte{"identity": stranger, "known_hosts": knownHosts})

	gitRepo := func(secretName string) *sourcev1.GitRepository {
		r := e.gitRepository("repo")
		r.Spec.URL = url
		r.Spec.SecretRef = &meta.LocalObjectReference{Name: secretName}
		return r
	}
	srcReady := func() string {
		r, _ := e.r.GitRepository(e.ns, "repo")
		c := apimeta.FindStatusCondition(r.Status.Conditions, meta.ReadyCondition)
		if c == nil {
			return ""
		}
		return string(c.Status) + "/" + c.Reason + ": " + c.Message
	}
	e.apply(gitRepo("ssh-auth"), e.kustomization("apps", "apps"))
	e.waitApplied("apps", sha)

	e.apply(gitRepo("ssh-no-known-hosts"))
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(Equal("False/" + sourcev1.AuthenticationFailedReason +
		": failed to configure authentication options: invalid 'ssh' auth option: 'known_hosts' is required"))

	e.apply(gitRepo("ssh-wrong-host"))
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(Equal("False/" + sourcev1.GitOperationFailedReason +
		": failed to checkout and determine revision: unable to list remote for '" + url + "': ssh: handshake failed: knownhosts: key mismatch"))

	e.apply(gitRepo("ssh-stranger"))
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/"+sourcev1.GitOperationFailedReason+": failed to checkout and determine revision: unable to list remote for '"+url+"': "),
		ContainSubstring("unable to authenticate")))
	// As with kustomize-controller, the Kustomization keeps its last applied revision meanwhile.
	e.g.Expect(e.appliedRevision("apps")()).To(Equal("main@sha1:" + sha))

	e.apply(gitRepo("ssh-auth"))
	e.g.Eventually(srcReady).WithTimeout(eventually).WithPolling(poll).Should(HavePrefix("True/"))
	e.waitApplied("apps", sha)
}
