package arcagent_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
	"github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/arcagent"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// A Bucket fluxConfiguration, PUT through ARM with the secret key in the protected settings, end to end:
// objects on the twin's real S3 server (versitygw), the agent's Bucket and its credentials Secret as the
// Flux extension makes them, the twin's reconciler fetching it, compliance and the bucket's revision in
// Azure; a new upload rolls out; deleting the configuration prunes and removes the Bucket.
func TestBucketConfigurationConverges(t *testing.T) {
	testenv.RequireBucketServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	api := testenv.APIServer(t)
	s3, err := s3server.Start(ctx, s3server.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	defer s3.Stop()
	g.Expect(s3.EnsureBucket(ctx, "platform-apps")).To(Succeed())
	upload := func(mode string) {
		for k, v := range settings(mode) {
			g.Expect(s3.Put(ctx, "platform-apps", k, []byte(v))).To(Succeed())
		}
	}
	upload("blue")

	srv, ep := startArc(t)
	cc, err := arcsdk.ConnectCluster(ctx, ep, sub, "rg-hci", "workload-s3", "westeurope", pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	rec := startCluster(ctx, t, api, srv, *cc.ID, "workload-s3")
	defer rec.Stop()

	cfg := arc.FluxConfiguration{Properties: arc.FluxConfigurationProperties{
		Scope: "cluster", Namespace: "flux-system", SourceKind: arc.SourceKindBucket,
		Bucket: &arc.BucketDefinition{URL: s3.URL(), BucketName: "platform-apps", AccessKey: s3.AccessKey(),
			Insecure: ptr(true), SyncIntervalInSeconds: ptr[int64](60)},
		ConfigurationProtectedSettings: map[string]string{arc.BucketSecretKeySetting: base64.StdEncoding.EncodeToString([]byte(s3.SecretKey()))},
		Kustomizations: map[string]*arc.KustomizationDefinition{
			"apps": {Path: "./apps", Prune: ptr(true), SyncIntervalInSeconds: ptr[int64](60), RetryIntervalInSeconds: ptr[int64](5)},
		},
	}}
	id := arcsdk.FluxConfigurationID(*cc.ID, "objects")
	_, err = arcsdk.PutFluxConfiguration(ctx, ep, id, cfg, pollEvery)
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
	g.Eventually(state).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(arc.Compliant + " "))
	kube := kubernetes.NewForConfigOrDie(api)
	mode := func() string {
		cm, err := kube.CoreV1().ConfigMaps("oci-team").Get(ctx, "oci-settings", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return cm.Data["mode"]
	}
	g.Expect(mode()).To(Equal("blue"))

	// What the agent made: a Bucket named like the configuration, of the generic provider, its endpoint
	// the URL's host, and a Secret with source-controller's keys.
	b, ok := rec.Bucket("flux-system", "objects")
	g.Expect(ok).To(BeTrue(), "no Bucket flux-system/objects")
	g.Expect(b.Spec.Provider).To(Equal(sourcev1.BucketProviderGeneric))
	g.Expect(b.Spec.Endpoint).To(Equal(s3.Endpoint()))
	g.Expect(b.Spec.BucketName).To(Equal("platform-apps"))
	g.Expect(b.Spec.Insecure).To(BeTrue())
	g.Expect(b.Spec.Interval.Duration).To(Equal(60 * time.Second))
	g.Expect(b.Spec.SecretRef).To(Equal(&meta.LocalObjectReference{Name: "objects-auth"}))
	g.Expect(b.Labels).To(HaveKeyWithValue(arcagent.LabelConfiguration, "objects"))
	sec, err := kube.CoreV1().Secrets("flux-system").Get(ctx, "objects-auth", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sec.Data).To(Equal(map[string][]byte{"accesskey": []byte(s3.AccessKey()), "secretkey": []byte(s3.SecretKey())}))
	rev1 := get().Properties.SourceSyncedCommitID
	g.Expect(rev1).To(HavePrefix("sha256:"))
	g.Expect(rev1).To(Equal(b.Status.Artifact.Revision))
	var kinds []string
	for _, st := range get().Properties.Statuses {
		kinds = append(kinds, st.Kind+"/"+st.Name+"="+st.ComplianceState)
	}
	g.Expect(kinds).To(ConsistOf("Bucket/objects=Compliant", "Kustomization/objects-apps=Compliant"))

	// A new upload, picked up on a reconcile request (as a Receiver would ask): applied, new revision.
	upload("green")
	g.Expect(rec.RequestReconcile(reconciler.KindBucket, "flux-system", "objects")).To(Succeed())
	g.Eventually(mode).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal("green"))
	g.Eventually(func() string { return get().Properties.SourceSyncedCommitID }).WithTimeout(60 * time.Second).
		WithPolling(100 * time.Millisecond).Should(And(HavePrefix("sha256:"), Not(Equal(rev1))))

	// A bucket the server does not have: Non-Compliant with source-controller's message.
	missing := cfg
	mb := *cfg.Properties.Bucket
	mb.BucketName = "no-such-bucket"
	missing.Properties.Bucket = &mb
	_, err = arcsdk.PutFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, "missing"), missing, pollEvery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() string {
		c, _ := arcsdk.GetFluxConfiguration(ctx, ep, arcsdk.FluxConfigurationID(*cc.ID, "missing"))
		return c.Properties.ComplianceState + " " + c.Properties.ErrorMessage
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(And(
		HavePrefix(arc.NonCompliant), ContainSubstring("bucket 'no-such-bucket' not found")))

	// Deleting the configuration prunes its objects and removes the Bucket.
	status, body := doARM(t, ep, "DELETE", id)
	g.Expect(status).To(Equal(202), body)
	g.Eventually(func() bool {
		_, err := kube.CoreV1().ConfigMaps("oci-team").Get(ctx, "oci-settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "not pruned after the configuration was deleted")
	g.Eventually(func() bool { _, ok := rec.Bucket("flux-system", "objects"); return ok }).WithTimeout(30 * time.Second).
		WithPolling(100 * time.Millisecond).Should(BeFalse())
}
