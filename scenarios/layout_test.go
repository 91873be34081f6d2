package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// Flux's owner labels on every object a Kustomization applies (kustomize-controller; the twin's
// reconciler uses the same, reconciler.Profile.OwnerGroup).
const (
	ownerNameLabel      = "kustomize.toolkit.fluxcd.io/name"
	ownerNamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
)

// layoutSpecs: the three repository layouts of examples/repos converge in the twin. The default twin runs
// the directory-per-environment layout; branch-per-env and multi-repo each bring up their own small twin
// (examples/twins/). What every configuration must have applied is what kustomize builds from the head of
// its branch, checked object by object on the cluster -- not a list written into the test.
func layoutSpecs() {
	Describe("layout", Label("layout"), func() {
		It("converges the dir-per-env layout on every cluster: each configuration Compliant at main's head, its objects applied", func(ctx SpecContext) {
			sum := expectLayoutConverged(ctx, env)
			for _, c := range env.Twin.Spec().ClusterNames() {
				for _, d := range [][2]string{{"ingress-system", "ingress-controller"}, {"apps", "podinfo"}, {"apps", "orders"}} {
					dep, err := env.Deployment(ctx, c, d[0], d[1])
					Expect(err).NotTo(HaveOccurred(), "cluster %s: Deployment %s/%s", c, d[0], d[1])
					Expect(dep.Labels).To(HaveKeyWithValue("environment", c), "cluster %s gets the %s overlay", c, c)
				}
			}
			Note("dir-per-env: %s", sum)
		})

		It("converges the Flux bootstrap layout in its own twin (examples/twins/flux-bootstrap.yaml): the Kustomization objects in Git are reconciled from the cluster, each Ready at main's head with its inventory applied", func(ctx SpecContext) {
			expectBootstrapConverges(ctx, "layout: flux-bootstrap", nil)
		}, NodeTimeout(ownTwinTimeout))

		for _, layout := range []string{"branch-per-env", "multi-repo"} {
			It("converges the "+layout+" layout in its own twin (examples/twins/"+layout+".yaml): each configuration Compliant at its branch's head, its objects applied", func(ctx SpecContext) {
				exp := Experiment("layout: " + layout)
				e := upOwnTwin(ctx, filepath.Join("..", "examples", "twins", layout+".yaml"), nil, true)
				recordTiming(exp, "twin up and converged", e.Twin.ReadyAfter())
				sum := expectLayoutConverged(ctx, e)
				Note("%s: %s", layout, sum)
			}, NodeTimeout(ownTwinTimeout))
		}
	})
}

// ownTwinTimeout bounds a spec that brings up its own twin: twin.RunProfile.ReadyTimeout (10 min) plus the
// converge bound, as BeforeSuite's NodeTimeout for the default twin (30 min, room for a cold tool build).
const ownTwinTimeout = 30 * time.Minute

