package twin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/proctest"
	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

// A twin whose GitOps configuration names an OCI source, through twin.Up: spec.artifacts' folder pushed to
// the twin's registry as a Flux artifact (the registry placeholder rewritten), the configuration PUT
// through ARM at api-version 2025-04-01 with sourceKind OCIRepository, and both engines converging it --
// the twin's reconciler on one cluster, real Flux (source-controller v1.9.6, kustomize-controller v1.9.5)
// on the other: Compliant with the tag@digest revision in Azure and the ConfigMap on each cluster. Down
// leaves no process behind.
func TestOCIGitOpsThroughUp(t *testing.T) {
	requireFluxTools(t)
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	inventory, err := filepath.Abs(filepath.Join("..", "examples", "hardware", "branch-4node.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	folder, err := filepath.Abs(filepath.Join("spec", "testdata", "specs", "oci-artifact"))
	g.Expect(err).NotTo(HaveOccurred())
	specFile := filepath.Join(dir, "twin.yaml")
	g.Expect(os.WriteFile(specFile, []byte(fmt.Sprintf(`apiVersion: hybridtwin.io/v1alpha1
kind: Twin
metadata:
  name: oci-up
spec:
  hardware:
    inventory: %s
  timeProfile: fast
  reconciler: hybridtwin
  clusters:
    oci-flux: {reconciler: flux}
  artifacts:
  - {repository: manifests/platform, tag: "1.0.0", path: %s}
  gitops:
  - name: platform
    clusters: ["*"]
    oci: {repository: manifests/platform, tag: "1.0.0"}
    syncIntervalInSeconds: 60
    kustomizations:
      apps: {path: ./apps, prune: true, retryIntervalInSeconds: 5}
---
apiVersion: hybridtwin.io/v1alpha1
kind: ClusterPlan
metadata:
  name: oci-up
spec:
  workloadClusters:
  - name: oci-twin
    controlPlane: {count: 1, vmSize: Standard_A4_v2}
    nodePools:
    - {name: linux, vmSize: Standard_K8S3_v1, count: 1}
  - name: oci-flux
    controlPlane: {count: 1, vmSize: Standard_A4_v2}
    nodePools:
    - {name: linux, vmSize: Standard_K8S3_v1, count: 1}
`, inventory, folder)), 0o644)).To(Succeed())
	spec, err := LoadSpec(specFile)
	g.Expect(err).NotTo(HaveOccurred())

	stateDir := filepath.Join(dir, "state")
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
	g.Expect(progress.String()).To(ContainSubstring("artifacts: " + tw.RegistryHost() + "/manifests/platform:1.0.0 <- "))
	pushed, err := tw.e.Registry().Client().Manifest(ctx, "manifests/platform", "1.0.0")
	g.Expect(err).NotTo(HaveOccurred())

	for _, name := range []string{"oci-twin", "oci-flux"} {
		kc, err := kubernetes.NewForConfig(mustConfig(t, tw, name))
		g.Expect(err).NotTo(HaveOccurred())
		id := arcsdk.FluxConfigurationID(arcID(t, tw, name), "platform")
		state := func() string {
			c, err := arcsdk.GetFluxConfiguration(ctx, tw.e.ArcEndpoint(), id)
			if err != nil {
				return "error: " + err.Error()
			}
			return c.Properties.ComplianceState + " " + c.Properties.ErrorMessage
		}
		g.Eventually(state).WithTimeout(converge).WithPolling(poll).Should(Equal(arc.Compliant+" "), "cluster %s", name)
		c, err := arcsdk.GetFluxConfiguration(ctx, tw.e.ArcEndpoint(), id)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Properties.SourceKind).To(Equal(arc.SourceKindOCIRepository))
		g.Expect(c.Properties.OCIRepository).NotTo(BeNil())
		g.Expect(c.Properties.OCIRepository.URL).To(Equal("oci://" + tw.RegistryHost() + "/manifests/platform"))
		g.Expect(c.Properties.OCIRepository.Insecure).To(HaveValue(BeTrue()))
		g.Expect(c.Properties.SourceSyncedCommitID).To(Equal("1.0.0@"+pushed.Digest), "cluster %s", name)

		cm, err := kc.CoreV1().ConfigMaps("oci-team").Get(ctx, "oci-settings", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "cluster %s", name)
		g.Expect(cm.Data).To(HaveKeyWithValue("mode", "blue"))
		// The placeholder was rewritten when the artifact was packed, as in a seeded repository.
		g.Expect(cm.Data).To(HaveKeyWithValue("image", tw.RegistryHost()+"/apps/podinfo:6.5.0"))
		if name == "oci-flux" {
			var managers []string
			for _, f := range cm.ManagedFields {
				managers = append(managers, f.Manager)
			}
			g.Expect(managers).To(ContainElement("kustomize-controller"), "real Flux applied it")
		}
	}

	g.Expect(tw.Down(ctx, false)).To(Succeed())
	downed = true
	g.Expect(proctest.Under(stateDir)).To(BeEmpty(), "processes left under the state directory")
	_, err = os.Stat(stateDir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "state directory left: %v", err)
}

// requireFluxTools skips when the Flux controllers are not in the tool cache and the real-Flux tests were
// not asked for (HYBRIDTWIN_FLUX_TESTS=1 builds them: ~7 min), as twin/flux's own tests do.
func requireFluxTools(t *testing.T) {
	t.Helper()
	if os.Getenv("HYBRIDTWIN_FLUX_TESTS") == "1" {
		return
	}
	c, err := toolcache.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []toolcache.Tool{toolcache.SourceController, toolcache.KustomizeController} {
		if st := c.Stat(context.Background(), tool); !st.Built {
			t.Skipf("%s is not in the tool cache; build it with `go run ./cmd/hybridtwin tools build %s` or set HYBRIDTWIN_FLUX_TESTS=1", tool, tool.Name)
		}
	}
}

// arcID is a cluster's connectedCluster resource ID in the Arc fake.
func arcID(t *testing.T, tw *Twin, name string) string {
	t.Helper()
	for _, cc := range tw.Arc().ConnectedClusters() {
		if cc.Name == name {
			return cc.ID
		}
	}
	t.Fatalf("cluster %s is not connected to Arc", name)
	return ""
}
