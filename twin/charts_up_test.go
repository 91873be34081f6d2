package twin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/proctest"
)

// examples/twins/helm-repository.yaml through twin.Up: a HelmRepository naming an upstream URL, unchanged
// in Git, and a HelmRelease of a chart from it, on real Flux and on the twin's engine. The chart mirror
// step serves the spec.charts folder at that URL; source-controller (or the twin's engine, through the
// mirror's transport) fetches the index through it, the release is installed with the values from Git,
// and the configuration is Compliant. Down leaves nothing.
func TestHelmRepositoryThroughUp(t *testing.T) {
	t.Run("flux", func(t *testing.T) {
		requireFluxTools(t)
		helmRepositoryThroughUp(t, ReconcilerFlux)
	})
	t.Run("hybridtwin", func(t *testing.T) { helmRepositoryThroughUp(t, ReconcilerHybridtwin) })
}

func helmRepositoryThroughUp(t *testing.T, engine ReconcilerName) {
	g := NewWithT(t)
	ctx := context.Background()
	spec, err := LoadSpec(filepath.Join("..", "examples", "twins", "helm-repository.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	spec.Spec.Reconciler = engine
	stateDir := filepath.Join(t.TempDir(), "state")
	progress := &hookWriter{}
	tw, err := Up(ctx, spec, Options{StateDir: stateDir, Progress: progress})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, progress.String())
	}
	downed := false
	defer func() {
		if !downed {
			_ = tw.Down(context.Background(), false)
		}
	}()
	g.Expect(progress.String()).To(ContainSubstring("charts: https://stefanprodan.github.io/podinfo <- 1 chart(s), served at http://127.0.0.1:"))

	id := arcsdk.FluxConfigurationID(arcID(t, tw, "dev"), "platform")
	state := func() string {
		c, err := arcsdk.GetFluxConfiguration(ctx, tw.e.ArcEndpoint(), id)
		if err != nil {
			return "error: " + err.Error()
		}
		return c.Properties.ComplianceState + " " + c.Properties.ErrorMessage
	}
	g.Eventually(state).WithTimeout(converge).WithPolling(poll).Should(Equal(arc.Compliant + " "))

	cfg := mustConfig(t, tw, "dev")
	dyn := dynamic.NewForConfigOrDie(cfg)
	ready := func(gvr schema.GroupVersionResource, ns, name string) func() string {
		return func() string {
			obj, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Ready" {
					return fmt.Sprintf("%v: %v", m["status"], m["message"])
				}
			}
			return "no Ready condition yet"
		}
	}
	repo := schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmrepositories"}
	release := schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	g.Eventually(ready(repo, "flux-system", "podinfo")).WithTimeout(converge).WithPolling(poll).Should(HavePrefix("True"))
	g.Eventually(ready(release, "podinfo", "podinfo")).WithTimeout(converge).WithPolling(poll).Should(HavePrefix("True"))
	// Git's HelmRepository is as written: the twin did not rewrite the URL.
	hr, err := dyn.Resource(repo).Namespace("flux-system").Get(ctx, "podinfo", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	url, _, _ := unstructured.NestedString(hr.Object, "spec", "url")
	g.Expect(url).To(Equal("https://stefanprodan.github.io/podinfo"))
	// helm-controller installed the chart with the release's values.
	kc, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	dep, err := kc.AppsV1().Deployments("podinfo").Get(ctx, "podinfo", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	var managers []string
	for _, f := range dep.ManagedFields {
		managers = append(managers, f.Manager)
	}
	g.Expect(managers).To(ContainElement("helm-controller"), "the field manager helm-controller applies with")
	g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(tw.RegistryHost() + "/apps/podinfo:6.5.0"))

	g.Expect(tw.Down(ctx, false)).To(Succeed())
	downed = true
	g.Expect(proctest.Under(stateDir)).To(BeEmpty(), "processes left under the state directory")
	_, err = os.Stat(stateDir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "state directory left: %v", err)
}
