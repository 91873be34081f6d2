package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/internal/admission"
	"github.com/hybridtwin/hybridtwin/internal/fluxcrd"
	"github.com/hybridtwin/hybridtwin/reconciler/layout"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/chartmirror"
	"github.com/hybridtwin/hybridtwin/twin/converge"
	"github.com/hybridtwin/hybridtwin/twin/registry"
	"github.com/hybridtwin/hybridtwin/twin/sealedsecrets"
	twinspec "github.com/hybridtwin/hybridtwin/twin/spec"
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
	// envGitSSHKey and envGitKnownHosts name files: the private key and the known_hosts an ssh:// URL is
	// cloned with (a Flux GitRepository Secret's identity and known_hosts).
	envGitSSHKey     = "HYBRIDTWIN_GIT_SSH_KEY_FILE"
	envGitKnownHosts = "HYBRIDTWIN_GIT_KNOWN_HOSTS_FILE"
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
	sources            []string
	path, cluster      string
	policies           string
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
PATH is the repository). Without -f, the entry points are the cluster folders PATH bootstraps (flux
bootstrap's flux-system Kustomization applying its own folder; without one, the Kustomizations of each
clusters/<name>/), or the folder --path names; --cluster keeps one cluster. From the entry points validate
follows what Flux would: each Kustomization is built from its own source (the repository as source-controller
archives it, with .sourceignore and its default exclusions; an ArtifactGenerator's artifact; a --source
directory), and the Kustomizations and sources the build applies are followed in turn, in the namespace and
on the cluster (spec.kubeConfig) they land. Only what that graph applies is checked. A source outside the
repository without --source is reported once (HT014), never built. Objects Flux cannot place for lack of a
namespace are HT015.

--policies DIR evaluates the ValidatingAdmissionPolicies and their Bindings in DIR (admissionregistration.k8s.io/v1
YAML, read recursively) on every object the builds produce, offline, with Kubernetes' own admission
libraries (k8s.io/apiserver's ValidatingAdmissionPolicy dispatcher, matcher and CEL environment of
--kubernetes-version): each binding that would refuse an object is HT016 with the API server's message (Deny:
error; Warn and Audit: warning). Namespace selectors see the layout's Namespaces (with the
kubernetes.io/metadata.name label the API server adds). Offline, objects are evaluated as a CREATE without
the API server's defaulting, and policies with paramKind are reported, not evaluated.

