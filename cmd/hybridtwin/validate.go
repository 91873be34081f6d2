package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/internal/fluxartifact"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
	"github.com/hybridtwin/hybridtwin/twin/registry"
)

// schemaStartTimeout bounds the schema API server's start: envtest's default is 20 s (controller-runtime
// envtest server.go); RECIPES.md measured /readyz ~2.5 s after etcd idle, so a minute covers a loaded
// 2-core machine.
const schemaStartTimeout = 60 * time.Second

// The environment variables a remote repository's credentials come from (never a flag: flags show in
// process listings and shell history).
const (
	envGitToken    = "HYBRIDTWIN_GIT_TOKEN"
	envGitUsername = "HYBRIDTWIN_GIT_USERNAME"
)

// validateFlags are validate's flags.
type validateFlags struct {
	files, registries  []string
	output, failOn, kv string
	ref                string
	schema, offline    bool
	converge           bool
	twinName, stateDir string
	convergeTimeout    time.Duration
}

func newValidateCommand() *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate [PATH|URL] [-f twin.yaml|fluxconfigs.yaml] [--ref REF] [--converge [--twin NAME]] [-o text|json|sarif|junit]",
		Short: "Validate a GitOps repository layout before it reaches the clusters (static, and on the twin with --converge)",
		Long: `validate builds every Kustomization of the GitOps configurations with Flux's generator and the real
kustomize API (the reconciler's own build) and checks the result: build errors (HT001), postBuild variables
without a value (HT002), dependsOn to a missing Kustomization (HT003) or in a cycle (HT004), objects outside a
namespace-scoped configuration's namespace (HT005), plaintext Secrets (HT006), images outside
--allowed-registries (HT007), removed or deprecated API versions for --kubernetes-version (HT008), schema
validation by server-side dry-run against a real API server with --schema (HT009), objects declared by two
Kustomizations of one cluster (HT010). HelmReleases are rendered with the Helm SDK and their objects checked
by the same rules: a chart that does not render (or a version its source does not hold) is HT011, a chart
source that cannot be reached from here (or needs credentials) is a HT012 warning; --offline fetches none.

The configurations come from -f: a Twin spec (spec.gitops; each configuration's folder from spec.git.repos,
or spec.artifacts for an oci source, or PATH), or
Azure Arc fluxConfiguration resources in their ARM REST shape (see go doc reconciler/layout.FluxConfigFile;
PATH is the repository). Without -f, the Flux Kustomizations declared in PATH are validated, grouped by
cluster (clusters/<name>/).

PATH may be an http(s) Git URL: it is cloned with go-git (basic auth with the token in $` + envGitToken + `,
user $` + envGitUsername + ` or "git") and --ref picks a branch, tag or commit (default: the remote's HEAD).
With a local PATH, --ref validates that revision of the Git repository PATH is in (the work tree is not
touched).

--converge (with -f twin.yaml) then runs the layout on the twin: it starts the twin the spec describes
(progress on standard error) with the layout under validation in place of the repository each GitOps
configuration syncs (same repository name and branch, so the spec's configurations are used as they are;
for an oci source, packed as the spec.artifacts tag it syncs),
waits until every Kustomization is Ready on the twin's reconcilers, reports the time to Ready (measured
from the end of the twin's start-up, whose last step creates the configurations, to the first status poll
that shows the Kustomization Ready at the pushed revision) and every failure as
HT013, and takes the twin down -- also on Ctrl-C. It runs only when the static stage found no error. With --twin NAME (or --state-dir) it uses a
twin started with 'hybridtwin up' instead: the layout is pushed as a new commit to each branch the twin's
configurations sync, and packed and pushed as a Flux artifact under each spec.artifacts tag they sync (the
twin keeps it afterwards), and the wait includes the configurations' sync interval. A configuration that
syncs a Git tag, semver or commit, or an oci url, semver or digest, is refused by name: there is no branch
or tag of the twin's to put the layout under. --converge-timeout overrides the bound derived from the reconciler profile (fetch, plus one apply
stage and a dependency re-check per level of the dependsOn graph).

Exit codes, as flux diff: 0 clean, 1 findings at or above --fail-on, 2 the validation could not run.`,
		Example: `  hybridtwin validate examples/repos/dir-per-env/gitops-config -f examples/twin.yaml
  hybridtwin validate examples/repos/kustomize-helm --allowed-registries registry.twin.local -o sarif > validate.sarif
  ` + envGitToken + `=... hybridtwin validate https://git.example/platform/gitops-config --ref feature/x -f twin.yaml
  hybridtwin validate . --ref HEAD~1
  hybridtwin validate examples/repos/dir-per-env/gitops-config -f examples/twin.yaml --converge -o junit`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return runValidate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), path, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "file", "f", nil, "a Twin spec or a file of Arc fluxConfigurations (repeatable)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text, json, sarif or junit")
	fl.StringVar(&f.failOn, "fail-on", "error", "lowest severity that makes the exit code 1: info, warning or error")
	fl.StringSliceVar(&f.registries, "allowed-registries", nil, "registries (host or host/path) images may come from; none enforced when empty")
	fl.StringVar(&f.kv, "kubernetes-version", "", "target Kubernetes version for API deprecations and chart rendering (default v1.33, the twin's)")
	fl.BoolVar(&f.schema, "schema", false, "validate every object by server-side dry-run against a local kube-apiserver from the tool cache")
	fl.StringVar(&f.ref, "ref", "", "branch, tag or commit to validate (of the URL, or of the Git repository PATH is in)")
	fl.BoolVar(&f.offline, "offline", false, "fetch no remote chart (HelmRepository, OCIRepository, other Git repositories): HT012 warnings instead")
	fl.BoolVar(&f.converge, "converge", false, "also run the layout on the twin (-f twin.yaml starts one; --twin uses a running one) and report time to Ready")
	fl.StringVar(&f.twinName, "twin", "", "with --converge: the running twin's name ($XDG_STATE_HOME/hybridtwin/<name>)")
	fl.StringVar(&f.stateDir, "state-dir", "", "with --converge: the running twin's state directory")
	fl.DurationVar(&f.convergeTimeout, "converge-timeout", 0, "with --converge: how long to wait for Ready (default: derived from the reconciler profile and the dependsOn depth)")
	return cmd
}

