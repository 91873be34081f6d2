package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reports"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// FidelityVersion names the fidelity method and settings below; change it whenever one changes, so
// reports say which comparison produced a table.
const FidelityVersion = "fidelity/v2"

// The settings of the Flux objects both engines get, each from its source.
var (
	// fidKsInterval is every Kustomization's interval: the Arc extension's default syncIntervalInSeconds
	// (600 s, fakes/arc DefaultSyncIntervalSeconds), so Flux's interval-driven drift correction is what a
	// platform team gets by default, and does not fall inside the drift bound by chance.
	fidKsInterval = time.Duration(arc.DefaultSyncIntervalSeconds) * time.Second
	// fidKsTimeout and fidKsRetry are the Arc defaults timeoutInSeconds and retryIntervalInSeconds (600 s
	// each, fakes/arc): a failed Kustomization is not retried while the scenario looks at it.
	fidKsTimeout = time.Duration(arc.DefaultTimeoutSeconds) * time.Second
	fidKsRetry   = time.Duration(arc.DefaultRetryIntervalSeconds) * time.Second
	// fidHealthTimeout is the health behaviour's spec.timeout, which bounds its health check
	// (kustomize-controller: health checks wait up to spec.timeout). A Deployment that can roll out does
	// so in seconds here (RECIPES.md: a 3-replica Deployment Running 4.4 s after its nodes are Ready);
	// 30 s is several times that, so the failure is the Deployment's, not the bound's.
	fidHealthTimeout = 30 * time.Second
)

// Names of the fidelity harness.
const (
	fidSource  = "fidelity" // the GitRepository in every behaviour's namespace
	fidSecret  = "git-auth"
	engineOurs = "hybridtwin"
	engineFlux = "flux"
)

// fidEngine is one GitOps engine and the cluster it runs against.
type fidEngine struct {
	name   string // engineOurs or engineFlux; also the cluster's name in the fidelity twin
	target arcagent.Target
	kube   kubernetes.Interface
	api    *clusterAPI
}

// fidelity runs the same Git content through both engines and compares the clusters.
type fidelity struct {
	e       *Env
	engines []*fidEngine // ours first
}

// behaviourResult is what one behaviour observed: facts per engine, in the order they were taken, and
// timings.
type behaviourResult struct {
	names   []string
	vals    map[string]map[string]string
	timings []reports.FidelityTiming
}

func (r *behaviourResult) set(eng *fidEngine, name, val string) {
	if r.vals == nil {
		r.vals = map[string]map[string]string{}
	}
	if _, ok := r.vals[name]; !ok {
		r.names = append(r.names, name)
		r.vals[name] = map[string]string{}
	}
	r.vals[name][eng.name] = val
}

func (r *behaviourResult) timing(name string, secs map[string]*float64) {
	r.timings = append(r.timings, reports.FidelityTiming{Name: name, Hybridtwin: secs[engineOurs], Flux: secs[engineFlux]})
}

// fidelityBehaviour is one row of the table: what to do, and the differences already explained.
type fidelityBehaviour struct {
	name  string
	check string
	run   func(ctx context.Context, f *fidelity, r *behaviourResult)
	// documented are the facts on which the engines are known to disagree, and why. A difference not
	// listed here fails the scenario.
	documented []string
	reason     string
}

// fidelitySpecs: for each behaviour (apply, dependsOn, health, namespace scope, drift, prune, suspend), the
// same Git content goes through the twin's reconciler and through real Flux, and the cluster states are
// compared fact by fact. One twin (scenarios/testdata/fidelity/twin.yaml) has two identical clusters, one
// per engine; both engines get the same GitRepository and Kustomization objects through arcagent.Target,
// for the same commit of the same Gitea repository. The table goes to the scenario report (Fidelity);
// every disagreement must be documented below with its reason, or the scenario fails.
func fidelitySpecs() {
	// The behaviours are independent; one that disagrees must not hide the others: the suite's top-level
	// container carries ContinueOnFailure (Ginkgo allows it only on the outermost Ordered container).
	Describe("fidelity", Label("flux", "fidelity", "slow"), Ordered, func() {
		var f *fidelity
		BeforeAll(func(ctx SpecContext) {
			e := upOwnTwin(ctx, filepath.Join("testdata", "fidelity", "twin.yaml"), nil, false)
			f = newFidelity(ctx, e)
		}, NodeTimeout(ownTwinTimeout))

		for _, b := range fidelityBehaviours() {
			It(b.name+": the twin's reconciler and real Flux leave the same cluster state", func(ctx SpecContext) {
				var r behaviourResult
				finished := false
				// The row reaches the report also when the behaviour fails half-way (a wait that ran out):
				// it then shows the facts taken so far.
				defer func() { recordFidelityRow(b, &r, finished) }()
				b.run(ctx, f, &r)
				finished = true
				undocumented := undocumentedDifferences(b, &r)
				Expect(undocumented).To(BeEmpty(), "behaviour %s: the twin's reconciler and real Flux left different cluster states, and no reason is documented "+
					"(fix the reconciler, or document the difference in fidelityBehaviours)", b.name)
			})
		}
	})
}

// undocumentedDifferences lists the facts on which the engines disagree without a documented reason.
func undocumentedDifferences(b fidelityBehaviour, r *behaviourResult) []string {
	var out []string
	for _, n := range r.names {
		ours, theirs := r.vals[n][engineOurs], r.vals[n][engineFlux]
		if ours != theirs && !contains(b.documented, n) {
			out = append(out, fmt.Sprintf("%s: hybridtwin %q, Flux %q", n, ours, theirs))
		}
	}
	return out
}

