package scenarios

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// withSSH makes every Git-sourced configuration of a spec read its repository over SSH (gitAuth ssh), and
// names the twin apart from the spec's own.
func withSSH(s *twin.Spec) {
	s.Metadata.Name += "-ssh"
	for i := range s.Spec.GitOps {
		if s.Spec.GitOps[i].Repo != "" {
			s.Spec.GitOps[i].GitAuth = twin.GitAuthSSH
		}
	}
}

// sshSpecs: the default twin's layout read over Gitea's built-in SSH server with the service account's key
// (label ssh; a twin of its own): every configuration Compliant through ssh:// GitRepositories with the
// Secret source-controller reads; a known_hosts entry with another host key, PUT through ARM as a platform
// team would, reported Non-Compliant with source-controller's message, then fixed. With --label-filter
// including flux, the same on real Flux (labels ssh, flux, slow).
func sshSpecs() {
	for _, eng := range []struct {
		name   string
		labels Labels
		mutate func(*twin.Spec)
	}{
		{"the twin's engine", Label("ssh"), withSSH},
		{"real Flux", Label("ssh", "flux", "slow"), func(s *twin.Spec) { withFluxEverywhere(s); withSSH(s) }},
	} {
		Describe("ssh on "+eng.name, eng.labels, Ordered, func() {
			It("syncs over SSH with a strict known_hosts, and reports a wrong host key", func(ctx SpecContext) {
				se := upOwnTwin(ctx, defaultSpecPath(), eng.mutate, true)
				Note("twin %s up and Compliant over SSH after %s", se.Twin.Spec().Metadata.Name, se.Twin.ReadyAfter().Round(time.Second))
				sshScenario(ctx, se, eng.name)
			}, NodeTimeout(ownTwinTimeout))
		})
	}
}

func sshScenario(ctx SpecContext, se *Env, engine string) {
	s := se.Twin.Spec()
	knownHosts := se.Twin.GiteaSSHKnownHosts() + "\n"
	var g *twin.GitOpsConfig
	for i := range s.Spec.GitOps {
		if s.Spec.GitOps[i].GitAuth == twin.GitAuthSSH {
			g = &s.Spec.GitOps[i]
			break
		}
	}
	Expect(g).NotTo(BeNil(), "no Git-sourced configuration in %s", s.File)
	cluster := s.ClusterNames()[0]
	if len(g.Clusters) > 0 && g.Clusters[0] != "*" {
		cluster = g.Clusters[0]
	}

	By("checking " + g.Name + " on " + cluster + ": an ssh:// GitRepository with the Secret of identity and known_hosts")
	cfg, err := se.Twin.RESTConfig(cluster)
	Expect(err).NotTo(HaveOccurred())
	target, err := arcagent.NewClusterTarget(cfg)
	Expect(err).NotTo(HaveOccurred())
	repo, ok := target.GitRepository(g.Namespace, g.Name)
	Expect(ok).To(BeTrue(), "cluster %s: no GitRepository %s/%s", cluster, g.Namespace, g.Name)
	Expect(repo.Spec.URL).To(HavePrefix("ssh://"+gitserver.SSHUser+"@127.0.0.1:"), "cluster %s: GitRepository %s/%s", cluster, g.Namespace, g.Name)
	Expect(repo.Spec.SecretRef).NotTo(BeNil())
	sec, err := se.Kube[cluster].CoreV1().Secrets(g.Namespace).Get(ctx, repo.Spec.SecretRef.Name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(sec.Data).To(HaveKey("identity"))
	Expect(string(sec.Data["known_hosts"])).To(Equal(knownHosts))
	Expect(se.Compliance(ctx)).To(Succeed())

	// A platform team's mistake: the configuration updated with a known_hosts line of another key for the
	// server's address (the protected key sent again, as ARM never returns it).
	clusterID := "/subscriptions/" + s.Spec.Azure.SubscriptionID + "/resourceGroups/" + s.Spec.Azure.ResourceGroup +
		"/providers/Microsoft.Kubernetes/connectedClusters/" + cluster
	id := arcsdk.FluxConfigurationID(clusterID, g.Name)
	put := func(knownHosts string) {
		c, err := arcsdk.GetFluxConfiguration(ctx, se.Twin.ARMEndpoint(), id)
		Expect(err).NotTo(HaveOccurred())
		p := c.Properties
		body := arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{Scope: p.Scope, Namespace: p.Namespace,
			SourceKind: p.SourceKind, Suspend: p.Suspend, GitRepository: p.GitRepository, Kustomizations: p.Kustomizations,
			ConfigurationProtectedSettings: map[string]string{arc.SSHPrivateKeySetting: base64.StdEncoding.EncodeToString(sec.Data["identity"])}}}
		gr := *p.GitRepository
		gr.SSHKnownHosts = base64.StdEncoding.EncodeToString([]byte(knownHosts))
		body.Properties.GitRepository = &gr
		_, err = arcsdk.PutFluxConfiguration(ctx, se.Twin.ARMEndpoint(), id, body, se.Waits.Poll)
		Expect(err).NotTo(HaveOccurred())
		// The Arc agent writes the Secret on its own schedule: the reconcile request below must come after
		// it, or the source is fetched again with the old known_hosts.
		Eventually(func(ctx context.Context) (string, error) {
			cur, err := se.Kube[cluster].CoreV1().Secrets(g.Namespace).Get(ctx, repo.Spec.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			return string(cur.Data["known_hosts"]), nil
		}).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(Equal(knownHosts),
			"cluster %s: Secret %s/%s after the PUT", cluster, g.Namespace, repo.Spec.SecretRef.Name)
		// `flux reconcile source git`: neither engine watches the Secret.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
		Eventually(func(ctx context.Context) error {
			_, err := se.api(cluster).dyn.Resource(schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}).
				Namespace(g.Namespace).Patch(ctx, g.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(Succeed())
	}
	_, otherPub, err := gitserver.NewSSHKey("another-host")
	Expect(err).NotTo(HaveOccurred())
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte(otherPub))
	Expect(err).NotTo(HaveOccurred())
	addr, _, _ := strings.Cut(strings.TrimPrefix(repo.Spec.URL, "ssh://"+gitserver.SSHUser+"@"), "/")
	wrong := gitserver.KnownHostsLine(addr, other) + "\n"

	By("updating " + g.Name + " with a known_hosts entry of another host key")
	start := time.Now()
	put(wrong)
	want := "failed to checkout and determine revision: unable to list remote for '" + repo.Spec.URL + "': ssh: handshake failed: knownhosts: key mismatch"
	Eventually(func(ctx context.Context) (twin.GitOpsStatus, error) { return se.GitOps(ctx, cluster, g.Name) }).
		WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(And(
		HaveField("ComplianceState", arc.NonCompliant), HaveField("Message", ContainSubstring(want))),
		"configuration %s on %s with a wrong known_hosts entry", g.Name, cluster)
	recordTiming(Experiment("ssh: wrong host key reported ("+engine+")"), "known_hosts update to Non-Compliant", time.Since(start))
	st, _ := se.GitOps(ctx, cluster, g.Name)
	Note("%s: configuration %s on %s with another host key in known_hosts: %s %q", engine, g.Name, cluster, st.ComplianceState, st.Message)

	By("putting the right known_hosts entry back")
	fixed := time.Now()
	put(knownHosts)
	Eventually(se.Compliance).WithContext(ctx).WithTimeout(se.Waits.Converge).WithPolling(se.Waits.Poll).Should(Succeed())
	recordTiming(Experiment("ssh: host key fixed ("+engine+")"), "known_hosts fixed to Compliant", time.Since(fixed))
}
