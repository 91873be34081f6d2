package twin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/cluster/providers"
	"github.com/hybridtwin/hybridtwin/twin/engine"
	"github.com/hybridtwin/hybridtwin/twin/engine/engines"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// Step names a stage of Up, in progress lines and in a StepError.
type Step string

// The steps of Up, in order (gitea, registry, arc and the clusters run in parallel).
const (
	StepPlan       Step = "plan"
	StepState      Step = "state"
	StepGitea      Step = "gitea"
	StepRegistry   Step = "registry"
	StepArc        Step = "arc"
	StepCluster    Step = "cluster"
	StepImages     Step = "images"
	StepArtifacts  Step = "artifacts"
	StepSeed       Step = "seed"
	StepKubeconfig Step = "kubeconfig"
	StepConnect    Step = "connect"
	StepReconciler Step = "reconcilers"
	StepGitOps     Step = "gitops"
)

// ErrUp is wrapped by every failed Up; what had started has been stopped again.
var ErrUp = errors.New("twin up failed")

// StepError says which step of Up failed, and why. errors.Is(err, ErrUp) is true, and so is errors.Is for
// the cause (e.g. context.Canceled after Ctrl-C).
type StepError struct {
	Step   Step
	Target string // the cluster, repository or image concerned, if any
	Err    error
	// Stopped lists what was torn down again, in the order it was stopped.
	Stopped []string
	// StopErr is set when the teardown itself failed.
	StopErr error
}

func (e *StepError) Error() string {
	what := string(e.Step)
	if e.Target != "" {
		what += " " + e.Target
	}
	msg := fmt.Sprintf("twin up: step %q failed: %v", what, e.Err)
	if len(e.Stopped) > 0 {
		msg += fmt.Sprintf("; stopped again: %v", e.Stopped)
	}
	if e.StopErr != nil {
		msg += fmt.Sprintf("; teardown failed too: %v", e.StopErr)
	}
	return msg
}

// Unwrap returns ErrUp and the cause.
func (e *StepError) Unwrap() []error { return []error{ErrUp, e.Err} }

// Options configure Up.
type Options struct {
	// StateDir holds everything the twin writes: kubeconfig, Gitea, registry, clusters, reconciler
	// clones, the control socket. Empty: DefaultStateDir(spec name).
	StateDir string
	// Progress receives one line per step with the elapsed time; nil keeps Up silent.
	Progress io.Writer
	// Logger receives the components' logs; nil keeps them silent.
	Logger *slog.Logger
	// Clock drives the hardware simulation; nil is the real clock.
	Clock clock.WithTicker
	// NoDriftWatch starts the twin's reconcilers without watch-driven drift correction (see
	// reconciler.Options.NoDriftWatch): the scenario suite's deliberately broken change.
	NoDriftWatch bool
}

// Twin is a running twin. Its methods are safe for concurrent use.
type Twin struct {
	spec     *Spec
	specFile string // the spec's absolute path, as twin.json records it
	opts     Options
	prof     RunProfile
	log      *slog.Logger
	stateDir string
	start    time.Time
	ready    time.Duration

	// sim is the hardware model of the running estate; once Up is done only through the bridge (its lock).
	sim      *hardware.Sim
	bridge   *hostops.Bridge
	provider providers.Provider
	git      *gitserver.Server
	reader   *gitserver.User
	reg      *registry.Registry
	arcSrv   *arc.Server
	arcEP    *arc.Endpoint
	flux     *armkubernetesconfiguration.FluxConfigurationsClient

	// cmu guards clusters and plan: lifecycle operations (lifecycle.go) change them while Status and
	// the bridge read them.
	cmu      sync.RWMutex
	clusters map[string]*runningCluster
	// plan is the ClusterPlan the twin runs now: the spec's at Up, then as cluster operations change it.
	plan     *hardware.Plan
	repoURLs map[string]string
	// gitRepos are the seeded repositories, each of which gets a push webhook per reconciler.
	gitRepos   []gitserver.Repo
	kubeconfig string

	// opMu serialises the operations that change the estate (cluster operations and host operations);
	// opsCtx ends when Down starts, so an operation in flight stops and undoes what it started.
	opMu      sync.Mutex
	opsCtx    context.Context
	opsCancel context.CancelFunc

	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	cleanups []cleanup
	down     bool
	done     chan struct{}
}

type runningCluster struct {
	info   cluster.Info
	config *rest.Config
	client kubernetes.Interface
	arcID  string
	// engine is the cluster's GitOps engine (twin/engine).
	engine engine.Running
	// agentDone is closed when the cluster's Arc agent goroutine has returned.
	agentDone chan struct{}
}

