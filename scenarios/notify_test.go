package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hybridtwin/hybridtwin/fakes/alerts"
	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
)

// notifySpecPath is the twin with notification-controller in both clusters (examples/twins/notifications.yaml):
// dev runs the twin's engine, prod real Flux.
var notifySpecPath = filepath.Join("..", "examples", "twins", "notifications.yaml")

var (
	notifyGitRepoGVR  = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	notifyReceiverGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1", Resource: "receivers"}
	notifyProviderGVR = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "providers"}
	notifyAlertGVR    = schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "alerts"}
)

// notifyEngine names each cluster of the notifications twin by the engine it runs, for the fidelity row.
var notifyEngine = map[string]string{"dev": engineOurs, "prod": engineFlux}

// notifySpecs: Flux's notification-controller in a twin of its own (label notify; it needs the optional
// notification-controller tool, so CI's run leaves it out and the nightly workflow runs it). Each cluster's
// configuration polls at Arc's default interval (600 s), so a push applied well within that came through
// Gitea's webhook to the cluster's Receiver (the GitRepository's requestedAt annotation shows it); a
// broken commit makes each engine's Kustomization fail, notification-controller sends one alert per
// cluster to the team's sink, and the gitea Provider sets a failing commit status on the commit.
func notifySpecs() {
	Describe("notify", Label("notify"), Ordered, func() {
		var ne *Env
		fid := &behaviourResult{}
		finished := false
		BeforeAll(func(ctx SpecContext) {
			ne = upOwnTwin(ctx, notifySpecPath, func(s *twin.Spec) {
				for i := range s.Spec.GitOps {
					s.Spec.GitOps[i].SyncIntervalInSeconds = arc.DefaultSyncIntervalSeconds
				}
			}, true)
			st, err := ne.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			var up []string
			for _, c := range st.Components {
				if strings.HasSuffix(c.Name, "/flux notification-controller") && c.Up {
					up = append(up, c.Name)
				}
			}
			Expect(up).To(ConsistOf("dev/flux notification-controller", "prod/flux notification-controller"),
				"hybridtwin status must show notification-controller up in every cluster")
			Note("twin %s up and Compliant after %s; notification-controller in %v", ne.Twin.Spec().Metadata.Name,
				ne.Twin.ReadyAfter().Round(time.Second), up)
		}, NodeTimeout(ownTwinTimeout))
		AfterAll(func() {
			recordFidelityRow(fidelityBehaviour{name: "notifications",
				check: "push webhook through a Receiver triggers the GitRepository; a failing Kustomization alerts once and sets a failing commit status (notifications twin: dev ours, prod Flux)"},
				fid, finished)
		})

		It("applies a push through each cluster's Receiver (push-to-applied)", func(ctx SpecContext) {
			for _, c := range ne.Twin.Spec().ClusterNames() {
				r, err := ne.api(c).dyn.Resource(notifyReceiverGVR).Namespace(flux.RuntimeNamespace).Get(ctx, "gitea-"+ne.Repo.Name, metav1.GetOptions{})
				Expect(err).NotTo(HaveOccurred(), "cluster %s: the twin made no Receiver for %s", c, ne.Repo)
				path, _, _ := unstructured.NestedString(r.Object, "status", "webhookPath")
				Expect(path).To(HavePrefix("/hook/"), "cluster %s: Receiver without a webhook path", c)
			}
			before := map[string]string{}
			for _, c := range ne.Twin.Spec().ClusterNames() {
				before[c] = notifyRequestedAt(ctx, ne, c)
			}
			exp := Experiment("notify: push to applied")
			val := fmt.Sprintf("notify-release-%d", GinkgoRandomSeed())
			dir := ne.WorkingCopy()
			f := filepath.Join(dir, filepath.FromSlash(baseConfigMapFile))
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(f, []byte(strings.Replace(string(data), "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n", 1)), 0o644)).To(Succeed())
			start := time.Now()
			commit := ne.Push(ctx, "main", dir, "apps/base: RELEASE "+val)
			waitConfigValue(ctx, ne, exp, start, "RELEASE", val, "push to applied")
			secs := map[string]*float64{}
			for _, c := range ne.Twin.Spec().ClusterNames() {
				at := notifyRequestedAt(ctx, ne, c)
				Expect(at).NotTo(Equal(before[c]), "cluster %s: the GitRepository was not annotated by the Receiver", c)
				fid.set(&fidEngine{name: notifyEngine[c]}, "GitRepository requestedAt set by the Receiver on push", "yes")
				if m := exp.Get("push to applied on " + c); len(m.Durations) > 0 {
					v := m.Durations[len(m.Durations)-1].Seconds()
					secs[notifyEngine[c]] = &v
				}
			}
			fid.timing("push to applied (s)", secs)
			Note("Commit %.12s applied on %v through Gitea's push webhook to each cluster's Receiver (configurations poll every %d s).",
				commit, ne.Twin.Spec().ClusterNames(), arc.DefaultSyncIntervalSeconds)
		})

		It("alerts once per cluster on a failing reconcile and sets a failing commit status", func(ctx SpecContext) {
			sinks := map[string]*alerts.Sink{}
			for _, c := range ne.Twin.Spec().ClusterNames() {
				s, err := alerts.Start(alerts.Generic, alerts.Options{})
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func(ctx context.Context) { _ = s.Close(ctx) })
				sinks[c] = s
				d := ne.api(c).dyn
				for _, o := range []struct {
					gvr schema.GroupVersionResource
					obj map[string]any
				}{
					{notifyProviderGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
						"metadata": map[string]any{"name": "team", "namespace": flux.RuntimeNamespace},
						"spec":     map[string]any{"type": "generic", "address": s.URL()}}},
					{notifyAlertGVR, map[string]any{"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
						"metadata": map[string]any{"name": "team", "namespace": flux.RuntimeNamespace},
						"spec": map[string]any{"providerRef": map[string]any{"name": "team"}, "eventSeverity": "error",
							"eventSources": []any{map[string]any{"kind": "Kustomization", "name": "*", "namespace": "apps"}}}}},
				} {
					_, err := d.Resource(o.gvr).Namespace(flux.RuntimeNamespace).Create(ctx, &unstructured.Unstructured{Object: o.obj}, metav1.CreateOptions{})
					Expect(err).NotTo(HaveOccurred())
				}
				DeferCleanup(func(ctx context.Context) {
					_ = d.Resource(notifyAlertGVR).Namespace(flux.RuntimeNamespace).Delete(ctx, "team", metav1.DeleteOptions{})
					_ = d.Resource(notifyProviderGVR).Namespace(flux.RuntimeNamespace).Delete(ctx, "team", metav1.DeleteOptions{})
				})
			}

			By("pushing a commit whose apps overlays name a missing folder")
			restore := ne.WorkingCopy()
			dir := ne.WorkingCopy()
			for _, env := range []string{"dev", "prod"} {
				appendResource(dir, "apps/"+env+"/kustomization.yaml", "../missing-"+env)
			}
			commit := ne.Push(ctx, "main", dir, "apps: name a folder that does not exist")
			DeferCleanup(func(ctx context.Context) {
				By("putting the repository back")
				ne.Push(ctx, "main", restore, "apps: put the overlays back")
				Eventually(ne.Compliance).WithContext(ctx).WithTimeout(ne.Waits.Converge).WithPolling(ne.Waits.Poll).Should(Succeed())
			})

			for _, c := range ne.Twin.Spec().ClusterNames() {
				ks := arcagent.KustomizationName("apps-"+c, "apps")
				Eventually(func() []alerts.Delivery { return sinks[c].Deliveries() }).WithContext(ctx).WithTimeout(ne.Waits.Converge).
					WithPolling(ne.Waits.Poll).ShouldNot(BeEmpty(), "cluster %s: no alert for the failing Kustomization %s", c, ks)
			}
			// notification-controller sends an identical event once per rate-limit interval (5 min, its
			// --rate-limit-interval default); the engines retry at Arc's retryIntervalInSeconds (600 s).
			// Watching a few poll rounds longer shows no second alert arrives meanwhile.
			Consistently(func() map[string]int {
				out := map[string]int{}
				for c, s := range sinks {
					out[c] = len(s.Deliveries())
				}
				return out
			}).WithContext(ctx).WithTimeout(10*ne.Waits.Poll).WithPolling(ne.Waits.Poll).Should(Equal(map[string]int{"dev": 1, "prod": 1}),
				"a failing reconcile must alert once per cluster")
			for _, c := range ne.Twin.Spec().ClusterNames() {
				d := sinks[c].Deliveries()[0]
				Expect(d.Severity).To(Equal("error"), "cluster %s", c)
				Expect(d.Object).To(Equal("kustomization/"+arcagent.KustomizationName("apps-"+c, "apps")+".apps"), "cluster %s", c)
				fid.set(&fidEngine{name: notifyEngine[c]}, "alerts on a failing Kustomization", fmt.Sprint(len(sinks[c].Deliveries())))
				fid.set(&fidEngine{name: notifyEngine[c]}, "alert severity", d.Severity)
				Note("cluster %s: one alert: %s %s: %s", c, d.Severity, d.Object, d.Message)
			}

			// The gitea Provider the twin made for the repository: one failing status per cluster on the commit.
			var failing []string
			Eventually(func(ctx context.Context) ([]string, error) {
				sts, err := ne.Git.CommitStatuses(ctx, ne.Repo, commit)
				failing = nil
				for _, s := range sts { // every status set is listed; count each Provider's context once
					if s.State == "failure" && !contains(failing, s.Context) {
						failing = append(failing, s.Context)
					}
				}
				return failing, err
			}).WithContext(ctx).WithTimeout(ne.Waits.Converge).WithPolling(ne.Waits.Poll).Should(HaveLen(2),
				"a failing commit status per cluster (one gitea Provider each) on commit %.12s", commit)
			for _, c := range ne.Twin.Spec().ClusterNames() {
				fid.set(&fidEngine{name: notifyEngine[c]}, "failing commit status on the commit", "yes")
			}
			Note("Commit %.12s: failing commit statuses %v in Gitea.", commit, failing)
			finished = true
		})
	})
}

// notifyRequestedAt is the reconcile.fluxcd.io/requestedAt annotation of a cluster's configuration's
// GitRepository (apps-<cluster> in apps).
func notifyRequestedAt(ctx context.Context, e *Env, c string) string {
	r, err := e.api(c).dyn.Resource(notifyGitRepoGVR).Namespace("apps").Get(ctx, "apps-"+c, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	return r.GetAnnotations()["reconcile.fluxcd.io/requestedAt"]
}