func runValidate(ctx context.Context, stdout, stderr io.Writer, path string, f validateFlags) error {
	sev, err := layout.ParseSeverity(f.failOn)
	if err != nil {
		return &exitError{2, fmt.Errorf("--fail-on: %w", err)}
	}
	format := layout.Format(f.output)
	switch format {
	case layout.FormatText, layout.FormatJSON, layout.FormatSARIF, layout.FormatJUnit:
	default:
		return &exitError{2, fmt.Errorf("-o %q: use text, json, sarif or junit", f.output)}
	}
	running := f.twinName != "" || f.stateDir != ""
	if running && !f.converge {
		return &exitError{2, errors.New("--twin and --state-dir select the twin of --converge: add --converge")}
	}
	if f.converge && !running && twinSpecFile(f.files) == "" {
		return &exitError{2, errors.New("--converge needs a twin: -f twin.yaml to start one, or --twin NAME for one started with `hybridtwin up`")}
	}
	if f.converge && f.schema {
		return &exitError{2, errors.New("--schema and --converge: the twin's API servers already check every object; drop --schema")}
	}

	// The repository: a local folder, or a revision fetched with go-git.
	root, src, err := openRoot(ctx, path, f.ref)
	if err != nil {
		return &exitError{2, err}
	}
	defer src.Close()

	files := f.files
	var runningSpec string
	if running {
		dir, err := (&twinTarget{stateDir: f.stateDir, name: f.twinName}).dir()
		if err != nil {
			return withCode(err, 2)
		}
		f.stateDir = dir
		if twinSpecFile(files) == "" {
			info, err := twin.ReadInfo(dir)
			if err != nil {
				return &exitError{2, fmt.Errorf("%w in %s (%v); start it with `hybridtwin up -f twin.yaml`", twin.ErrNotRunning, dir, err)}
			}
			if _, err := os.Stat(info.Spec); err != nil {
				return &exitError{2, fmt.Errorf("the twin's spec %q (as `hybridtwin up` was given it) is not readable from here: %v; pass it with -f", info.Spec, err)}
			}
			runningSpec = info.Spec
			files = append(files, info.Spec)
		}
		if root == "" {
			return &exitError{2, errors.New("--converge --twin pushes the layout to the running twin: pass the repository as PATH (or URL)")}
		}
	}
	configs, err := validateInputs(root, files)
	if err != nil {
		return &exitError{2, err}
	}
	opts := layout.Options{TargetVersion: f.kv, AllowedRegistries: f.registries, Offline: f.offline}
	if f.schema {
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
	if src != nil {
		rep.Source = &layout.SourceInfo{URL: src.URL, Revision: src.Revision}
	}
	if f.converge {
		c := converger{stderr: stderr, root: root, configs: configs, timeout: f.convergeTimeout}
		if rep.ExitCode(layout.Error) != layout.ExitClean {
			rep.Add(layout.Finding{Rule: layout.RuleConverge, Severity: layout.Info,
				Message: "converge skipped: the static stage found errors, so the layout would not converge",
				Hint:    "fix the errors above, then run --converge again"})
		} else {
			var err error
			if running {
				err = c.onRunning(ctx, rep, f.stateDir, firstNonEmpty(twinSpecFile(f.files), runningSpec))
			} else {
				err = c.onNewTwin(ctx, rep, twinSpecFile(f.files))
			}
			if err != nil {
				return withCode(err, 2)
			}
		}
	}
	if err := rep.Write(stdout, format, sev); err != nil {
		return &exitError{2, err}
	}
	if rep.ExitCode(sev) != layout.ExitClean {
		return &exitError{1, fmt.Errorf("validation found problems at or above %s", sev)}
	}
	return nil
}

// openRoot resolves PATH: a URL, or a local folder with --ref, is written out as a temporary tree (src,
// to Close); a plain local folder is used as it is (src nil; Close on nil is a no-op).
func openRoot(ctx context.Context, path, ref string) (string, *layout.Source, error) {
	if path == "" {
		if ref != "" {
			return "", nil, errors.New("--ref needs the repository: pass PATH or URL")
		}
		return "", nil, nil
	}
	if !layout.IsRemote(path) && ref == "" {
		if strings.Contains(path, "://") || strings.HasPrefix(path, "git@") {
			return "", nil, fmt.Errorf("%s: only http(s) Git URLs and local directories are supported; clone it over SSH yourself and pass the directory", path)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			return "", nil, fmt.Errorf("repository %s is not a directory; pass the repository's folder, or an http(s) Git URL", path)
		}
		return path, nil, nil
	}
	src, err := layout.OpenSource(ctx, path, layout.SourceOptions{Ref: ref, Token: os.Getenv(envGitToken), Username: os.Getenv(envGitUsername)})
	if err != nil {
		return "", nil, err
	}
	return src.Dir, src, nil
}

// twinSpecFile is the first -f file whose first document is a Twin, or "".
func twinSpecFile(files []string) string {
	for _, f := range files {
		if isTwinSpec(f) {
			return f
		}
	}
	return ""
}

func isTwinSpec(file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	var head struct {
		Kind string `json:"kind"`
	}
	_ = yaml.Unmarshal([]byte(strings.SplitN(string(data), "\n---", 2)[0]), &head)
	return head.Kind == twin.KindTwin
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// withCode keeps an error's own exit code, or gives it code.
func withCode(err error, code int) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code, err}
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
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		if isTwinSpec(f) {
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
// target cluster. A configuration's folder is its source's (Spec.SourceDir: the spec.git.repos folder, the
// ref's branch folder for a branch-per-environment repo, or the spec.artifacts folder of an oci source),
// or override when PATH is given.
func twinConfigs(file, override string) ([]layout.Config, error) {
	s, err := twin.LoadSpec(file)
	if err != nil {
		return nil, err
	}
	var out []layout.Config
	for i, g := range s.Spec.GitOps {
		root := override
		if root == "" {
			root = s.SourceDir(g)
		}
		switch {
		case root != "":
		case g.OCI != nil:
			return nil, fmt.Errorf("%s: spec.gitops[%d] (%s): the OCI artifact %s has no local folder (only a tag of spec.artifacts has one, not a url, semver or digest); pass the artifact's folder as PATH",
				file, i, g.Name, ociName(g.OCI))
		default:
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

// converger runs the converge stage.
type converger struct {
	stderr  io.Writer
	root    string // the layout under validation ("" on a new twin: the spec's own repositories)
	configs []layout.Config
	timeout time.Duration
}

// branchRef is a repository branch the layout goes to.
type branchRef struct{ repo, branch string }

// artifactRef is a tag of spec.artifacts (in the twin's registry) the layout goes to, for the
// configurations with an oci source.
type artifactRef struct{ repo, tag string }

// ociName names an oci source for a message: its repository or URL, and its tag, semver or digest.
func ociName(o *twin.OCISource) string {
	n := o.Repository
	if n == "" {
		n = o.URL
	}
	switch {
	case o.Digest != "":
		return n + "@" + o.Digest
	case o.Semver != "":
		return n + " (semver " + o.Semver + ")"
	case o.Tag != "":
		return n + ":" + o.Tag
	}
	return n + ":" + twin.DefaultOCITag
}

// targets are the (repository, branch) pairs and the artifact tags the spec's GitOps configurations
// sync, and which configurations ("cluster/name") sync each. --converge puts the layout where each
// configuration reads it: a new commit on a branch, a new artifact under a tag of spec.artifacts. A
// configuration it cannot follow (a Git tag, semver or commit; an oci url, semver or digest) is refused
// by name.
func targets(s *twin.Spec) (map[branchRef][]string, map[artifactRef][]string, error) {
	branches, artifacts := map[branchRef][]string{}, map[artifactRef][]string{}
	for i, g := range s.Spec.GitOps {
		var add func(c string)
		switch o := g.OCI; {
		case o != nil && (o.Repository == "" || o.Semver != "" || o.Digest != "" || s.SourceDir(g) == ""):
			return nil, nil, fmt.Errorf("%s: spec.gitops[%d] (%s) syncs the OCI artifact %s: --converge packs the layout as a tag of spec.artifacts in the twin's registry; point the configuration at one (oci: {repository: <a spec.artifacts repository>, tag: <its tag>}) or validate without --converge",
				s.File, i, g.Name, ociName(o))
		case o != nil:
			k := artifactRef{o.Repository, o.Tag}
			if k.tag == "" {
				k.tag = twin.DefaultOCITag
			}
			add = func(c string) { artifacts[k] = append(artifacts[k], c+"/"+g.Name) }
		case g.Ref.Branch == "":
			return nil, nil, fmt.Errorf("%s: spec.gitops[%d] (%s) syncs %+v, not a branch: --converge pushes the layout to a branch; point the configuration at one", s.File, i, g.Name, g.Ref)
		default:
			k := branchRef{g.Repo, g.Ref.Branch}
			add = func(c string) { branches[k] = append(branches[k], c+"/"+g.Name) }
		}
		for _, c := range s.TargetsOf(g) {
			add(c)
		}
	}
	return branches, artifacts, nil
}

func sortedArtifacts(m map[artifactRef][]string) []artifactRef {
	return slices.SortedFunc(maps.Keys(m), func(a, b artifactRef) int {
		return cmp.Or(strings.Compare(a.repo, b.repo), strings.Compare(a.tag, b.tag))
	})
}

func sortedRefs(m map[branchRef][]string) []branchRef {
	return slices.SortedFunc(maps.Keys(m), func(a, b branchRef) int {
		return cmp.Or(strings.Compare(a.repo, b.repo), strings.Compare(a.branch, b.branch))
	})
}

// onNewTwin starts the twin of specFile with the layout in place of the repositories its GitOps
// configurations sync, waits for convergence and takes the twin down (on every path, Ctrl-C included).
func (c *converger) onNewTwin(ctx context.Context, rep *layout.Report, specFile string) (err error) {
	spec, err := twin.LoadSpec(specFile)
	if err != nil {
		return &exitError{2, err}
	}
	refs, arts, err := targets(spec)
	if err != nil {
		return &exitError{2, err}
	}
	if c.root != "" {
		abs, err := filepath.Abs(c.root)
		if err != nil {
			return err
		}
		// In place of each repository the configurations sync: the same name and branches, the layout
		// under validation as every branch's content.
		for i := range spec.Spec.Git.Repos {
			r := &spec.Spec.Git.Repos[i]
			var branches []string
			for _, ref := range sortedRefs(refs) {
				if ref.repo == r.Name {
					branches = append(branches, ref.branch)
				}
			}
			if len(branches) == 0 {
				continue
			}
			r.Path, r.Branches = "", map[string]string{}
			for _, b := range branches {
				r.Branches[b] = abs
			}
		}
		// Each artifact tag the configurations sync is packed from the layout instead.
		for i := range spec.Spec.Artifacts {
			a := &spec.Spec.Artifacts[i]
			if _, ok := arts[artifactRef{a.Repository, a.Tag}]; ok {
				a.Path = abs
			}
		}
	}
	stateDir, err := os.MkdirTemp("", "hybridtwin-converge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	fmt.Fprintf(c.stderr, "converge: starting twin %s (state %s)\n", spec.Metadata.Name, stateDir)
	t, err := twin.Up(ctx, spec, twin.Options{StateDir: stateDir, Progress: c.stderr})
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{2, fmt.Errorf("interrupted; nothing is left running: %w", err)}
		}
		return &exitError{2, fmt.Errorf("converge: %w", err)}
	}
	start := time.Now()
	defer func() {
		fmt.Fprintln(c.stderr, "converge: stopping the twin...")
		if derr := t.Down(context.WithoutCancel(ctx), false); derr != nil {
			err = errors.Join(err, fmt.Errorf("stop the twin: %w", derr))
			return
		}
		fmt.Fprintln(c.stderr, "converge: twin stopped")
	}()
	token, err := os.ReadFile(t.Info().GiteaToken)
	if err != nil {
		return fmt.Errorf("read the twin's Gitea token: %w", err)
	}
	git, err := gitserver.NewClient(t.GiteaURL(), gitserver.DefaultProfile().AdminUser, strings.TrimSpace(string(token)), gitserver.DefaultProfile())
	if err != nil {
		return err
	}
	res := &layout.ConvergeResult{Twin: spec.Metadata.Name, Mode: "up"}
	commits := map[string]string{}
	for _, ref := range sortedRefs(refs) {
		commit, err := git.BranchCommit(ctx, gitserver.Repo{Owner: spec.Spec.Git.Org, Name: ref.repo}, ref.branch)
		if err != nil {
			return fmt.Errorf("converge: the seeded commit of %s@%s: %w", ref.repo, ref.branch, err)
		}
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: spec.Spec.Git.Org + "/" + ref.repo, Branch: ref.branch, Commit: commit})
		for _, cfg := range refs[ref] {
			commits[cfg] = commit
		}
	}
	// An OCI source reports tag@digest (Flux's OCIRepository revision): the digest Up pushed.
	reg := registry.NewClient(t.RegistryHost())
	for _, a := range sortedArtifacts(arts) {
		m, err := reg.Manifest(ctx, a.repo, a.tag)
		if err != nil {
			return fmt.Errorf("converge: the pushed artifact %s:%s: %w", a.repo, a.tag, err)
		}
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: "oci://" + t.RegistryHost() + "/" + a.repo, Branch: a.tag, Commit: m.Digest})
		for _, cfg := range arts[a] {
			commits[cfg] = m.Digest
		}
	}
	return c.wait(ctx, rep, res, localStatus{t}, commits, start, 0)
}

