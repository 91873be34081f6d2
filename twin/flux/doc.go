// Package flux runs real Flux in the twin, for workload clusters whose spec says `reconciler: flux`: it
// installs Flux's CRDs into a cluster, runs Flux's source-controller, kustomize-controller and
// helm-controller as local processes against that cluster, and offers a Target through which the Arc agent
// (twin/arcagent) writes Flux's own GitRepository, OCIRepository and Kustomization objects and reads their
// status back, so compliance comes from real Flux's Ready conditions. The Target is an arcagent.OCITarget:
// fluxConfigurations with sourceKind OCIRepository run on real Flux too (spec.insecure for the twin's
// plain-HTTP registry). HelmRepository, HelmChart and HelmRelease objects in Git run on real Flux as well;
// their chart URLs resolve through the twin's chart mirror (Options.Env, from engine.ChartMirror).
//
// The binaries and their CRDs come from the tool cache (tools/toolcache: toolcache.SourceController,
// toolcache.KustomizeController and toolcache.HelmController with their config/crd/bases assets), so the
// CRDs always match the controllers and nothing is fetched from the network at run time.
//
//	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: dir})
//	defer ctl.Stop()
//	target, err := arcagent.NewClusterTarget(restConfig) // the Arc agent's target for every engine
//
// Each controller runs in its own process group with a parent-death signal, on ports the operating
// system picks on 127.0.0.1, with its log in StateDir/logs; Stop, a failed start and a cancelled start
// stop them all. Timing constants and flags live in profile.go with their sources.
//
// It imports tools/toolcache, twin/arcagent (for the Target interface), client-go and Flux's API types;
// it must not import the twin's reconciler, the hardware model, the cluster providers or scenarios.
package flux