// recordFidelityRow hands the behaviour's row of the fidelity table to the report, and a note per
// difference to the scenario.
func recordFidelityRow(b fidelityBehaviour, r *behaviourResult, finished bool) {
	row := reports.FidelityRow{Behaviour: b.name, Check: b.check, Same: finished, Timings: r.timings}
	for _, n := range r.names {
		fact := reports.FidelityFact{Name: n, Hybridtwin: r.vals[n][engineOurs], Flux: r.vals[n][engineFlux]}
		row.Facts = append(row.Facts, fact)
		if !fact.Same() {
			row.Same = false
			Note("%s: %s differs: hybridtwin %q, Flux %q", b.name, fact.Name, fact.Hybridtwin, fact.Flux)
		}
	}
	undocumented := undocumentedDifferences(b, r)
	switch {
	case !finished:
		row.Reason = "the scenario stopped before every fact was taken (see its failure in the scenarios above)"
	case len(undocumented) > 0:
		row.Reason = "not explained yet: " + strings.Join(undocumented, "; ")
	case !row.Same:
		row.Reason, row.Documented = b.reason, true
	}
	AddReportEntry(entryFidelity, reports.Fidelity{
		Hybridtwin: "reconciler profile " + reconciler.DefaultProfile().Name,
		Flux: fmt.Sprintf("source-controller %s, kustomize-controller %s, helm-controller %s (%s)", toolcache.SourceController.Version, toolcache.KustomizeController.Version,
			toolcache.HelmController.Version, flux.ProfileVersion),
		Method: fmt.Sprintf("%s: one twin (%s) with two identical workload clusters, %q running the twin's reconciler and %q real Flux; "+
			"both engines get the same GitRepository (interval %d s) and Kustomization objects (interval %s, Arc's default) written into their clusters through arcagent.ClusterTarget, "+
			"for the same commit of the same Gitea repository, and each fact -- objects, status conditions, inventory, finalizers, Kubernetes Events -- is read from the engine's own API server.",
			FidelityVersion, "scenarios/testdata/fidelity/twin.yaml", engineOurs, engineFlux, SourceIntervalSeconds, fidKsInterval),
		Rows: []reports.FidelityRow{row}}, ReportEntryVisibilityNever)
}

// entryFidelity is the report entry a fidelity scenario hands its table row to the report with.
const entryFidelity = "hybridtwin-fidelity"

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// newFidelity takes each cluster's objects through arcagent.ClusterTarget: the hybridtwin cluster runs the
// twin's reconciler and the flux cluster real Flux (the twin starts both; the fidelity twin has no Arc
// configuration, so the engines act only on what the behaviours create), each writing Flux's objects'
// status and events to its own API server, where every fact is read.
func newFidelity(_ context.Context, e *Env) *fidelity {
	f := &fidelity{e: e}
	for _, name := range []string{engineOurs, engineFlux} {
		Expect(e.Kube).To(HaveKey(name), "the fidelity twin has no cluster %s", name)
		cfg, err := e.Twin.RESTConfig(name)
		Expect(err).NotTo(HaveOccurred())
		t, err := arcagent.NewClusterTarget(cfg)
		Expect(err).NotTo(HaveOccurred())
		f.engines = append(f.engines, &fidEngine{name: name, kube: e.Kube[name], api: e.api(name), target: t})
	}
	return f
}

// prepare creates a behaviour's namespace on both clusters, the Git credentials and the GitRepository,
// as the Arc agent does for a configuration.
func (f *fidelity) prepare(ctx context.Context, ns string) {
	token := f.e.adminToken()
	gitTimeout := reconciler.DefaultProfile().GitTimeout
	for _, eng := range f.engines {
		_, err := eng.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred(), "cluster %s: create namespace %s", eng.name, ns)
		}
		_, err = eng.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fidSecret, Namespace: ns},
			StringData: map[string]string{"username": f.e.Git.User(), "password": token}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "cluster %s: create secret %s/%s", eng.name, ns, fidSecret)
		Expect(eng.target.ApplyGitRepository(&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: fidSource, Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{URL: f.e.Git.CloneURL(f.e.Repo), Interval: metav1.Duration{Duration: time.Duration(SourceIntervalSeconds) * time.Second},
				Timeout: &metav1.Duration{Duration: gitTimeout}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
				SecretRef: &meta.LocalObjectReference{Name: fidSecret}},
		})).To(Succeed(), "%s: apply GitRepository %s/%s", eng.name, ns, fidSource)
	}
	// Kustomizations start once both sources have main's head: a Kustomization whose source has no artifact
	// yet fails with ArtifactFailed and waits (Flux: --requeue-dependency, 30 s), which is not what a
	// behaviour compares.
	f.waitBoth(ctx, time.Now(), f.e.Waits.Converge, true, "both sources fetch main of "+f.e.Repo.String(), sourceAt(ns, f.head(ctx)))
}

// sourceAt holds once the behaviour's GitRepository has an artifact of commit.
func sourceAt(ns, commit string) func(context.Context, *fidEngine) (string, error) {
	return func(_ context.Context, eng *fidEngine) (string, error) {
		g, ok := eng.target.GitRepository(ns, fidSource)
		if !ok || g.Status.Artifact == nil || !strings.Contains(g.Status.Artifact.Revision, commit) {
			return "", fmt.Errorf("GitRepository %s/%s has no artifact of %.12s yet", ns, fidSource, commit)
		}
		return g.Status.Artifact.Revision, nil
	}
}

// noteMessages hands each engine's Ready message of a Kustomization to the report (messages are worded
// differently by each engine, so they are shown, not compared).
func (f *fidelity) noteMessages(behaviour, ns, name string) {
	for _, eng := range f.engines {
		k, err := eng.kustomization(ns, name)
		if err != nil {
			continue
		}
		if c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition); c != nil {
			Note("%s: %s says Ready=%s (%s): %s", behaviour, eng.name, c.Status, c.Reason, c.Message)
		}
	}
}

// ks is a Kustomization as both engines get it: the Arc defaults, prune and wait on.
func ks(ns, name, path string, mutate func(*kustomizev1.Kustomization)) *kustomizev1.Kustomization {
	timeout, retry := fidKsTimeout, fidKsRetry
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kustomizev1.KustomizationSpec{
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: fidSource},
			Path:      path, Interval: metav1.Duration{Duration: fidKsInterval}, Prune: true, Wait: true,
			Timeout: &metav1.Duration{Duration: timeout}, RetryInterval: &metav1.Duration{Duration: retry},
		},
	}
	if mutate != nil {
		mutate(k)
	}
	return k
}

// apply hands each engine its own copy of the same Kustomization.
func (f *fidelity) apply(k *kustomizev1.Kustomization) {
	for _, eng := range f.engines {
		Expect(eng.target.ApplyKustomization(k.DeepCopy())).To(Succeed(), "%s: apply Kustomization %s/%s", eng.name, k.Namespace, k.Name)
	}
}