// onRunning pushes the layout to the running twin's Gitea, as a new commit on every branch its GitOps
// configurations sync, and waits for convergence. The twin keeps running with the layout.
func (c *converger) onRunning(ctx context.Context, rep *layout.Report, stateDir, specFile string) error {
	remote, err := twin.Dial(stateDir)
	if err != nil {
		return &exitError{2, err}
	}
	defer remote.Close()
	info, err := twin.ReadInfo(stateDir)
	if err != nil {
		return &exitError{2, fmt.Errorf("read the twin's %s: %w", twin.InfoFile, err)}
	}
	spec, err := twin.LoadSpec(specFile)
	if err != nil {
		return &exitError{2, err}
	}
	refs, arts, err := targets(spec)
	if err != nil {
		return &exitError{2, err}
	}
	token, err := os.ReadFile(info.GiteaToken)
	if err != nil {
		return &exitError{2, fmt.Errorf("read the twin's Gitea token: %w", err)}
	}
	git, err := gitserver.NewClient(info.GiteaURL, gitserver.DefaultProfile().AdminUser, strings.TrimSpace(string(token)), gitserver.DefaultProfile())
	if err != nil {
		return err
	}
	// The sources notice the push at their next sync: the longest interval of the configurations (the
	// Arc default when the spec sets none).
	var wait time.Duration
	for _, g := range spec.Spec.GitOps {
		iv := time.Duration(arc.DefaultSyncIntervalSeconds) * time.Second
		if g.SyncIntervalInSeconds > 0 {
			iv = time.Duration(g.SyncIntervalInSeconds) * time.Second
		}
		wait = max(wait, iv)
	}
	from, to := []byte(gitserver.PlaceholderRegistry), []byte(info.Registry)
	rewrite := func(_ string, data []byte) []byte { return bytes.ReplaceAll(data, from, to) }
	start := time.Now()
	res := &layout.ConvergeResult{Twin: info.Name, Mode: "running"}
	commits := map[string]string{}
	for _, ref := range sortedRefs(refs) {
		repo := gitserver.Repo{Owner: spec.Spec.Git.Org, Name: ref.repo}
		pr, err := git.Push(ctx, gitserver.PushRequest{Repo: repo, Branch: ref.branch, Dir: c.root,
			Message: "hybridtwin validate --converge: the layout under validation", Rewrite: rewrite})
		if err != nil {
			return fmt.Errorf("converge: push the layout to %s@%s: %w", repo, ref.branch, err)
		}
		fmt.Fprintf(c.stderr, "converge: pushed the layout to %s@%s (%.12s)\n", repo, ref.branch, pr.Commit)
		res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: repo.String(), Branch: ref.branch, Commit: pr.Commit})
		for _, cfg := range refs[ref] {
			commits[cfg] = pr.Commit
		}
	}
	// An OCI source: the layout packed as `flux push artifact` does and pushed under the tag it syncs; it
	// reports tag@digest.
	if len(arts) > 0 {
		files, err := fluxartifact.ReadDir(c.root, func(data []byte) []byte { return bytes.ReplaceAll(data, from, to) })
		if err != nil {
			return &exitError{2, fmt.Errorf("converge: %w", err)}
		}
		img, err := fluxartifact.Build(files, fluxartifact.Meta{Source: "file://" + c.root})
		if err != nil {
			return &exitError{2, fmt.Errorf("converge: %w", err)}
		}
		reg := registry.NewClient(info.Registry)
		for _, a := range sortedArtifacts(arts) {
			pushed, err := reg.Push(ctx, img, a.repo, a.tag)
			if err != nil {
				return fmt.Errorf("converge: push the layout to %s/%s:%s: %w", info.Registry, a.repo, a.tag, err)
			}
			fmt.Fprintf(c.stderr, "converge: pushed the layout to %s/%s:%s (%.19s)\n", info.Registry, a.repo, a.tag, pushed.Digest)
			res.Pushed = append(res.Pushed, layout.PushedRevision{Repo: "oci://" + info.Registry + "/" + a.repo, Branch: a.tag, Commit: pushed.Digest})
			for _, cfg := range arts[a] {
				commits[cfg] = pushed.Digest
			}
		}
	}
	return c.wait(ctx, rep, res, remoteStatus{remote}, commits, start, wait)
}

