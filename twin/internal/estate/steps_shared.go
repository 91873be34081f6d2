package estate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/twin/api"
	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/cluster/providers"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// The shared steps of the pipeline (pipeline.go): each starts one part every cluster uses and
// registers how to stop it.

// plan0 loads the run profile and starts the hardware model on the spec's plan.
func (e *Estate) plan0() error {
	s := e.spec
	prof, err := api.RunProfileFor(s.Spec.TimeProfile)
	if err != nil {
		return err
	}
	e.prof = prof
	tp, err := cluster.Profile(s.Spec.TimeProfile)
	if err != nil {
		return err
	}
	e.backoff = tp.RestartBackoff()
	simOpts := []hardware.SimOption{hardware.WithClock(e.clk)}
	if prof.FailoverDelay > 0 {
		simOpts = append(simOpts, hardware.WithFailoverDelay(prof.FailoverDelay))
	}
	e.plan = s.Plan.Clone()
	// The spec's capacity verdict is the plan placed once already (spec.LoadSpec): the simulation starts
	// from it rather than placing again.
	e.sim, err = hardware.NewSimOf(s.Inventory, e.plan, s.Capacity, simOpts...)
	if err != nil {
		return err
	}
	vms := e.sim.VMs()
	nodes, clusters := 0, 0
	for _, name := range s.ClusterNames() {
		cs, err := clusterSpec(s, name, vms)
		if err != nil {
			return err
		}
		nodes += len(cs.Nodes)
		clusters++
	}
	e.progress("plan: %d hosts, %d VMs, %d clusters with %d VM-nodes (%s)", len(e.sim.Hosts()), len(vms), clusters, nodes, s.Capacity.Summary())
	if !s.Capacity.Fits {
		e.progress("plan: started although it does not fit (spec.hardware.allowUnfit); a host failure may strand VMs")
		e.log.Warn("the plan does not fit; starting it anyway (spec.hardware.allowUnfit)", "capacity", s.Capacity.Summary())
	}
	return nil
}

// initProvider picks the cluster provider the spec names.
func (e *Estate) initProvider() error {
	prov, err := providers.For(e.spec.Spec.Provider, providers.Options{Embedded: embedded.Options{
		Dir: filepath.Join(e.stateDir, api.ClustersDir), Logger: e.log.With("component", "clusters"), OnRestart: e.recordRestart}})
	if err != nil {
		return err
	}
	e.provider = prov
	return nil
}

func (e *Estate) startGitea(ctx context.Context) error {
	srv, err := gitserver.Start(ctx, gitserver.Options{Dir: filepath.Join(e.stateDir, api.GiteaDir), Logger: e.log.With("component", "gitea"),
		Restart: e.backoff, OnRestart: e.recordRestart})
	if err != nil {
		return err
	}
	e.onStop("gitea", srv.Stop)
	e.git = srv
	if err := os.WriteFile(filepath.Join(e.stateDir, api.GiteaTokenFile), []byte(srv.AdminToken()+"\n"), 0o600); err != nil {
		return fmt.Errorf("store the admin token: %w", err)
	}
	e.progress("gitea: %s (admin %s, token in %s)", srv.URL(), srv.AdminUser(), filepath.Join(e.stateDir, api.GiteaTokenFile))
	return nil
}

func (e *Estate) startRegistry(ctx context.Context) error {
	reg, err := registry.Start(ctx, registry.Options{Dir: filepath.Join(e.stateDir, api.RegistryDir), Logger: e.log.With("component", "registry")})
	if err != nil {
		return err
	}
	e.onStop("registry", reg.Stop)
	e.reg = reg
	e.progress("registry: %s", reg.Host())
	return nil
}

func (e *Estate) startArc(context.Context) error {
	o := arc.DefaultOptions()
	o.ProvisioningDelay = e.prof.ArcProvisioningDelay
	e.arcSrv = arc.NewServer(o)
	ep, err := e.arcSrv.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	e.onStop("arc fake", ep.Close)
	e.arcEP = ep
	e.progress("arc: %s", ep.URL)
	if e.flux, err = newFluxClient(e.spec.Spec.Azure.SubscriptionID, ep); err != nil {
		return err
	}
	return nil
}

func (e *Estate) publishImages(ctx context.Context) error {
	c := e.reg.Client()
	n := 0
	for _, img := range e.spec.Spec.Images {
		for _, tag := range img.Tags {
			if _, err := c.Publish(ctx, img.Repository, tag); err != nil {
				return stepErr(api.StepImages, img.Repository+":"+tag, err)
			}
			n++
		}
	}
	e.progress("images: %d published to %s", n, e.reg.Host())
	return nil
}