// head is main's commit in the fidelity repository.
func (f *fidelity) head(ctx context.Context) string {
	h, err := f.e.Git.BranchCommit(ctx, f.e.Repo, "main")
	Expect(err).NotTo(HaveOccurred())
	return h
}

// waitBoth polls cond on both engines until both hold it or bound passes, and returns, per engine, the
// seconds from start until cond first held (nil: not within bound) and the value cond returned then.
// Without mustHold it does not fail: not getting there is then an observation.
func (f *fidelity) waitBoth(ctx context.Context, start time.Time, bound time.Duration, mustHold bool, what string,
	cond func(ctx context.Context, eng *fidEngine) (string, error)) (map[string]*float64, map[string]string) {
	secs, vals := map[string]*float64{}, map[string]string{}
	poll := func(ctx context.Context) error {
		var errs []error
		for _, eng := range f.engines {
			if _, done := vals[eng.name]; done {
				continue
			}
			v, err := cond(ctx, eng)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", eng.name, err))
				continue
			}
			s := time.Since(start).Seconds()
			secs[eng.name], vals[eng.name] = &s, v
		}
		return errors.Join(errs...)
	}
	check := func() {
		Eventually(poll).WithContext(ctx).WithTimeout(bound).WithPolling(f.e.Waits.Poll/5).Should(Succeed(), what)
	}
	if mustHold {
		check()
	} else {
		InterceptGomegaFailures(check)
	}
	return secs, vals
}

// kustomization reads an engine's Kustomization (status as the engine reports it).
func (eng *fidEngine) kustomization(ns, name string) (*kustomizev1.Kustomization, error) {
	k, ok := eng.target.Kustomization(ns, name)
	if !ok {
		return nil, fmt.Errorf("Kustomization %s/%s not found", ns, name)
	}
	return k, nil
}

// readyAt holds when the Kustomization is Ready at commit; it returns the Ready fact.
func readyAt(ns, name, commit string) func(context.Context, *fidEngine) (string, error) {
	return func(_ context.Context, eng *fidEngine) (string, error) {
		k, err := eng.kustomization(ns, name)
		if err != nil {
			return "", err
		}
		c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(k.Status.LastAppliedRevision, commit) {
			return "", fmt.Errorf("Kustomization %s/%s not Ready at %.12s yet: applied %q, Ready %s", ns, name, commit, k.Status.LastAppliedRevision, condString(c))
		}
		return condString(c), nil
	}
}

// settled holds once the Kustomization's Ready condition is True or False for its current generation; it
// returns the Ready fact.
func settled(ns, name string) func(context.Context, *fidEngine) (string, error) {
	return func(_ context.Context, eng *fidEngine) (string, error) {
		k, err := eng.kustomization(ns, name)
		if err != nil {
			return "", err
		}
		c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
		if c == nil || c.Status == metav1.ConditionUnknown || c.ObservedGeneration < k.Generation {
			return "", fmt.Errorf("Kustomization %s/%s has no verdict for generation %d yet: Ready %s", ns, name, k.Generation, condString(c))
		}
		return condString(c), nil
	}
}

// condString is a condition's status and reason (messages are worded differently by each engine).
func condString(c *metav1.Condition) string {
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
}

// readyFact is the Ready condition an engine reports now.
func (eng *fidEngine) readyFact(ns, name string) string {
	k, err := eng.kustomization(ns, name)
	if err != nil {
		return err.Error()
	}
	return condString(apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition))
}