type cleanup struct {
	name string
	fn   func(ctx context.Context) error
}

// Files in the state directory.
const (
	KubeconfigFile   = "kubeconfig"
	GiteaTokenFile   = "gitea-admin-token"
	InfoFile         = "twin.json"
	ControlSocket    = "control.sock"
	DetachedLogFile  = "up.log"
	stateDirGitea    = "gitea"
	stateDirRegistry = "registry"
	stateDirClusters = "clusters"
	stateDirEngines  = "engines"
)

// Up starts the twin a loaded spec describes: it plans with the hardware model, starts Gitea, the
// registry, the Arc fake and every workload cluster in parallel, publishes the images, seeds the
// repositories, connects the clusters to Arc with the Azure SDK, starts a reconciler and an Arc agent per
// cluster, creates the GitOps configurations through ARM, and starts the hardware bridge. It returns once
// all of that is done; ctx bounds the start only (cancelling it mid-way stops what started).
//
// On any failure everything started is stopped again, in reverse order, the state directory is removed
// and the error is a *StepError naming the step.
func Up(ctx context.Context, spec *Spec, opts Options) (*Twin, error) {
	if spec == nil || spec.Inventory == nil || spec.Plan == nil {
		return nil, fmt.Errorf("twin up: %w: the spec was not loaded; use LoadSpec", ErrInvalidSpec)
	}
	t := &Twin{spec: spec, opts: opts, start: time.Now(), clusters: map[string]*runningCluster{},
		repoURLs: map[string]string{}, done: make(chan struct{}), specFile: spec.File}
	// twin.json records the spec absolute: `validate --twin` and scripts read it from anywhere.
	if abs, err := filepath.Abs(spec.File); err == nil {
		t.specFile = abs
	}
	t.log = opts.Logger
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	// The run context outlives ctx: ctx bounds the start, Down ends the run.
	t.runCtx, t.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	t.opsCtx, t.opsCancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := t.up(ctx); err != nil {
		var se *StepError
		if !errors.As(err, &se) {
			se = &StepError{Step: "up", Err: err}
		}
		t.progress("failed: %v; stopping what started", se.Err)
		se.Stopped, se.StopErr = t.teardown(false)
		t.progress("stopped %d component(s); nothing is left running", len(se.Stopped))
		return nil, se
	}
	t.ready = time.Since(t.start)
	t.progress("ready in %s", t.ready.Round(10*time.Millisecond))
	return t, nil
}

