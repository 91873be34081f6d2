package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// schemaStartTimeout bounds the schema API server's start: envtest's default is 20 s (controller-runtime
// envtest server.go); RECIPES.md measured /readyz ~2.5 s after etcd idle, so a minute covers a loaded
// 2-core machine.
const schemaStartTimeout = 60 * time.Second

func newValidateCommand() *cobra.Command {
	var (
		files, registries  []string
		output, failOn, kv string
		schema             bool
	)
	cmd := &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Validate a GitOps repository layout before it reaches the clusters (static stage)",
		Long: `validate builds every Kustomization of the GitOps configurations with Flux's generator and the real
kustomize API (the reconciler's own build) and checks the result: build errors (HT001), postBuild variables
without a value (HT002), dependsOn to a missing Kustomization (HT003) or in a cycle (HT004), objects outside a
namespace-scoped configuration's namespace (HT005), plaintext Secrets (HT006), images outside
--allowed-registries (HT007), removed or deprecated API versions for --kubernetes-version (HT008), schema
validation by server-side dry-run against a real API server with --schema (HT009), objects declared by two
Kustomizations of one cluster (HT010), and HelmReleases, which are reported but not rendered (HT011).

The configurations come from -f: a Twin spec (spec.gitops; repositories from spec.git.repos, or PATH), or
Azure Arc fluxConfiguration resources in their ARM REST shape (see go doc reconciler/layout.FluxConfigFile;
PATH is the repository). Without -f, the Flux Kustomizations declared in PATH are validated, grouped by
cluster (clusters/<name>/).

Exit codes, as flux diff: 0 clean, 1 findings at or above --fail-on, 2 the validation could not run.
Not in this increment: --converge, remote URLs and --ref, hybridtwin diff.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
				if strings.Contains(path, "://") || strings.HasPrefix(path, "git@") {
					return &exitError{2, fmt.Errorf("%s: remote repositories are not supported yet; clone it and pass the directory", path)}
				}
			}
			sev, err := layout.ParseSeverity(failOn)
			if err != nil {
				return &exitError{2, fmt.Errorf("--fail-on: %w", err)}
			}
			format := layout.Format(output)
			switch format {
			case layout.FormatText, layout.FormatJSON, layout.FormatSARIF, layout.FormatJUnit:
			default:
				return &exitError{2, fmt.Errorf("-o %q: use text, json, sarif or junit", output)}
			}
			configs, err := validateInputs(path, files)
			if err != nil {
				return &exitError{2, err}
			}
			opts := layout.Options{TargetVersion: kv, AllowedRegistries: registries}
			ctx := cmd.Context()
			if schema {
				stop, err := startSchemaServer(ctx, &opts)
				if err != nil {
					return &exitError{2, fmt.Errorf("--schema: %w", err)}
				}
				defer stop()
			}
			rep, err := layout.Validate(ctx, configs, opts)
			if err != nil {
				return &exitError{2, err}
			}
			if err := rep.Write(cmd.OutOrStdout(), format, sev); err != nil {
				return &exitError{2, err}
			}
			if rep.ExitCode(sev) != layout.ExitClean {
				return &exitError{1, fmt.Errorf("validation found problems at or above %s", sev)}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "a Twin spec or a file of Arc fluxConfigurations (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json, sarif or junit")
	cmd.Flags().StringVar(&failOn, "fail-on", "error", "lowest severity that makes the exit code 1: info, warning or error")
	cmd.Flags().StringSliceVar(&registries, "allowed-registries", nil, "registries (host or host/path) images may come from; none enforced when empty")
	cmd.Flags().StringVar(&kv, "kubernetes-version", "", "target Kubernetes version for API deprecations (default v1.33, the twin's)")
	cmd.Flags().BoolVar(&schema, "schema", false, "validate every object by server-side dry-run against a local kube-apiserver from the tool cache")
	return cmd
}

// validateInputs turns PATH and -f files into configurations.
func validateInputs(path string, files []string) ([]layout.Config, error) {
	if len(files) == 0 {
		if path == "" {
			return nil, errors.New("no input: pass a repository directory, and -f fluxconfigs.yaml or -f twin.yaml")
		}
		return layout.Discover(path)
	}
	var out []layout.Config
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		var head struct {
			Kind string `json:"kind"`
		}
		_ = yaml.Unmarshal([]byte(strings.SplitN(string(data), "\n---", 2)[0]), &head)
		if head.Kind == twin.KindTwin {
			cs, err := twinConfigs(f, path)
			if err != nil {
				return nil, err
			}
			out = append(out, cs...)
			continue
		}
		if path == "" {
			return nil, fmt.Errorf("%s: Arc fluxConfigurations name no local folder: pass the repository directory as PATH", f)
		}
		cs, err := layout.LoadFluxConfigs(f, path)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// twinConfigs converts a Twin spec's GitOps entries (Arc shape) into layout configurations, one per
// target cluster. Repositories are the spec's spec.git.repos folders (the ref's branch folder for a
// branch-per-environment repo), or override when PATH is given.
func twinConfigs(file, override string) ([]layout.Config, error) {
	s, err := twin.LoadSpec(file)
	if err != nil {
		return nil, err
	}
	var out []layout.Config
	for i, g := range s.Spec.GitOps {
		root := override
		if root == "" {
			for _, r := range s.Spec.Git.Repos {
				if r.Name != g.Repo {
					continue
				}
				root = r.Path
				if b, ok := r.Branches[g.Ref.Branch]; ok {
					root = b
				}
				if root != "" {
					root = s.Path(root)
				}
			}
		}
		if root == "" {
			return nil, fmt.Errorf("%s: spec.gitops[%d] (%s): repository %q has no local folder for ref %+v; pass the repository directory as PATH", file, i, g.Name, g.Repo, g.Ref)
		}
		var ks []layout.ArcKustomization
		for name, k := range g.Kustomizations {
			ks = append(ks, layout.ArcKustomization{Name: name, Path: k.Path, DependsOn: k.DependsOn, Substitute: k.Substitute})
		}
		scope := layout.Scope(g.Scope)
		if scope == "" {
			scope = layout.ScopeCluster
		}
		for _, cl := range s.TargetsOf(g) {
			out = append(out, layout.FromArc(cl, g.Name, scope, g.Namespace, root, file, ks))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: spec.gitops is empty: nothing to validate", file)
	}
	return out, nil
}

// startSchemaServer starts etcd and kube-apiserver from the tool cache (envtest runs each in its own
// process group and stops them on stop) and points opts.Schema at it.
func startSchemaServer(ctx context.Context, opts *layout.Options) (func(), error) {
	c, err := toolcache.New()
	if err != nil {
		return nil, err
	}
	api, err := c.Ensure(ctx, toolcache.KubeAPIServer)
	if err != nil {
		return nil, err
	}
	etcd, err := c.Ensure(ctx, toolcache.Etcd)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{ControlPlaneStartTimeout: schemaStartTimeout, ControlPlaneStopTimeout: schemaStartTimeout}
	env.ControlPlane.GetAPIServer().Path = api.Path
	env.ControlPlane.Etcd = &envtest.Etcd{Path: etcd.Path}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start kube-apiserver %s: %w", filepath.Base(api.Path), err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	opts.Schema = cfg
	return func() { _ = env.Stop() }, nil
}
