package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// The helm-platform layout (examples/repos/helm-platform, twin examples/twins/helm-platform.yaml) as the
// helm scenarios drive it.
const (
	helmSpecFile = "helm-platform.yaml"
	// helmPeer is the cluster the flux variant adds: a copy of staging running real Flux, synced by the
	// same configuration, so both engines get the same commits.
	helmPeer        = "staging-flux"
	helmConfig      = "flux-system"
	helmValues      = "apps/staging/greeter-values.yaml"
	helmAppNS       = "greeter"
	helmApp         = "greeter"
	helmAppReplicas = 2 // apps/staging/greeter-values.yaml
)

var (
	helmReleaseGVR   = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	helmRepoGVR      = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmrepositories"}
	crdGVR           = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	clusterIssuerGVR = schema.GroupVersionResource{Group: "certkeeper.io", Version: "v1", Resource: "clusterissuers"}
	// helmReleases are the layout's releases, namespace/name.
	helmReleases = []string{"cert-keeper/cert-keeper", "edge-ingress/edge-ingress", helmAppNS + "/" + helmApp}
)

// helmSpecs: the helm-platform layout on the twin. `helm` brings it up with the twin's engine; `flux`
// adds a second cluster running real Flux (source-controller, kustomize-controller, helm-controller)
// synced by the same configuration, runs every step on both, and compares them (fidelity rows). Each
// step runs on every cluster of the twin and checks each.
func helmSpecs() {
	Describe("helm", Label("helm"), Ordered, func() {
		h := &helmRun{}
		BeforeAll(func(ctx SpecContext) { h.up(ctx, false) }, NodeTimeout(ownTwinTimeout))
		helmSteps(h)
	})
	Describe("helm on real Flux", Label("helm", "flux", "fidelity", "slow"), Ordered, func() {
		h := &helmRun{}
		BeforeAll(func(ctx SpecContext) { h.up(ctx, true) }, NodeTimeout(ownTwinTimeout))
		helmSteps(h)
	})
}

// helmRun is one bring-up of the helm-platform twin.
type helmRun struct {
	e        *Env
	clusters []string
	fidelity bool      // a second cluster runs real Flux: each step compares the engines
	upAt     time.Time // when twin.Up returned (the configurations exist from then on)
}

// engine is the engine of a cluster of the run, as the fidelity table names it.
func (h *helmRun) engine(c string) string {
	if h.e.Twin.Spec().ReconcilerFor(c) == twin.ReconcilerFlux {
		return engineFlux
	}
	return engineOurs
}