func (t *Twin) progress(format string, args ...any) {
	if t.opts.Progress == nil {
		return
	}
	fmt.Fprintf(t.opts.Progress, "[%6.1fs] %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

func (t *Twin) onStop(name string, fn func(ctx context.Context) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, cleanup{name: name, fn: fn})
}

func stepErr(step Step, target string, err error) error {
	return &StepError{Step: step, Target: target, Err: err}
}

func (t *Twin) up(ctx context.Context) error {
	s := t.spec
	// Plan.
	prof, err := RunProfileFor(s.Spec.TimeProfile)
	if err != nil {
		return stepErr(StepPlan, "", err)
	}
	t.prof = prof
	clk := t.opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	simOpts := []hardware.SimOption{hardware.WithClock(clk)}
	if prof.FailoverDelay > 0 {
		simOpts = append(simOpts, hardware.WithFailoverDelay(prof.FailoverDelay))
	}
	t.plan = s.Plan.Clone()
	t.sim, err = hardware.NewSim(s.Inventory, t.plan, simOpts...)
	if err != nil {
		return stepErr(StepPlan, "", err)
	}
	specs, err := clusterSpecs(s, t.sim.VMs())
	if err != nil {
		return stepErr(StepPlan, "", err)
	}
	nodes := 0
	for _, c := range specs {
		nodes += len(c.Nodes)
	}
	t.progress("plan: %d hosts, %d VMs, %d clusters with %d VM-nodes (%s)", len(t.sim.Hosts()), len(t.sim.VMs()), len(specs), nodes, s.Capacity.Summary())
	if !s.Capacity.Fits {
		t.progress("plan: started although it does not fit (spec.hardware.allowUnfit); a host failure may strand VMs")
		t.log.Warn("the plan does not fit; starting it anyway (spec.hardware.allowUnfit)", "capacity", s.Capacity.Summary())
	}

	// State directory.
	if err := t.prepareState(); err != nil {
		return stepErr(StepState, t.stateDir, err)
	}
	t.progress("state: %s", t.stateDir)

	// Gitea, registry, Arc and the clusters, in parallel.
	if err := t.startParallel(ctx, specs); err != nil {
		return err
	}
	if err := t.publishImages(ctx); err != nil {
		return err
	}
	if err := t.pushArtifacts(ctx); err != nil {
		return err
	}
	if err := t.seed(ctx); err != nil {
		return err
	}
	if err := t.writeKubeconfig(); err != nil {
		return stepErr(StepKubeconfig, "", err)
	}
	t.progress("kubeconfig: %s (contexts: %v)", t.kubeconfig, s.ClusterNames())
	if err := t.connect(ctx); err != nil {
		return err
	}
	if err := t.startReconcilers(ctx); err != nil {
		return err
	}
	if err := t.createGitOps(ctx); err != nil {
		return err
	}
	// The bridge: hardware events drive node state until Down.
	t.bridge = hostops.NewBridge(t.sim, &hostops.Nodes{Faults: t.provider, Client: t.clientOf, NodeName: t.nodeName}, clk)
	bctx, bcancel := context.WithCancel(t.runCtx)
	t.wg.Add(1)
	go func() { defer t.wg.Done(); t.bridge.Run(bctx) }()
	t.onStop("hardware bridge", func(context.Context) error { bcancel(); return nil })
	if err := t.writeInfo(); err != nil {
		return stepErr(StepState, InfoFile, err)
	}
	return nil
}

// clientOf is the admin client of a running cluster, for the bridge.
func (t *Twin) clientOf(name string) (kubernetes.Interface, bool) {
	t.cmu.RLock()
	defer t.cmu.RUnlock()
	rc, ok := t.clusters[name]
	if !ok {
		return nil, false
	}
	return rc.client, true
}

// nodeName is the name of a VM's Node in a running cluster (cluster.Info.NodeName).
func (t *Twin) nodeName(clusterName, vm string) string {
	if rc, ok := t.cluster(clusterName); ok {
		return rc.info.NodeName(vm)
	}
	return vm
}

// clusterNames are the running workload clusters, in plan order.
func (t *Twin) clusterNames() []string {
	t.cmu.RLock()
	defer t.cmu.RUnlock()
	return planClusterNames(t.plan)
}

// cluster returns a running cluster.
func (t *Twin) cluster(name string) (*runningCluster, bool) {
	t.cmu.RLock()
	defer t.cmu.RUnlock()
	rc, ok := t.clusters[name]
	return rc, ok
}

func (t *Twin) startParallel(ctx context.Context, specs []cluster.Spec) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// If one part fails, the others stop starting at once.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				fail(err)
				cancel()
			}
		}()
	}
	run(func() error {
		srv, err := gitserver.Start(pctx, gitserver.Options{Dir: filepath.Join(t.stateDir, stateDirGitea), Logger: t.log.With("component", "gitea")})
		if err != nil {
			return stepErr(StepGitea, "", err)
		}
		t.onStop("gitea", srv.Stop)
		t.git = srv
		if err := os.WriteFile(filepath.Join(t.stateDir, GiteaTokenFile), []byte(srv.AdminToken()+"\n"), 0o600); err != nil {
			return stepErr(StepGitea, "", fmt.Errorf("store the admin token: %w", err))
		}
		t.progress("gitea: %s (admin %s, token in %s)", srv.URL(), srv.AdminUser(), filepath.Join(t.stateDir, GiteaTokenFile))
		return nil
	})
	run(func() error {
		reg, err := registry.Start(pctx, registry.Options{Dir: filepath.Join(t.stateDir, stateDirRegistry), Logger: t.log.With("component", "registry")})
		if err != nil {
			return stepErr(StepRegistry, "", err)
		}
		t.onStop("registry", reg.Stop)
		t.reg = reg
		t.progress("registry: %s", reg.Host())
		return nil
	})
	run(func() error {
		o := arc.DefaultOptions()
		o.ProvisioningDelay = t.prof.ArcProvisioningDelay
		t.arcSrv = arc.NewServer(o)
		ep, err := t.arcSrv.Listen("127.0.0.1:0")
		if err != nil {
			return stepErr(StepArc, "", err)
		}
		t.onStop("arc fake", ep.Close)
		t.arcEP = ep
		t.progress("arc: %s", ep.URL)
		return nil
	})
	prov, err := providers.For(t.spec.Spec.Provider, providers.Options{Embedded: embedded.Options{
		Dir: filepath.Join(t.stateDir, stateDirClusters), Logger: t.log.With("component", "clusters")}})
	if err != nil {
		cancel()
		wg.Wait()
		return stepErr(StepCluster, "", err)
	}
	t.provider = prov
	for _, cs := range specs {
		run(func() error {
			rc, err := t.startCluster(pctx, cs)
			if err != nil {
				return stepErr(StepCluster, cs.Name, err)
			}
			t.cmu.Lock()
			t.clusters[cs.Name] = rc
			t.cmu.Unlock()
			return nil
		})
	}
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	// The first failure is the cause; the others are mostly "context canceled" from the stop it caused.
	for _, e := range errs {
		if !errors.Is(e, context.Canceled) || ctx.Err() != nil {
			return e
		}
	}
	return errs[0]
}

