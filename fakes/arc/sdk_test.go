package arc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
)

// These tests drive the fake with the official Azure SDK for Go: if the fake's URLs, JSON, status codes or
// long-running-operation headers were off, the SDK's generated clients and pollers would fail.

const sub = "00000000-0000-4000-8000-000000000001"

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	srv     *arc.Server
	ep      *arc.Endpoint
	clk     *fakeClock
	clients *armhybridkubernetes.ConnectedClusterClient
	flux    *armkubernetesconfiguration.FluxConfigurationsClient
	ext     *armkubernetesconfiguration.ExtensionsClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	srv := arc.NewServer(arc.Options{Now: clk.Now, ProvisioningDelay: 10 * time.Second})
	ep, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	opts := arcsdk.ClientOptions(ep)
	cc, err := armhybridkubernetes.NewConnectedClusterClient(sub, arcsdk.NewCredential(ep), opts)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := armkubernetesconfiguration.NewFluxConfigurationsClient(sub, arcsdk.NewCredential(ep), opts)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := armkubernetesconfiguration.NewExtensionsClient(sub, arcsdk.NewCredential(ep), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, ep: ep, clk: clk, clients: cc, flux: fc, ext: ec}
}

var fast = &runtime.PollUntilDoneOptions{Frequency: 5 * time.Millisecond}

// connect creates a connected cluster and completes its provisioning.
func (e *env) connect(t *testing.T, rg, name string) armhybridkubernetes.ConnectedCluster {
	t.Helper()
	ctx := context.Background()
	poller, err := e.clients.BeginCreate(ctx, rg, name, armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr("westeurope"),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{
			AgentPublicKeyCertificate: to.Ptr(""),
			Distribution:              to.Ptr("aks_workload"),
			Infrastructure:            to.Ptr("azure_stack_hci"),
		},
	}, nil)
	if err != nil {
		t.Fatalf("create connected cluster %s: %v", name, err)
	}
	if poller.Done() {
		t.Fatalf("connected cluster %s finished provisioning at once; want an asynchronous operation", name)
	}
	e.clk.Step(10 * time.Second)
	res, err := poller.PollUntilDone(ctx, fast)
	if err != nil {
		t.Fatalf("poll connected cluster %s: %v", name, err)
	}
	if got := *res.Properties.ProvisioningState; got != armhybridkubernetes.ProvisioningStateSucceeded {
		t.Fatalf("connected cluster %s provisioningState = %s", name, got)
	}
	return res.ConnectedCluster
}

func gitConfig(url string) armkubernetesconfiguration.FluxConfiguration {
	return armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
		SourceKind: to.Ptr(armkubernetesconfiguration.SourceKindTypeGitRepository),
		GitRepository: &armkubernetesconfiguration.GitRepositoryDefinition{
			URL:           to.Ptr(url),
			RepositoryRef: &armkubernetesconfiguration.RepositoryRefDefinition{Branch: to.Ptr("main")},
		},
		Kustomizations: map[string]*armkubernetesconfiguration.KustomizationDefinition{
			"infra": {Path: to.Ptr("./infrastructure")},
			"apps":  {Path: to.Ptr("./apps/dev"), DependsOn: []*string{to.Ptr("infra")}, Prune: to.Ptr(true)},
		},
	}}
}