// inventoryFact lists the Kustomization's status.inventory: the objects the engine considers its own.
func (eng *fidEngine) inventoryFact(ns, name string) string {
	k, err := eng.kustomization(ns, name)
	if err != nil {
		return err.Error()
	}
	if k.Status.Inventory == nil {
		return "none"
	}
	var ids []string
	for _, e := range k.Status.Inventory.Entries {
		ids = append(ids, e.ID+"@"+e.Version)
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}

// conditionsFact lists the Kustomization's status conditions as Flux's tools read them: type=status (reason),
// sorted by type (messages are worded by each engine and shown, not compared).
func (eng *fidEngine) conditionsFact(ns, name string) string {
	k, err := eng.kustomization(ns, name)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, c := range k.Status.Conditions {
		stale := ""
		if c.ObservedGeneration != k.Generation {
			stale = fmt.Sprintf(" for generation %d of %d", c.ObservedGeneration, k.Generation)
		}
		out = append(out, fmt.Sprintf("%s=%s (%s)%s", c.Type, c.Status, c.Reason, stale))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// finalizersFact lists the Kustomization's finalizers.
func (eng *fidEngine) finalizersFact(ns, name string) string {
	k, err := eng.kustomization(ns, name)
	if err != nil {
		return err.Error()
	}
	if len(k.Finalizers) == 0 {
		return "none"
	}
	return strings.Join(k.Finalizers, ", ")
}

// eventsFact lists the distinct Kubernetes Events on a Kustomization as type/reason from source component,
// sorted; it waits (up to the poll bound) for want among them, since events are posted asynchronously.
func (f *fidelity) eventsFact(ctx context.Context, eng *fidEngine, ns, name, want string) string {
	var got []string
	read := func(ctx context.Context) error {
		evs, err := eng.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		got = got[:0]
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind != kustomizev1.KustomizationKind || ev.InvolvedObject.Name != name {
				continue
			}
			fact := fmt.Sprintf("%s/%s from %s", ev.Type, ev.Reason, ev.Source.Component)
			if !seen[fact] {
				seen[fact] = true
				got = append(got, fact)
			}
		}
		sort.Strings(got)
		for _, g := range got {
			if strings.HasPrefix(g, want+" ") {
				return nil
			}
		}
		return fmt.Errorf("no %s event on Kustomization %s/%s yet: %v", want, ns, name, got)
	}
	InterceptGomegaFailures(func() {
		Eventually(read).WithContext(ctx).WithTimeout(f.e.Waits.Converge).WithPolling(f.e.Waits.Poll).Should(Succeed())
	})
	if len(got) == 0 {
		return "none"
	}
	return strings.Join(got, ", ")
}

// printedFact is the Kustomization's row as `kubectl get kustomization` prints it: the API server's table
// (server-side printing of the CRD's printer columns, what kubectl asks for), its READY column.
func (f *fidelity) printedFact(ctx context.Context, eng *fidEngine, ns, name string) string {
	cfg, err := f.e.Twin.RESTConfig(eng.name)
	Expect(err).NotTo(HaveOccurred())
	hc, err := rest.HTTPClientFor(cfg)
	Expect(err).NotTo(HaveOccurred())
	url := fmt.Sprintf("%s/apis/%s/namespaces/%s/kustomizations/%s", strings.TrimSuffix(cfg.Host, "/"), kustomizev1.GroupVersion, ns, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer resp.Body.Close()
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil || len(table.Rows) != 1 {
		return fmt.Sprintf("no table (HTTP %d, %v)", resp.StatusCode, err)
	}
	for i, c := range table.ColumnDefinitions {
		if strings.EqualFold(c.Name, "Ready") && i < len(table.Rows[0].Cells) {
			return fmt.Sprintf("READY %v", table.Rows[0].Cells[i])
		}
	}
	return "no READY column"
}

// fluxGetFact is the Kustomization's line of the flux CLI's `flux get kustomizations` against the engine's
// cluster: its READY and SUSPENDED columns and the revision (the MESSAGE column is each engine's wording).
func (f *fidelity) fluxGetFact(ctx context.Context, eng *fidEngine, ns, name string) string {
	out, err := f.fluxCLI(ctx, eng, "get", "kustomizations", name, "-n", ns, "--no-header")
	if err != nil {
		return fmt.Sprintf("flux get failed: %v: %s", err, out)
	}
	// NAME REVISION SUSPENDED READY MESSAGE (fluxcd/flux2 cmd/flux get_kustomization.go); flux2's table
	// printer (pkg/printers) pads cells and separates them with a tab, and a failed Kustomization's
	// REVISION cell is empty.
	fields := strings.Split(out, "\t")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	if len(fields) < 4 || fields[0] != name {
		return "unexpected output: " + out
	}
	return fmt.Sprintf("REVISION %s SUSPENDED %s READY %s", fields[1], fields[2], fields[3])
}

// fluxCLI runs the flux CLI (from the tool cache) against the engine's cluster and returns its trimmed
// output; err is set when it exits non-zero.
func (f *fidelity) fluxCLI(ctx context.Context, eng *fidEngine, args ...string) (string, error) {
	cache, err := toolcache.New()
	Expect(err).NotTo(HaveOccurred())
	res, err := cache.Ensure(ctx, toolcache.FluxCLI)
	Expect(err).NotTo(HaveOccurred(), "the flux CLI from the tool cache")
	cmd := exec.CommandContext(ctx, res.Path, append(args, "--kubeconfig", f.e.Twin.Kubeconfig(), "--context", eng.name)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// fluxCLIFacts drives a Kustomization on both engines with the flux CLI as a platform engineer would --
// `flux reconcile ks --with-source`, `flux suspend ks`, `flux resume ks` (each waits for the engine's
// status to answer), `flux tree ks` -- and records whether each worked and what the tree shows.
func (f *fidelity) fluxCLIFacts(ctx context.Context, r *behaviourResult, ns, name string) {
	outcome := func(out string, err error) string {
		if err != nil {
			return fmt.Sprintf("failed (%v): %s", err, lastLine(out))
		}
		return "ok"
	}
	for _, eng := range f.engines {
		r.set(eng, "flux reconcile ks --with-source", outcome(f.fluxCLI(ctx, eng, "reconcile", "kustomization", name, "-n", ns, "--with-source", "--timeout", "2m")))
		r.set(eng, "flux suspend ks", outcome(f.fluxCLI(ctx, eng, "suspend", "kustomization", name, "-n", ns)))
		r.set(eng, name+" flux get after suspend", f.fluxGetFact(ctx, eng, ns, name))
		r.set(eng, "flux resume ks", outcome(f.fluxCLI(ctx, eng, "resume", "kustomization", name, "-n", ns, "--timeout", "2m")))
		tree, err := f.fluxCLI(ctx, eng, "tree", "kustomization", name, "-n", ns)
		if err != nil {
			tree = outcome(tree, err)
		}
		r.set(eng, "flux tree ks", tree)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// statusFacts records, for a Kustomization on both engines, what kubectl and the flux CLI show besides its
// objects: every status condition, the finalizers, and the Events on it (waiting for wantEvent).
func (f *fidelity) statusFacts(ctx context.Context, r *behaviourResult, ns, name, wantEvent string) {
	for _, eng := range f.engines {
		r.set(eng, name+" conditions", eng.conditionsFact(ns, name))
		r.set(eng, name+" finalizers", eng.finalizersFact(ns, name))
		r.set(eng, name+" events", f.eventsFact(ctx, eng, ns, name, wantEvent))
		r.set(eng, name+" kubectl get", f.printedFact(ctx, eng, ns, name))
		r.set(eng, name+" flux get", f.fluxGetFact(ctx, eng, ns, name))
	}
}

// objectFact says how an object Git declares stands on the engine's cluster: absent, or as in Git (or how
// it differs), with the Kustomization its owner labels name.
func (eng *fidEngine) objectFact(ctx context.Context, want *unstructured.Unstructured) string {
	live, err := eng.api.get(ctx, want)
	if errors.Is(err, errNotApplied) {
		return "absent"
	}
	if err != nil {
		return "unreadable: " + err.Error()
	}
	diffs := gitFieldDiffs(want.Object, live.Object, "")
	owned := live.GetLabels()[ownerNamespaceLabel] + "/" + live.GetLabels()[ownerNameLabel]
	if owned == "/" {
		owned = "no owner labels"
	}
	if len(diffs) == 0 {
		return "as in Git; owner " + owned
	}
	return fmt.Sprintf("differs from Git (%s); owner %s", strings.Join(diffs, "; "), owned)
}

// presence is "present" or "absent" for an object by kind, namespace and name.
func (eng *fidEngine) presence(ctx context.Context, apiVersion, kind, ns, name string) string {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	_, err := eng.api.get(ctx, u)
	switch {
	case errors.Is(err, errNotApplied):
		return "absent"
	case err != nil:
		return "unreadable: " + err.Error()
	}
	return "present"
}

// built is what kustomize builds from path at commit (a fresh clone).
func (f *fidelity) built(ctx context.Context, commit, path string) []*unstructured.Unstructured {
	dir := f.e.clone(ctx, f.e.Repo, "main", commit)
	return kustomizeBuild(filepath.Join(dir, filepath.FromSlash(path)))
}

// objectFacts records objectFact for every object built from path at commit.
func (f *fidelity) objectFacts(ctx context.Context, r *behaviourResult, commit, path string) {
	for _, want := range f.built(ctx, commit, path) {
		for _, eng := range f.engines {
			r.set(eng, want.GetKind()+" "+objKey(want), eng.objectFact(ctx, want))
		}
	}
}

// pushChange commits a change to main on top of its head (clone, edit, push) and returns the new head.
func (f *fidelity) pushChange(ctx context.Context, message string, edit func(dir string)) string {
	head := f.head(ctx)
	dir := f.e.clone(ctx, f.e.Repo, "main", head)
	edit(dir)
	res, err := f.e.Git.Push(ctx, gitserver.PushRequest{Repo: f.e.Repo, Branch: "main", Dir: dir, Message: message})
	Expect(err).NotTo(HaveOccurred(), "push %q", message)
	Expect(res.Pushed).To(BeTrue(), "the change %q changed nothing", message)
	return res.Commit
}

// fidelityBehaviours are the rows of the table, in the order they run: the ones that push to main last,
// so a push never re-triggers another behaviour's Kustomization while it is being observed.
func fidelityBehaviours() []fidelityBehaviour {
	return []fidelityBehaviour{
		{name: "apply", check: "a ServiceAccount, ConfigMap, Deployment and Service from Git: every field Git sets, Flux's owner labels, the inventory and Ready (with wait: the Deployment's rollout)",
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-apply"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				start := time.Now()
				f.apply(ks(ns, "apply", "./apply", nil))
				secs, ready := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines apply ./apply", readyAt(ns, "apply", head))
				r.timing("Kustomization applied to Ready (rollout included)", secs)
				for _, eng := range f.engines {
					r.set(eng, "Ready", ready[eng.name])
					r.set(eng, "inventory", eng.inventoryFact(ns, "apply"))
				}
				f.statusFacts(ctx, r, ns, "apply", "Normal/ReconciliationSucceeded")
				f.objectFacts(ctx, r, head, "apply")
				f.fluxCLIFacts(ctx, r, ns, "apply")
			}},
		{name: "dependsOn", check: "app depends on base (a Deployment that must roll out first), orphan on a Kustomization that does not exist; all three applied at once",
			documented: nil,
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-depends"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				start := time.Now()
				f.apply(ks(ns, "app", "./depends/app", func(k *kustomizev1.Kustomization) {
					k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "base"}}
				}))
				f.apply(ks(ns, "orphan", "./depends/orphan", func(k *kustomizev1.Kustomization) {
					k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "missing"}}
				}))
				f.apply(ks(ns, "base", "./depends/base", nil))
				baseSecs, _ := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines make base Ready", readyAt(ns, "base", head))
				appSecs, _ := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines apply app once base is Ready", readyAt(ns, "app", head))
				r.timing("base Ready", baseSecs)
				r.timing("app Ready", appSecs)
				gap := map[string]*float64{}
				for _, eng := range f.engines {
					if b, a := baseSecs[eng.name], appSecs[eng.name]; a != nil && b != nil {
						d := *a - *b
						gap[eng.name] = &d
					}
				}
				r.timing("base Ready to app Ready (dependency wait)", gap)
				_, orphan := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines hold orphan back", settled(ns, "orphan"))
				for _, eng := range f.engines {
					r.set(eng, "Ready of base", eng.readyFact(ns, "base"))
					r.set(eng, "Ready of app", eng.readyFact(ns, "app"))
					r.set(eng, "Ready of orphan", orphan[eng.name])
					r.set(eng, "ConfigMap fid-depends/app created after base was Ready", eng.appliedAfterReady(ctx, ns, "base", "app"))
					r.set(eng, "ConfigMap fid-depends/orphan", eng.presence(ctx, "v1", "ConfigMap", ns, "orphan"))
				}
				f.objectFacts(ctx, r, head, "depends/base")
				f.objectFacts(ctx, r, head, "depends/app")
				f.statusFacts(ctx, r, ns, "app", "Normal/ReconciliationSucceeded")
				f.statusFacts(ctx, r, ns, "orphan", "Normal/DependencyNotReady")
			}},
		{name: "health", check: fmt.Sprintf("a Deployment whose pods cannot be scheduled, wait: true, timeout %s: the health check must fail", fidHealthTimeout),
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-health"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				start := time.Now()
				f.apply(ks(ns, "health", "./health", func(k *kustomizev1.Kustomization) {
					k.Spec.Timeout = &metav1.Duration{Duration: fidHealthTimeout}
				}))
				bound := Slack*fidHealthTimeout + f.e.Waits.Converge
				secs, verdict := f.waitBoth(ctx, start, bound, true, "both engines give a verdict on ./health", settled(ns, "health"))
				r.timing("Kustomization applied to a Ready verdict", secs)
				for _, eng := range f.engines {
					r.set(eng, "Ready", verdict[eng.name])
					k, err := eng.kustomization(ns, "health")
					Expect(err).NotTo(HaveOccurred())
					msg := ""
					if c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition); c != nil {
						msg = c.Message
					}
					r.set(eng, "Ready's message names Deployment fid-health/stuck", yesNo(strings.Contains(msg, "stuck")))
				}
				f.objectFacts(ctx, r, head, "health")
				f.statusFacts(ctx, r, ns, "health", "Warning/HealthCheckFailed")
				f.noteMessages("health", ns, "health")
			}},
		policyFidelityBehaviour(), // policy_test.go
		{name: "namespace scope", check: "applied as service account flux-applier of fid-tenant (admin there only, as the Arc extension's multi-tenancy): one ConfigMap in fid-tenant, one in fid-other",
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns, other := "fid-tenant", "fid-other"
				f.prepare(ctx, ns)
				for _, eng := range f.engines {
					ensureTenant(ctx, eng, ns, other)
				}
				start := time.Now()
				f.apply(ks(ns, "tenant", "./tenant", func(k *kustomizev1.Kustomization) {
					k.Spec.ServiceAccountName = arcagent.ApplierServiceAccount
				}))
				secs, verdict := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines give a verdict on ./tenant", settled(ns, "tenant"))
				r.timing("Kustomization applied to a Ready verdict", secs)
				for _, eng := range f.engines {
					r.set(eng, "Ready", verdict[eng.name])
					k, err := eng.kustomization(ns, "tenant")
					Expect(err).NotTo(HaveOccurred())
					msg := ""
					if c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition); c != nil {
						msg = c.Message
					}
					r.set(eng, "Ready's message names namespace "+other, yesNo(strings.Contains(msg, other)))
					r.set(eng, "ConfigMap "+ns+"/own", eng.presence(ctx, "v1", "ConfigMap", ns, "own"))
					r.set(eng, "ConfigMap "+other+"/intruder", eng.presence(ctx, "v1", "ConfigMap", other, "intruder"))
				}
				f.statusFacts(ctx, r, ns, "tenant", "Warning/ReconciliationFailed")
				f.noteMessages("namespace scope", ns, "tenant")
			}},
		{name: "drift", check: "after Ready, a hand edit of ConfigMap conf (kubectl edit) and a deleted Service svc, on both clusters at once; then a reconcile.fluxcd.io/requestedAt request where not corrected",
			documented: []string{"corrected within the drift bound", "a reconcile request was needed"},
			reason: "Flux corrects drift only when it reconciles: at the Kustomization's interval (here Arc's default 600 s) or on a reconcile.fluxcd.io/requestedAt " +
				"request (`flux reconcile`); the twin's reconciler watches every object it applied and corrects within a second (a deliberate departure, " +
				"reconciler package doc). After the request both end in the same state.",
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-drift"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				f.apply(ks(ns, "drift", "./drift", nil))
				f.waitBoth(ctx, time.Now(), f.e.Waits.Converge, true, "both engines apply ./drift", readyAt(ns, "drift", head))
				uids := map[string]types.UID{}
				start := time.Now()
				for _, eng := range f.engines {
					svc, err := eng.kube.CoreV1().Services(ns).Get(ctx, "svc", metav1.GetOptions{})
					Expect(err).NotTo(HaveOccurred())
					uids[eng.name] = svc.UID
					_, err = eng.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "conf", types.StrategicMergePatchType, []byte(`{"data":{"mode":"hand"}}`),
						metav1.PatchOptions{FieldManager: editManager})
					Expect(err).NotTo(HaveOccurred(), "%s: edit ConfigMap %s/conf by hand", eng.name, ns)
					Expect(eng.kube.CoreV1().Services(ns).Delete(ctx, "svc", metav1.DeleteOptions{})).To(Succeed())
				}
				corrected := func(ctx context.Context, eng *fidEngine) (string, error) {
					cm, err := eng.kube.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
					if err != nil {
						return "", err
					}
					if cm.Data["mode"] != "git" {
						return "", fmt.Errorf("ConfigMap %s/conf has mode=%q, Git says git", ns, cm.Data["mode"])
					}
					svc, err := eng.kube.CoreV1().Services(ns).Get(ctx, "svc", metav1.GetOptions{})
					if err != nil {
						return "", fmt.Errorf("Service %s/svc: %w", ns, err)
					}
					if svc.UID == uids[eng.name] {
						return "", fmt.Errorf("Service %s/svc is the deleted one", ns)
					}
					return "corrected", nil
				}
				secs, _ := f.waitBoth(ctx, start, f.e.Waits.Drift, false, "drift corrected within the drift bound", corrected)
				r.timing(fmt.Sprintf("hand edit to corrected (bound %s)", f.e.Waits.Drift), secs)
				var late []*fidEngine
				for _, eng := range f.engines {
					r.set(eng, "corrected within the drift bound", yesNo(secs[eng.name] != nil))
					r.set(eng, "a reconcile request was needed", yesNo(secs[eng.name] == nil))
					if secs[eng.name] == nil {
						late = append(late, eng)
					}
				}
				if len(late) > 0 {
					asked := time.Now()
					for _, eng := range late {
						k := ks(ns, "drift", "./drift", nil)
						k.Annotations = map[string]string{meta.ReconcileRequestAnnotation: asked.Format(time.RFC3339Nano)}
						Expect(eng.target.ApplyKustomization(k)).To(Succeed())
					}
					sub := &fidelity{e: f.e, engines: late}
					after, _ := sub.waitBoth(ctx, asked, f.e.Waits.Drift, true, "drift corrected after a reconcile request", corrected)
					r.timing("reconcile request to corrected", after)
				}
				for _, eng := range f.engines {
					cm, err := eng.kube.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
					Expect(err).NotTo(HaveOccurred())
					r.set(eng, "ConfigMap fid-drift/conf data.mode at the end", cm.Data["mode"])
					r.set(eng, "Service fid-drift/svc at the end", eng.presence(ctx, "v1", "Service", ns, "svc"))
					r.set(eng, "Ready at the end", eng.readyFact(ns, "drift"))
				}
			}},
		{name: "prune", check: "a second commit drops ConfigMaps gone and kept (kept carries kustomize.toolkit.fluxcd.io/prune: disabled) from the kustomization",
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-prune"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				f.apply(ks(ns, "prune", "./prune", nil))
				f.waitBoth(ctx, time.Now(), f.e.Waits.Converge, true, "both engines apply ./prune", readyAt(ns, "prune", head))
				start := time.Now()
				next := f.pushChange(ctx, "prune: keep only keep.yaml", func(dir string) {
					replaceIn(dir, "prune/kustomization.yaml", "  - keep.yaml\n  - gone.yaml\n  - kept.yaml\n", "  - keep.yaml\n")
				})
				secs, ready := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines apply the commit that drops gone and kept", readyAt(ns, "prune", next))
				r.timing("push to Ready at the new commit", secs)
				for _, eng := range f.engines {
					r.set(eng, "Ready", ready[eng.name])
					for _, n := range []string{"keep", "gone", "kept"} {
						r.set(eng, "ConfigMap fid-prune/"+n, eng.presence(ctx, "v1", "ConfigMap", ns, n))
					}
					r.set(eng, "inventory", eng.inventoryFact(ns, "prune"))
				}
				f.statusFacts(ctx, r, ns, "prune", "Normal/ReconciliationSucceeded")
			}},
		{name: "suspend", check: "after Ready, the Kustomization is suspended, ConfigMap conf is edited by hand and a commit changes it in Git; then resumed",
			run: func(ctx context.Context, f *fidelity, r *behaviourResult) {
				ns := "fid-suspend"
				f.prepare(ctx, ns)
				head := f.head(ctx)
				f.apply(ks(ns, "suspend", "./suspend", nil))
				f.waitBoth(ctx, time.Now(), f.e.Waits.Converge, true, "both engines apply ./suspend", readyAt(ns, "suspend", head))
				f.apply(ks(ns, "suspend", "./suspend", func(k *kustomizev1.Kustomization) { k.Spec.Suspend = true }))
				for _, eng := range f.engines {
					_, err := eng.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "conf", types.StrategicMergePatchType, []byte(`{"data":{"rev":"hand"}}`),
						metav1.PatchOptions{FieldManager: editManager})
					Expect(err).NotTo(HaveOccurred(), "%s: edit ConfigMap %s/conf by hand", eng.name, ns)
				}
				next := f.pushChange(ctx, "suspend: rev two", func(dir string) {
					replaceIn(dir, "suspend/conf.yaml", "rev: one", "rev: two")
				})
				// Both sources must have the new commit: a Kustomization that is not suspended reacts to it at once.
				f.waitBoth(ctx, time.Now(), f.e.Waits.Converge, true, "both sources fetch the new commit", sourceAt(ns, next))
				// Watch the hand edit for the hold period: a suspended engine must neither correct it nor apply the commit.
				// The value recorded is the hand edit's, unless an engine changed it at some point of the hold.
				held := map[string]string{}
				Consistently(func(ctx context.Context) error {
					for _, eng := range f.engines {
						cm, err := eng.kube.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
						if err != nil {
							return err
						}
						if _, seen := held[eng.name]; !seen || cm.Data["rev"] != "hand" {
							held[eng.name] = cm.Data["rev"]
						}
					}
					return nil
				}).WithContext(ctx).WithTimeout(f.e.Waits.Hold).WithPolling(f.e.Waits.Poll/5).Should(Succeed(), "read ConfigMap %s/conf on both clusters", ns)
				for _, eng := range f.engines {
					r.set(eng, fmt.Sprintf("ConfigMap conf data.rev while suspended (Git: two, hand edit: hand; watched %s)", f.e.Waits.Hold), held[eng.name])
					r.set(eng, "Ready while suspended", eng.readyFact(ns, "suspend"))
				}
				start := time.Now()
				f.apply(ks(ns, "suspend", "./suspend", nil))
				secs, ready := f.waitBoth(ctx, start, f.e.Waits.Converge, true, "both engines apply the new commit once resumed", readyAt(ns, "suspend", next))
				r.timing("resume to Ready at the new commit", secs)
				for _, eng := range f.engines {
					cm, err := eng.kube.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
					Expect(err).NotTo(HaveOccurred())
					r.set(eng, "ConfigMap conf data.rev after resume", cm.Data["rev"])
					r.set(eng, "Ready after resume", ready[eng.name])
				}
				f.statusFacts(ctx, r, ns, "suspend", "Normal/ReconciliationSucceeded")
			}},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// appliedAfterReady says whether ConfigMap name of ns (applied by Kustomization dependent) was created