// startCluster starts one workload cluster with the provider and registers its cleanup. A failed start
// leaves nothing running (the provider's promise).
func (t *Twin) startCluster(ctx context.Context, cs cluster.Spec) (*runningCluster, error) {
	info, err := t.provider.Create(ctx, cs)
	if err != nil {
		return nil, err
	}
	prov := t.provider
	t.onStop("cluster "+cs.Name, func(ctx context.Context) error { return prov.Delete(ctx, cs.Name) })
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	t.progress("cluster %s: %s, %d VM-nodes Ready (started in %s)", cs.Name, info.Server, len(info.Nodes), info.Start.Total.Round(10*time.Millisecond))
	return &runningCluster{info: info, config: cfg, client: kc}, nil
}

func (t *Twin) publishImages(ctx context.Context) error {
	c := t.reg.Client()
	n := 0
	for _, img := range t.spec.Spec.Images {
		for _, tag := range img.Tags {
			if _, err := c.Publish(ctx, img.Repository, tag); err != nil {
				return stepErr(StepImages, img.Repository+":"+tag, err)
			}
			n++
		}
	}
	t.progress("images: %d published to %s", n, t.reg.Host())
	return nil
}

// pushArtifacts pushes every folder of spec.artifacts to the registry as a Flux OCI artifact, the
// registry placeholder in its files rewritten to the registry's address as in the seeded repositories.
func (t *Twin) pushArtifacts(ctx context.Context) error {
	if len(t.spec.Spec.Artifacts) == 0 {
		return nil
	}
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(t.reg.Host())
	for _, a := range t.spec.Spec.Artifacts {
		ref := a.Repository + ":" + a.Tag
		files, err := fluxartifact.ReadDir(t.spec.Path(a.Path), func(data []byte) []byte { return bytesReplace(data, from, to) })
		if err != nil {
			return stepErr(StepArtifacts, ref, err)
		}
		img, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file://" + t.spec.File})
		if err != nil {
			return stepErr(StepArtifacts, ref, err)
		}
		pushed, err := t.reg.Client().Push(ctx, img, a.Repository, a.Tag)
		if err != nil {
			return stepErr(StepArtifacts, ref, err)
		}
		t.progress("artifacts: %s/%s <- %s (%.19s)", t.reg.Host(), ref, a.Path, pushed.Digest)
	}
	return nil
}

// readerUser is the Gitea user whose token the GitOps configurations read the repositories with.
const readerUser = "flux-reader"

func (t *Twin) seed(ctx context.Context) error {
	g := t.spec.Spec.Git
	admin := t.git.Admin()
	if err := admin.CreateOrg(ctx, g.Org); err != nil && !errors.Is(err, gitserver.ErrExists) {
		return stepErr(StepSeed, g.Org, err)
	}
	if err := admin.EnsurePersonaTeams(ctx, g.Org); err != nil {
		return stepErr(StepSeed, g.Org, err)
	}
	// A read-only user for the clusters: the application-developer persona reads configuration
	// repositories and writes none (gitserver personas, after the Arc CI/CD guidance).
	reader, err := admin.CreateUser(ctx, readerUser)
	if err != nil {
		return stepErr(StepSeed, readerUser, err)
	}
	if err := admin.AssignPersona(ctx, g.Org, reader, gitserver.ApplicationDeveloper); err != nil {
		return stepErr(StepSeed, readerUser, err)
	}
	t.reader = reader
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(t.reg.Host())
	rewrite := func(_ string, data []byte) []byte { return bytesReplace(data, from, to) }
	for _, r := range g.Repos {
		repo := gitserver.Repo{Owner: g.Org, Name: r.Name}
		branches := map[string]string{}
		if r.Path != "" {
			branches["main"] = r.Path
		}
		for b, p := range r.Branches {
			branches[b] = p
		}
		def := "main"
		if _, ok := branches[def]; !ok {
			def = slices.Sorted(maps.Keys(branches))[0]
		}
		if err := admin.CreateRepo(ctx, repo, gitserver.RepoOptions{Description: "seeded by hybridtwin from " + t.spec.File, DefaultBranch: def}); err != nil && !errors.Is(err, gitserver.ErrExists) {
			return stepErr(StepSeed, repo.String(), err)
		}
		if err := admin.GrantLayers(ctx, repo, []gitserver.Layer{gitserver.ClusterLayer, gitserver.AppLayer}); err != nil {
			return stepErr(StepSeed, repo.String(), err)
		}
		// The default branch first, so the others share its history.
		order := append([]string{def}, without(slices.Sorted(maps.Keys(branches)), def)...)
		for _, b := range order {
			res, err := admin.Push(ctx, gitserver.PushRequest{Repo: repo, Branch: b, From: def, Dir: t.spec.Path(branches[b]),
				Message: fmt.Sprintf("Seed %s from %s", b, branches[b]), Rewrite: rewrite})
			if err != nil {
				return stepErr(StepSeed, repo.String()+"@"+b, err)
			}
			t.progress("seed: %s %s <- %s (%.12s)", repo, b, branches[b], res.Commit)
		}
		if err := admin.SetDefaultBranch(ctx, repo, def); err != nil {
			return stepErr(StepSeed, repo.String(), err)
		}
		t.repoURLs[r.Name] = admin.CloneURL(repo)
		t.gitRepos = append(t.gitRepos, repo)
	}
	return nil
}