func (c *converger) wait(ctx context.Context, rep *layout.Report, res *layout.ConvergeResult, src layout.StatusSource,
	commits map[string]string, start time.Time, sourceWait time.Duration) error {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = layout.ConvergeTimeout(c.configs, layout.DefaultProfile(), sourceWait)
	}
	n := 0
	for _, cfg := range c.configs {
		n += len(cfg.Kustomizations)
	}
	fmt.Fprintf(c.stderr, "converge: waiting up to %s for %d Kustomization(s) to become Ready\n", timeout, n)
	out, findings, err := layout.WaitConverge(ctx, src, c.configs, layout.ConvergeOptions{Commits: commits, Start: start,
		Timeout: timeout, SourceWait: sourceWait, Clock: clock.RealClock{}})
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{2, fmt.Errorf("interrupted while waiting for convergence: %w", ctx.Err())}
		}
		return fmt.Errorf("converge: %w", err)
	}
	out.Twin, out.Mode, out.Pushed = res.Twin, res.Mode, res.Pushed
	rep.Converge = out
	rep.Add(findings...)
	rep.MarkStage(layout.StageConverge)
	fmt.Fprintf(c.stderr, "converge: done in %s\n", out.Elapsed)
	return nil
}

// localStatus reads a twin of this process.
type localStatus struct{ t *twin.Twin }