// no earlier than Kustomization dep became Ready (both stamped to the second by the API server and the
// engine on the same machine, compared to the second).
func (eng *fidEngine) appliedAfterReady(ctx context.Context, ns, dep, name string) string {
	k, err := eng.kustomization(ns, dep)
	if err != nil {
		return err.Error()
	}
	c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
	if c == nil || c.Status != metav1.ConditionTrue {
		return "dependency not Ready"
	}
	cm, err := eng.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "not applied"
	}
	// The API server keeps whole seconds; the twin's reconciler reports its conditions from memory with
	// nanoseconds: compare both at the API's resolution.
	ready := metav1.NewTime(c.LastTransitionTime.Rfc3339Copy().Time)
	if cm.CreationTimestamp.Before(&ready) {
		return fmt.Sprintf("no: created %s before", ready.Sub(cm.CreationTimestamp.Time))
	}
	return "yes"
}

// ensureTenant gives namespace ns the service account the Arc extension's namespace-scoped
// configurations apply as (flux-applier, bound to the built-in admin role in ns only, as twin/arcagent
// does), and creates the other namespace the tenant must not write to.
func ensureTenant(ctx context.Context, eng *fidEngine, ns, other string) {
	_, err := eng.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: arcagent.ApplierServiceAccount, Namespace: ns}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "%s: service account %s/%s", eng.name, ns, arcagent.ApplierServiceAccount)
	_, err = eng.kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: arcagent.ApplierServiceAccount, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: arcagent.ApplierServiceAccount, Namespace: ns}},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "%s: role binding %s/%s", eng.name, ns, arcagent.ApplierServiceAccount)
	_, err = eng.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "%s: namespace %s", eng.name, other)
}