func helmSteps(h *helmRun) {
	It("converges the kustomize+helm layout from the chart mirror: every nested Kustomization and HelmRelease Ready, the custom resource applied after its CRD", func(ctx SpecContext) {
		exp := Experiment("helm: layout")
		recordTiming(exp, "twin up", h.e.Twin.ReadyAfter())
		head := h.head(ctx)
		facts := h.newFacts("helm: converge", "the layout converges from the chart mirror: the root, infra-controllers, infra-configs and apps Kustomizations Ready; "+
			"HelmReleases edge-ingress, cert-keeper (CRDs from crds/) and greeter (an oci:// HelmRepository) installed; the ClusterIssuer applied after its CRD")
		at := h.untilEach(ctx, h.upAt, func(c string) func(context.Context) error {
			return func(ctx context.Context) error { return helmLayoutReady(ctx, h.e.api(c), head) }
		})
		for _, c := range h.clusters {
			a := h.e.api(c)
			h.measure(exp, facts, c, "layout Ready after twin up", at[c])
			Eventually(h.compliant(c)).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())

			// Git's HelmRepositories are as written: the URLs resolved through the chart mirror.
			for _, r := range [][3]string{{"edge-ingress", "edge-ingress", "https://kubernetes-edge.github.io/edge-ingress"},
				{"cert-keeper", "cert-keeper", "https://charts.certkeeper.io"}, {helmAppNS, helmApp, "oci://ghcr.io/acme-platform/charts"}} {
				repo, err := a.dyn.Resource(helmRepoGVR).Namespace(r[0]).Get(ctx, r[1], metav1.GetOptions{})
				Expect(err).NotTo(HaveOccurred(), "cluster %s: HelmRepository %s/%s", c, r[0], r[1])
				url, _, _ := unstructured.NestedString(repo.Object, "spec", "url")
				Expect(url).To(Equal(r[2]), "cluster %s: HelmRepository %s/%s", c, r[0], r[1])
			}
			// The CRD came with cert-keeper's chart (crds/), the ClusterIssuer from infra-configs after it.
			crd, err := a.dyn.Resource(crdGVR).Get(ctx, "clusterissuers.certkeeper.io", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: the CRD of cert-keeper's chart", c)
			issuer, err := a.dyn.Resource(clusterIssuerGVR).Get(ctx, "self-signed", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: ClusterIssuer self-signed", c)
			Expect(issuer.GetLabels()).To(HaveKeyWithValue(ownerNameLabel, "infra-configs"), "cluster %s: applied by infra-configs", c)
			issued, defined := issuer.GetCreationTimestamp(), crd.GetCreationTimestamp()
			Expect(issued.Before(&defined)).To(BeFalse(), "cluster %s: ClusterIssuer created %s, before its CRD (%s)", c, issued, defined)
			// The releases' objects, with the values from Git.
			kube := h.e.Kube[c]
			_, err = kube.NetworkingV1().IngressClasses().Get(ctx, "edge", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: IngressClass edge of the edge-ingress chart", c)
			_, err = kube.NetworkingV1().Ingresses(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: the greeter Ingress", c)
			Eventually(h.podsSay(c, "hello from staging")).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())
			Expect(h.releaseSecrets(ctx, c)).To(Equal("v1=deployed"), "cluster %s: Helm's storage of release greeter", c)
			for _, r := range helmReleases {
				facts.release(ctx, h, c, r)
			}
		}
		Note("helm-platform at main@%.12s Ready on %v", head, h.clusters)
		facts.finish()
	})

	It("upgrades the release on a values change in Git: revision 2, pods with the new value", func(ctx SpecContext) {
		exp := Experiment("helm: values change")
		facts := h.newFacts("helm: values change", "a commit changes the staging values of greeter (message): the release is upgraded to revision 2 and the pods carry the new message")
		want := fmt.Sprintf("hello from staging, v2 (%d)", GinkgoRandomSeed())
		start := time.Now()
		commit := h.push(ctx, "greeter: new staging message", func(dir string) {
			replaceIn(dir, helmValues, `message: "hello from staging"`, fmt.Sprintf("message: %q", want))
		})
		at := h.untilEach(ctx, start, func(c string) func(context.Context) error {
			return all(h.released(c, 2), h.podsSay(c, want))
		})
		for _, c := range h.clusters {
			h.measure(exp, facts, c, "push to pods with the new value", at[c])
			Expect(h.releaseSecrets(ctx, c)).To(Equal("v1=superseded, v2=deployed"), "cluster %s", c)
			Eventually(h.compliant(c)).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())
			facts.release(ctx, h, c, helmAppNS+"/"+helmApp)
		}
		Note("commit %.12s upgraded greeter to revision 2 on %v", commit, h.clusters)
		if h.fidelity {
			Note("Real Flux's time after a push is mostly kustomize-controller's dependency wait: a Kustomization whose dependency reads the same source " +
				"waits until that dependency has applied the new revision, re-checking every --requeue-dependency (30 s, its default; twin/flux passes none; kustomize-controller v1.9.5 " +
				"checkDependencies and main.go), " +
				"and apps waits on infra-configs, which waits on infra-controllers. The twin's engine wakes a dependent as soon as its dependency is Ready.")
		}
		facts.finish()
	})

	It("rolls a failing upgrade back (upgrade remediation), the configuration Non-Compliant, then Compliant after the fix", func(ctx SpecContext) {
		exp := Experiment("helm: failed upgrade")
		facts := h.newFacts("helm: failed upgrade and rollback", "a commit sets an invalid Service port (70000) in greeter's values: the upgrade fails at the API server, "+
			"upgrade remediation (retries 1, strategy rollback) rolls back, the Arc configuration is Non-Compliant; `git revert` makes it Compliant again")
		start := time.Now()
		commit := h.push(ctx, "greeter: expose on port 70000", func(dir string) {
			replaceIn(dir, helmValues, "  values:\n", "  values:\n    service:\n      port: 70000\n")
		})
		tl := NewTimeline(start)
		at := h.untilEach(ctx, start, func(c string) func(context.Context) error {
			return all(h.remediated(c), h.compliance(c, arc.NonCompliant))
		})
		for _, c := range h.clusters {
			tl.Add(start.Add(at[c]), "rolled back, Non-Compliant", c+" ("+h.engine(c)+")")
			h.measure(exp, facts, c, "push to rolled back and Non-Compliant", at[c])
			// The rollback left the last good release running: the Service on port 80.
			svc, err := h.e.Kube[c].CoreV1().Services(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(80), "cluster %s: the rolled-back Service", c)
		}
		// Both engines stall after the remediation retries; let each settle before the facts are taken.
		for _, c := range h.clusters {
			InterceptGomegaFailures(func() {
				Eventually(h.stalled(c)).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())
			})
			facts.release(ctx, h, c, helmAppNS+"/"+helmApp)
			facts.set(c, "Helm storage after the failed upgrade", h.releaseSecrets(ctx, c))
		}
		Note("commit %.12s (Service port 70000) failed to upgrade and was rolled back on %v", commit, h.clusters)

		fixed := time.Now()
		revert := h.e.GitRevertHead(ctx, "main")
		at = h.untilEach(ctx, fixed, h.compliant)
		for _, c := range h.clusters {
			tl.Add(fixed.Add(at[c]), "Compliant", c+" ("+h.engine(c)+")")
			h.measure(exp, facts, c, "revert to Compliant", at[c])
			Expect(h.readyOf(ctx, c, helmAppNS, helmApp)).To(HavePrefix("True"), "cluster %s", c)
			facts.setPrefixed(c, "after the revert: ", func(f *helmFacts) { f.release(ctx, h, c, helmAppNS+"/"+helmApp) })
		}
		Note("revert %.12s made the configuration Compliant again on %v", revert, h.clusters)
		facts.finish()
	})

	It("corrects a hand edit of the release's Deployment (spec.driftDetection.mode: enabled)", func(ctx SpecContext) {
		exp := Experiment("helm: drift detection")
		facts := h.newFacts("helm: drift detection", "a commit turns on greeter's spec.driftDetection (mode enabled); a hand edit scales its Deployment to 5; "+
			"`flux reconcile hr` (the requestedAt annotation) makes the engine detect the drift and put the chart's replicas back")
		h.push(ctx, "greeter: drift detection on", func(dir string) {
			replaceIn(dir, helmValues, "spec:\n", "spec:\n  driftDetection:\n    mode: enabled\n")
		})
		h.untilEach(ctx, time.Now(), h.observed)
		// The hand edit, then `flux reconcile hr greeter`: both engines check for drift when they reconcile
		// (helm-controller v1.6.4 at its interval, 10m here, or on request).
		start := time.Now()
		for _, c := range h.clusters {
			_, err := h.e.Kube[c].AppsV1().Deployments(helmAppNS).Patch(ctx, helmApp, types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: scale greeter by hand", c)
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
			_, err = h.e.api(c).dyn.Resource(helmReleaseGVR).Namespace(helmAppNS).Patch(ctx, helmApp, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred(), "cluster %s: request a reconcile of greeter", c)
		}
		at := h.untilEach(ctx, start, func(c string) func(context.Context) error {
			return func(ctx context.Context) error {
				d, err := h.e.Kube[c].AppsV1().Deployments(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if d.Spec.Replicas == nil || *d.Spec.Replicas != helmAppReplicas {
					return fmt.Errorf("cluster %s: Deployment greeter has %v replicas, want the chart's %d", c, d.Spec.Replicas, helmAppReplicas)
				}
				return nil
			}
		})
		// The objects are put back before the engine writes its status: let each finish its reconcile.
		h.untilEach(ctx, start, h.observed)
		for _, c := range h.clusters {
			h.measure(exp, facts, c, "reconcile request to drift corrected", at[c])
			facts.release(ctx, h, c, helmAppNS+"/"+helmApp)
			facts.events(ctx, h, c, helmAppNS, helmApp)
		}
		Note("a hand-scaled greeter Deployment was put back to %d replicas on %v", helmAppReplicas, h.clusters)
		facts.finish()
	})

	It("uninstalls the release when its HelmRelease is deleted from Git: objects and Helm's storage gone", func(ctx SpecContext) {
		exp := Experiment("helm: uninstall")
		facts := h.newFacts("helm: uninstall", "a commit drops greeter's HelmRelease from Git: the Kustomization prunes it and the engine uninstalls the release")
		start := time.Now()
		commit := h.push(ctx, "greeter: retire the release", func(dir string) {
			replaceIn(dir, "apps/base/greeter/kustomization.yaml", "  - release.yaml\n", "")
			replaceIn(dir, "apps/staging/kustomization.yaml", "patches:\n  - path: greeter-values.yaml\n    target:\n      kind: HelmRelease\n      name: greeter\n", "")
			Expect(os.Remove(filepath.Join(dir, filepath.FromSlash(helmValues)))).To(Succeed())
		})
		at := h.untilEach(ctx, start, h.uninstalled)
		for _, c := range h.clusters {
			h.measure(exp, facts, c, "push to uninstalled", at[c])
			Eventually(h.compliant(c)).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())
			facts.set(c, "HelmRelease greeter/greeter", h.presence(ctx, c, helmReleaseGVR, helmAppNS, helmApp))
			facts.set(c, "Helm storage", h.releaseSecrets(ctx, c))
			facts.events(ctx, h, c, helmAppNS, helmApp)
		}
		Note("commit %.12s uninstalled greeter on %v", commit, h.clusters)
		facts.finish()
	})
}

// up brings up the helm-platform twin; withFlux adds helmPeer running real Flux.
func (h *helmRun) up(ctx context.Context, withFlux bool) {
	path := filepath.Join("..", "examples", "twins", helmSpecFile)
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	text := string(data)
	if withFlux {
		// The same cluster again, running real Flux, in the same configuration's cluster list.
		for _, r := range [][2]string{
			{"metadata:\n  name: helm-platform\n", "metadata:\n  name: helm-platform-flux\n"},
			{"  reconciler: hybridtwin\n", "  reconciler: hybridtwin\n  clusters:\n    " + helmPeer + ": {reconciler: flux}\n"},
			{"    clusters: [staging]\n", "    clusters: [staging, " + helmPeer + "]\n"},
		} {
			Expect(text).To(ContainSubstring(r[0]), "%s changed: the flux variant cannot add its cluster", path)
			text = strings.Replace(text, r[0], r[1], 1)
		}
		text += "  - name: " + helmPeer + "\n    controlPlane: {count: 1, vmSize: Standard_A4_v2}\n    nodePools:\n" +
			"    - {name: linux, osType: Linux, vmSize: Standard_K8S3_v1, count: 2}\n"
	}
	spec, err := twin.ParseSpec(path, []byte(text))
	Expect(err).NotTo(HaveOccurred(), "load the twin spec %s", path)
	for i := range spec.Spec.GitOps {
		if spec.Spec.GitOps[i].SyncIntervalInSeconds == 0 {
			spec.Spec.GitOps[i].SyncIntervalInSeconds = SourceIntervalSeconds
		}
	}
	waits, err := WaitsFor(spec.Spec.TimeProfile)
	Expect(err).NotTo(HaveOccurred())
	tmp, err := os.MkdirTemp("", "hybridtwin-scenario-"+spec.Metadata.Name+"-")
	Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(tmp, "state")
	By("bringing up twin " + spec.Metadata.Name + " from " + path)
	tw, err := twin.Up(ctx, spec, twin.Options{StateDir: stateDir, Progress: GinkgoWriter})
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	Expect(err).NotTo(HaveOccurred(), "bring up the twin of %s", path)
	h.upAt = time.Now()
	DeferCleanup(func() {
		By("taking twin " + spec.Metadata.Name + " down")
		Expect(tw.Down(context.Background(), false)).To(Succeed())
		left := processesUnder(stateDir)
		_ = os.RemoveAll(tmp)
		Expect(left).To(BeEmpty(), "processes of twin %s still running after Down", spec.Metadata.Name)
	})
	h.e, err = NewEnv(ctx, tw, waits)
	Expect(err).NotTo(HaveOccurred())
	h.clusters = spec.ClusterNames()
	h.fidelity = withFlux
}

// measure records a duration of a step on cluster c: in the report (named with the cluster and its
// engine) and in the step's fidelity row.
func (h *helmRun) measure(exp *gmeasure.Experiment, facts *helmFacts, c, what string, d time.Duration) {
	recordTiming(exp, fmt.Sprintf("%s (%s, %s)", what, c, h.engine(c)), d)
	facts.time(c, what, d)
}

// untilEach polls cond on every cluster of the run until it holds on all, and returns how long after
// start it first held on each (at the polling's resolution).
func (h *helmRun) untilEach(ctx context.Context, start time.Time, cond func(c string) func(context.Context) error) map[string]time.Duration {
	at := map[string]time.Duration{}
	Eventually(func(ctx context.Context) error {
		var errs []error
		for _, c := range h.clusters {
			if _, done := at[c]; done {
				continue
			}
			if err := cond(c)(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", c, h.engine(c), err))
				continue
			}
			at[c] = time.Since(start)
		}
		return errors.Join(errs...)
	}).WithContext(ctx).WithTimeout(h.e.Waits.Converge).WithPolling(h.e.Waits.Poll).Should(Succeed())
	return at
}

// all holds when every check holds, in order.
func all(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// head is main's commit.
func (h *helmRun) head(ctx context.Context) string {
	c, err := h.e.Git.BranchCommit(ctx, h.e.Repo, "main")
	Expect(err).NotTo(HaveOccurred())
	return c
}

// push commits a change on top of main's head and returns the new commit.
func (h *helmRun) push(ctx context.Context, message string, edit func(dir string)) string {
	head := h.head(ctx)
	dir := h.e.clone(ctx, h.e.Repo, "main", head)
	edit(dir)
	res, err := h.e.Git.Push(ctx, gitserver.PushRequest{Repo: h.e.Repo, Branch: "main", Dir: dir, Message: message})
	Expect(err).NotTo(HaveOccurred(), "push %q", message)
	Expect(res.Pushed).To(BeTrue(), "the change %q changed nothing", message)
	return res.Commit
}

// helmLayoutReady fails unless every Kustomization of the cluster (the configuration's root and the three
// from Git) is Ready at commit with its inventory on the cluster, and every HelmRelease of the layout is
// Ready for its generation.
func helmLayoutReady(ctx context.Context, a *clusterAPI, commit string) error {
	list, err := a.dyn.Resource(kustomizationGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var problems []string
	for _, k := range list.Items {
		if p := kustomizationNotApplied(ctx, a, &k, commit); p != "" {
			problems = append(problems, p)
		}
	}
	if len(list.Items) < 4 {
		problems = append(problems, fmt.Sprintf("%d Kustomizations, want the root and infra-controllers, infra-configs, apps from Git", len(list.Items)))
	}
	for _, r := range helmReleases {
		ns, name, _ := strings.Cut(r, "/")
		if s := readyFor(ctx, a, helmReleaseGVR, ns, name); !strings.HasPrefix(s, "True") {
			problems = append(problems, fmt.Sprintf("HelmRelease %s: Ready %s", r, s))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// readyFor is an object's Ready condition as "status (reason): message", for its current generation.
func readyFor(ctx context.Context, a *clusterAPI, gvr schema.GroupVersionResource, ns, name string) string {
	obj, err := a.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	for _, c := range conditionsOf(obj) {
		if c.Type == "Ready" {
			if c.ObservedGeneration != obj.GetGeneration() {
				return fmt.Sprintf("for generation %d, not %d", c.ObservedGeneration, obj.GetGeneration())
			}
			return fmt.Sprintf("%s (%s): %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition"
}

func (h *helmRun) readyOf(ctx context.Context, c, ns, name string) string {
	return readyFor(ctx, h.e.api(c), helmReleaseGVR, ns, name)
}

// conditionsOf reads status.conditions.
func conditionsOf(obj *unstructured.Unstructured) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	out := make([]metav1.Condition, 0, len(raw))
	for _, r := range raw {
		m, _ := r.(map[string]any)
		c := metav1.Condition{}
		c.Type, _ = m["type"].(string)
		s, _ := m["status"].(string)
		c.Status = metav1.ConditionStatus(s)
		c.Reason, _ = m["reason"].(string)
		c.Message, _ = m["message"].(string)
		c.ObservedGeneration, _ = m["observedGeneration"].(int64)
		out = append(out, c)
	}
	return out
}

// helmRelease reads greeter's (or another) HelmRelease.
func (h *helmRun) helmRelease(ctx context.Context, c, ns, name string) (*unstructured.Unstructured, error) {
	return h.e.api(c).dyn.Resource(helmReleaseGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// history is status.history as "vN=status" newest first.
func history(obj *unstructured.Unstructured) []string {
	raw, _, _ := unstructured.NestedSlice(obj.Object, "status", "history")
	var out []string
	for _, r := range raw {
		m, _ := r.(map[string]any)
		out = append(out, fmt.Sprintf("v%v=%v", m["version"], m["status"]))
	}
	return out
}

// observed holds once greeter is Ready for its current generation.
func (h *helmRun) observed(c string) func(context.Context) error {
	return func(ctx context.Context) error {
		obj, err := h.helmRelease(ctx, c, helmAppNS, helmApp)
		if err != nil {
			return err
		}
		og, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
		ready := readyFor(ctx, h.e.api(c), helmReleaseGVR, helmAppNS, helmApp)
		if og != obj.GetGeneration() || !strings.HasPrefix(ready, "True") {
			return fmt.Errorf("cluster %s: HelmRelease greeter generation %d observed %d, Ready %s", c, obj.GetGeneration(), og, ready)
		}
		return nil
	}
}

// released holds once greeter is Ready for its generation at release revision rev, deployed.
func (h *helmRun) released(c string, rev int) func(context.Context) error {
	return func(ctx context.Context) error {
		obj, err := h.helmRelease(ctx, c, helmAppNS, helmApp)
		if err != nil {
			return err
		}
		ready := readyFor(ctx, h.e.api(c), helmReleaseGVR, helmAppNS, helmApp)
		hist := history(obj)
		if !strings.HasPrefix(ready, "True") || len(hist) == 0 || hist[0] != fmt.Sprintf("v%d=deployed", rev) {
			return fmt.Errorf("cluster %s: HelmRelease greeter Ready %s, history %v; want Ready at v%d=deployed", c, ready, hist, rev)
		}
		return nil
	}
}

// remediated holds once greeter's Remediated condition says a rollback succeeded.
func (h *helmRun) remediated(c string) func(context.Context) error {
	return func(ctx context.Context) error {
		obj, err := h.helmRelease(ctx, c, helmAppNS, helmApp)
		if err != nil {
			return err
		}
		for _, cd := range conditionsOf(obj) {
			if cd.Type == "Remediated" && cd.Status == metav1.ConditionTrue && cd.Reason == "RollbackSucceeded" {
				return nil
			}
		}
		return fmt.Errorf("cluster %s: HelmRelease greeter not rolled back yet: %s; history %v", c, conditionFacts(obj), history(obj))
	}
}

// stalled holds once greeter is Stalled (its remediation retries used up).
func (h *helmRun) stalled(c string) func(context.Context) error {
	return func(ctx context.Context) error {
		obj, err := h.helmRelease(ctx, c, helmAppNS, helmApp)
		if err != nil {
			return err
		}
		for _, cd := range conditionsOf(obj) {
			if cd.Type == "Stalled" && cd.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("cluster %s: HelmRelease greeter not Stalled: %s", c, conditionFacts(obj))
	}
}

// compliance holds once the configuration's compliance on cluster c is want.
func (h *helmRun) compliance(c, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		st, err := h.e.GitOps(ctx, c, helmConfig)
		if err != nil {
			return err
		}
		if st.ComplianceState != want {
			return fmt.Errorf("configuration %s on %s is %s, want %s: %s", helmConfig, c, st.ComplianceState, want, st.Message)
		}
		return nil
	}
}

func (h *helmRun) compliant(c string) func(context.Context) error {
	return h.compliance(c, arc.Compliant)
}

// podsSay holds once greeter runs its replicas, every pod Ready with MESSAGE want (terminating pods of
// an older ReplicaSet are not counted).
func (h *helmRun) podsSay(c, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		pods, err := h.e.Kube[c].CoreV1().Pods(helmAppNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + helmApp})
		if err != nil {
			return err
		}
		var got []string
		ok := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			msg := ""
			for _, e := range p.Spec.Containers[0].Env {
				if e.Name == "MESSAGE" {
					msg = e.Value
				}
			}
			ready := false
			for _, cd := range p.Status.Conditions {
				ready = ready || (cd.Type == corev1.PodReady && cd.Status == corev1.ConditionTrue)
			}
			got = append(got, fmt.Sprintf("%s: MESSAGE %q ready %v", p.Name, msg, ready))
			if msg == want && ready {
				ok++
			}
		}
		if ok != helmAppReplicas || len(got) != helmAppReplicas {
			return fmt.Errorf("cluster %s: want %d Ready pods of greeter saying %q, have %v", c, helmAppReplicas, want, got)
		}
		return nil
	}
}

// releaseSecrets is Helm's storage of release greeter: its Secrets (owner=helm, name=greeter) as
// "vN=status", by revision.
func (h *helmRun) releaseSecrets(ctx context.Context, c string) string {
	list, err := h.e.Kube[c].CoreV1().Secrets(helmAppNS).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + helmApp})
	if err != nil {
		return "unreadable: " + err.Error()
	}
	type rev struct {
		n int
		s string
	}
	var revs []rev
	for _, s := range list.Items {
		var n int
		_, _ = fmt.Sscan(s.Labels["version"], &n)
		revs = append(revs, rev{n, fmt.Sprintf("v%d=%s", n, s.Labels["status"])})
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].n < revs[j].n })
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = r.s
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// uninstalled holds once greeter's HelmRelease, Deployment, Service, Ingress and Helm storage are gone.
func (h *helmRun) uninstalled(c string) func(context.Context) error {
	return func(ctx context.Context) error {
		var left []string
		kube := h.e.Kube[c]
		if _, err := h.helmRelease(ctx, c, helmAppNS, helmApp); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("HelmRelease (%v)", err))
		}
		if _, err := kube.AppsV1().Deployments(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "Deployment")
		}
		if _, err := kube.CoreV1().Services(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "Service")
		}
		if _, err := kube.NetworkingV1().Ingresses(helmAppNS).Get(ctx, helmApp, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "Ingress")
		}
		if s := h.releaseSecrets(ctx, c); s != "none" {
			left = append(left, "Helm storage "+s)
		}
		if len(left) > 0 {
			return fmt.Errorf("cluster %s: greeter not uninstalled yet, left: %s", c, strings.Join(left, ", "))
		}
		return nil
	}
}

func (h *helmRun) presence(ctx context.Context, c string, gvr schema.GroupVersionResource, ns, name string) string {
	_, err := h.e.api(c).dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "absent"
	case err != nil:
		return "unreadable: " + err.Error()
	}
	return "present"
}

// conditionFacts lists an object's conditions as type=status (reason), sorted.
func conditionFacts(obj *unstructured.Unstructured) string {
	var out []string
	for _, c := range conditionsOf(obj) {
		stale := ""
		if c.ObservedGeneration != obj.GetGeneration() {
			stale = fmt.Sprintf(" for generation %d of %d", c.ObservedGeneration, obj.GetGeneration())
		}
		out = append(out, fmt.Sprintf("%s=%s (%s)%s", c.Type, c.Status, c.Reason, stale))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