func (t *Twin) writeKubeconfig() error {
	t.cmu.RLock()
	names := planClusterNames(t.plan)
	t.cmu.RUnlock()
	if err := t.writeKubeconfigFor(names, nil); err != nil {
		return err
	}
	if t.kubeconfig == "" { // set once, in Up; cluster operations rewrite the same file
		t.kubeconfig = filepath.Join(t.stateDir, KubeconfigFile)
	}
	return nil
}

// connect registers every cluster as a connected cluster through ARM, as `az connectedk8s connect`
// does, and reports the agents' connectivity.
func (t *Twin) connect(ctx context.Context) error {
	az := t.spec.Spec.Azure
	var err error
	t.flux, err = armkubernetesconfiguration.NewFluxConfigurationsClient(az.SubscriptionID, arcsdk.Credential{}, arcsdk.ClientOptions(t.arcEP))
	if err != nil {
		return stepErr(StepConnect, "", err)
	}
	vms := t.sim.VMs()
	for _, name := range t.spec.ClusterNames() {
		if err := t.connectCluster(ctx, name, t.clusters[name], vms); err != nil {
			return stepErr(StepConnect, name, err)
		}
	}
	return nil
}

// connectCluster registers one cluster as a connected cluster through ARM and reports its agents'
// connectivity, size and version from the hardware model's worker VMs.
func (t *Twin) connectCluster(ctx context.Context, name string, rc *runningCluster, vms []hardware.VMStatus) error {
	az := t.spec.Spec.Azure
	res, err := arcsdk.ConnectCluster(ctx, t.arcEP, az.SubscriptionID, az.ResourceGroup, name, az.Location, t.prof.ARMPoll)
	if err != nil {
		return err
	}
	rc.arcID = *res.ID
	nodes, cores := workerTotals(vms, name)
	if err := t.arcSrv.SetConnectivity(rc.arcID, "Connected", rc.info.KubernetesVersion, nodes, cores); err != nil {
		return err
	}
	t.progress("connect: %s -> %s", name, rc.arcID)
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

// startReconcilers starts one GitOps engine and one Arc agent per cluster. The engine is the twin's
// reconciler (reconciler: hybridtwin) or real Flux's controllers (reconciler: flux, package twin/flux).
// Why the reconciler and the agents run as goroutines of this process: one process keeps Ctrl-C and
// teardown simple (cancel one context, nothing to reap), and each cluster still gets its own engine and
// agent with its own work directory and API client, as Flux runs one set of controllers per cluster.
func (t *Twin) startReconcilers(ctx context.Context) error {
	for _, name := range t.spec.ClusterNames() {
		if err := t.startEngine(ctx, name, t.clusters[name]); err != nil {
			return stepErr(StepReconciler, name, err)
		}
	}
	return nil
}

// startEngine installs Flux's CRDs into the cluster, as the Arc Flux extension does whichever engine
// runs, starts the cluster's GitOps engine from the engine room (spec.reconciler) and its Arc agent, and
// registers their cleanups.
func (t *Twin) startEngine(ctx context.Context, name string, rc *runningCluster) error {
	if _, err := fluxcrd.Install(ctx, rc.config, nil, nil); err != nil {
		return err
	}
	eng, ok := engines.Lookup(string(t.spec.ReconcilerFor(name)))
	if !ok { // the spec's validation refuses unknown names
		return fmt.Errorf("no engine %q (have: %v)", t.spec.ReconcilerFor(name), engines.Names())
	}
	var hooks engine.PushHooks
	if len(t.gitRepos) > 0 {
		hooks = &pushHooks{admin: t.git.Admin(), repos: t.gitRepos}
	}
	run, err := eng.Start(ctx, engine.Cluster{Name: name, Config: rc.config, Kubeconfig: rc.info.Kubeconfig,
		Dir: t.engineDir(name), Logger: t.log.With("component", "engine", "engine", string(t.spec.ReconcilerFor(name)), "cluster", name),
		Run: t.runCtx, Git: hooks, NoDriftWatch: t.opts.NoDriftWatch})
	if err != nil {
		return err
	}
	rc.engine = run
	t.onStop("engine "+name, run.Stop)
	// The agent writes Flux's objects into the cluster and reads their status back, whichever engine
	// runs, as the real fluxconfig-agent does.
	target, err := arcagent.NewClusterTarget(rc.config)
	if err != nil {
		return err
	}
	agent, err := arcagent.New(arcagent.Options{ClusterID: rc.arcID, Config: rc.config, Target: target, Azure: t.arcSrv,
		Logger: t.log.With("component", "arc-agent", "cluster", name)})
	if err != nil {
		return err
	}
	actx, acancel := context.WithCancel(t.runCtx)
	done := make(chan struct{})
	rc.agentDone = done
	t.wg.Add(1)
	go func() { defer t.wg.Done(); defer close(done); _ = agent.Run(actx) }()
	// Stopping the agent waits for it: a removed cluster's agent must not act on Azure afterwards.
	t.onStop("arc agent "+name, func(context.Context) error { acancel(); <-done; return nil })
	t.progress("engine %s: %s, with an Arc agent", name, t.spec.ReconcilerFor(name))
	return nil
}

// engineDir is a cluster's engine directory, removed with the cluster.
func (t *Twin) engineDir(name string) string { return filepath.Join(t.stateDir, stateDirEngines, name) }

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

func (t *Twin) createGitOps(ctx context.Context) error {
	n := 0
	for _, name := range t.spec.ClusterNames() {
		made, err := t.createGitOpsFor(ctx, name)
		n += made
		if err != nil {
			return err
		}
	}
	t.progress("gitops: %d fluxConfiguration(s) created through ARM", n)
	return nil
}

// createGitOpsFor creates, through ARM, every fluxConfiguration of the spec that targets the cluster.
func (t *Twin) createGitOpsFor(ctx context.Context, clusterName string) (int, error) {
	n := 0
	for _, g := range t.spec.Spec.GitOps {
		if !targets(g, clusterName) {
			continue
		}
		if err := t.putConfiguration(ctx, clusterName, g); err != nil {
			return n, stepErr(StepGitOps, g.Name+" on "+clusterName, err)
		}
		n++
	}
	return n, nil
}

// putConfiguration creates or updates one fluxConfiguration of the spec on a cluster through ARM and
// waits for its provisioning. A Git source goes through the generated SDK client (api-version 2023-05-01);
// an OCI source through arcsdk.PutFluxConfiguration (2025-04-01, the first GA api-version with
// ociRepository; the generated client has no OCI models).
func (t *Twin) putConfiguration(ctx context.Context, clusterName string, g GitOpsConfig) error {
	az := t.spec.Spec.Azure
	if g.OCI != nil {
		// The connected cluster's ARM resource ID, as ConnectCluster made it (fakes/arc: the ID of
		// Microsoft.Kubernetes/connectedClusters/<name> in the spec's subscription and resource group). Built
		// here rather than read from the running cluster: a cluster being added is not yet in t.clusters.
		clusterID := "/subscriptions/" + az.SubscriptionID + "/resourceGroups/" + az.ResourceGroup + "/providers/Microsoft.Kubernetes/connectedClusters/" + clusterName
		_, err := arcsdk.PutFluxConfiguration(ctx, t.arcEP, arcsdk.FluxConfigurationID(clusterID, g.Name), t.ociConfiguration(g), t.prof.ARMPoll)
		return err
	}
	p, err := t.flux.BeginCreateOrUpdate(ctx, az.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", clusterName, g.Name, t.fluxConfiguration(g), nil)
	if err != nil {
		return err
	}
	_, err = arcsdk.Poll(ctx, p, t.prof.ARMPoll)
	return err
}

// ociConfiguration is a spec's OCI-sourced configuration in the REST shape of api-version 2025-04-01.
func (t *Twin) ociConfiguration(g GitOpsConfig) arc.FluxConfiguration {
	o := g.OCI
	def := &arc.OCIRepositoryDefinition{URL: o.URL}
	if o.Insecure {
		def.Insecure = to.Ptr(true)
	}
	if o.Repository != "" {
		// The twin's registry speaks plain HTTP: Flux refuses it unless the source is insecure.
		def.URL = "oci://" + t.reg.Host() + "/" + o.Repository
		def.Insecure = to.Ptr(true)
	}
	if o.Tag != "" || o.Semver != "" || o.Digest != "" {
		def.RepositoryRef = &arc.OCIRepositoryRefDefinition{Tag: o.Tag, Semver: o.Semver, Digest: o.Digest}
	}
	if g.SyncIntervalInSeconds > 0 {
		def.SyncIntervalInSeconds = to.Ptr(g.SyncIntervalInSeconds)
	}
	if g.TimeoutInSeconds > 0 {
		def.TimeoutInSeconds = to.Ptr(g.TimeoutInSeconds)
	}
	ks := map[string]*arc.KustomizationDefinition{}
	for name, k := range g.Kustomizations {
		kd := &arc.KustomizationDefinition{Path: k.Path, DependsOn: k.DependsOn, Prune: to.Ptr(k.Prune), Force: to.Ptr(k.Force), Wait: k.Wait}
		if k.SyncIntervalInSeconds > 0 {
			kd.SyncIntervalInSeconds = to.Ptr(k.SyncIntervalInSeconds)
		}
		if k.TimeoutInSeconds > 0 {
			kd.TimeoutInSeconds = to.Ptr(k.TimeoutInSeconds)
		}
		if k.RetryIntervalInSeconds > 0 {
			kd.RetryIntervalInSeconds = to.Ptr(k.RetryIntervalInSeconds)
		}
		if len(k.Substitute) > 0 {
			kd.PostBuild = &arc.PostBuildDefinition{Substitute: k.Substitute}
		}
		ks[name] = kd
	}
	return arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		Scope:          g.Scope,
		Namespace:      g.Namespace,
		Suspend:        to.Ptr(g.Suspend),
		SourceKind:     arc.SourceKindOCIRepository,
		OCIRepository:  def,
		Kustomizations: ks,
	}}
}

