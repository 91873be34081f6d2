package flux_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

// EnvFluxTests turns on the tests that run real Flux (a twin cluster plus both controllers: ~1 GB RSS
// and a minute of two busy cores). `go tool task test` leaves them out unless it is set:
//
//	HYBRIDTWIN_FLUX_TESTS=1 go test -count=1 -run Flux ./twin/flux/
const EnvFluxTests = "HYBRIDTWIN_FLUX_TESTS"

// Polling bounds for Eventually: generous for a loaded 2-core machine; they say nothing about speed
// (speed lives in bench/fluxcmp).
const (
	poll   = 200 * time.Millisecond
	settle = 3 * time.Minute
)

func requireFluxTests(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvFluxTests) != "1" {
		t.Skipf("real Flux test: set %s=1 to run it", EnvFluxTests)
	}
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// One embedded twin cluster, real Flux from the tool cache, a Git repository over smart HTTP, the Arc
// fake driven through the Azure SDK and the Arc agent writing Flux's objects through arcagent.ClusterTarget: a
// fluxConfiguration converges to Compliant with the ConfigMap applied by kustomize-controller, a
// configuration with a missing path goes Non-Compliant with Flux's own message, and Stop leaves no
// process or port behind.
func TestFluxConvergesAnArcConfiguration(t *testing.T) {
	requireFluxTests(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The cluster.
	name := "flux-" + suffix()
	info, cfg, kube := testCluster(ctx, t, name)

	// Real Flux.
	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start flux: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = ctl.Stop()
		}
	}()
	procs := ctl.Processes()
	g.Expect(procs).To(HaveLen(3))

	// Git.
	git := testenv.Git(t, "fleet-reader", "s3cret-token")
	repo, _ := testenv.SeededRepo(t, git, "fleet-"+suffix(), map[string]string{
		"apps/ns.yaml":       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n  mode: blue\n",
	})

	// Azure's side, through the official SDK.
	srv := arc.NewServer(arc.Options{ProvisioningDelay: 10 * time.Millisecond})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close(context.Background())
	const sub, rg = "00000000-0000-4000-8000-000000000001", "rg-hci"
	const pollEvery = 10 * time.Millisecond
	fluxConfigs, _ := armkubernetesconfiguration.NewFluxConfigurationsClient(sub, arcsdk.NewCredential(ep), arcsdk.ClientOptions(ep))
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, rg, name, "westeurope", pollEvery)
	if err != nil {
		t.Fatal(err)
	}
	create := func(cfgName, path string) {
		t.Helper()
		p, err := fluxConfigs.BeginCreateOrUpdate(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", name, cfgName,
			armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
				Scope: to.Ptr(armkubernetesconfiguration.ScopeTypeCluster), Namespace: to.Ptr(flux.RuntimeNamespace),
				SourceKind: to.Ptr(armkubernetesconfiguration.SourceKindTypeGitRepository),
				GitRepository: &armkubernetesconfiguration.GitRepositoryDefinition{
					URL: to.Ptr(repo.URL), HTTPSUser: to.Ptr("fleet-reader"), SyncIntervalInSeconds: to.Ptr[int64](60),
					RepositoryRef: &armkubernetesconfiguration.RepositoryRefDefinition{Branch: to.Ptr("main")}},
				ConfigurationProtectedSettings: map[string]*string{"httpsKey": to.Ptr(base64.StdEncoding.EncodeToString([]byte("s3cret-token")))},
				Kustomizations: map[string]*armkubernetesconfiguration.KustomizationDefinition{
					"main": {Path: to.Ptr(path), Prune: to.Ptr(true), SyncIntervalInSeconds: to.Ptr[int64](60), RetryIntervalInSeconds: to.Ptr[int64](5)}},
			}}, nil)
		if err != nil {
			t.Fatalf("create %s: %v", cfgName, err)
		}
		if _, err := arcsdk.Poll(ctx, p, pollEvery); err != nil {
			t.Fatal(err)
		}
	}
	compliance := func(cfgName string) func() string {
		return func() string {
			c, err := fluxConfigs.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", name, cfgName, nil)
			if err != nil {
				return "error: " + err.Error()
			}
			if c.Properties.ComplianceState == nil {
				return "no compliance state"
			}
			s := string(*c.Properties.ComplianceState)
			if c.Properties.ErrorMessage != nil && *c.Properties.ErrorMessage != "" {
				s += ": " + *c.Properties.ErrorMessage
			}
			return s
		}
	}

	// The Arc agent with real Flux as its engine.
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

	create("healthy", "./apps")
	g.Eventually(compliance("healthy")).WithTimeout(settle).WithPolling(poll).Should(Equal("Compliant"),
		"logs: %s", logsHint(procs))
	cm, err := kube.CoreV1().ConfigMaps("team-a").Get(ctx, "settings", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cm.Data["mode"]).To(Equal("blue"))
	// kustomize-controller applied it (its field manager and its ownership labels), not anything of ours.
	g.Expect(managers(cm.ManagedFields)).To(ContainElement("kustomize-controller"))
	g.Expect(cm.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", arcagent.KustomizationName("healthy", "main")))
	got, err := fluxConfigs.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", name, "healthy", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*got.Properties.SourceSyncedCommitID).To(HavePrefix("main@sha1:"))
	g.Expect(got.Properties.Statuses).To(HaveLen(2)) // the GitRepository and the Kustomization

	// A path the repository does not have: Non-Compliant with kustomize-controller's own message.
	create("broken", "./does-not-exist")
	g.Eventually(compliance("broken")).WithTimeout(settle).WithPolling(poll).
		Should(And(HavePrefix("Non-Compliant: Kustomization/broken-main:"), ContainSubstring("kustomization path not found")))
	g.Expect(compliance("healthy")()).To(Equal("Compliant"), "one broken configuration must not affect another")

	// Stop leaves nothing: no controller process, no member of their groups, no listening port.
	cancel()
	<-agentDone
	if err := ctl.Stop(); err != nil {
		t.Errorf("stop flux: %v", err)
	}
	stopped = true
	for _, p := range procs {
		g.Expect(syscall.Kill(p.PID, 0)).To(MatchError(syscall.ESRCH), "%s (pid %d) still exists", p.Name, p.PID)
		g.Expect(syscall.Kill(-p.PID, 0)).To(MatchError(syscall.ESRCH), "the process group of %s still has members", p.Name)
		for _, port := range p.Ports {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				_ = c.Close()
			}
			g.Expect(err).To(HaveOccurred(), "port %d of %s still accepts connections", port, p.Name)
		}
	}
}

func managers(fields []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.Manager)
	}
	return out
}

func logsHint(procs []flux.Process) string {
	var out []string
	for _, p := range procs {
		out = append(out, p.Log)
	}
	return strings.Join(out, ", ")
}

// testCluster starts one embedded twin cluster with one node for a test, stopped when the test ends.
func testCluster(ctx context.Context, t *testing.T, name string) (cluster.Info, *rest.Config, kubernetes.Interface) {
	t.Helper()
	prov := embedded.New(embedded.Options{Dir: t.TempDir()})
	t.Cleanup(func() {
		if err := prov.Close(context.Background()); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	info, err := prov.Create(ctx, cluster.Spec{
		Name: name, TimeProfile: cluster.ProfileFast,
		Nodes: []cluster.NodeSpec{{Name: "moc-" + name, Pool: "np1", Host: "hci-1", Size: "Standard_A2_v2", CPU: 2, MemoryMiB: 4096}},
	})
	if err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return info, cfg, kubernetes.NewForConfigOrDie(cfg)
}
