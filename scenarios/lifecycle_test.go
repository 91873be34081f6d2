package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// lifecycleSpecs: workload clusters deleted, recreated and onboarded, and a node pool grown, on the
// running default twin (twin.RemoveCluster, RecreateCluster, AddCluster, ScaleNodePool). Each spec leaves
// the twin as it found it: the same clusters, the same pool sizes, every configuration Compliant.
func lifecycleSpecs() {
	Describe("cluster lifecycle", Label("lifecycle"), func() {
		It("disaster recovery: a deleted workload cluster is recreated and converges from Git", Label("flow"), disasterRecovery)
		It("onboarding under policy: a new cluster connected into the resource group gets the baseline without anyone configuring it", Label("flow"), onboardingUnderPolicy)
		It("grows a node pool step by step until the hardware says no, then scales it back", Label("scale"), growPoolUntilRefused)
	})
}

func disasterRecovery(ctx SpecContext) {
	tw := env.Twin
	exp := Experiment("lifecycle: disaster recovery")
	victim := tw.Clusters()[0]
	Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).
		Should(Succeed(), "the twin must be converged before the disaster")
	// What Git put on the cluster, before the disaster: every object carrying Flux's owner label, and the
	// configurations ARM holds for it.
	before, err := managedObjects(ctx, tw, victim)
	Expect(err).NotTo(HaveOccurred())
	Expect(before).NotTo(BeEmpty(), "cluster %s holds no object a configuration applied", victim)
	configs := configurationsOf(ctx, victim)
	Expect(configs).NotTo(BeEmpty())

	others := otherVMHosts(ctx, victim)
	start := time.Now()
	tl := NewTimeline(start)
	removed, err := tw.RemoveCluster(ctx, victim)
	Expect(err).NotTo(HaveOccurred(), "delete cluster %s", victim)
	DeferCleanup(func(ctx context.Context) { ensureRunning(ctx, victim) })
	tl.Add(time.Now(), "deleted", fmt.Sprintf("%s: control plane stopped, connectedCluster deleted, %d VM(s) released", victim, len(removed.Released)))
	recordTiming(exp, "delete", removed.Took)
	Expect(tw.Clusters()).NotTo(ContainElement(victim))
	_, err = tw.RESTConfig(victim)
	Expect(err).To(HaveOccurred(), "cluster %s still has an API server after the delete", victim)
	for _, cc := range tw.Arc().ConnectedClusters() {
		Expect(cc.Name).NotTo(Equal(victim), "the connectedCluster of %s is still in ARM (az connectedk8s delete removes it)", victim)
	}
	st, err := tw.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, vm := range st.VMs {
		Expect(vm.Cluster).NotTo(Equal(victim), "VM %s of the deleted cluster is still in the hardware model", vm.Name)
	}
	Expect(otherVMHosts(ctx, victim)).To(Equal(others), "deleting %s moved VMs of other clusters in the hardware model (a real HCI cluster moves none)", victim)

	recreateStart := time.Now()
	rep, err := tw.RecreateCluster(ctx, victim)
	Expect(err).NotTo(HaveOccurred(), "recreate cluster %s", victim)
	refreshClient(victim)
	Expect(otherVMHosts(ctx, victim)).To(Equal(others), "recreating %s moved VMs of other clusters in the hardware model", victim)
	for _, s := range []twin.LifecycleStepName{twin.StepControlPlaneUp, twin.StepNodesReady, twin.StepConnected} {
		at, ok := rep.StepAt(s)
		Expect(ok).To(BeTrue(), "the recreate report has no %q step", s)
		tl.Add(at, string(s), victim)
		recordTiming(exp, "recreate to "+string(s), at.Sub(recreateStart))
	}
	Eventually(func(ctx context.Context) error {
		return compliantAtHead(ctx, victim, configs)
	}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
	tl.Add(time.Now(), "Compliant", strings.Join(configs, ", ")+" at main's head")
	recordTiming(exp, "recreate to every configuration Compliant", time.Since(recreateStart))
	var after []string
	Eventually(func(ctx context.Context) error {
		after, err = managedObjects(ctx, tw, victim)
		if err != nil {
			return err
		}
		if missing, extra := setDiff(before, after); len(missing)+len(extra) > 0 {
			return fmt.Errorf("cluster %s after the recreate: %d object(s) Git put there before the disaster are missing: %v; %d unexpected: %v",
				victim, len(missing), missing, len(extra), extra)
		}
		return deploymentsAvailable(ctx, env.Kube[victim])
	}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
	converged := time.Since(recreateStart)
	tl.Add(time.Now(), "converged", fmt.Sprintf("%d objects back, every Deployment available", len(after)))
	recordTiming(exp, "time to converged (recreate start to Compliant, objects back, apps available)", converged)
	Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
	Expect(tw.Clusters()).To(Equal(tw.Spec().ClusterNames()), "the twin runs the spec's clusters again")
	Note("Cluster %s deleted (%s, VMs released: %s) and recreated from the spec (VMs placed on the capacity left: %s): control plane up after %s, nodes Ready after %s, %d configuration(s) Compliant and %d objects back (every Deployment available) %s after the recreate started. No VM of another cluster moved in the hardware model (%d checked).",
		victim, removed.Took.Round(100*time.Millisecond), placementList(removed.Released), placementList(rep.Placed), stepAfterText(rep, twin.StepControlPlaneUp), stepAfterText(rep, twin.StepNodesReady),
		len(configs), len(after), converged.Round(100*time.Millisecond), len(others))
}

func onboardingUnderPolicy(ctx SpecContext) {
	tw := env.Twin
	exp := Experiment("lifecycle: onboarding under policy")
	az := tw.Spec().Spec.Azure
	suffix := fmt.Sprintf("%04x", GinkgoRandomSeed()&0xffff)
	name := "branch-" + suffix
	assignment := "gitops-baseline-" + suffix
	baselineConfig, baselineKs, baselinePath := "baseline", "infrastructure", "./infrastructure/base"

	// The built-in definition is the public-repository one (no secret), so the repository URL carries a
	// read-only identity: it stands in for a public repository.
	reader, err := env.Git.CreateUser(ctx, "policy-reader-"+suffix)
	Expect(err).NotTo(HaveOccurred())
	Expect(env.Git.AssignPersona(ctx, env.Repo.Owner, reader, gitserver.ApplicationDeveloper)).To(Succeed())
	repoURL := cloneURLWithUser(env.Git.CloneURL(env.Repo), reader.Name, reader.Token())
	head, err := env.Git.BranchCommit(ctx, env.Repo, "main")
	Expect(err).NotTo(HaveOccurred())

	// The clusters that already run their own cluster-wide layer are excluded (notScopes), so the policy
	// does not pile a second one onto them.
	st, err := tw.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	var notScopes []string
	for _, c := range st.Clusters {
		notScopes = append(notScopes, c.ArcID)
	}
	scope := "/subscriptions/" + az.SubscriptionID + "/resourceGroups/" + az.ResourceGroup
	assignmentID := scope + "/providers/Microsoft.Authorization/policyAssignments/" + assignment
	body := map[string]any{
		"location": az.Location,
		"identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{
			"policyDefinitionId": arc.BuiltinGitOpsPolicyDefinitionID,
			"notScopes":          notScopes,
			"parameters": map[string]any{
				"configurationName":          map[string]any{"value": baselineConfig},
				"configurationNamespace":     map[string]any{"value": "flux-system"},
				"configurationScope":         map[string]any{"value": "cluster"},
				"repositoryUrl":              map[string]any{"value": repoURL},
				"repositoryRefBranch":        map[string]any{"value": "main"},
				"repositorySyncInterval":     map[string]any{"value": SourceIntervalSeconds},
				"kustomizationName":          map[string]any{"value": baselineKs},
				"kustomizationPath":          map[string]any{"value": baselinePath},
				"kustomizationPrune":         map[string]any{"value": true},
				"kustomizationRetryInterval": map[string]any{"value": SourceIntervalSeconds},
			},
		},
	}
	status, resp := armRequest(ctx, http.MethodPut, assignmentID, body)
	Expect(status).To(Equal(http.StatusCreated), "create policy assignment %s: %s", assignmentID, resp)
	DeferCleanup(func(ctx context.Context) {
		status, resp := armRequest(ctx, http.MethodDelete, assignmentID, nil)
		Expect(status).To(Equal(http.StatusOK), "delete policy assignment %s: %s", assignmentID, resp)
	})
	Expect(tw.Arc().PolicyDeployments(assignmentID)).To(BeEmpty(), "the policy deployed to a cluster in notScopes")

	// A new branch cluster, placed by the hardware model: one control plane, two workers.
	running := otherVMHosts(ctx, name)
	start := time.Now()
	tl := NewTimeline(start)
	wc := hardware.WorkloadCluster{Name: name, ControlPlane: hardware.ControlPlaneSpec{Count: 1, VMSize: "Standard_A4_v2"},
		NodePools: []hardware.NodePool{{Name: "linux", OSType: hardware.Linux, VMSize: "Standard_K8S3_v1", Count: 2}}}
	rep, err := tw.AddCluster(ctx, wc)
	Expect(err).NotTo(HaveOccurred(), "onboard cluster %s", name)
	DeferCleanup(func(ctx context.Context) {
		_, err := tw.RemoveCluster(ctx, name)
		Expect(err).NotTo(HaveOccurred(), "remove the onboarded cluster %s", name)
		Expect(tw.Clusters()).To(Equal(tw.Spec().ClusterNames()))
	})
	for _, s := range []twin.LifecycleStepName{twin.StepPlaced, twin.StepControlPlaneUp, twin.StepNodesReady, twin.StepConnected} {
		at, ok := rep.StepAt(s)
		Expect(ok).To(BeTrue(), "the add report has no %q step", s)
		tl.Add(at, string(s), name)
	}
	connected, _ := rep.StepAt(twin.StepConnected)
	recordTiming(exp, "add to connected", connected.Sub(start))
	Expect(otherVMHosts(ctx, name)).To(Equal(running), "onboarding %s moved VMs of the running clusters in the hardware model (a real HCI cluster moves none)", name)
	for _, p := range rep.Placed {
		Expect(p.Host).NotTo(BeEmpty(), "VM %s was not placed", p.VM)
	}

	// Nobody created a configuration for it: the spec has none (its gitops list names dev and prod), and
	// the one it has came from the assignment.
	Expect(rep.Configurations).To(ConsistOf(baselineConfig), "configurations on %s", name)
	newID := ""
	st, err = tw.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, c := range st.Clusters {
		if c.Name == name {
			newID = c.ArcID
		}
	}
	Expect(newID).NotTo(BeEmpty(), "cluster %s is not in the twin's status", name)
	Expect(tw.Arc().PolicyDeployments(assignmentID)).To(ConsistOf(newID+"/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/"+baselineConfig),
		"the assignment's DeployIfNotExists deployed the baseline to the new cluster only")
	tl.Add(time.Now(), "configuration deployed by policy", baselineConfig)

	Eventually(func(ctx context.Context) error {
		return compliantAtHead(ctx, name, []string{baselineConfig})
	}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
	compliant := time.Since(start)
	tl.Add(time.Now(), "Compliant", baselineConfig+" at main's head")
	recordTiming(exp, "add to baseline Compliant", compliant)

	// The baseline's objects: what kustomize builds from main's head at the baseline path, each on the new
	// cluster with Flux's owner label for the baseline's Kustomization.
	dir := cloneRepoAt(ctx, "main", head)
	want := kustomizeObjectKeys(filepath.Join(dir, filepath.FromSlash(baselinePath)))
	Expect(want).NotTo(BeEmpty())
	owner := arcagent.KustomizationName(baselineConfig, baselineKs)
	Eventually(func(ctx context.Context) error {
		have, err := managedObjects(ctx, tw, name)
		if err != nil {
			return err
		}
		var mine []string
		for _, h := range have {
			if strings.HasSuffix(h, " ["+owner+"]") {
				mine = append(mine, strings.TrimSuffix(h, " ["+owner+"]"))
			}
		}
		// Only what Git declares counts: the cluster also has objects derived from them that carry the
		// same labels (the Endpoints of a Service).
		if missing, _ := setDiff(want, mine); len(missing) > 0 {
			return fmt.Errorf("cluster %s: the baseline (%s@main %s) declares %d object(s) the cluster lacks (or has without the owner label %s): %v",
				name, env.Repo, baselinePath, len(missing), owner, missing)
		}
		return nil
	}).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
	recordTiming(exp, "add to baseline objects present", time.Since(start))
	Note("New cluster %s (%s) onboarded into %s under policy assignment %s (built-in \"Configure Kubernetes clusters with Flux v2 configuration using public Git repository\", notScopes: the clusters with their own cluster-wide layer): connected after %s, the policy deployed %q (the only configuration on it; nobody created one), Compliant after %s, all %d baseline objects present.",
		name, placementList(rep.Placed), az.ResourceGroup, assignment, connected.Sub(start).Round(100*time.Millisecond), baselineConfig, compliant.Round(100*time.Millisecond), len(want))
}

func growPoolUntilRefused(ctx SpecContext) {
	tw := env.Twin
	exp := Experiment("lifecycle: grow a node pool")
	plan := tw.Plan()
	cl := plan.Spec.WorkloadClusters[0].Name
	pool := plan.Spec.WorkloadClusters[0].NodePools[0].Name
	original := plan.Spec.WorkloadClusters[0].NodePools[0].Count
	// The step: a quarter of what the hardware model says still fits on the estate as it runs (earlier
	// specs may have moved VMs by failover or recreated clusters), so the pool reaches the limit in a
	// handful of steps, each adding several nodes at once.
	mw, err := tw.MoreWorkers(cl, pool)
	Expect(err).NotTo(HaveOccurred())
	Expect(mw.More).To(BeNumerically(">", 0), "the estate has no room to grow %s/%s: %s", cl, pool, mw.LimitedBy)
	step := (mw.More + 4) / 4
	DeferCleanup(func(ctx context.Context) {
		_, err := tw.ScaleNodePool(ctx, cl, pool, original)
		Expect(err).NotTo(HaveOccurred(), "scale %s/%s back to %d", cl, pool, original)
	})

	count, reached := original, original
	var steps []string
	var refusal *twin.CapacityError
	for refusal == nil {
		count += step
		rep, err := tw.ScaleNodePool(ctx, cl, pool, count)
		if err != nil {
			Expect(errors.As(err, &refusal)).To(BeTrue(), "scale %s/%s to %d failed, and not because the hardware said no: %v", cl, pool, count, err)
			break
		}
		added, _ := rep.StepAt(twin.StepNodesAdded)
		recordTiming(exp, fmt.Sprintf("%d -> %d nodes Ready", reached, count), added.Sub(rep.Started))
		expectPoolReady(ctx, cl, pool, count)
		steps = append(steps, fmt.Sprintf("%d (+%d Ready in %s)", count, count-reached, added.Sub(rep.Started).Round(100*time.Millisecond)))
		reached = count
		Expect(count).To(BeNumerically("<=", mw.Current+mw.More), "the twin grew the pool past what the capacity planner allows")
	}
	Expect(count).To(BeNumerically(">", mw.Current+mw.More), "the twin refused %d VMs, which the capacity planner says fit", count)
	Expect(refusal.Reasons).NotTo(BeEmpty())
	// Nothing changed: the pool still has the nodes of the last step that fitted.
	expectPoolReady(ctx, cl, pool, reached)
	Expect(tw.Plan().Spec.WorkloadClusters[0].NodePools[0].Count).To(Equal(reached))
	Note("Pool %s/%s (%s) grew from %d in steps of %d: %s. Scaling to %d was refused by the hardware model, nothing changed: %s (the hardware model's limit for this pool on the estate as it ran: %d).",
		cl, pool, mw.VMSize, original, step, strings.Join(steps, ", "), count, strings.Join(refusal.Reasons, "; "), mw.Current+mw.More)

	back := time.Now()
	rep, err := tw.ScaleNodePool(ctx, cl, pool, original)
	Expect(err).NotTo(HaveOccurred(), "scale %s/%s back to %d", cl, pool, original)
	recordTiming(exp, fmt.Sprintf("%d -> %d nodes (drained, removed)", reached, original), time.Since(back))
	Expect(rep.Released).To(HaveLen(reached - original))
	expectPoolReady(ctx, cl, pool, original)
	Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
}

// expectPoolReady checks that a pool's nodes are exactly the model's worker VMs of it, each Ready and
// labelled with the host the model placed its VM on.
func expectPoolReady(ctx context.Context, cl, pool string, count int) {
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	host := map[string]string{}
	for _, vm := range st.VMs {
		if vm.Cluster == cl && vm.Role == string(hardware.RoleWorker) {
			host[vm.Name] = vm.Host
		}
	}
	nodes, err := env.Kube[cl].CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: cluster.LabelNodePool + "=" + pool})
	Expect(err).NotTo(HaveOccurred())
	var problems []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if r := nodeReady(n); r != string(corev1.ConditionTrue) {
			problems = append(problems, fmt.Sprintf("node %s is %s", n.Name, r))
		}
		if h, ok := host[n.Name]; !ok {
			problems = append(problems, fmt.Sprintf("node %s has no worker VM in the model", n.Name))
		} else if got := n.Labels[cluster.LabelHCIHost]; got != h {
			problems = append(problems, fmt.Sprintf("node %s is labelled host %s, the model has its VM on %s", n.Name, got, h))
		}
	}
	Expect(problems).To(BeEmpty(), "cluster %s pool %s", cl, pool)
	Expect(nodes.Items).To(HaveLen(count), "cluster %s pool %s: want %d nodes", cl, pool, count)
}