// upOwnTwin brings up the twin of specPath for the current spec (or, called from BeforeAll, for the
// current Ordered container), with the suite's defaults (SourceIntervalSeconds where a configuration
// sets no interval); mutate, if set, changes the loaded spec first. Down runs in DeferCleanup, which also
// fails if a process of the twin outlives it. With converge, it waits until every configuration is
// Compliant.
func upOwnTwin(ctx context.Context, specPath string, mutate func(*twin.Spec), converge bool) *Env {
	spec, err := twin.LoadSpec(specPath)
	Expect(err).NotTo(HaveOccurred(), "load the twin spec %s", specPath)
	for i := range spec.Spec.GitOps {
		if spec.Spec.GitOps[i].SyncIntervalInSeconds == 0 {
			spec.Spec.GitOps[i].SyncIntervalInSeconds = SourceIntervalSeconds
		}
	}
	if mutate != nil {
		mutate(spec)
	}
	waits, err := WaitsFor(spec.Spec.TimeProfile)
	Expect(err).NotTo(HaveOccurred())
	tmp, err := os.MkdirTemp("", "hybridtwin-scenario-"+spec.Metadata.Name+"-")
	Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(tmp, "state")
	By("bringing up twin " + spec.Metadata.Name + " from " + specPath)
	tw, err := twin.Up(ctx, spec, twin.Options{StateDir: stateDir, Progress: GinkgoWriter})
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	Expect(err).NotTo(HaveOccurred(), "bring up the twin of %s", specPath)
	DeferCleanup(func() {
		By("taking twin " + spec.Metadata.Name + " down")
		Expect(tw.Down(context.Background(), false)).To(Succeed())
		left := processesUnder(stateDir)
		_ = os.RemoveAll(tmp)
		Expect(left).To(BeEmpty(), "processes of twin %s still running after Down", spec.Metadata.Name)
	})
	e, err := envFor(ctx, tw, waits)
	Expect(err).NotTo(HaveOccurred())
	if converge {
		By("waiting for every GitOps configuration of " + spec.Metadata.Name + " to be Compliant")
		Eventually(e.Compliance).WithContext(ctx).WithTimeout(waits.Converge).WithPolling(waits.Poll).
			Should(Succeed(), "twin %s came up but its configurations did not converge", spec.Metadata.Name)
	}
	return e
}

// envFor is NewEnv for any twin: NewEnv needs spec.git.repos[0].path (the flow specs' working copy), a
// branch-per-environment repository has branches instead; then the working copy is its default branch's
// folder ("main" if it has one, else the first branch in name order, as the twin seeds it).
func envFor(ctx context.Context, tw *twin.Twin, w Waits) (*Env, error) {
	s := tw.Spec()
	if len(s.Spec.Git.Repos) == 0 {
		return nil, fmt.Errorf("twin spec %s: the scenarios need spec.git.repos", s.File)
	}
	r := s.Spec.Git.Repos[0]
	if r.Path != "" {
		return NewEnv(ctx, tw, w)
	}
	e := &Env{Twin: tw, Waits: w, Kube: map[string]kubernetes.Interface{}}
	for _, name := range s.ClusterNames() {
		cfg, err := tw.RESTConfig(name)
		if err != nil {
			return nil, err
		}
		if e.Kube[name], err = kubernetes.NewForConfig(cfg); err != nil {
			return nil, fmt.Errorf("client for cluster %s: %w", name, err)
		}
	}
	token, err := os.ReadFile(filepath.Join(tw.StateDir(), twin.GiteaTokenFile))
	if err != nil {
		return nil, fmt.Errorf("read the Gitea admin token: %w", err)
	}
	p := gitserver.DefaultProfile()
	if e.Git, err = gitserver.NewClient(tw.GiteaURL(), p.AdminUser, strings.TrimSpace(string(token)), p); err != nil {
		return nil, err
	}
	branches := make([]string, 0, len(r.Branches))
	for b := range r.Branches {
		branches = append(branches, b)
	}
	sort.Strings(branches)
	def := branches[0]
	if _, ok := r.Branches["main"]; ok {
		def = "main"
	}
	e.Repo = gitserver.Repo{Owner: s.Spec.Git.Org, Name: r.Name}
	e.repoDir = s.Path(r.Branches[def])
	return e, nil
}

