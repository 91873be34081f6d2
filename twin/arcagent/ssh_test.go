package arcagent_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// A configuration read over SSH, PUT through ARM as `az k8s-configuration flux create --url ssh://...
// --ssh-private-key-file --known-hosts-file` sends it: the agent makes the Secret source-controller reads
// (identity, known_hosts) from configurationProtectedSettings.sshPrivateKey and gitRepository.sshKnownHosts;
// the configuration is Compliant; a known_hosts with another host key makes it Non-Compliant with
// source-controller's message, and the right one makes it Compliant again.
func TestSSHConfigurationConverges(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	git, err := gitserver.Start(ctx, gitserver.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = git.Stop(context.Background()) }()
	_, _ = testenv.GiteaRepo(t, git, "ssh-config", settings("blue"))
	url := git.SSHCloneURL(gitserver.Repo{Owner: git.AdminUser(), Name: "ssh-config"})
	identity, authorized, err := gitserver.NewSSHKey("flux")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(git.Admin().AddUserKey(ctx, git.AdminUser(), "flux", authorized)).To(Succeed())

	api := testenv.APIServer(t)
	srv, ep := startArc(t)
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, "rg-hci", "workload-ssh", "westeurope", pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	rec := startCluster(ctx, t, api, srv, *cc.ID, "workload-ssh")
	defer rec.Stop()

	cfg := func(knownHosts string) arc.FluxConfiguration {
		return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
			Scope: "cluster", Namespace: "flux-system", SourceKind: arc.SourceKindGitRepository,
			GitRepository: &arc.GitRepositoryDefinition{URL: url, RepositoryRef: &arc.RepositoryRefDefinition{Branch: "main"},
				SSHKnownHosts: base64.StdEncoding.EncodeToString([]byte(knownHosts)), SyncIntervalInSeconds: ptr[int64](600)},
			ConfigurationProtectedSettings: map[string]string{arc.SSHPrivateKeySetting: base64.StdEncoding.EncodeToString(identity)},
			Kustomizations: map[string]*arc.KustomizationDefinition{
				"apps": {Path: "./apps", Prune: ptr(true), SyncIntervalInSeconds: ptr[int64](600), RetryIntervalInSeconds: ptr[int64](5)},
			},
		}}
	}
	id := arcsdk.FluxConfigurationID(*cc.ID, "over-ssh")
	state := func() string {
		c, err := arcsdk.GetFluxConfiguration(ctx, ep, id)
		g.Expect(err).NotTo(HaveOccurred())
		return c.Properties.ComplianceState + " " + c.Properties.ErrorMessage
	}
	right := git.SSHKnownHosts() + "\n"
	_, err = arcsdk.PutFluxConfiguration(ctx, ep, id, cfg(right), pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(state).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(arc.Compliant + " "))

	kube := kubernetes.NewForConfigOrDie(api)
	repo, ok := rec.GitRepository("flux-system", "over-ssh")
	g.Expect(ok).To(BeTrue())
	g.Expect(repo.Spec.URL).To(Equal(url))
	g.Expect(repo.Spec.SecretRef).To(Equal(&meta.LocalObjectReference{Name: "over-ssh-auth"}))
	sec, err := kube.CoreV1().Secrets("flux-system").Get(ctx, "over-ssh-auth", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sec.Data).To(Equal(map[string][]byte{"identity": identity, "known_hosts": []byte(right)}))

	// Another host key for the server's address: Non-Compliant with source-controller's message.
	_, otherPub, err := gitserver.NewSSHKey("other-host")
	g.Expect(err).NotTo(HaveOccurred())
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte(otherPub))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = arcsdk.PutFluxConfiguration(ctx, ep, id, cfg(gitserver.KnownHostsLine(git.SSHAddr(), other)+"\n"), pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	// The agent writes the Secret on its own cadence after the PUT: request a reconcile on each poll
	// (as `flux reconcile source git` would be repeated), since no engine watches the Secret.
	requested := func() string {
		g.Expect(rec.RequestReconcile(reconciler.KindGitRepository, "flux-system", "over-ssh")).To(Succeed())
		return state()
	}
	g.Eventually(requested).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Equal(arc.NonCompliant +
		" GitRepository/over-ssh: failed to checkout and determine revision: unable to list remote for '" + url + "': ssh: handshake failed: knownhosts: key mismatch"))

	_, err = arcsdk.PutFluxConfiguration(ctx, ep, id, cfg(right), pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(requested).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Equal(arc.Compliant + " "))
}