// targets reports whether a GitOps configuration of the spec applies to a cluster: named in its list, or
// the list is ["*"] (every cluster the twin runs, also one added later).
func targets(g GitOpsConfig, clusterName string) bool {
	for _, c := range g.Clusters {
		if c == "*" || c == clusterName {
			return true
		}
	}
	return false
}

func (t *Twin) fluxConfiguration(g GitOpsConfig) armkubernetesconfiguration.FluxConfiguration {
	ref := &armkubernetesconfiguration.RepositoryRefDefinition{}
	if g.Ref.Branch != "" {
		ref.Branch = to.Ptr(g.Ref.Branch)
	}
	if g.Ref.Tag != "" {
		ref.Tag = to.Ptr(g.Ref.Tag)
	}
	if g.Ref.Semver != "" {
		ref.Semver = to.Ptr(g.Ref.Semver)
	}
	if g.Ref.Commit != "" {
		ref.Commit = to.Ptr(g.Ref.Commit)
	}
	repo := &armkubernetesconfiguration.GitRepositoryDefinition{URL: to.Ptr(t.repoURLs[g.Repo]), RepositoryRef: ref,
		HTTPSUser: to.Ptr(t.reader.Name)}
	if g.SyncIntervalInSeconds > 0 {
		repo.SyncIntervalInSeconds = to.Ptr(g.SyncIntervalInSeconds)
	}
	if g.TimeoutInSeconds > 0 {
		repo.TimeoutInSeconds = to.Ptr(g.TimeoutInSeconds)
	}
	ks := map[string]*armkubernetesconfiguration.KustomizationDefinition{}
	for name, k := range g.Kustomizations {
		kd := &armkubernetesconfiguration.KustomizationDefinition{Path: to.Ptr(k.Path), Prune: to.Ptr(k.Prune), Force: to.Ptr(k.Force), Wait: k.Wait}
		for _, d := range k.DependsOn {
			kd.DependsOn = append(kd.DependsOn, to.Ptr(d))
		}
		if k.SyncIntervalInSeconds > 0 {
			kd.SyncIntervalInSeconds = to.Ptr(k.SyncIntervalInSeconds)
		}
		if k.TimeoutInSeconds > 0 {
			kd.TimeoutInSeconds = to.Ptr(k.TimeoutInSeconds)
		}
		if k.RetryIntervalInSeconds > 0 {
			kd.RetryIntervalInSeconds = to.Ptr(k.RetryIntervalInSeconds)
		}
		if len(k.Substitute) > 0 {
			kd.PostBuild = &armkubernetesconfiguration.PostBuildDefinition{Substitute: map[string]*string{}}
			for key, v := range k.Substitute {
				kd.PostBuild.Substitute[key] = to.Ptr(v)
			}
		}
		ks[name] = kd
	}
	return armkubernetesconfiguration.FluxConfiguration{Properties: &armkubernetesconfiguration.FluxConfigurationProperties{
		Scope:         to.Ptr(armkubernetesconfiguration.ScopeType(g.Scope)),
		Namespace:     to.Ptr(g.Namespace),
		Suspend:       to.Ptr(g.Suspend),
		SourceKind:    to.Ptr(armkubernetesconfiguration.SourceKindTypeGitRepository),
		GitRepository: repo,
		ConfigurationProtectedSettings: map[string]*string{
			"httpsKey": to.Ptr(base64.StdEncoding.EncodeToString([]byte(t.reader.Token())))},
		Kustomizations: ks,
	}}
}