// pushArtifacts pushes every folder of spec.artifacts to the registry as a Flux OCI artifact, the
// registry placeholder in its files rewritten to the registry's address as in the seeded repositories.
func (e *Estate) pushArtifacts(ctx context.Context) error {
	if len(e.spec.Spec.Artifacts) == 0 {
		return nil
	}
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(e.reg.Host())
	for _, a := range e.spec.Spec.Artifacts {
		ref := a.Repository + ":" + a.Tag
		files, err := fluxartifact.ReadDir(e.spec.Path(a.Path), func(data []byte) []byte { return bytesReplace(data, from, to) })
		if err != nil {
			return stepErr(api.StepArtifacts, ref, err)
		}
		img, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file://" + e.spec.File})
		if err != nil {
			return stepErr(api.StepArtifacts, ref, err)
		}
		pushed, err := e.reg.Client().Push(ctx, img, a.Repository, a.Tag)
		if err != nil {
			return stepErr(api.StepArtifacts, ref, err)
		}
		e.progress("artifacts: %s/%s <- %s (%.19s)", e.reg.Host(), ref, a.Path, pushed.Digest)
	}
	return nil
}

// readerUser is the Gitea user whose token the GitOps configurations read the repositories with.
const readerUser = "flux-reader"

// seed creates the spec's organisation, persona teams and repositories in Gitea and pushes their
// folders (gitserver.Seed, the one seeding path), with a read-only user for the clusters: the
// application-developer persona reads configuration repositories and writes none (gitserver personas,
// after the Arc CI/CD guidance). The registry placeholder in the files becomes the registry's address.
func (e *Estate) seed(ctx context.Context) error {
	g := e.spec.Spec.Git
	ss := gitserver.SeedSpec{Org: g.Org, Root: e.spec.Dir, Reader: readerUser, Rewrite: gitserver.RegistryRewrite(e.reg.Host()),
		Progress: func(p gitserver.SeedPush) { e.progress("seed: %s %s <- %s (%.12s)", p.Repo, p.Branch, p.Dir, p.Commit) }}
	for _, r := range g.Repos {
		branches := map[string]string{}
		if r.Path != "" {
			branches["main"] = r.Path
		}
		maps.Copy(branches, r.Branches)
		ss.Repos = append(ss.Repos, gitserver.SeedRepo{Name: r.Name, Description: "seeded by hybridtwin from " + e.spec.File, Branches: branches})
	}
	seeded, err := e.git.Admin().Seed(ctx, ss)
	if err != nil {
		var se *gitserver.SeedError
		if errors.As(err, &se) {
			return stepErr(api.StepSeed, se.Target, se.Err)
		}
		return stepErr(api.StepSeed, g.Org, err)
	}
	e.reader = seeded.Reader
	// The reader's SSH key: configurations with gitAuth ssh read with it over Gitea's SSH server, as the
	// guidance recommends (a key per service account, not the admin's).
	key, authorized, err := gitserver.NewSSHKey(readerUser + "@hybridtwin")
	if err != nil {
		return stepErr(api.StepSeed, readerUser, err)
	}
	if err := e.git.Admin().AddUserKey(ctx, readerUser, "flux-ssh", authorized); err != nil {
		return stepErr(api.StepSeed, readerUser, err)
	}
	e.readerKey = key
	if e.sshURLs == nil {
		e.sshURLs = map[string]string{}
	}
	for _, r := range seeded.Repos {
		e.sshURLs[r.Repo.Name] = e.git.SSHCloneURL(r.Repo)
		e.repoURLs[r.Repo.Name] = r.CloneURL
		e.gitRepos = append(e.gitRepos, r.Repo)
	}
	if err := e.ensureNotifier(ctx); err != nil {
		return stepErr(api.StepSeed, notifierUser, err)
	}
	return nil
}

func (e *Estate) writeKubeconfig(context.Context) error {
	if err := e.writeKubeconfigFor(e.clusterNames(), nil); err != nil {
		return err
	}
	if e.kubeconfig == "" { // set once, in Up; cluster operations rewrite the same file
		e.kubeconfig = filepath.Join(e.stateDir, api.KubeconfigFile)
		e.progress("kubeconfig: %s (contexts: %v)", e.kubeconfig, e.clusterNames())
	}
	return nil
}

// startBridge ties the hardware model to the clusters: its events drive node state until Down.
func (e *Estate) startBridge() {
	e.bridge = hostops.NewBridge(e.sim, &hostops.Nodes{Faults: e.provider, Client: e.clientOf, NodeName: e.nodeName}, e.clk)
	bctx, bcancel := context.WithCancel(e.runCtx)
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.bridge.Run(bctx) }()
	e.onStop("hardware bridge", func(context.Context) error { bcancel(); return nil })
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
