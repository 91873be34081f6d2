package arcagent_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
)

const sub = "00000000-0000-4000-8000-000000000001"

const pollEvery = 10 * time.Millisecond

// One real API server, a real Git server, the real reconciler and the Arc fake driven by the Azure SDK:
// configurations created through ARM converge and report compliance back through ARM.
func TestConfigurationsConvergeAndReportCompliance(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	api := testenv.APIServer(t)
	git := testenv.Git(t, "fleet-reader", "s3cret-token")
	repo, _ := testenv.SeededRepo(t, git, "fleet", map[string]string{
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n  mode: blue\n",
		"apps/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
		"broken/bad.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [not, a, name]\n",
		"tenant/other.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\ndata: {x: y}\n",
	})

	// Azure side, through the official SDK.
	srv, ep := startArc(t)
	flux, _ := armkubernetesconfiguration.NewFluxConfigurationsClient(sub, arcsdk.NewCredential(ep), arcsdk.ClientOptions(ep))
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, "rg-hci", "workload-1", "westeurope", pollEvery)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, scope, namespace, path string) {
		t.Helper()
		p, err := flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", name,
			armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
				Scope: to.Ptr(armkubernetesconfiguration.ScopeType(scope)), Namespace: to.Ptr(namespace),
				SourceKind: to.Ptr(armkubernetesconfiguration.SourceKindTypeGitRepository),
				GitRepository: &armkubernetesconfiguration.GitRepositoryDefinition{
					URL: to.Ptr(repo.URL), HTTPSUser: to.Ptr("fleet-reader"), SyncIntervalInSeconds: to.Ptr[int64](60),
					RepositoryRef: &armkubernetesconfiguration.RepositoryRefDefinition{Branch: to.Ptr("main")}},
				ConfigurationProtectedSettings: map[string]*string{"httpsKey": to.Ptr(base64.StdEncoding.EncodeToString([]byte("s3cret-token")))},
				Kustomizations: map[string]*armkubernetesconfiguration.KustomizationDefinition{
					"main": {Path: to.Ptr(path), Prune: to.Ptr(true), SyncIntervalInSeconds: to.Ptr[int64](60), RetryIntervalInSeconds: to.Ptr[int64](5)}},
			}}, nil)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if _, err := arcsdk.Poll(ctx, p, pollEvery); err != nil {
			t.Fatal(err)
		}
	}
	compliance := func(name string) func() string {
		return func() string {
			c, err := flux.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", name, nil)
			if err != nil || c.Properties.ComplianceState == nil {
				return "error: " + err.Error()
			}
			s := string(*c.Properties.ComplianceState)
			if c.Properties.ErrorMessage != nil && *c.Properties.ErrorMessage != "" {
				s += ": " + *c.Properties.ErrorMessage
			}
			return s
		}
	}

	create("healthy", "cluster", "flux-system", "./apps")
	g.Expect(compliance("healthy")()).To(Equal("Pending"), "before any agent ran")

	// The cluster side: the reconciler and the agent.
	rec := startCluster(ctx, t, api, srv, *cc.ID, "workload-1")
	defer rec.Stop()

	kube := kubernetes.NewForConfigOrDie(api)
	g.Eventually(compliance("healthy")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal("Compliant"))
	cm, err := kube.CoreV1().ConfigMaps("team-a").Get(ctx, "settings", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cm.Data["mode"]).To(Equal("blue"))
	got, _ := flux.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "healthy", nil)
	g.Expect(*got.Properties.SourceSyncedCommitID).To(HavePrefix("main@sha1:"))
	g.Expect(got.Properties.Statuses).To(HaveLen(2)) // the GitRepository and the Kustomization

	// A broken manifest: Non-Compliant with the reconciler's message.
	create("broken", "cluster", "flux-system", "./broken")
	g.Eventually(compliance("broken")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).
		Should(And(HavePrefix("Non-Compliant: Kustomization/broken-main:"), ContainSubstring("bad.yaml")))

	// A namespace-scoped configuration cannot create objects outside its namespace.
	create("tenant", "namespace", "team-b", "./tenant")
	g.Eventually(compliance("tenant")).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).
		Should(And(HavePrefix("Non-Compliant: Kustomization/tenant-main:"), ContainSubstring("forbidden")))
	_, err = kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "sneaky", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the namespace-scoped configuration wrote into kube-system")

	// Deleting the configuration through ARM removes its objects (prune: true).
	dp, err := flux.BeginDelete(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "healthy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := arcsdk.Poll(ctx, dp, pollEvery); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() bool {
		_, err := kube.CoreV1().ConfigMaps("team-a").Get(ctx, "settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "pruned after the configuration was deleted")
	// The GitRepository goes after the Kustomization's prune has finished: wait for it too.
	g.Eventually(func() bool {
		_, ok := rec.GitRepository("flux-system", "healthy")
		return ok
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(BeFalse(), "GitRepository removed with the configuration")
}

// A policy assignment of the built-in GitOps definition over a resource group, then a cluster connected
// later: the policy deploys the baseline configuration to it and the cluster converges to it.
func TestClusterConnectedUnderPolicyConvergesToBaseline(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := testenv.APIServer(t)
	git := testenv.Git(t, "u", "p")
	repo, _ := testenv.SeededRepo(t, git, "baseline", map[string]string{
		"base/policy.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: baseline-settings\n  namespace: default\ndata:\n  owner: platform\n",
	})
	srv, ep := startArc(t)

	// The assignment comes first (public-repository definition: the twin's test Git server accepts the
	// repository URL with credentials embedded, standing in for a public repository).
	public := strings.Replace(repo.URL, "://", "://u:p@", 1)
	body := `{"location":"westeurope","identity":{"type":"SystemAssigned"},"properties":{
	  "policyDefinitionId":"` + arc.BuiltinGitOpsPolicyDefinitionID + `",
	  "parameters":{"configurationName":{"value":"baseline"},"repositoryUrl":{"value":"` + public + `"},
	    "repositoryRefBranch":{"value":"main"},"kustomizationPath":{"value":"./base"},
	    "repositorySyncInterval":{"value":60},"kustomizationRetryInterval":{"value":5}}}}`
	req, _ := http.NewRequest(http.MethodPut, ep.URL+"/subscriptions/"+sub+"/resourceGroups/rg-fleet/providers/Microsoft.Authorization/policyAssignments/gitops-baseline?api-version=2022-06-01", strings.NewReader(body))
	resp, err := arcsdk.AuthorizedClient(ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated))

	// Then a store's cluster is connected into the resource group.
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, "rg-fleet", "store-042", "westeurope", pollEvery)
	if err != nil {
		t.Fatal(err)
	}

	rec := startCluster(ctx, t, api, srv, *cc.ID, "store-042")
	defer rec.Stop()

	kube := kubernetes.NewForConfigOrDie(api)
	g.Eventually(func() string {
		cm, err := kube.CoreV1().ConfigMaps("default").Get(ctx, "baseline-settings", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return cm.Data["owner"]
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(Equal("platform"), "the baseline never reached the new cluster")
	g.Eventually(func() string {
		cfgs := srv.FluxConfigurations(*cc.ID)
		if len(cfgs) != 1 {
			return "configurations: " + strings.Repeat("?", len(cfgs))
		}
		return cfgs[0].Properties.ComplianceState
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(arc.Compliant))
}

// startArc starts the Arc fake on an OS-assigned port with a short provisioning delay; it closes with the
// test.
func startArc(t *testing.T) (*arc.Server, *arc.Endpoint) {
	t.Helper()
	srv := arc.NewServer(arc.Options{ProvisioningDelay: 10 * time.Millisecond})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	return srv, ep
}

// startCluster runs one connected cluster's side until ctx ends: the twin's reconciler on the API server
// and the Arc agent feeding it. The caller stops the reconciler (defer rec.Stop()) before the API server.
func startCluster(ctx context.Context, t *testing.T, cfg *rest.Config, srv *arc.Server, clusterID, name string) *reconciler.Reconciler {
	t.Helper()
	rec, err := reconciler.New(cfg, reconciler.Options{Cluster: name, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rec.Start(ctx) }()
	agent, err := arcagent.New(arcagent.Options{ClusterID: clusterID, Config: cfg, Target: rec, Azure: srv})
	if err != nil {
		rec.Stop()
		t.Fatal(err)
	}
	go func() { _ = agent.Run(ctx) }()
	return rec
}