PATH may be an http(s) Git URL: it is cloned with go-git (basic auth with the token in $` + envGitToken + `,
user $` + envGitUsername + ` or "git"; an ssh:// URL with the private key in the file $` + envGitSSHKey + ` and the
server's host key in the known_hosts file $` + envGitKnownHosts + `, verified strictly as Flux does) and --ref picks a branch, tag or commit (default: the remote's HEAD).
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
  hybridtwin validate examples/repos/dir-per-env/gitops-config -f examples/twin.yaml --policies examples/policies
  hybridtwin validate examples/repos/dir-per-env/gitops-config -f examples/twin.yaml --converge -o junit`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &exitError{2, fmt.Errorf("validate takes one repository (PATH or URL), got %d: %s; validate them one at a time", len(args), strings.Join(args, " "))}
			}
			return nil
		},
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
	fl.StringArrayVar(&f.sources, "source", nil, "a Flux source outside the repository as a local folder: NAME=DIR, NAMESPACE/NAME=DIR or KIND/NAMESPACE/NAME=DIR (as flux build --local-sources; repeatable)")
	fl.StringVar(&f.path, "path", "", "validate the repository from this cluster folder only (built as flux bootstrap's flux-system Kustomization builds it)")
	fl.StringVar(&f.cluster, "cluster", "", "validate only this cluster of the repository (or of -f's configurations)")
	fl.StringVar(&f.policies, "policies", "", "a folder of ValidatingAdmissionPolicies and Bindings to evaluate every object against, offline (HT016)")
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
	var sources []layout.LocalSource
	for _, s := range f.sources {
		ls, err := layout.ParseLocalSource(s)
		if err != nil {
			return &exitError{2, err}
		}
		sources = append(sources, ls)
	}
	if f.path != "" && len(f.files) > 0 {
		return &exitError{2, errors.New("--path picks the entry point of a repository without -f; with -f the configurations are the entry points: drop one")}
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
	configs, err := validateInputs(root, files, layout.DiscoverOptions{Path: f.path, Cluster: f.cluster})
	if err != nil {
		return &exitError{2, err}
	}
	opts := layout.Options{TargetVersion: f.kv, AllowedRegistries: f.registries, Offline: f.offline, Sources: sources}
	if spec := twinSpecFile(files); spec != "" && !f.offline {
		stop, err := startChartMirror(ctx, stderr, spec, &opts)
		if err != nil {
			return &exitError{2, fmt.Errorf("-f %s: spec.charts: %w", spec, err)}
		}
		defer stop()
	}
	if f.policies != "" {
		if opts.Policies, err = admission.Load(f.policies); err != nil {
			return &exitError{2, fmt.Errorf("--policies: %w", err)}
		}
	}
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
		if rep.ExitCode(layout.Error) != layout.ExitClean {
			rep.Add(layout.Finding{Rule: layout.RuleConverge, Severity: layout.Info,
				Message: "converge skipped: the static stage found errors, so the layout would not converge",
				Hint:    "fix the errors above, then run --converge again"})
		} else {
			o := converge.Options{Root: root, Configs: configs, Timeout: f.convergeTimeout, Progress: stderr}
			var res *layout.ConvergeResult
			var findings []layout.Finding
			var err error
			if running {
				res, findings, err = converge.Running(ctx, f.stateDir, firstNonEmpty(twinSpecFile(f.files), runningSpec), o)
			} else {
				res, findings, err = converge.NewTwin(ctx, twinSpecFile(f.files), o)
			}
			if err != nil {
				return withCode(err, 2)
			}
			rep.Converge = res
			rep.Add(findings...)
			rep.MarkStage(layout.StageConverge)
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
			return "", nil, fmt.Errorf("%s: only http(s) and ssh:// Git URLs and local directories are supported; write git@host:path as ssh://git@host/path", path)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			return "", nil, fmt.Errorf("repository %s is not a directory; pass the repository's folder, or an http(s) Git URL", path)
		}
		return path, nil, nil
	}
	o := layout.SourceOptions{Ref: ref, Token: os.Getenv(envGitToken), Username: os.Getenv(envGitUsername)}
	for env, dst := range map[string]*[]byte{envGitSSHKey: &o.SSHIdentity, envGitKnownHosts: &o.SSHKnownHosts} {
		if f := os.Getenv(env); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", nil, fmt.Errorf("$%s: %w; set it to a readable file", env, err)
			}
			*dst = b
		}
	}
	src, err := layout.OpenSource(ctx, path, o)
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
func validateInputs(path string, files []string, d layout.DiscoverOptions) ([]layout.Config, error) {
	if len(files) == 0 {
		if path == "" {
			return nil, errors.New("no input: pass a repository directory, and -f fluxconfigs.yaml or -f twin.yaml")
		}
		return layout.DiscoverWith(path, d)
	}
	out, err := configInputs(path, files)
	if err != nil || d.Cluster == "" {
		return out, err
	}
	var kept []layout.Config
	var names []string
	for _, c := range out {
		if c.Cluster == d.Cluster {
			kept = append(kept, c)
		}
		names = append(names, c.Cluster)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("--cluster %q: no configuration targets it (clusters: %s)%s", d.Cluster, strings.Join(names, ", "), didYouMean(d.Cluster, names))
	}
	return kept, nil
}

func didYouMean(s string, names []string) string {
	if near := layout.Closest(s, names); near != "" {
		return "; did you mean " + near + "?"
	}
	return ""
}

// configInputs reads -f files: Twin specs and Arc fluxConfigurations.
func configInputs(path string, files []string) ([]layout.Config, error) {
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
				file, i, g.Name, converge.OCIName(g.OCI))
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
	// The CRDs of the add-ons a twin cluster runs and a repository does not define itself: a SealedSecret
	// is checked against the schema of the pinned sealed-secrets release, not reported as schema-less.
	if err := installAddonCRDs(ctx, cfg); err != nil {
		_ = env.Stop()
		return nil, err
	}
	opts.Schema = cfg
	return func() { _ = env.Stop() }, nil
}

// installAddonCRDs installs into the schema server the CRDs of the twin's add-ons (the SealedSecret CRD
// of the pinned sealed-secrets module; no build, the module's files only).
func installAddonCRDs(ctx context.Context, cfg *rest.Config) error {
	dir, err := sealedsecrets.CRDDir(ctx, nil)
	if err != nil {
		return fmt.Errorf("schema server: %w", err)
	}
	if _, err := fluxcrd.Install(ctx, cfg, nil, []string{dir}); err != nil {
		return fmt.Errorf("schema server: %w", err)
	}
	return nil
}

// startChartMirror serves the chart folders of the twin spec's spec.charts at their upstream URLs, as
// `hybridtwin up` does (twin/chartmirror, oci:// sources in a registry of its own), and points opts'
// chart requests at it, so validate renders a HelmRelease from the same chart the twin's engines install.
// A spec without charts starts nothing. stop removes what it started.
func startChartMirror(ctx context.Context, stderr io.Writer, specFile string, opts *layout.Options) (stop func(), err error) {
	s, err := twinspec.LoadSpec(specFile)
	if err != nil {
		return nil, err
	}
	if len(s.Spec.Charts) == 0 {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "hybridtwin-validate-charts-")
	if err != nil {
		return nil, err
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		_ = os.RemoveAll(dir)
	}
	var srcs []chartmirror.Source
	oci := false
	for _, c := range s.Spec.Charts {
		folders := make([]string, len(c.Charts))
		for i, f := range c.Charts {
			folders[i] = s.Path(f)
		}
		srcs = append(srcs, chartmirror.Source{URL: c.URL, Charts: folders})
		oci = oci || strings.HasPrefix(c.URL, "oci://")
	}
	regHost := ""
	if oci {
		reg, err := registry.Start(ctx, registry.Options{Dir: filepath.Join(dir, "registry")})
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, func() { _ = reg.Stop(context.WithoutCancel(ctx)) })
		regHost = reg.Host()
	}
	m, err := chartmirror.Start(ctx, chartmirror.Options{Dir: filepath.Join(dir, "charts"), Sources: srcs, Registry: regHost})
	if err != nil {
		stop()
		return nil, err
	}
	stops = append(stops, func() { _ = m.Stop(context.WithoutCancel(ctx)) })
	for _, r := range m.Repos() {
		fmt.Fprintf(stderr, "charts: %s <- %d chart(s) from spec.charts\n", r.URL, len(r.Charts))
	}
	opts.ChartTransport = m.Transport()
	return stop, nil
}