// ensureRunning recreates a spec cluster a failed spec left deleted, so later specs find the twin whole.
func ensureRunning(ctx context.Context, name string) {
	for _, c := range env.Twin.Clusters() {
		if c == name {
			return
		}
	}
	_, err := env.Twin.RecreateCluster(ctx, name)
	Expect(err).NotTo(HaveOccurred(), "recreate cluster %s after a failed spec", name)
	refreshClient(name)
	Eventually(env.Compliance).WithContext(ctx).WithTimeout(env.Waits.Converge).WithPolling(env.Waits.Poll).Should(Succeed())
}

// refreshClient points the suite's client for a cluster at its new API server (a recreated cluster
// has new addresses and certificates).
func refreshClient(name string) {
	cfg, err := env.Twin.RESTConfig(name)
	Expect(err).NotTo(HaveOccurred())
	env.Kube[name], err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
}

// configurationsOf are the names of the configurations ARM holds for a cluster, sorted.
func configurationsOf(ctx context.Context, clusterName string) []string {
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, g := range st.GitOps {
		if g.Cluster == clusterName {
			out = append(out, g.Name)
		}
	}
	sort.Strings(out)
	return out
}

// compliantAtHead fails unless exactly these configurations are on the cluster, each Compliant at the
// head of main.
func compliantAtHead(ctx context.Context, clusterName string, names []string) error {
	head, err := env.Git.BranchCommit(ctx, env.Repo, "main")
	if err != nil {
		return err
	}
	if got := configurationsOf(ctx, clusterName); strings.Join(got, ",") != strings.Join(names, ",") {
		return fmt.Errorf("cluster %s has configurations %v, want %v", clusterName, got, names)
	}
	for _, n := range names {
		g, err := env.GitOps(ctx, clusterName, n)
		if err != nil {
			return err
		}
		if g.ComplianceState != arc.Compliant || !strings.Contains(g.SyncedCommit, head) {
			return fmt.Errorf("configuration %s on %s is %s at %q, want Compliant at main's head %.12s: %s", n, clusterName, g.ComplianceState, g.SyncedCommit, head, g.Message)
		}
	}
	return nil
}

