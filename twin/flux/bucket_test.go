package flux_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/flux"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// indexRevision is a Bucket's revision computed apart from any engine: sha256 over "<key> <etag>\n" of
// the bucket's objects in key order, as the server lists them.
func indexRevision(t *testing.T, s3 *s3server.Server, bucket string) string {
	t.Helper()
	cl, err := minio.New(s3.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey(), s3.SecretKey(), "")})
	if err != nil {
		t.Fatal(err)
	}
	etags := map[string]string{}
	for o := range cl.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		etags[o.Key] = o.ETag
	}
	keys := make([]string, 0, len(etags))
	for k := range etags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, etags[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// A Bucket fluxConfiguration (sourceKind Bucket, the secret key in bucketSecretKey) on a cluster whose
// engine is real Flux: objects on the twin's S3 server (versitygw), the Arc agent's Bucket and Secret read
// by source-controller v1.9.6, the Kustomization applied by kustomize-controller, Compliant with
// source-controller's revision -- which equals the index digest the twin's engine computes the same way
// -- and a new upload rolling out.
func TestFluxConvergesABucketConfiguration(t *testing.T) {
	requireFluxTests(t)
	testenv.RequireBucketServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	name := "flux-s3-" + suffix()
	info, cfg, kube := testCluster(ctx, t, name)
	ctl, err := flux.Start(ctx, flux.Options{Kubeconfig: info.Kubeconfig, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start flux: %v", err)
	}
	defer func() { _ = ctl.Stop() }()
	procs := ctl.Processes()

	s3, err := s3server.Start(ctx, s3server.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	defer s3.Stop()
	ns := "s3-" + suffix()
	const bucket = "platform-apps"
	g.Expect(s3.EnsureBucket(ctx, bucket)).To(Succeed())
	upload := func(mode string) {
		for k, v := range ociSettings(ns, mode) {
			g.Expect(s3.Put(ctx, bucket, k, []byte(v))).To(Succeed())
		}
	}
	upload("blue")

	srv := arc.NewServer(arc.Options{ProvisioningDelay: 10 * time.Millisecond})
	ep, err := srv.Listen("127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer ep.Close(context.Background())
	const sub, rg = "00000000-0000-4000-8000-000000000001", "rg-hci"
	const pollEvery = 10 * time.Millisecond
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, rg, name, "westeurope", pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	target, err := arcagent.NewClusterTarget(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	agent, err := arcagent.New(arcagent.Options{ClusterID: *cc.ID, Config: cfg, Target: target, Azure: srv})
	g.Expect(err).NotTo(HaveOccurred())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = agent.Run(ctx) }()
	defer func() { cancel(); <-agentDone }()

	yes := true
	// A short interval: a bucket sends no webhook, so source-controller finds an upload at its interval.
	ten, five := int64(10), int64(5)
	id := arcsdk.FluxConfigurationID(*cc.ID, "objects")
	_, err = arcsdk.PutFluxConfiguration(ctx, ep, id, arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		Scope: "cluster", Namespace: flux.RuntimeNamespace, SourceKind: arc.SourceKindBucket,
		Bucket:                         &arc.BucketDefinition{URL: s3.URL(), BucketName: bucket, AccessKey: s3.AccessKey(), Insecure: &yes, SyncIntervalInSeconds: &ten},
		ConfigurationProtectedSettings: map[string]string{arc.BucketSecretKeySetting: base64.StdEncoding.EncodeToString([]byte(s3.SecretKey()))},
		Kustomizations: map[string]*arc.KustomizationDefinition{
			"apps": {Path: "./apps", Prune: &yes, SyncIntervalInSeconds: &ten, RetryIntervalInSeconds: &five},
		},
	}}, pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	get := func() arc.FluxConfiguration {
		c, err := arcsdk.GetFluxConfiguration(ctx, ep, id)
		g.Expect(err).NotTo(HaveOccurred())
		return c
	}
	state := func() string {
		c := get()
		return c.Properties.ComplianceState + " " + c.Properties.ErrorMessage
	}
	mode := func() string {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "oci-settings", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return cm.Data["mode"]
	}
	g.Eventually(state).WithTimeout(settle).WithPolling(poll).Should(Equal(arc.Compliant+" "), "logs: %s", logsHint(procs))
	g.Expect(mode()).To(Equal("blue"))

	b, ok := target.Bucket(flux.RuntimeNamespace, "objects")
	g.Expect(ok).To(BeTrue())
	g.Expect(b.Spec.Provider).To(Equal(sourcev1.BucketProviderGeneric))
	g.Expect(apimeta.IsStatusConditionTrue(b.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "%+v", b.Status.Conditions)
	rev1 := indexRevision(t, s3, bucket)
	g.Expect(b.Status.Artifact.Revision).To(Equal(rev1), "source-controller's revision is not the index digest the twin's engine computes")
	g.Expect(get().Properties.SourceSyncedCommitID).To(Equal(rev1))
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "oci-settings", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(managers(cm.ManagedFields)).To(ContainElement("kustomize-controller"))

	// A new upload: source-controller finds it at the interval, kustomize-controller applies it.
	upload("green")
	rev2 := indexRevision(t, s3, bucket)
	g.Eventually(mode).WithTimeout(settle).WithPolling(poll).Should(Equal("green"), "logs: %s", logsHint(procs))
	g.Eventually(func() string { return get().Properties.SourceSyncedCommitID }).WithTimeout(settle).WithPolling(poll).Should(Equal(rev2))
}
