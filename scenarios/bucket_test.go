package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/gitserver"
)

// bucketSpecPath is the twin whose configurations sync from S3 buckets (examples/twins/bucket-source.yaml).
var bucketSpecPath = filepath.Join("..", "examples", "twins", "bucket-source.yaml")

// bucketSpecs: Flux Bucket sources end to end in a twin of their own (label bucket): the layout published
// as a bucket of the twin's S3 server (versitygw), fluxConfigurations of sourceKind Bucket through ARM, the
// Arc agent's Bucket objects reconciled by the twin's engine, and a new upload reaching the cluster
// (upload-to-applied measured). Run with `go tool task scenario -- --label-filter=bucket`.
func bucketSpecs() {
	Describe("bucket", Label("bucket"), Ordered, func() {
		var be *Env
		BeforeAll(func(ctx SpecContext) {
			be = upOwnTwin(ctx, bucketSpecPath, nil, true)
			Note("twin %s up and Compliant after %s; S3 server %s", be.Twin.Spec().Metadata.Name,
				be.Twin.ReadyAfter().Round(time.Second), be.Twin.S3().URL())
		}, NodeTimeout(ownTwinTimeout))

		It("converges Bucket-synced configurations: Compliant, each Bucket Ready at source-controller's revision of the bucket", func(ctx SpecContext) {
			Expect(be.Compliance(ctx)).To(Succeed())
			st, err := be.Twin.Status(ctx)
			Expect(err).NotTo(HaveOccurred())
			var s3Up []bool
			for _, c := range st.Components {
				if c.Name == "s3 (versitygw)" {
					s3Up = append(s3Up, c.Up && c.PID == be.Twin.S3().PID())
				}
			}
			Expect(s3Up).To(Equal([]bool{true}), "hybridtwin status does not show the S3 server up")
			s := be.Twin.Spec()
			for _, c := range s.ClusterNames() {
				cfg, err := be.Twin.RESTConfig(c)
				Expect(err).NotTo(HaveOccurred())
				t, err := arcagent.NewClusterTarget(cfg)
				Expect(err).NotTo(HaveOccurred())
				for _, g := range s.Spec.GitOps {
					Expect(g.Bucket).NotTo(BeNil(), "configuration %s of %s is not bucket-sourced", g.Name, bucketSpecPath)
					b, ok := t.Bucket(g.Namespace, g.Name)
					Expect(ok).To(BeTrue(), "cluster %s: no Bucket %s/%s; the Arc agent did not make one", c, g.Namespace, g.Name)
					Expect(b.Spec.Provider).To(Equal(sourcev1.BucketProviderGeneric))
					Expect(b.Spec.Endpoint).To(Equal(be.Twin.S3().Endpoint()))
					Expect(apimeta.IsStatusConditionTrue(b.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "cluster %s: Bucket %s/%s: %v", c, g.Namespace, g.Name, b.Status.Conditions)
					Expect(b.Status.Artifact).NotTo(BeNil())
					Expect(b.Status.Artifact.Revision).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
					st, err := be.GitOps(ctx, c, g.Name)
					Expect(err).NotTo(HaveOccurred())
					Expect(st.SyncedCommit).To(Equal(b.Status.Artifact.Revision), "cluster %s: configuration %s reports another revision than its Bucket", c, g.Name)
				}
			}
			cm, err := be.Kube["dev"].CoreV1().ConfigMaps(baseConfigMapNS).Get(ctx, baseConfigMapName, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "the apps layer from the bucket is not applied")
			Expect(cm.Data).To(HaveKey("PODINFO_UI_MESSAGE"))
		})

		It("applies a new upload to the bucket (upload-to-applied)", func(ctx SpecContext) {
			exp := Experiment("bucket: upload to applied")
			val := fmt.Sprintf("bucket-release-%d", GinkgoRandomSeed())
			src := filepath.Join(be.Twin.Spec().SourceDir(be.Twin.Spec().Spec.GitOps[0]), filepath.FromSlash(baseConfigMapFile))
			data, err := os.ReadFile(src)
			Expect(err).NotTo(HaveOccurred())
			body := strings.Replace(string(data), "\ndata:\n", "\ndata:\n  RELEASE: \""+val+"\"\n", 1)
			body = strings.ReplaceAll(body, gitserver.PlaceholderRegistry, be.Twin.RegistryHost())
			bucket := be.Twin.Spec().Spec.GitOps[0].Bucket.Name
			before := bucketRevision(ctx, be)
			start := time.Now()
			Expect(be.Twin.S3().Put(ctx, bucket, baseConfigMapFile, []byte(body))).To(Succeed())
			waitConfigValue(ctx, be, exp, start, "RELEASE", val, "upload to applied")
			// The Arc agent reports the new revision on its own cadence, after the apply.
			Eventually(func(ctx context.Context) (string, error) {
				st, err := be.GitOps(ctx, "dev", be.Twin.Spec().Spec.GitOps[0].Name)
				return st.SyncedCommit, err
			}).WithContext(ctx).WithTimeout(be.Waits.Converge).
				WithPolling(be.Waits.Poll).ShouldNot(Equal(before), "the configuration still reports the bucket revision from before the upload")
			Eventually(be.Compliance).WithContext(ctx).WithTimeout(be.Waits.Converge).WithPolling(be.Waits.Poll).Should(Succeed())
			after := bucketRevision(ctx, be)
			Note("Object %s uploaded to bucket %s: applied on %v; the Bucket's revision went from %.19s to %.19s. The Bucket "+
				"is listed every %d s (its interval, from the configuration's syncIntervalInSeconds; a bucket sends no webhook), so "+
				"upload-to-applied is at most that plus fetch, build and apply.",
				baseConfigMapFile, bucket, be.Twin.Spec().ClusterNames(), before, after, SourceIntervalSeconds)
		})
	})
}

// bucketRevision is the revision the first configuration of the bucket twin reports on dev.
func bucketRevision(ctx SpecContext, e *Env) string {
	st, err := e.GitOps(ctx, "dev", e.Twin.Spec().Spec.GitOps[0].Name)
	Expect(err).NotTo(HaveOccurred())
	return st.SyncedCommit
}