func TestFluxConfigurationLifecycleWithTheAzureSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cluster := e.connect(t, "rg-hci", "workload-1")

	// Create: 201 + Azure-AsyncOperation, provisioningState Creating, then Succeeded.
	poller, err := e.flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline",
		gitConfig("http://127.0.0.1:3000/platform/fleet.git"), nil)
	if err != nil {
		t.Fatalf("create fluxConfiguration: %v", err)
	}
	if poller.Done() {
		t.Fatal("fluxConfiguration creation finished at once; want Creating first")
	}
	got, err := e.flux.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := *got.Properties.ProvisioningState; s != armkubernetesconfiguration.ProvisioningStateCreating {
		t.Fatalf("provisioningState while in progress = %s, want Creating", s)
	}
	if _, err := poller.Poll(ctx); err != nil || poller.Done() {
		t.Fatalf("poll before the delay: done=%v err=%v, want still running", poller.Done(), err)
	}
	e.clk.Step(10 * time.Second)
	res, err := poller.PollUntilDone(ctx, fast)
	if err != nil {
		t.Fatalf("poll fluxConfiguration: %v", err)
	}
	p := res.Properties
	checks := []struct {
		what      string
		got, want any
	}{
		{"provisioningState", *p.ProvisioningState, armkubernetesconfiguration.ProvisioningStateSucceeded},
		{"complianceState", *p.ComplianceState, armkubernetesconfiguration.FluxComplianceStatePending},
		{"scope default", *p.Scope, armkubernetesconfiguration.ScopeTypeCluster},
		{"namespace default", *p.Namespace, "default"},
		{"repo sync interval default", *p.GitRepository.SyncIntervalInSeconds, int64(600)},
		{"repo timeout default", *p.GitRepository.TimeoutInSeconds, int64(600)},
		{"kustomization prune default", *p.Kustomizations["infra"].Prune, false},
		{"kustomization prune set", *p.Kustomizations["apps"].Prune, true},
		{"kustomization interval default", *p.Kustomizations["infra"].SyncIntervalInSeconds, int64(600)},
		{"kustomization retry default", *p.Kustomizations["infra"].RetryIntervalInSeconds, int64(600)},
		{"kustomization name (read-only)", *p.Kustomizations["apps"].Name, "apps"},
		{"dependsOn", *p.Kustomizations["apps"].DependsOn[0], "infra"},
		{"id", *res.ID, *cluster.ID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/baseline"},
		{"type", *res.Type, "Microsoft.KubernetesConfiguration/fluxConfigurations"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	// The microsoft.flux extension was installed with the first configuration.
	ext, err := e.ext.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "flux", nil)
	if err != nil {
		t.Fatalf("get the flux extension: %v", err)
	}
	if *ext.Properties.ExtensionType != "microsoft.flux" || *ext.Properties.Scope.Cluster.ReleaseNamespace != "flux-system" {
		t.Errorf("flux extension = %s in %s", *ext.Properties.ExtensionType, *ext.Properties.Scope.Cluster.ReleaseNamespace)
	}

	// The agent reports compliance; ARM readers see it.
	cfgID := *res.ID
	if err := e.srv.ReportCompliance(cfgID, arc.ComplianceReport{
		State: arc.Compliant, SyncedCommit: "main@sha1:4f1c2a0e", SourceUpdatedAt: e.clk.Now(),
		Statuses: []arc.ObjectStatus{{Name: "baseline-apps", Namespace: "default", Kind: "Kustomization", ComplianceState: arc.Compliant,
			StatusConditions: []arc.StatusCondition{{Type: "Ready", Status: "True", Reason: "ReconciliationSucceeded", Message: "Applied revision: main@sha1:4f1c2a0e"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	got, err = e.flux.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Properties.ComplianceState != armkubernetesconfiguration.FluxComplianceStateCompliant ||
		*got.Properties.SourceSyncedCommitID != "main@sha1:4f1c2a0e" || got.Properties.StatusUpdatedAt == nil ||
		*got.Properties.Statuses[0].StatusConditions[0].Reason != "ReconciliationSucceeded" {
		t.Errorf("after the report: compliance %v commit %v statuses %+v", *got.Properties.ComplianceState, got.Properties.SourceSyncedCommitID, got.Properties.Statuses)
	}
	if err := e.srv.ReportCompliance(cfgID, arc.ComplianceReport{State: "Green"}); err == nil {
		t.Error("a report with an unknown compliance state was accepted")
	}

	// List through the SDK's pager.
	pager := e.flux.NewListPager("rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", nil)
	var names []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Value {
			names = append(names, *c.Name)
		}
	}
	if strings.Join(names, ",") != "baseline" {
		t.Errorf("list = %v", names)
	}

	// PATCH: suspend.
	up, err := e.flux.BeginUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline",
		armkubernetesconfiguration.FluxConfigurationPatch{Properties: &armkubernetesconfiguration.FluxConfigurationPatchProperties{Suspend: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	e.clk.Step(10 * time.Second)
	patched, err := up.PollUntilDone(ctx, fast)
	if err != nil {
		t.Fatal(err)
	}
	if !*patched.Properties.Suspend || *patched.Properties.GitRepository.URL != "http://127.0.0.1:3000/platform/fleet.git" {
		t.Errorf("patch lost fields or did not suspend: suspend=%v url=%v", *patched.Properties.Suspend, *patched.Properties.GitRepository.URL)
	}

	// Delete: 202, Deleting, then gone.
	del, err := e.flux.BeginDelete(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline", nil)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if cfgs := e.srv.FluxConfigurations(*cluster.ID); len(cfgs) != 1 || cfgs[0].Properties.ProvisioningState != "Deleting" {
		t.Errorf("the agent sees %+v during the delete, want one Deleting configuration", cfgs)
	}
	e.clk.Step(10 * time.Second)
	if _, err := del.PollUntilDone(ctx, fast); err != nil {
		t.Fatal(err)
	}
	_, err = e.flux.Get(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "baseline", nil)
	assertARMError(t, err, http.StatusNotFound, "ResourceNotFound", "baseline")
}

func TestBadFluxConfigurationsGetARMErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "rg-hci", "workload-1")

	bad := gitConfig("ftp://example.invalid/repo")
	bad.Properties.GitRepository.RepositoryRef = nil
	bad.Properties.Kustomizations["infra"].DependsOn = []*string{to.Ptr("apps")} // apps -> infra -> apps
	bad.Properties.Kustomizations["Bad_Name"] = &armkubernetesconfiguration.KustomizationDefinition{SyncIntervalInSeconds: to.Ptr[int64](0)}
	_, err := e.flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "Not_Valid", bad, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "InvalidRequestContent" {
		t.Fatalf("err = %v, want a 400 InvalidRequestContent ResponseError", err)
	}
	// Every problem is named in one answer, each with its field.
	for _, want := range []string{"name:", "gitRepository.url", "repositoryRef", "kustomizations.Bad_Name", "syncIntervalInSeconds", "cycle: apps -> infra -> apps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if cfgs := e.srv.FluxConfigurations("/subscriptions/" + sub + "/resourceGroups/rg-hci/providers/Microsoft.Kubernetes/connectedClusters/workload-1"); len(cfgs) != 0 {
		t.Errorf("a rejected configuration was stored: %+v", cfgs)
	}

	// A configuration on a cluster that is not connected.
	_, err = e.flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "nowhere", "cfg", gitConfig("https://git.example/repo"), nil)
	assertARMError(t, err, http.StatusNotFound, "ParentResourceNotFound", "nowhere")

	// Unsupported sourceKind is said plainly.
	blob := gitConfig("https://git.example/repo")
	blob.Properties.SourceKind = to.Ptr(armkubernetesconfiguration.SourceKindTypeAzureBlob)
	_, err = e.flux.BeginCreateOrUpdate(ctx, "rg-hci", "Microsoft.Kubernetes", "connectedClusters", "workload-1", "cfg", blob, nil)
	assertARMError(t, err, http.StatusBadRequest, "InvalidRequestContent", "AzureBlob is not")
}

func TestARMRequestChecks(t *testing.T) {
	e := newEnv(t)
	tok, err := arcsdk.Token(context.Background(), e.ep)
	if err != nil {
		t.Fatal(err)
	}
	path := e.ep.URL + "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1/providers/Microsoft.KubernetesConfiguration/fluxConfigurations"
	cases := []struct {
		name, url, auth string
		status          int
		code            string
	}{
		{"no token", path + "?api-version=2023-05-01", "", 401, "AuthenticationFailed"},
		{"no api-version", path, "Bearer " + tok, 400, "MissingApiVersionParameter"},
		{"unknown api-version", path + "?api-version=2019-01-01", "Bearer " + tok, 400, "NoRegisteredProviderFound"},
		{"unknown resource type", e.ep.URL + "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm?api-version=2023-05-01", "Bearer " + tok, 404, "InvalidResourceType"},
		{"parent missing", path + "?api-version=2023-05-01", "Bearer " + tok, 404, "ParentResourceNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.url, nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := e.ep.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !strings.Contains(string(body), `"code":"`+c.code+`"`) {
				t.Fatalf("status %d body %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
			if resp.Header.Get("x-ms-request-id") == "" {
				t.Error("no x-ms-request-id header")
			}
		})
	}
}

func TestPolicyAssignmentDeploysToExistingAndLaterClusters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	existing := e.connect(t, "rg-fleet", "store-001")
	other := e.connect(t, "rg-other", "lab-001")

	assignment := `{"location":"westeurope","identity":{"type":"SystemAssigned"},"properties":{
	  "policyDefinitionId":"` + arc.BuiltinGitOpsPolicyDefinitionID + `",
	  "parameters":{"configurationName":{"value":"baseline"},"repositoryUrl":{"value":"http://127.0.0.1:3000/platform/baseline.git"},
	                "repositoryRefBranch":{"value":"main"},"kustomizationPath":{"value":"./clusters/base"},"kustomizationPrune":{"value":true}}}}`
	url := e.ep.URL + "/subscriptions/" + sub + "/resourceGroups/rg-fleet/providers/Microsoft.Authorization/policyAssignments/gitops-baseline?api-version=2022-06-01"
	status, body := doJSON(t, e, http.MethodPut, url, assignment)
	if status != http.StatusCreated {
		t.Fatalf("assign policy: %d %s", status, body)
	}

	// The cluster that was already in scope gets the configuration; the one outside the scope does not.
	if cfgs := e.srv.FluxConfigurations(*existing.ID); len(cfgs) != 1 || cfgs[0].Name != "baseline" ||
		cfgs[0].Properties.GitRepository.RepositoryRef.Branch != "main" || !*cfgs[0].Properties.Kustomizations["kustomization-1"].Prune {
		t.Fatalf("existing cluster in scope has %+v", cfgs)
	}
	if cfgs := e.srv.FluxConfigurations(*other.ID); len(cfgs) != 0 {
		t.Fatalf("cluster outside the scope got %+v", cfgs)
	}

	// A cluster connected later gets it once its provisioning succeeds.
	later := e.connect(t, "rg-fleet", "store-002")
	got, err := e.flux.Get(ctx, "rg-fleet", "Microsoft.Kubernetes", "connectedClusters", "store-002", "baseline", nil)
	if err != nil {
		t.Fatalf("the later cluster has no baseline configuration: %v", err)
	}
	if *got.Properties.Kustomizations["kustomization-1"].Path != "./clusters/base" || *got.Properties.Scope != "cluster" {
		t.Errorf("deployed configuration = %+v", got.Properties)
	}
	if deps := e.srv.PolicyDeployments("/subscriptions/" + sub + "/resourceGroups/rg-fleet/providers/Microsoft.Authorization/policyAssignments/gitops-baseline"); len(deps) != 2 || !strings.HasPrefix(deps[1], *later.ID) {
		t.Errorf("policy deployments = %v", deps)
	}

	// Bad assignments: missing required parameter, bad allowed value, no identity, unknown definition.
	status, body = doJSON(t, e, http.MethodPut, url, `{"location":"westeurope","properties":{"policyDefinitionId":"`+arc.BuiltinGitOpsPolicyDefinitionID+`","parameters":{"configurationScope":{"value":"everywhere"}}}}`)
	if status != http.StatusBadRequest {
		t.Fatalf("bad assignment: %d %s", status, body)
	}
	for _, want := range []string{"configurationName", "repositoryUrl", "everywhere", "identity"} {
		if !strings.Contains(body, want) {
			t.Errorf("bad assignment error does not mention %q: %s", want, body)
		}
	}
	status, body = doJSON(t, e, http.MethodPut, url, `{"location":"westeurope","identity":{"type":"SystemAssigned"},"properties":{"policyDefinitionId":"/providers/Microsoft.Authorization/policyDefinitions/nope"}}`)
	if status != http.StatusNotFound || !strings.Contains(body, "PolicyDefinitionNotFound") {
		t.Errorf("unknown definition: %d %s", status, body)
	}
}

func doJSON(t *testing.T, e *env, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := arcsdk.AuthorizedClient(e.ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func assertARMError(t *testing.T, err error, status int, code, mention string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an ARM ResponseError %d %s", err, status, code)
	}
	if re.StatusCode != status || re.ErrorCode != code || !strings.Contains(err.Error(), mention) {
		t.Fatalf("got %d %s, want %d %s mentioning %q:\n%v", re.StatusCode, re.ErrorCode, status, code, mention, err)
	}
}