// Done is closed when the twin has been taken down.
func (t *Twin) Done() <-chan struct{} { return t.done }

// Down stops everything the twin started, in reverse order, and removes the state directory unless
// keep. It is safe to call more than once; later calls return nil.
func (t *Twin) Down(_ context.Context, keep bool) error {
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	_, err := t.teardown(keep)
	return err
}

// teardown runs the cleanups in reverse order (bounded by the profile's StopTimeout), waits for the
// twin's goroutines and removes the state directory unless keep.
func (t *Twin) teardown(keep bool) ([]string, error) {
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		return nil, nil
	}
	t.down = true
	t.mu.Unlock()
	// A cluster or host operation in flight stops and undoes what it started; no new one begins.
	t.opsCancel()
	t.opMu.Lock()
	defer t.opMu.Unlock()
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	timeout := t.prof.StopTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute // RunProfileFor's StopTimeout, for a start that failed before the profile
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stopped []string
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", cs[i].name, err))
		}
		stopped = append(stopped, cs[i].name)
	}
	t.runCancel()
	t.wg.Wait()
	if !keep && t.stateDir != "" {
		if err := os.RemoveAll(t.stateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state %s: %w", t.stateDir, err))
		}
	}
	close(t.done)
	return stopped, errors.Join(errs...)
}

