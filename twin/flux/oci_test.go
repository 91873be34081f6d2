package flux_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// pushFluxArtifact pushes files into the registry as `flux push artifact oci://<host>/<repo>:<tag>
// --path=. --source=... --revision=...` does (internal/fluxartifact), and returns the manifest digest.
func pushFluxArtifact(t *testing.T, reg *registry.Registry, repo, tag string, files map[string]string) string {
	t.Helper()
	img, err := fluxartifact.Build(files, fluxartifact.Meta{
		Source: "https://example.com/platform.git", Revision: "main@sha1:" + strings.Repeat("0", 40),
	})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := reg.Client().Push(context.Background(), img, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return pushed.Digest
}

func ociSettings(ns, mode string) map[string]string {
	return map[string]string{
		"apps/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n",
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oci-settings\n  namespace: " + ns + "\ndata:\n  mode: " + mode + "\n",
	}
}

// An OCIRepository fluxConfiguration (api-version 2025-04-01, sourceKind OCIRepository) on a cluster whose
// engine is real Flux: the artifact in the twin's real registry, the Arc agent's OCIRepository pulled by
// source-controller v1.9.6 (insecure: the registry speaks plain HTTP), the Kustomization applied by
// kustomize-controller v1.9.5, Compliant with the tag@digest revision back in Azure; a new tag rolls out
// through a PUT; deleting the configuration prunes and removes the OCIRepository.
func TestFluxConvergesAnOCIConfiguration(t *testing.T) {
	requireFluxTests(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	name := "flux-oci-" + suffix()
	info, cfg, kube := testCluster(ctx, t, name)

	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start flux: %v", err)
	}
	defer func() { _ = ctl.Stop() }()
	procs := ctl.Processes()

	reg, err := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Stop(context.Background()) }()
	ns := "oci-" + suffix()
	repo := "manifests/platform-" + suffix()
	d1 := pushFluxArtifact(t, reg, repo, "1.0.0", ociSettings(ns, "blue"))

	srv := arc.NewServer(arc.Options{ProvisioningDelay: 10 * time.Millisecond})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close(context.Background())
	const sub, rg = "00000000-0000-4000-8000-000000000001", "rg-hci"
	const pollEvery = 10 * time.Millisecond
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, rg, name, "westeurope", pollEvery)
	if err != nil {
		t.Fatal(err)
	}
	target, err := arcagent.NewClusterTarget(cfg)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := arcagent.New(arcagent.Options{ClusterID: *cc.ID, Config: cfg, Target: target, Azure: srv})
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = agent.Run(ctx) }()
	defer func() { cancel(); <-agentDone }()

	yes := true
	sixty, five := int64(60), int64(5)
	config := func(tag string) arc.FluxConfiguration {
		return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
			Scope: "cluster", Namespace: flux.RuntimeNamespace, SourceKind: arc.SourceKindOCIRepository,
			OCIRepository: &arc.OCIRepositoryDefinition{
				URL:                   "oci://" + reg.Host() + "/" + repo,
				RepositoryRef:         &arc.OCIRepositoryRefDefinition{Tag: tag},
				Insecure:              &yes, // the twin's registry speaks plain HTTP; Flux refuses it otherwise
				SyncIntervalInSeconds: &sixty,
			},
			Kustomizations: map[string]*arc.KustomizationDefinition{
				"apps": {Path: "./apps", Prune: &yes, SyncIntervalInSeconds: &sixty, RetryIntervalInSeconds: &five},
			},
		}}
	}
	id := arcsdk.FluxConfigurationID(*cc.ID, "platform")
	put := func(cfg arc.FluxConfiguration) {
		t.Helper()
		if _, err := arcsdk.PutFluxConfiguration(ctx, ep, id, cfg, pollEvery); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		c, err := arcsdk.GetFluxConfiguration(ctx, ep, id)
		if err != nil {
			return "error: " + err.Error()
		}
		s := c.Properties.ComplianceState
		if c.Properties.ErrorMessage != "" {
			s += ": " + c.Properties.ErrorMessage
		}
		return s
	}
	synced := func() string {
		c, err := arcsdk.GetFluxConfiguration(ctx, ep, id)
		if err != nil {
			return "error: " + err.Error()
		}
		return c.Properties.SourceSyncedCommitID
	}
	mode := func() string {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "oci-settings", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return cm.Data["mode"]
	}

	put(config("1.0.0"))
	g.Eventually(state).WithTimeout(settle).WithPolling(poll).Should(Equal(arc.Compliant), "logs: %s", logsHint(procs))
	g.Expect(mode()).To(Equal("blue"))
	g.Expect(synced()).To(Equal("1.0.0@" + d1))

	// What real Flux holds: the OCIRepository source-controller made Ready with the pulled artifact, and
	// the ConfigMap applied by kustomize-controller (its field manager and ownership label).
	o, ok := target.OCIRepository(flux.RuntimeNamespace, "platform")
	g.Expect(ok).To(BeTrue(), "no OCIRepository flux-system/platform")
	g.Expect(o.Spec.Insecure).To(BeTrue())
	g.Expect(apimeta.IsStatusConditionTrue(o.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "%+v", o.Status.Conditions)
	g.Expect(o.Status.Artifact).NotTo(BeNil())
	g.Expect(o.Status.Artifact.Revision).To(Equal("1.0.0@" + d1))
	_, isGit := target.GitRepository(flux.RuntimeNamespace, "platform")
	g.Expect(isGit).To(BeFalse(), "an OCIRepository configuration also got a GitRepository")
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "oci-settings", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(managers(cm.ManagedFields)).To(ContainElement("kustomize-controller"))
	g.Expect(cm.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", arcagent.KustomizationName("platform", "apps")))

	// A new tag through a PUT rolls out under real Flux, and the synced revision follows.
	d2 := pushFluxArtifact(t, reg, repo, "1.1.0", ociSettings(ns, "green"))
	put(config("1.1.0"))
	g.Eventually(mode).WithTimeout(settle).WithPolling(poll).Should(Equal("green"), "logs: %s", logsHint(procs))
	g.Eventually(synced).WithTimeout(settle).WithPolling(poll).Should(Equal("1.1.0@" + d2))
	g.Eventually(state).WithTimeout(settle).WithPolling(poll).Should(Equal(arc.Compliant))

	// A tag the registry does not have: Non-Compliant with source-controller's own message.
	put(config("9.9.9"))
	g.Eventually(state).WithTimeout(settle).WithPolling(poll).Should(And(
		HavePrefix(arc.NonCompliant+": "), ContainSubstring("OCIRepository/platform")), "logs: %s", logsHint(procs))

	// Deleting the configuration prunes what Flux applied and removes the OCIRepository.
	fluxConfigs, err := armkubernetesconfiguration.NewFluxConfigurationsClient(sub, arcsdk.NewCredential(ep), arcsdk.ClientOptions(ep))
	g.Expect(err).NotTo(HaveOccurred())
	del, err := fluxConfigs.BeginDelete(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", name, "platform", nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = arcsdk.Poll(ctx, del, pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool {
		_, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "oci-settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(settle).WithPolling(poll).Should(BeTrue(), "not pruned after the configuration was deleted")
	g.Eventually(func() bool {
		_, ok := target.OCIRepository(flux.RuntimeNamespace, "platform")
		return ok
	}).WithTimeout(settle).WithPolling(poll).Should(BeFalse(), "the OCIRepository outlived its configuration")
}