// helmFacts are the fidelity facts of one helm scenario step (scenarios/helm_test.go): per engine,
// each HelmRelease's status conditions (type/status/reason), its history (length and statuses), the
// reasons of the Events on it, and Helm's storage. In the helm-platform twin with real Flux (label flux),
// the step ran the same commits on staging (the twin's engine) and staging-flux (real Flux), and the
// facts become a row of the fidelity table; a difference not documented in helmFidelity fails the step.
// With the twin's engine alone they are only noted.
type helmFacts struct {
	h      *helmRun
	b      fidelityBehaviour
	r      behaviourResult
	prefix string
	times  []string                       // timing names, in order
	secs   map[string]map[string]*float64 // timing -> engine -> seconds
}

// time records a duration of the step on cluster c, for the row's timings.
func (f *helmFacts) time(c, name string, d time.Duration) {
	if f.secs == nil {
		f.secs = map[string]map[string]*float64{}
	}
	if _, ok := f.secs[name]; !ok {
		f.times = append(f.times, name)
		f.secs[name] = map[string]*float64{}
	}
	s := d.Seconds()
	f.secs[name][f.h.engine(c)] = &s
}

// helmFidelity documents, per helm step, the facts on which the engines are known to differ, and why
// (observed on the helm-platform twin, twin's engine profile flux-v2.7-twin against helm-controller
// v1.6.4). The event differences are gaps of the twin's engine (reconciler/helmrelease*.go), recorded
// here until it closes them.
var helmFidelity = map[string]fidelityBehaviour{
	"helm: converge": {documented: []string{"HelmRelease cert-keeper/cert-keeper events", "HelmRelease edge-ingress/edge-ingress events", "HelmRelease greeter/greeter events"},
		reason: helmEventsReason},
	"helm: values change": {documented: []string{"HelmRelease greeter/greeter events"}, reason: helmEventsReason},
	"helm: failed upgrade and rollback": {documented: []string{"HelmRelease greeter/greeter history length", "HelmRelease greeter/greeter history",
		"HelmRelease greeter/greeter events", "after the revert: HelmRelease greeter/greeter events"},
		reason: helmEventsReason + " History while stalled: Helm's storage holds v2-v6 on both (maxHistory 5 pruned v1), but helm-controller keeps its " +
			"snapshot of v1 (superseded) in status.history while the release is stalled after the rollback, where the twin's engine has already " +
			"truncated the history to the last successful release (v6, v5, v4); after the revert's in-sync reconciliation both hold v6, v5, v4."},
	"helm: drift detection": {documented: []string{"HelmRelease greeter/greeter events"}, reason: helmEventsReason},
	"helm: uninstall":       {documented: []string{"HelmRelease greeter/greeter events"}, reason: helmEventsReason},
}