// expectLayoutConverged checks a twin's repository layout end to end: every GitOps configuration is
// Compliant on each of its clusters at the head of the branch it syncs, and every object kustomize builds
// from that head (the real kustomize API, on a git clone of the branch) is on the cluster, carrying Flux's
// owner labels for its Kustomization and every field Git sets. It returns a one-line summary.
func expectLayoutConverged(ctx context.Context, e *Env) string {
	s := e.Twin.Spec()
	objects, configs := 0, 0
	for _, g := range s.Spec.GitOps {
		Expect(g.Ref.Branch).NotTo(BeEmpty(), "configuration %s: the layout check follows a branch", g.Name)
		repo := gitserver.Repo{Owner: s.Spec.Git.Org, Name: g.Repo}
		head, err := e.Git.BranchCommit(ctx, repo, g.Ref.Branch)
		Expect(err).NotTo(HaveOccurred())
		for _, c := range s.TargetsOf(g) {
			Eventually(func(ctx context.Context) error {
				st, err := e.GitOps(ctx, c, g.Name)
				if err != nil {
					return err
				}
				if st.ComplianceState != "Compliant" || !strings.Contains(st.SyncedCommit, head) {
					return fmt.Errorf("configuration %s on %s is %s at %q, want Compliant at the head of %s@%s (%.12s): %s",
						g.Name, c, st.ComplianceState, st.SyncedCommit, repo, g.Ref.Branch, head, st.Message)
				}
				return nil
			}).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(e.Waits.Poll).Should(Succeed())
		}
		dir := e.clone(ctx, repo, g.Ref.Branch, head)
		for _, kn := range sortedNames(g.Kustomizations) {
			ks := arcagent.KustomizationName(g.Name, kn)
			built := kustomizeBuild(filepath.Join(dir, filepath.FromSlash(g.Kustomizations[kn].Path)))
			Expect(built).NotTo(BeEmpty(), "configuration %s: kustomization %s (%s@%s %s) builds no object", g.Name, kn, repo, g.Ref.Branch, g.Kustomizations[kn].Path)
			for _, c := range s.TargetsOf(g) {
				var problems []string
				for _, want := range built {
					what := fmt.Sprintf("%s %s", want.GetKind(), objKey(want))
					live, err := e.live(ctx, c, want)
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s: %v", what, err))
						continue
					}
					for _, l := range []struct{ key, val string }{{ownerNameLabel, ks}, {ownerNamespaceLabel, g.Namespace}} {
						if got := live.GetLabels()[l.key]; got != l.val {
							problems = append(problems, fmt.Sprintf("%s: label %s is %q, want %q (Flux's owner label for Kustomization %s/%s)", what, l.key, got, l.val, g.Namespace, ks))
						}
					}
					for _, d := range gitFieldDiffs(want.Object, live.Object, "") {
						problems = append(problems, what+": "+d)
					}
				}
				Expect(problems).To(BeEmpty(), "cluster %s, configuration %s, Kustomization %s (%s@%s %.12s, path %s): the cluster does not hold what Git declares",
					c, g.Name, ks, repo, g.Ref.Branch, head, g.Kustomizations[kn].Path)
				objects += len(built)
			}
		}
		configs += len(s.TargetsOf(g))
	}
	return fmt.Sprintf("%d configuration(s) on %v Compliant at their branch heads; %d objects built by kustomize from those heads found on the clusters with every field Git sets and Flux's owner labels",
		configs, s.ClusterNames(), objects)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clone checks out branch of repo with the git CLI into a fresh folder and checks it is at commit.
func (e *Env) clone(ctx context.Context, repo gitserver.Repo, branch, commit string) string {
	dir := GinkgoT().TempDir()
	token := e.adminToken()
	runGit(ctx, dir, token, "clone", "--quiet", "--branch", branch, e.authURL(repo, e.Git.User(), token), ".")
	Expect(runGit(ctx, dir, token, "rev-parse", "HEAD")).To(Equal(commit), "the clone of %s@%s is not at the commit the API reported", repo, branch)
	return dir
}

// authURL is repo's clone URL with a Gitea user's token as password.
func (e *Env) authURL(repo gitserver.Repo, user, token string) string {
	u, err := url.Parse(e.Git.CloneURL(repo))
	Expect(err).NotTo(HaveOccurred())
	u.User = url.UserPassword(user, token)
	return u.String()
}

func (e *Env) adminToken() string {
	token, err := os.ReadFile(filepath.Join(e.Twin.StateDir(), twin.GiteaTokenFile))
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(token))
}

