package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// fluxSpecs: the default twin's spec with `reconciler: flux` on every cluster -- real source-controller
// and kustomize-controller from the tool cache, run by twin/flux, fed Flux's own GitRepository and
// Kustomization objects by the Arc agent -- asserting what the default suite asserts for the layout and
// for a Git push. They bring up their own twin (label flux), which takes minutes (label slow): run them
// with `go tool task scenario -- --label-filter=flux` (Ginkgo's last --label-filter wins over the task's
// '!slow').
func fluxSpecs() {
	Describe("flux bootstrap layout", Label("flux", "slow", "layout"), func() {
		It("converges the Flux bootstrap layout with real Flux in its own twin: the Kustomization objects in Git reconciled by kustomize-controller, each Ready at main's head with its inventory applied", func(ctx SpecContext) {
			expectBootstrapConverges(ctx, "flux: flux-bootstrap", withFluxEverywhere)
		}, NodeTimeout(ownTwinTimeout))
	})

	Describe("flux", Label("flux", "slow"), Ordered, func() {
		var fe *Env
		BeforeAll(func(ctx SpecContext) {
			fe = upOwnTwin(ctx, defaultSpecPath(), withFluxEverywhere, true)
			Note("twin %s (the default spec with reconciler: flux on %v) up and Compliant after %s",
				fe.Twin.Spec().Metadata.Name, fe.Twin.Spec().ClusterNames(), fe.Twin.ReadyAfter().Round(time.Second))
		}, NodeTimeout(ownTwinTimeout))

		It("converges the default twin's layout with real Flux: each configuration Compliant at main's head, its objects applied by kustomize-controller", func(ctx SpecContext) {
			sum := expectLayoutConverged(ctx, fe)
			// Real Flux did it: the Arc agent wrote Flux's objects into the cluster, and Flux's controllers
			// report them Ready at main's head.
			s := fe.Twin.Spec()
			var objs []string
			for _, c := range s.ClusterNames() {
				Expect(s.ReconcilerFor(c)).To(Equal(twin.ReconcilerFlux), "cluster %s", c)
				cfg, err := fe.Twin.RESTConfig(c)
				Expect(err).NotTo(HaveOccurred())
				t, err := arcagent.NewClusterTarget(cfg)
				Expect(err).NotTo(HaveOccurred())
				for _, g := range s.Spec.GitOps {
					if !slices.Contains(s.TargetsOf(g), c) {
						continue
					}
					head, err := fe.Git.BranchCommit(ctx, gitserver.Repo{Owner: s.Spec.Git.Org, Name: g.Repo}, g.Ref.Branch)
					Expect(err).NotTo(HaveOccurred())
					repo, ok := t.GitRepository(g.Namespace, g.Name)
					Expect(ok).To(BeTrue(), "cluster %s: no GitRepository %s/%s in the API server; the Arc agent did not hand the configuration to Flux", c, g.Namespace, g.Name)
					Expect(repo.Status.Artifact).NotTo(BeNil(), "cluster %s: GitRepository %s/%s has no artifact from source-controller", c, g.Namespace, g.Name)
					Expect(repo.Status.Artifact.Revision).To(ContainSubstring(head), "cluster %s: source-controller's artifact of %s/%s", c, g.Namespace, g.Name)
					for _, kn := range sortedNames(g.Kustomizations) {
						name := arcagent.KustomizationName(g.Name, kn)
						k, ok := t.Kustomization(g.Namespace, name)
						Expect(ok).To(BeTrue(), "cluster %s: no Kustomization %s/%s in the API server", c, g.Namespace, name)
						Expect(apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition)).To(BeTrue(),
							"cluster %s: kustomize-controller does not report Kustomization %s/%s Ready: %v", c, g.Namespace, name, k.Status.Conditions)
						Expect(k.Status.LastAppliedRevision).To(ContainSubstring(head), "cluster %s: Kustomization %s/%s", c, g.Namespace, name)
						objs = append(objs, c+":"+g.Namespace+"/"+name)
					}
				}
			}
			Note("real Flux: %s; Kustomization objects Ready at main's head, status written by kustomize-controller: %v", sum, objs)
		})

		It("applies a Git push on every cluster with real Flux (push-to-applied)", func(ctx SpecContext) {
			exp := Experiment("flux: push to applied")
			val := fmt.Sprintf("flux-release-%d", GinkgoRandomSeed())
			dir := fe.WorkingCopy()
			replaceIn(dir, baseConfigMapFile, "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n")
			start := time.Now()
			commit := fe.Push(ctx, "main", dir, "podinfo: release "+val+" (real Flux)")
			waitConfigValue(ctx, fe, exp, start, "RELEASE", val, "push to applied")
			Eventually(fe.Compliance).WithContext(ctx).WithTimeout(fe.Waits.Converge).WithPolling(fe.Waits.Poll).Should(Succeed())
			Note("Commit %.12s applied by real Flux on %v. source-controller polls the GitRepository every %d s (its interval; no webhook Receiver), "+
				"and kustomize-controller reconciles a Kustomization as soon as its source has a new artifact, so push-to-applied is at most that plus build and apply.",
				commit, fe.Twin.Spec().ClusterNames(), SourceIntervalSeconds)
		})

		It("recovers from kill -9 of kustomize-controller during a reconcile: restarted by the twin, the pushed commit applied everywhere", Label("chaos"), func(ctx SpecContext) {
			c := fe.Twin.Spec().ClusterNames()[0]
			expectKillDuringReconcile(ctx, fe, c+"/flux kustomize-controller", c)
		})
	})
}