func (l localStatus) GitOps(ctx context.Context) ([]layout.ConfigStatus, error) {
	st, err := l.t.Status(ctx)
	if err != nil {
		return nil, err
	}
	return configStatuses(st), nil
}

// remoteStatus reads a running twin over its control socket.
type remoteStatus struct{ r *twin.Remote }

func (r remoteStatus) GitOps(ctx context.Context) ([]layout.ConfigStatus, error) {
	st, err := r.r.Status(ctx)
	if err != nil {
		return nil, err
	}
	return configStatuses(st), nil
}

var (
	_ layout.StatusSource = localStatus{}
	_ layout.StatusSource = remoteStatus{}
)

func configStatuses(st *twin.Status) []layout.ConfigStatus {
	out := make([]layout.ConfigStatus, 0, len(st.GitOps))
	for _, g := range st.GitOps {
		cs := layout.ConfigStatus{Cluster: g.Cluster, Name: g.Name, Compliance: g.ComplianceState,
			Commit: g.SyncedCommit, Message: g.Message}
		for _, k := range g.Kustomizations {
			cs.Kustomizations = append(cs.Kustomizations, layout.KustomizationStatus{Name: k.Name, Compliance: k.ComplianceState, Message: k.Message})
		}
		out = append(out, cs)
	}
	return out
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