// runGit runs the git CLI in dir, in its own process group, and returns its trimmed output; secret (the
// token in the remote's URL) never appears in a failure message.
func runGit(ctx context.Context, dir, secret string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=hybridtwin-scenarios", "-c", "user.email=scenarios@example.invalid"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	msg := strings.ReplaceAll(string(out), secret, "***")
	Expect(err).NotTo(HaveOccurred(), "git %s in %s: %s", args[0], dir, msg)
	return strings.TrimSpace(string(out))
}

// kustomizeBuild builds a kustomization folder with the kustomize API as Flux's kustomize-controller does
// (no load restrictions, plugins off: fluxcd/pkg/kustomize), and returns its objects.
func kustomizeBuild(dir string) []*unstructured.Unstructured {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kustypes.LoadRestrictionsNone
	opts.PluginConfig = kustypes.DisabledPluginConfig()
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	Expect(err).NotTo(HaveOccurred(), "kustomize build %s", dir)
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		Expect(err).NotTo(HaveOccurred(), "kustomize build %s: %s", dir, r.CurId())
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func objKey(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// clusterAPI is a dynamic client and a discovery-backed REST mapper for one cluster.
type clusterAPI struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

var (
	apisMu sync.Mutex
	apis   = map[string]*clusterAPI{} // by the cluster's API server URL
)

// api returns the dynamic client and REST mapper of a cluster of the twin, made once.
func (e *Env) api(clusterName string) *clusterAPI {
	cfg, err := e.Twin.RESTConfig(clusterName)
	Expect(err).NotTo(HaveOccurred())
	apisMu.Lock()
	defer apisMu.Unlock()
	if a, ok := apis[cfg.Host]; ok {
		return a
	}
	dyn, err := dynamic.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	a := &clusterAPI{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
	apis[cfg.Host] = a
	return a
}

// live reads the cluster's copy of an object as Git declares it (same API version).
func (e *Env) live(ctx context.Context, clusterName string, want *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return e.api(clusterName).get(ctx, want)
}

func (a *clusterAPI) get(ctx context.Context, want *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := want.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset() // a CRD applied since the mapper last looked
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("the cluster does not serve %s: %w", gvk, err)
	}
	var r dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		r = a.dyn.Resource(m.Resource).Namespace(want.GetNamespace())
	}
	live, err := r.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("not on the cluster: %w", errNotApplied)
	}
	return live, err
}

// errNotApplied marks an object Git declares that the cluster does not have.
var errNotApplied = errors.New("not applied")