// withFluxEverywhere makes every workload cluster of a spec run real Flux, and names the twin apart from
// the spec's own (reports and state folders tell them apart).
func withFluxEverywhere(s *twin.Spec) {
	s.Metadata.Name += "-flux"
	s.Spec.Reconciler = twin.ReconcilerFlux
	for name, o := range s.Spec.Clusters {
		o.Reconciler = twin.ReconcilerFlux
		s.Spec.Clusters[name] = o
	}
}

// defaultSpecPath is the default twin's spec, as BeforeSuite loads it.
func defaultSpecPath() string {
	if p := os.Getenv(envSpec); p != "" {
		return p
	}
	return filepath.Join("..", "examples", "twin.yaml")
}

// ownTwinOnlyLabels are labels only specs that bring up their own twin carry; no spec of the default twin
// may carry one of them (defaultTwinNeeded relies on it).
var ownTwinOnlyLabels = []string{"flux", "fidelity", "helm", "bucket", "sealed", "notify", "ssh"}

// suiteLabels are the labels the suite's specs carry; defaultTwinNeeded tries them together with the
// words of the filter.
var suiteLabels = []string{"chaos", "drift", "failover", "flow", "layout", "scale", "slow"}

// defaultTwinNeeded reports whether a Ginkgo label filter can select a spec of the default twin, i.e.
// whether it matches some set of labels without any of ownTwinOnlyLabels. `--label-filter=flux` selects
// only specs that bring up their own twin, so BeforeSuite need not start the default one. An empty or
// unparsable filter, or one with too many words to try every combination, needs it.
func defaultTwinNeeded(filter string) bool {
	if strings.TrimSpace(filter) == "" {
		return true
	}
	match, err := types.ParseLabelFilter(filter)
	if err != nil {
		return true
	}
	words := append([]string(nil), suiteLabels...)
	for _, w := range regexp.MustCompile(`[A-Za-z0-9_.-]+`).FindAllString(filter, -1) {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	words = slices.DeleteFunc(words, func(w string) bool { return slices.Contains(ownTwinOnlyLabels, strings.ToLower(w)) })
	if len(words) > 16 {
		return true
	}
	for set := 0; set < 1<<len(words); set++ {
		var labels []string
		for i, w := range words {
			if set&(1<<i) != 0 {
				labels = append(labels, w)
			}
		}
		if match(labels) {
			return true
		}
	}
	return false
}

// TestDefaultTwinNeeded runs with plain `go test`: which label filters start the default twin.
func TestDefaultTwinNeeded(t *testing.T) {
	for filter, want := range map[string]bool{
		"":                    true,
		"!slow":               true,
		"drift":               true,
		"layout":              true,
		"flux":                false,
		"bucket":              false,
		"ssh":                 false,
		"fidelity":            false,
		"flux && fidelity":    false,
		"flux || drift":       true,
		"slow && !flux":       true,
		"flux && !slow":       false,
		"Flux":                false,
		"layout && !fidelity": true,
		"unknown-label":       true,
		"((":                  true,
		"helm":                false,
		"helm || drift":       true,
	} {
		if got := defaultTwinNeeded(filter); got != want {
			t.Errorf("defaultTwinNeeded(%q) = %v, want %v", filter, got, want)
		}
	}
}
