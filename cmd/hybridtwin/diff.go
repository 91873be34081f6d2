package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// diffFlags are diff's flags.
type diffFlags struct {
	files                []string
	ref, output          string
	twinName, stateDir   string
	cluster              string
	kubeconfig, kcontext string
}

func newDiffCommand() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff [PATH|URL] --twin NAME --cluster C [-f twin.yaml|fluxconfigs.yaml] [--ref REF] [-o text|json]",
		Short: "Show what applying a layout (or a ref of it) would change on a running twin cluster (server-side dry-run)",
		Long: `diff builds every Kustomization of the cluster's GitOps configurations as validate and the reconciler do
(Flux's generator, kustomize, postBuild with substituteFrom read from the cluster, the reconciler's owner
labels) and server-side dry-run applies each object against the cluster with the reconciler's field manager,
as 'flux diff kustomization' does: every object is created, configured (with a unified diff of what
changes; Secret values masked as flux diff masks them), unchanged or rejected by the API server, and the
objects the Kustomization applied before that the layout no longer declares are listed as deleted (prune).
Namespace-scoped configurations are dry-run as their flux-applier service account, as they apply.

The configurations come from -f (a Twin spec or Arc fluxConfigurations), else from the running twin's
spec, else from the Flux Kustomizations PATH declares (clusters/<name>/). PATH may be an http(s) Git URL
(token in $` + envGitToken + `), and --ref picks a branch, tag or commit of it or of the local repository.
The cluster is the running twin's (--twin NAME or --state-dir, and --cluster), or any cluster through
--kubeconfig and --context.

Exit codes, as flux diff: 0 nothing would change, 1 something would (or would be rejected), 2 the diff
could not run (including a Kustomization that does not build).`,
		Example: `  hybridtwin diff examples/repos/dir-per-env/gitops-config --twin example --cluster dev
  hybridtwin diff . --ref main --twin example --cluster prod -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return runDiff(cmd.Context(), cmd.OutOrStdout(), path, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "file", "f", nil, "a Twin spec or a file of Arc fluxConfigurations (default: the running twin's spec)")
	fl.StringVar(&f.ref, "ref", "", "branch, tag or commit to diff (of the URL, or of the Git repository PATH is in)")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	fl.StringVar(&f.twinName, "twin", "", "the running twin's name ($XDG_STATE_HOME/hybridtwin/<name>)")
	fl.StringVar(&f.stateDir, "state-dir", "", "the running twin's state directory")
	fl.StringVar(&f.cluster, "cluster", "", "the workload cluster to diff against (a context of the twin's kubeconfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "diff against this kubeconfig's cluster instead of a twin's")
	fl.StringVar(&f.kcontext, "context", "", "with --kubeconfig: the context (default: the current one)")
	return cmd
}

func runDiff(ctx context.Context, stdout io.Writer, path string, f diffFlags) error {
	format := layout.Format(f.output)
	if format != layout.FormatText && format != layout.FormatJSON {
		return &exitError{2, fmt.Errorf("-o %q: use text or json", f.output)}
	}
	if path == "" {
		return &exitError{2, errors.New("pass the repository to diff as PATH (or URL)")}
	}
	useTwin := f.twinName != "" || f.stateDir != ""
	if useTwin == (f.kubeconfig != "") {
		return &exitError{2, errors.New("pick the cluster with --twin NAME (or --state-dir) and --cluster, or with --kubeconfig [--context]")}
	}
	root, src, err := openRoot(ctx, path, f.ref)
	if err != nil {
		return &exitError{2, err}
	}
	defer src.Close()

	files := f.files
	var cfg *rest.Config
	cluster := f.cluster
	registry := ""
	if useTwin {
		if cluster == "" {
			return &exitError{2, errors.New("--cluster is required with --twin: name the workload cluster to diff against")}
		}
		dir, err := (&twinTarget{stateDir: f.stateDir, name: f.twinName}).dir()
		if err != nil {
			return withCode(err, 2)
		}
		info, err := twin.ReadInfo(dir)
		if err != nil {
			return &exitError{2, fmt.Errorf("%w in %s (%v); start it with `hybridtwin up -f twin.yaml`", twin.ErrNotRunning, dir, err)}
		}
		if len(files) == 0 {
			if _, err := os.Stat(info.Spec); err != nil {
				return &exitError{2, fmt.Errorf("the twin's spec %q (as `hybridtwin up` was given it) is not readable from here: %v; pass it with -f", info.Spec, err)}
			}
			files = []string{info.Spec}
		}
		registry = info.Registry
		cfg, err = kubeconfigFor(info.Kubeconfig, cluster)
		if err != nil {
			return &exitError{2, fmt.Errorf("twin %s: %w (clusters: %s)", info.Name, err, strings.Join(info.Contexts, ", "))}
		}
	} else {
		cfg, err = kubeconfigFor(f.kubeconfig, f.kcontext)
		if err != nil {
			return &exitError{2, err}
		}
	}
	if registry != "" {
		// The twin's Git holds the layout with the placeholder registry replaced by its own (as `up`
		// seeds and --converge pushes it): diff that content.
		dir, err := os.MkdirTemp("", "hybridtwin-diff-")
		if err != nil {
			return &exitError{2, err}
		}
		defer os.RemoveAll(dir)
		if err := copyRewritten(root, dir, []byte(gitserver.PlaceholderRegistry), []byte(registry)); err != nil {
			return &exitError{2, fmt.Errorf("copy %s: %w", root, err)}
		}
		root = dir
	}
	configs, err := validateInputs(root, files, layout.DiscoverOptions{})
	if err != nil {
		return &exitError{2, err}
	}
	mine, err := configsOf(configs, cluster)
	if err != nil {
		return &exitError{2, err}
	}
	rep, err := layout.Diff(ctx, cfg, mine, layout.DiffOptions{})
	if err != nil {
		return &exitError{2, err}
	}
	if err := rep.Write(stdout, format); err != nil {
		return &exitError{2, err}
	}
	switch rep.ExitCode() {
	case layout.ExitFindings:
		return &exitError{1, errors.New("applying the layout would change the cluster")}
	case layout.ExitError:
		return &exitError{2, fmt.Errorf("%d Kustomization(s) could not be built; the diff is incomplete", len(rep.Problems))}
	}
	return nil
}

// configsOf keeps the configurations of cluster. Without a cluster name, the layout must hold one
// cluster's configurations.
func configsOf(configs []layout.Config, cluster string) ([]layout.Config, error) {
	names := map[string]bool{}
	var out []layout.Config
	for _, c := range configs {
		names[c.Cluster] = true
		if cluster == "" || c.Cluster == cluster {
			out = append(out, c)
		}
	}
	var have []string
	for n := range names {
		have = append(have, n)
	}
	sort.Strings(have)
	if len(out) == 0 {
		return nil, fmt.Errorf("no GitOps configuration targets cluster %q (the layout's clusters: %s); pick one with --cluster", cluster, strings.Join(have, ", "))
	}
	if cluster == "" && len(names) > 1 {
		return nil, fmt.Errorf("the layout configures %d clusters (%s): pick one with --cluster", len(names), strings.Join(have, ", "))
	}
	return out, nil
}

// kubeconfigFor loads a kubeconfig's context ("" is the current one).
func kubeconfigFor(path, context string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s, context %q: %w", path, context, err)
	}
	cfg.QPS, cfg.Burst = -1, -1 // one request per object, like flux diff; the twin's API servers are local
	return cfg, nil
}

// copyRewritten copies the tree at from into to, replacing old with new in every file (.git skipped).
func copyRewritten(from, to string, old, new []byte) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, bytes.ReplaceAll(data, old, new), 0o644)
	})
}