// helmEventsReason is why the Events on a HelmRelease may differ in a helm step.
const helmEventsReason = "Events (distinct type/reason): the twin's engine was missing helm-controller's HelmChartCreated/Deleted and " +
	"UninstallSucceeded and posted its waits on a chart source (ArtifactFailed, SourceNotReady) as Normal events; both were fixed on " +
	"2026-12-07 (TestInClusterHelmRelease) and this entry goes when a flux-labelled helm run shows the Events equal. Every other event " +
	"reason (InstallSucceeded, UpgradeSucceeded, Warning/UpgradeFailed, RollbackSucceeded) was already the same."

func (h *helmRun) newFacts(name, check string) *helmFacts {
	b, ok := helmFidelity[name]
	if !ok {
		b = fidelityBehaviour{}
	}
	b.name, b.check = name, check+" (helm-platform twin: staging runs the twin's engine, "+helmPeer+" real Flux, one Arc configuration for both)"
	f := &helmFacts{h: h, b: b}
	finished := false
	DeferCleanup(func() {
		if h.fidelity && !finished {
			recordFidelityRow(f.b, &f.r, false)
		}
	})
	f.b.run = func(context.Context, *fidelity, *behaviourResult) { finished = true }
	return f
}

func (f *helmFacts) set(c, name, val string) {
	f.r.set(&fidEngine{name: f.h.engine(c)}, f.prefix+name, val)
}