// gitFieldDiffs compares every field Git sets (want, as kustomize built it) with the live object and lists
// the differences as "path: Git x, live y". Fields Git does not set (status, defaults, fields of other
// managers) are not looked at; an empty map or list in Git matches an absent field (the API server drops
// them); stringData is write-only (it lands in data).
func gitFieldDiffs(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		if len(w) == 0 {
			return nil
		}
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: Git sets %s, live has %s", orRoot(path), compact(w), compact(got))}
		}
		var out []string
		for _, k := range sortedNames(w) {
			if path == "" && k == "stringData" {
				continue
			}
			out = append(out, gitFieldDiffs(w[k], g[k], path+"."+k)...)
		}
		return out
	case []any:
		if len(w) == 0 {
			return nil
		}
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: Git sets %s, live has %s", orRoot(path), compact(w), compact(got))}
		}
		var out []string
		for i := range w {
			out = append(out, gitFieldDiffs(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if compact(want) != compact(got) {
			return []string{fmt.Sprintf("%s: Git sets %s, live has %s", orRoot(path), compact(want), compact(got))}
		}
		return nil
	}
}

func orRoot(path string) string {
	if path == "" {
		return "."
	}
	return path
}

// compact renders a value as JSON (so 1 and 1.0 compare equal), shortened for messages.
func compact(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// kustomizationGVR is Flux's Kustomization, as every engine of the twin finds it in the cluster.
var kustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}

// expectBootstrapConverges brings up the Flux bootstrap layout's twin (mutate may change its spec, e.g.
// to real Flux), checks the root configuration as every layout is checked, then every Kustomization in
// each cluster -- the root and the ones it applied from Git -- on the API server: Ready True for its
// generation at the head of main, and every object of its inventory present on the cluster.
func expectBootstrapConverges(ctx context.Context, name string, mutate func(*twin.Spec)) {
	exp := Experiment(name)
	e := upOwnTwin(ctx, filepath.Join("..", "examples", "twins", "flux-bootstrap.yaml"), mutate, true)
	recordTiming(exp, "twin up and converged", e.Twin.ReadyAfter())
	sum := expectLayoutConverged(ctx, e)
	s := e.Twin.Spec()
	head, err := e.Git.BranchCommit(ctx, gitserver.Repo{Owner: s.Spec.Git.Org, Name: s.Spec.GitOps[0].Repo}, "main")
	Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	for _, c := range s.ClusterNames() {
		a := e.api(c)
		var names []string
		Eventually(func(ctx context.Context) error {
			list, err := a.dyn.Resource(kustomizationGVR).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			names = names[:0]
			var problems []string
			for _, k := range list.Items {
				names = append(names, objKey(&k))
				if p := kustomizationNotApplied(ctx, a, &k, head); p != "" {
					problems = append(problems, p)
				}
			}
			// The root of the configuration plus infra-controllers, infra-configs and apps from Git.
			if len(list.Items) < 4 {
				problems = append(problems, fmt.Sprintf("only %d Kustomizations (%v): the nested ones from clusters/<env> are missing", len(list.Items), names))
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			return nil
		}).WithContext(ctx).WithTimeout(e.Waits.Converge).WithPolling(e.Waits.Poll).Should(Succeed(), "cluster %s", c)
		Note("%s on %s: %v Ready at main@%.12s with every inventory object on the cluster", name, c, names, head)
	}
	recordTiming(exp, "nested Kustomizations Ready after the configuration was Compliant", time.Since(start))
	Note("%s: %s", name, sum)
}

// kustomizationNotApplied says what is missing for k to count as applied at commit: "" when its Ready
// condition is True for its generation, its lastAppliedRevision is commit's, and every inventory entry
// is on the cluster.
func kustomizationNotApplied(ctx context.Context, a *clusterAPI, k *unstructured.Unstructured, commit string) string {
	what := "Kustomization " + objKey(k)
	conds, _, _ := unstructured.NestedSlice(k.Object, "status", "conditions")
	ready := ""
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			og, _ := m["observedGeneration"].(int64)
			if og != k.GetGeneration() {
				return fmt.Sprintf("%s: Ready is for generation %d, not %d", what, og, k.GetGeneration())
			}
			ready = fmt.Sprintf("%v/%v: %v", m["status"], m["reason"], m["message"])
			if m["status"] != "True" {
				return what + ": Ready " + ready
			}
		}
	}
	if ready == "" {
		return what + ": no Ready condition"
	}
	if rev, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision"); !strings.HasSuffix(rev, commit) {
		return fmt.Sprintf("%s: applied %q, not main@sha1:%s", what, rev, commit)
	}
	entries, _, _ := unstructured.NestedSlice(k.Object, "status", "inventory", "entries")
	if len(entries) == 0 {
		return what + ": empty inventory"
	}
	for _, en := range entries {
		m, _ := en.(map[string]any)
		id, _ := m["id"].(string)
		version, _ := m["v"].(string)
		// Flux's inventory ID: <namespace>_<name>_<group>_<kind>.
		parts := strings.Split(id, "_")
		if len(parts) != 4 {
			return fmt.Sprintf("%s: inventory entry %q is not namespace_name_group_kind", what, id)
		}
		want := &unstructured.Unstructured{}
		want.SetGroupVersionKind(schema.GroupVersionKind{Group: parts[2], Version: version, Kind: parts[3]})
		want.SetNamespace(parts[0])
		want.SetName(parts[1])
		if _, err := a.get(ctx, want); err != nil {
			return fmt.Sprintf("%s: inventory entry %s: %v", what, id, err)
		}
	}
	return ""
}
