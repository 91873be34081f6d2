package arcagent_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// pushArtifact pushes files into the twin's registry as `flux push artifact oci://<host>/<repo>:<tag>
// --path=. --source=... --revision=...` does (internal/fluxartifact), and returns the manifest digest.
func pushArtifact(t *testing.T, reg *registry.Registry, repo, tag string, files map[string]string) string {
	t.Helper()
	img, err := fluxartifact.Build(files, fluxartifact.Meta{
		Source: "https://example.com/platform.git", Revision: "main@sha1:" + tag,
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

func settings(mode string) map[string]string {
	return map[string]string{
		"apps/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: oci-team\n",
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oci-settings\n  namespace: oci-team\ndata:\n  mode: " + mode + "\n",
	}
}

// An OCIRepository fluxConfiguration, PUT through ARM in the 2025-04-01 shape, end to end: an artifact in
// the twin's real registry, the agent's OCIRepository and Kustomization in the real reconciler, the objects
// on a real API server, compliance and the synced revision back in Azure; a new tag rolls out; fields the
// twin cannot honour make the configuration Non-Compliant naming them; deletion prunes.
func TestOCIRepositoryConfigurationConverges(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	api := testenv.APIServer(t)
	reg, err := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Stop(context.Background()) }()
	repo := "manifests/platform"
	d1 := pushArtifact(t, reg, repo, "1.0.0", settings("blue"))

	srv, ep := startArc(t)
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, "rg-hci", "workload-oci", "westeurope", pollEvery)
	if err != nil {
		t.Fatal(err)
	}
	rec := startCluster(ctx, t, api, srv, *cc.ID, "workload-oci")
	defer rec.Stop()

	config := func(tag string) arc.FluxConfiguration {
		return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
			Scope: "cluster", Namespace: "flux-system", SourceKind: arc.SourceKindOCIRepository,
			OCIRepository: &arc.OCIRepositoryDefinition{
				URL:                   "oci://" + reg.Host() + "/" + repo,
				RepositoryRef:         &arc.OCIRepositoryRefDefinition{Tag: tag},
				Insecure:              ptr(true), // the twin's registry speaks plain HTTP
				SyncIntervalInSeconds: ptr[int64](60),
			},
			Kustomizations: map[string]*arc.KustomizationDefinition{
				"apps": {Path: "./apps", Prune: ptr(true), SyncIntervalInSeconds: ptr[int64](60), RetryIntervalInSeconds: ptr[int64](5)},
			},
		}}
	}
	put := func(name string, cfg arc.FluxConfiguration) error {
		_, err := arcsdk.PutFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, name), cfg, pollEvery)
		return err
	}
	state := func(name string) func() string {
		return func() string {
			c, err := arcsdk.GetFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, name))
			if err != nil {
				return "error: " + err.Error()
			}
			s := c.Properties.ComplianceState
			if c.Properties.ErrorMessage != "" {
				s += ": " + c.Properties.ErrorMessage
			}
			return s
		}
	}
	synced := func(name string) func() string {
		return func() string {
			c, err := arcsdk.GetFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, name))
			if err != nil {
				return "error: " + err.Error()
			}
			return c.Properties.SourceSyncedCommitID
		}
	}
	kube := kubernetes.NewForConfigOrDie(api)
	mode := func() string {
		cm, err := kube.CoreV1().ConfigMaps("oci-team").Get(ctx, "oci-settings", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return cm.Data["mode"]
	}

	g.Expect(put("platform", config("1.0.0"))).To(Succeed())
	g.Eventually(state("platform")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(arc.Compliant))
	g.Expect(mode()).To(Equal("blue"))
	g.Expect(synced("platform")()).To(Equal("1.0.0@" + d1))

	// What the agent made, as the Flux extension does: an OCIRepository named like the configuration in
	// its namespace, and the Kustomization reading it.
	o, ok := rec.OCIRepository("flux-system", "platform")
	g.Expect(ok).To(BeTrue(), "no OCIRepository flux-system/platform")
	g.Expect(o.Spec.URL).To(Equal("oci://" + reg.Host() + "/" + repo))
	g.Expect(o.Spec.Reference).To(Equal(&sourcev1.OCIRepositoryRef{Tag: "1.0.0"}))
	g.Expect(o.Spec.Insecure).To(BeTrue())
	g.Expect(o.Spec.Interval.Duration).To(Equal(60 * time.Second))
	g.Expect(o.Labels).To(HaveKeyWithValue(arcagent.LabelConfiguration, "platform"))
	k, ok := rec.Kustomization("flux-system", arcagent.KustomizationName("platform", "apps"))
	g.Expect(ok).To(BeTrue())
	g.Expect(k.Spec.SourceRef).To(Equal(kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "platform"}))
	_, isGit := rec.GitRepository("flux-system", "platform")
	g.Expect(isGit).To(BeFalse(), "an OCIRepository configuration also got a GitRepository")
	got, err := arcsdk.GetFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, "platform"))
	g.Expect(err).NotTo(HaveOccurred())
	var kinds []string
	for _, st := range got.Properties.Statuses {
		kinds = append(kinds, st.Kind+"/"+st.Name+"="+st.ComplianceState)
	}
	g.Expect(kinds).To(ConsistOf("OCIRepository/platform=Compliant", "Kustomization/platform-apps=Compliant"))

	// A new tag through a PUT rolls out, and the synced revision follows.
	d2 := pushArtifact(t, reg, repo, "1.1.0", settings("green"))
	g.Expect(put("platform", config("1.1.0"))).To(Succeed())
	g.Eventually(mode).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal("green"))
	g.Eventually(synced("platform")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal("1.1.0@" + d2))
	g.Eventually(state("platform")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(arc.Compliant))

	// Fields Azure accepts but the twin cannot honour: accepted by ARM, then Non-Compliant naming each.
	unsupported := config("1.0.0")
	unsupported.Properties.OCIRepository.Verify = &arc.VerifyDefinition{Provider: "cosign", VerificationConfig: map[string]string{"cosign.pub": "a2V5"}}
	unsupported.Properties.OCIRepository.UseWorkloadIdentity = ptr(true)
	g.Expect(put("signed", unsupported)).To(Succeed())
	g.Eventually(state("signed")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(And(
		HavePrefix(arc.NonCompliant+": "), ContainSubstring("properties.ociRepository.verify:"),
		ContainSubstring("properties.ociRepository.useWorkloadIdentity:"), ContainSubstring("not supported by the twin")))
	_, made := rec.OCIRepository("flux-system", "signed")
	g.Expect(made).To(BeFalse(), "a configuration with unsupported fields still got an OCIRepository")

	// Bad input never reaches the cluster: ARM refuses it naming the field.
	for _, bad := range []struct {
		mutate func(*arc.OCIRepositoryDefinition)
		field  string
	}{
		{func(o *arc.OCIRepositoryDefinition) { o.URL = "" }, "properties.ociRepository.url: is required"},
		{func(o *arc.OCIRepositoryDefinition) { o.RepositoryRef.Digest = d1 }, "properties.ociRepository.repositoryRef: sets tag and digest: they conflict"},
	} {
		cfg := config("1.0.0")
		bad.mutate(cfg.Properties.OCIRepository)
		err := put("rejected", cfg)
		var re *azcore.ResponseError
		g.Expect(errors.As(err, &re)).To(BeTrue(), "want an ARM error, got %v", err)
		g.Expect(re.StatusCode).To(Equal(http.StatusBadRequest))
		g.Expect(err.Error()).To(ContainSubstring(bad.field))
	}
	g.Expect(srv.FluxConfigurations(*cc.ID)).To(HaveLen(2), "a rejected configuration was stored")

	// Deleting the configuration through ARM prunes its objects and removes the OCIRepository.
	status, body := doARM(t, ep, http.MethodDelete, arcsdk.FluxConfigurationID(*cc.ID, "platform"))
	g.Expect(status).To(Equal(http.StatusAccepted), body)
	g.Eventually(func() bool {
		_, err := kube.CoreV1().ConfigMaps("oci-team").Get(ctx, "oci-settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "not pruned after the configuration was deleted")
	g.Eventually(rec.OCIRepositories).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(BeEmpty(), "the OCIRepository outlived its configuration")
}

func ptr[T any](v T) *T { return &v }

// doARM sends a bodiless ARM request to the fake.
func doARM(t *testing.T, ep *arc.Endpoint, method, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ep.URL+id+"?api-version="+arcsdk.FluxAPIVersion, nil)
	resp, err := arcsdk.AuthorizedClient(ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}