// setPrefixed takes more facts with a prefix on their names (the same facts at a later moment).
func (f *helmFacts) setPrefixed(c, prefix string, take func(*helmFacts)) {
	saved := f.prefix
	f.prefix = prefix
	take(f)
	f.prefix = saved
}

// release takes the facts of HelmRelease ns/name on cluster c.
func (f *helmFacts) release(ctx context.Context, h *helmRun, c, nsName string) {
	ns, name, _ := strings.Cut(nsName, "/")
	obj, err := h.helmRelease(ctx, c, ns, name)
	if err != nil {
		f.set(c, "HelmRelease "+nsName, "unreadable: "+err.Error())
		return
	}
	hist := history(obj)
	f.set(c, "HelmRelease "+nsName+" conditions", conditionFacts(obj))
	f.set(c, "HelmRelease "+nsName+" history length", fmt.Sprint(len(hist)))
	f.set(c, "HelmRelease "+nsName+" history", strings.Join(hist, ", "))
	f.events(ctx, h, c, ns, name)
	for _, cd := range conditionsOf(obj) {
		if cd.Type == meta.ReadyCondition {
			Note("%s: %s (%s) says %s Ready=%s (%s): %s", f.b.name, c, h.engine(c), nsName, cd.Status, cd.Reason, cd.Message)
		}
	}
}

// events takes the distinct type/reason of the Kubernetes Events on HelmRelease ns/name, sorted.
func (f *helmFacts) events(ctx context.Context, h *helmRun, c, ns, name string) {
	evs, err := h.e.Kube[c].CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		f.set(c, "HelmRelease "+ns+"/"+name+" events", "unreadable: "+err.Error())
		return
	}
	seen := map[string]bool{}
	var got []string
	for _, ev := range evs.Items {
		if ev.InvolvedObject.Kind != "HelmRelease" || ev.InvolvedObject.Name != name {
			continue
		}
		fact := ev.Type + "/" + ev.Reason
		if !seen[fact] {
			seen[fact] = true
			got = append(got, fact)
		}
	}
	sort.Strings(got)
	if len(got) == 0 {
		got = []string{"none"}
	}
	f.set(c, "HelmRelease "+ns+"/"+name+" events", strings.Join(got, ", "))
}

// finish ends the step: with real Flux in the twin, the row goes to the fidelity table and an
// undocumented difference fails the step.
func (f *helmFacts) finish() {
	f.b.run(nil, nil, nil)
	if !f.h.fidelity {
		for _, n := range f.r.names {
			for eng, v := range f.r.vals[n] {
				AddReportEntry(entryNote, note(fmt.Sprintf("%s: %s on %s: %s", f.b.name, n, eng, v)), ReportEntryVisibilityNever)
			}
		}
		return
	}
	for _, n := range f.times {
		f.r.timing(n, f.secs[n])
	}
	recordFidelityRow(f.b, &f.r, true)
	Expect(undocumentedDifferences(f.b, &f.r)).To(BeEmpty(), "helm step %s: the twin's engine and real Flux differ, and no reason is documented in helmFidelity", f.b.name)
}
