package estate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/arcconfig"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/engine/engines"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
	"github.com/hybridtwin/hybridtwin/twin/spec"
)

// The per-cluster steps of the pipeline (pipeline.go). Each registers the cluster's cleanups, so
// removing the cluster or undoing a failed add is one walk back through them (undoCluster).

// startControlPlane starts the cluster's control plane and simulated kubelets with the provider (one
// Node per worker VM of the hardware model). A failed start leaves nothing running (the provider's
// promise).
func (e *Estate) startControlPlane(ctx context.Context, b *bringing) error {
	cs, err := clusterSpec(e.spec, b.name, b.vms)
	if err != nil {
		return err
	}
	began := time.Now()
	info, err := e.provider.Create(ctx, cs)
	if err != nil {
		return err
	}
	prov := e.provider
	e.addCleanup(cleanup{name: "cluster " + cs.Name, cluster: cs.Name, stage: api.StepControlPlaneDown,
		fn: func(ctx context.Context) error { return prov.Delete(ctx, cs.Name) }})
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	b.rc = &Cluster{info: info, config: cfg, client: kc}
	e.progress("cluster %s: %s, %d VM-nodes Ready (started in %s)", cs.Name, info.Server, len(info.Nodes), info.Start.Total.Round(10*time.Millisecond))
	if b.rep != nil {
		// The provider reports its phases: the API server is ready after etcd and its own start.
		st := info.Start
		b.rep.Stage(api.StepControlPlaneUp, began.Add(st.Took(cluster.PhaseEtcd)+st.Took(cluster.PhaseAPIServer)), info.Server)
		b.rep.Stage(api.StepNodesReady, began.Add(st.Total), fmt.Sprintf("%d VM-node(s)", len(info.Nodes)))
	}
	return nil
}

// connect registers the cluster as a connected cluster through ARM, as `az connectedk8s connect` does,
// and reports its agents' connectivity, size and version from the hardware model's worker VMs.
func (e *Estate) connect(ctx context.Context, b *bringing) error {
	az := e.spec.Spec.Azure
	res, err := arcsdk.ConnectCluster(ctx, e.arcEP, az.SubscriptionID, az.ResourceGroup, b.name, az.Location, e.prof.ARMPoll)
	if err != nil {
		return err
	}
	rc := b.rc
	rc.arcID = *res.ID
	e.addCleanup(cleanup{name: "connectedCluster " + b.name, cluster: b.name, stage: api.StepDisconnected, removeOnly: true,
		fn: func(ctx context.Context) error { return e.disconnect(ctx, b.name) }})
	nodes, cores := workerTotals(b.vms, b.name)
	if err := e.arcSrv.SetConnectivity(rc.arcID, "Connected", rc.info.KubernetesVersion, nodes, cores); err != nil {
		return err
	}
	e.progress("connect: %s -> %s", b.name, rc.arcID)
	if b.rep != nil {
		b.rep.Stage(api.StepConnected, time.Now(), rc.arcID)
	}
	return nil
}

// disconnect deletes the cluster's connectedCluster through ARM and waits for the deletion, as
// `az connectedk8s delete` does (ARM deletes the nested extensions and fluxConfigurations with it).
func (e *Estate) disconnect(ctx context.Context, name string) error {
	az := e.spec.Spec.Azure
	c, err := armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, arcsdk.NewCredential(e.arcEP), arcsdk.ClientOptions(e.arcEP))
	if err != nil {
		return err
	}
	p, err := c.BeginDelete(ctx, az.ResourceGroup, name, nil)
	if err != nil {
		return fmt.Errorf("delete connected cluster %s: %w", name, err)
	}
	if _, err := arcsdk.Poll(ctx, p, e.prof.ARMPoll); err != nil {
		return fmt.Errorf("wait for connected cluster %s to be deleted: %w", name, err)
	}
	return nil
}

// workerTotals counts a cluster's worker VMs and their vCPUs, as the Arc agents report totalNodeCount
// and totalCoreCount.
func workerTotals(vms []hardware.VMStatus, clusterName string) (nodes, cores int32) {
	for _, vm := range vms {
		if vm.Cluster == clusterName && vm.Role == hardware.RoleWorker {
			nodes++
			cores += int32(vm.VCPU)
		}
	}
	return nodes, cores
}