// Spec is the spec the twin runs.
func (t *Twin) Spec() *Spec { return t.spec }

// StateDir is where the twin keeps its files.
func (t *Twin) StateDir() string { return t.stateDir }

// Kubeconfig is the merged kubeconfig: one context per workload cluster, named after it.
func (t *Twin) Kubeconfig() string { return t.kubeconfig }

// GiteaURL is the Git server's base URL.
func (t *Twin) GiteaURL() string { return t.git.URL() }

// RegistryHost is the registry's host:port.
func (t *Twin) RegistryHost() string { return t.reg.Host() }

// ArcEndpoint is the Arc fake's ARM endpoint URL.
func (t *Twin) ArcEndpoint() string { return t.arcEP.URL }

// Arc is the Arc fake's Azure side: connected clusters, fluxConfigurations, and what policy assignments
// deployed (PolicyDeployments).
func (t *Twin) Arc() *arc.Server { return t.arcSrv }

// ARMClient is an HTTP client that trusts the Arc fake's TLS certificate, for ARM requests to
// ArcEndpoint() in the REST shapes the fake serves (e.g. a policy assignment).
func (t *Twin) ARMClient() *http.Client { return t.arcEP.Client() }

// ReadyAfter is how long Up took.
func (t *Twin) ReadyAfter() time.Duration { return t.ready }

// RESTConfig is the admin REST config of a workload cluster.
func (t *Twin) RESTConfig(clusterName string) (*rest.Config, error) {
	rc, ok := t.cluster(clusterName)
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w (have: %v)", clusterName, cluster.ErrNotFound, t.clusterNames())
	}
	return rest.CopyConfig(rc.config), nil
}

// Host runs a host operation (hostops.Operations: fail, drain, repair) on an HCI host of the running
// estate, serialised with the cluster operations.
func (t *Twin) Host(ctx context.Context, op HostOp, host string) ([]BridgeRecord, error) {
	t.opMu.Lock()
	defer t.opMu.Unlock()
	return t.bridge.Do(ctx, op, host)
}

func without(xs []string, x string) []string {
	var out []string
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