// managedObjects lists every object on a cluster that a GitOps configuration applied -- it carries
// Flux's owner label and no controller made it (an EndpointSlice copies its Service's labels) -- as
// "Kind namespace/name [kustomization]", sorted. It asks discovery for every listable resource, so no
// kind is missed.
func managedObjects(ctx context.Context, tw *twin.Twin, clusterName string) ([]string, error) {
	cfg, err := tw.RESTConfig(clusterName)
	if err != nil {
		return nil, err
	}
	// One list per resource type: the kubelet's client limits (50/100, as the twin's own clients) keep
	// client-side throttling out of the measured times; deprecation warnings of listing every type are
	// not the scenario's business.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WarningHandler = rest.NoWarnings{}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := discovery.ServerPreferredResources(dc)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover the resources of cluster %s: %w", clusterName, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	owner := reconciler.DefaultProfile().OwnerGroup + "/name"
	var out []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasString(r.Verbs, "list") || r.Kind == "Event" {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{LabelSelector: owner})
			if err != nil {
				return nil, fmt.Errorf("list %s on cluster %s: %w", r.Name, clusterName, err)
			}
			for _, it := range items.Items {
				if metav1.GetControllerOf(&it) != nil {
					continue
				}
				key := it.GetName()
				if it.GetNamespace() != "" {
					key = it.GetNamespace() + "/" + key
				}
				out = append(out, fmt.Sprintf("%s %s [%s]", it.GetKind(), key, it.GetLabels()[owner]))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// deploymentsAvailable fails unless every Deployment a configuration applied has all its replicas ready.
func deploymentsAvailable(ctx context.Context, kc kubernetes.Interface) error {
	owner := reconciler.DefaultProfile().OwnerGroup + "/name"
	deps, err := kc.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: owner})
	if err != nil {
		return err
	}
	var bad []string
	for i := range deps.Items {
		d := &deps.Items[i]
		if want := desiredReplicas(d); d.Status.ReadyReplicas != want {
			bad = append(bad, fmt.Sprintf("%s/%s %d/%d ready", d.Namespace, d.Name, d.Status.ReadyReplicas, want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("Deployments not available yet: %s", strings.Join(bad, ", "))
	}
	return nil
}

func desiredReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// diffSets returns what want has that got lacks, and what got has that want lacks.
func setDiff(want, got []string) (missing, extra []string) {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	w, g := in(want), in(got)
	for _, x := range want {
		if !g[x] {
			missing = append(missing, x)
		}
	}
	for _, x := range got {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	return missing, extra
}

// armRequest sends one request to the Arc fake's ARM endpoint in the Policy REST shape and returns the
// status and body.
func armRequest(ctx context.Context, method, id string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(data)
	}
	// api-version: a GA version of the Policy REST reference the fake accepts (fakes/arc profile.go).
	req, err := http.NewRequestWithContext(ctx, method, env.Twin.ArcEndpoint()+id+"?api-version=2022-06-01", rd)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.Twin.ARMClient().Do(req)
	Expect(err).NotTo(HaveOccurred(), "%s %s", method, id)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// withUser puts a user and token into a clone URL.
func cloneURLWithUser(raw, user, token string) string {
	u, err := url.Parse(raw)
	Expect(err).NotTo(HaveOccurred())
	u.User = url.UserPassword(user, token)
	return u.String()
}

// cloneAt clones the twin's repository at a branch with the real git CLI and checks it is at commit.
func cloneRepoAt(ctx context.Context, branch, commit string) string {
	token, err := os.ReadFile(filepath.Join(env.Twin.StateDir(), twin.GiteaTokenFile))
	Expect(err).NotTo(HaveOccurred())
	secret := strings.TrimSpace(string(token))
	dir := GinkgoT().TempDir()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "git %s: %s", args[0], strings.ReplaceAll(string(out), secret, "***"))
		return strings.TrimSpace(string(out))
	}
	git("clone", "--quiet", "--branch", branch, cloneURLWithUser(env.Git.CloneURL(env.Repo), env.Git.User(), secret), ".")
	Expect(git("rev-parse", "HEAD")).To(Equal(commit), "the clone of %s@%s is not at %s", env.Repo, branch, commit)
	return dir
}

// kustomizeKeys builds a kustomization folder with the kustomize API as kustomize-controller does (no
// load restrictions, plugins off) and returns its objects as "Kind namespace/name", sorted.
func kustomizeObjectKeys(dir string) []string {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kustypes.LoadRestrictionsNone
	opts.PluginConfig = kustypes.DisabledPluginConfig()
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	Expect(err).NotTo(HaveOccurred(), "kustomize build %s", dir)
	var out []string
	for _, r := range rm.Resources() {
		key := r.GetName()
		if ns := r.GetNamespace(); ns != "" {
			key = ns + "/" + key
		}
		out = append(out, r.GetKind()+" "+key)
	}
	sort.Strings(out)
	return out
}

func stepAfterText(rep *twin.ClusterReport, s twin.LifecycleStepName) string {
	for _, st := range rep.Steps {
		if st.Step == s {
			return st.After.Round(100 * time.Millisecond).String()
		}
	}
	return "?"
}

// otherVMHosts maps every VM of the hardware model not of cluster except to its host.
func otherVMHosts(ctx context.Context, except string) map[string]string {
	st, err := env.Twin.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, vm := range st.VMs {
		if vm.Cluster != except {
			out[vm.Name] = vm.Host
		}
	}
	return out
}

func placementList(ps []twin.VMPlacement) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.VM + "@" + p.Host
	}
	return strings.Join(parts, ", ")
}

func hasString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