// startEngine installs Flux's CRDs into the cluster, as the Arc Flux extension does whichever engine
// runs, starts the cluster's GitOps engine from the engine room (spec.reconciler) and its Arc agent.
// Why the twin's engine and the agents run as goroutines of this process: one process keeps Ctrl-C and
// teardown simple (cancel one context, nothing to reap), and each cluster still gets its own engine and
// agent with its own work directory and API client, as Flux runs one set of controllers per cluster.
func (e *Estate) startEngine(ctx context.Context, b *bringing) error {
	name, rc := b.name, b.rc
	if _, err := fluxcrd.Install(ctx, rc.config, nil, nil); err != nil {
		return err
	}
	which := string(e.spec.ReconcilerFor(name))
	eng, ok := engines.Lookup(which)
	if !ok { // the spec's validation refuses unknown names
		return fmt.Errorf("no engine %q (have: %v)", which, engines.Names())
	}
	var hooks engine.PushHooks
	if len(e.gitRepos) > 0 {
		hooks = &pushHooks{admin: e.git.Admin(), repos: e.gitRepos}
	}
	dir := e.engineDir(name)
	// Registered before the engine starts, so it runs after the engine stopped: a cluster of the same
	// name later starts clean.
	e.addCleanup(cleanup{name: "engine state " + name, cluster: name, stage: api.StepAgentStopped, removeOnly: true,
		fn: func(context.Context) error { return os.RemoveAll(dir) }})
	var eventsURL string
	if e.spec.Spec.Notifications.Enabled {
		// Before the engine, which posts its events to it; its Receivers replace the twin's push hooks.
		n, err := e.startNotification(ctx, b, dir)
		if err != nil {
			return err
		}
		rc.notify, eventsURL, hooks = n, n.EventsURL(), nil
	}
	run, err := eng.Start(ctx, engine.Cluster{Name: name, Config: rc.config, Kubeconfig: rc.info.Kubeconfig, Dir: dir,
		Logger: e.log.With("component", "engine", "engine", which, "cluster", name), Run: e.runCtx, Git: hooks,
		NoDriftWatch: e.opts.NoDriftWatch, Charts: e.chartMirror(), EventsURL: eventsURL,
		Restart: e.backoff, OnRestart: func(r procgroup.Restart) { r.Name = name + "/" + which + " " + r.Name; e.recordRestart(r) }})
	if err != nil {
		return err
	}
	rc.engine = run
	e.addCleanup(cleanup{name: "engine " + name, cluster: name, stage: api.StepAgentStopped, fn: run.Stop})
	if rc.notify != nil {
		if err := e.wireNotifications(ctx, b, rc.notify); err != nil {
			return fmt.Errorf("notifications of %s: %w", name, err)
		}
	}
	// The agent writes Flux's objects into the cluster and reads their status back, whichever engine
	// runs, as the real fluxconfig-agent does.
	target, err := arcagent.NewClusterTarget(rc.config)
	if err != nil {
		return err
	}
	agent, err := arcagent.New(arcagent.Options{ClusterID: rc.arcID, Config: rc.config, Target: target, Azure: e.arcSrv,
		Logger: e.log.With("component", "arc-agent", "cluster", name)})
	if err != nil {
		return err
	}
	actx, acancel := context.WithCancel(e.runCtx)
	done := make(chan struct{})
	rc.agentDone = done
	e.wg.Add(1)
	go func() { defer e.wg.Done(); defer close(done); _ = agent.Run(actx) }()
	// Stopping the agent waits for it: a removed cluster's agent must not act on Azure afterwards.
	e.addCleanup(cleanup{name: "arc agent " + name, cluster: name, stage: api.StepAgentStopped,
		fn: func(context.Context) error { acancel(); <-done; return nil }})
	e.progress("engine %s: %s, with an Arc agent", name, which)
	if b.rep != nil {
		b.rep.Stage(api.StepEngineStarted, time.Now(), which)
	}
	return nil
}

// pushHooks subscribes an engine's push receiver to every seeded repository (engine.PushHooks).
type pushHooks struct {
	admin *gitserver.Client
	repos []gitserver.Repo
}

func (h *pushHooks) Subscribe(ctx context.Context, url, secret string) (func(context.Context) error, error) {
	type hook struct {
		repo gitserver.Repo
		id   int64
	}
	var hooks []hook
	unsubscribe := func(ctx context.Context) error {
		var errs []error
		for _, k := range hooks {
			errs = append(errs, h.admin.DeleteWebhook(ctx, k.repo, k.id))
		}
		return errors.Join(errs...)
	}
	for _, repo := range h.repos {
		id, err := h.admin.CreateWebhook(ctx, repo, gitserver.Webhook{URL: url, Secret: secret, Events: []string{"push"}})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("on %s: %w", repo, err), unsubscribe(context.WithoutCancel(ctx)))
		}
		hooks = append(hooks, hook{repo, id})
	}
	return unsubscribe, nil
}

// createGitOps creates, through ARM, every fluxConfiguration of the spec that targets the cluster, and a
// cluster file's own.
func (e *Estate) createGitOps(ctx context.Context, b *bringing) error {
	n := 0
	for _, g := range e.spec.Spec.GitOps {
		if !g.Targets(b.name) {
			continue
		}
		if err := e.putConfiguration(ctx, b.name, g); err != nil {
			return fmt.Errorf("create fluxConfiguration %s on %s: %w", g.Name, b.name, err)
		}
		n++
	}
	for _, g := range b.gitops {
		if err := e.putConfiguration(ctx, b.name, g); err != nil {
			return fmt.Errorf("create fluxConfiguration %s on %s: %w", g.Name, b.name, err)
		}
	}
	e.progress("gitops %s: %d fluxConfiguration(s) created through ARM", b.name, n+len(b.gitops))
	if b.rep != nil {
		for _, fc := range e.arcSrv.FluxConfigurations(b.rc.arcID) {
			b.rep.Configurations = append(b.rep.Configurations, fc.Name)
		}
		detail := fmt.Sprintf("%d from the spec", n)
		if len(b.gitops) > 0 {
			detail += fmt.Sprintf(", %d from the cluster file", len(b.gitops))
		}
		b.rep.Stage(api.StepConfigured, time.Now(), fmt.Sprintf("%s; on the cluster: %s", detail, strings.Join(b.rep.Configurations, ", ")))
	}
	return nil
}

// putConfiguration creates or updates one fluxConfiguration of the spec on a cluster through ARM and
// waits for its provisioning. A Git or bucket source goes through the generated SDK client (api-version 2023-05-01);
// an OCI source through arcsdk.PutFluxConfiguration (2025-04-01, the first GA api-version with
// ociRepository; the generated client has no OCI models).
func (e *Estate) putConfiguration(ctx context.Context, clusterName string, g spec.GitOpsConfig) error {
	az := e.spec.Spec.Azure
	if g.OCI != nil {
		// The connected cluster's ARM resource ID, as ConnectCluster made it (fakes/arc: the ID of
		// Microsoft.Kubernetes/connectedClusters/<name> in the spec's subscription and resource group).
		clusterID := "/subscriptions/" + az.SubscriptionID + "/resourceGroups/" + az.ResourceGroup + "/providers/Microsoft.Kubernetes/connectedClusters/" + clusterName
		_, err := arcsdk.PutFluxConfiguration(ctx, e.arcEP, arcsdk.FluxConfigurationID(clusterID, g.Name), arcconfig.OCI(g, e.reg.Host()), e.prof.ARMPoll)
		return err
	}
	var fc armkubernetesconfiguration.FluxConfiguration
	var err error
	if g.Bucket != nil {
		fc, err = arcconfig.Bucket(g, e.s3.URL(), e.s3.AccessKey(), e.s3.SecretKey())
	} else if g.GitAuth == spec.GitAuthSSH {
		fc, err = arcconfig.GitSSH(g, e.sshURLs[g.Repo], e.readerKey, e.git.SSHKnownHosts()+"\n")
	} else {
		fc, err = arcconfig.Git(g, e.repoURLs[g.Repo], e.reader.Name, e.reader.Token())
	}
	if err != nil {
		return err
	}
	p, err := e.flux.BeginCreateOrUpdate(ctx, az.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", clusterName, g.Name, fc, nil)
	if err != nil {
		return err
	}
	_, err = arcsdk.Poll(ctx, p, e.prof.ARMPoll)
	return err
}

// newFluxClient is the generated SDK's fluxConfigurations client against the Arc fake.
func newFluxClient(subscriptionID string, ep *arc.Endpoint) (*armkubernetesconfiguration.FluxConfigurationsClient, error) {
	return armkubernetesconfiguration.NewFluxConfigurationsClient(subscriptionID, arcsdk.NewCredential(ep), arcsdk.ClientOptions(ep))
}
