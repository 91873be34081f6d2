package reconciler_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// startS3 starts the twin's S3 server (versitygw) for one test and stores its credentials in the test's
// namespace as the Secret "s3-auth" (accesskey, secretkey: what a Bucket's spec.secretRef names).
func startS3(e *env) *s3server.Server {
	e.t.Helper()
	srv, err := s3server.Start(context.Background(), s3server.Options{Dir: e.t.TempDir()})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.t.Cleanup(srv.Stop)
	e.g.Expect(e.c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-auth", Namespace: e.ns},
		StringData: map[string]string{"accesskey": srv.AccessKey(), "secretkey": srv.SecretKey()}})).To(Succeed())
	return srv
}

// bucket is a Bucket of the generic provider on the twin's S3 server (plain HTTP on loopback).
func (e *env) bucket(name, bucketName string, srv *s3server.Server) *sourcev1.Bucket {
	return &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: sourcev1.BucketSpec{Provider: sourcev1.BucketProviderGeneric, BucketName: bucketName, Endpoint: srv.Endpoint(),
			Insecure: true, Interval: metav1.Duration{Duration: time.Minute}, SecretRef: &meta.LocalObjectReference{Name: "s3-auth"}},
	}
}

func bucketSource(name string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		k.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.BucketKind, Name: name}
	}
}

func (e *env) bucketReady(name string) func() string {
	return func() string {
		b, ok := e.r.Bucket(e.ns, name)
		if !ok {
			return "absent"
		}
		return readyOf(b.Status.Conditions)
	}
}

// wantBucketRevision computes source-controller's Bucket revision independently of the engine: the
// object keys and ETags as the server lists them (through a second S3 client), written "<key> <etag>\n"
// in key order and hashed with sha256, leaving out what skip says.
func wantBucketRevision(e *env, srv *s3server.Server, bucket string, skip func(string) bool) string {
	e.t.Helper()
	cl, err := minio.New(srv.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey(), srv.SecretKey(), "")})
	e.g.Expect(err).NotTo(HaveOccurred())
	etags := map[string]string{}
	for o := range cl.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		e.g.Expect(o.Err).NotTo(HaveOccurred())
		if !skip(o.Key) {
			etags[o.Key] = o.ETag
		}
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

// TestBucket: a Kustomization reads a Bucket on the twin's real S3 server (versitygw) -- applied, a new
// upload makes a new revision in source-controller's shape that is applied and pruned, .sourceignore and
// spec.ignore leave objects out, and a missing bucket or Secret fails with source-controller's reasons.
func TestBucket(t *testing.T) {
	testenv.RequireBucketServer(t)
	e := newEnv(t)
	srv := startS3(e)
	ctx := context.Background()
	name := "apps-" + e.ns[len(e.ns)-6:]
	e.g.Expect(srv.EnsureBucket(ctx, name)).To(Succeed())
	put := func(key, content string) { e.g.Expect(srv.Put(ctx, name, key, []byte(content))).To(Succeed()) }
	put("apps/a.yaml", configMap(e.ns, "a", map[string]string{"v": "1"}))
	put("apps/b.yaml", configMap(e.ns, "b", map[string]string{"v": "1"}))
	// Left out by the bucket's .sourceignore: a file kustomize would refuse to build.
	put(".sourceignore", "apps/*.txt\n")
	put("apps/notes.txt", "not a manifest")
	skip := func(k string) bool { return k == ".sourceignore" || k == "apps/notes.txt" }

	e.g.Expect(e.r.ApplyBucket(e.bucket("b", name, srv))).To(Succeed())
	e.apply(e.kustomization("apps", "./apps", bucketSource("b")))
	rev1 := wantBucketRevision(e, srv, name, skip)
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal(rev1), e.ready("apps"))
	e.g.Expect(e.configMapData(e.ns, "a")()).To(Equal(map[string]string{"v": "1"}))
	b, _ := e.r.Bucket(e.ns, "b")
	e.g.Expect(b.Status.Artifact.Revision).To(Equal(rev1))
	e.g.Expect(e.bucketReady("b")()).To(Equal("True/" + meta.SucceededReason + ": stored artifact: revision '" + rev1 + "'"))
	e.g.Expect(b.Status.URL).NotTo(BeEmpty())

	// A new upload: b changes, a is deleted from the bucket (and pruned); the revision follows the index.
	put("apps/b.yaml", configMap(e.ns, "b", map[string]string{"v": "2"}))
	e.g.Expect(srv.Remove(ctx, name, "apps/a.yaml")).To(Succeed())
	rev2 := wantBucketRevision(e, srv, name, skip)
	e.g.Expect(rev2).NotTo(Equal(rev1))
	e.g.Expect(e.r.RequestReconcile(reconciler.KindBucket, e.ns, "b")).To(Succeed())
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal(rev2), e.ready("apps"))
	e.g.Expect(e.configMapData(e.ns, "b")()).To(Equal(map[string]string{"v": "2"}))
	e.g.Eventually(e.configMapData(e.ns, "a")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())
	var newArtifact []string
	for _, ev := range e.r.Events() {
		if ev.Kind == reconciler.KindBucket && ev.Namespace == e.ns && ev.Reason == "NewArtifact" {
			newArtifact = append(newArtifact, ev.Message)
		}
	}
	e.g.Expect(newArtifact).To(ContainElement("stored artifact with 1 fetched files from '" + name + "' bucket"))

	// An upload found at the interval, without a request.
	put("apps/c.yaml", configMap(e.ns, "c", map[string]string{"v": "1"}))
	rev3 := wantBucketRevision(e, srv, name, skip)
	e.stepInterval()
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal(rev3), e.ready("apps"))

	// spec.ignore adds to the bucket's rules: c leaves the index (new revision) and is pruned.
	ig := e.bucket("b", name, srv)
	ignore := "apps/c.yaml\n"
	ig.Spec.Ignore = &ignore
	e.g.Expect(e.r.ApplyBucket(ig)).To(Succeed())
	rev4 := wantBucketRevision(e, srv, name, func(k string) bool { return skip(k) || k == "apps/c.yaml" })
	e.g.Expect(rev4).To(Equal(rev2))
	e.g.Eventually(e.appliedRevision("apps")).WithTimeout(eventually).WithPolling(poll).Should(Equal(rev4), e.ready("apps"))
	e.g.Eventually(e.configMapData(e.ns, "c")).WithTimeout(eventually).WithPolling(poll).Should(BeNil())

	// A bucket the server does not have; a Secret without the keys; no Secret at all.
	e.g.Expect(e.r.ApplyBucket(e.bucket("missing", "no-such-bucket", srv))).To(Succeed())
	e.g.Eventually(e.bucketReady("missing")).WithTimeout(eventually).WithPolling(poll).Should(
		Equal("False/" + sourcev1.BucketOperationFailedReason + ": bucket 'no-such-bucket' not found"))
	e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-partial", Namespace: e.ns},
		StringData: map[string]string{"accesskey": srv.AccessKey()}})).To(Succeed())
	partial := e.bucket("partial", name, srv)
	partial.Spec.SecretRef.Name = "s3-partial"
	nosecret := e.bucket("nosecret", name, srv)
	nosecret.Spec.SecretRef.Name = "s3-absent"
	e.g.Expect(e.r.ApplyBucket(partial)).To(Succeed())
	e.g.Expect(e.r.ApplyBucket(nosecret)).To(Succeed())
	e.g.Eventually(e.bucketReady("partial")).WithTimeout(eventually).WithPolling(poll).Should(Equal("False/" +
		sourcev1.AuthenticationFailedReason + ": invalid 's3-partial' secret data: required fields 'accesskey' and 'secretkey'"))
	e.g.Eventually(e.bucketReady("nosecret")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/"+sourcev1.AuthenticationFailedReason+": failed to get secret '"+e.ns+"/s3-absent'"), ContainSubstring("not found")))
	// A wrong secret key is refused by the server.
	e.g.Expect(e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-wrong", Namespace: e.ns},
		StringData: map[string]string{"accesskey": srv.AccessKey(), "secretkey": "wrong"}})).To(Succeed())
	wrong := e.bucket("wrong", name, srv)
	wrong.Spec.SecretRef.Name = "s3-wrong"
	e.g.Expect(e.r.ApplyBucket(wrong)).To(Succeed())
	e.g.Eventually(e.bucketReady("wrong")).WithTimeout(eventually).WithPolling(poll).Should(And(
		HavePrefix("False/" + sourcev1.BucketOperationFailedReason + ": failed to confirm existence of '" + name + "' bucket")))
}

// TestBucketValidation: what the twin's engine cannot do with a Bucket is refused with the field named.
func TestBucketValidation(t *testing.T) {
	e := newEnv(t)
	base := func() *sourcev1.Bucket {
		return &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: e.ns},
			Spec: sourcev1.BucketSpec{BucketName: "apps", Endpoint: "127.0.0.1:9000", Interval: metav1.Duration{Duration: time.Minute}}}
	}
	cases := []struct {
		name   string
		mutate func(*sourcev1.Bucket)
		field  string
	}{
		{"no bucket name", func(b *sourcev1.Bucket) { b.Spec.BucketName = "" }, "spec.bucketName"},
		{"endpoint with scheme", func(b *sourcev1.Bucket) { b.Spec.Endpoint = "http://127.0.0.1:9000" }, "spec.endpoint"},
		{"no interval", func(b *sourcev1.Bucket) { b.Spec.Interval = metav1.Duration{} }, "spec.interval"},
		{"aws provider", func(b *sourcev1.Bucket) { b.Spec.Provider = sourcev1.BucketProviderAmazon }, "spec.provider"},
		{"sts", func(b *sourcev1.Bucket) { b.Spec.STS = &sourcev1.BucketSTSSpec{Provider: "ldap"} }, "spec.sts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := base()
			c.mutate(b)
			err := e.r.ApplyBucket(b)
			if !errors.Is(err, reconciler.ErrInvalid) {
				t.Fatalf("ApplyBucket = %v, want ErrInvalid", err)
			}
			NewWithT(t).Expect(err.Error()).To(ContainSubstring(c.field))
		})
	}
	NewWithT(t).Expect(e.r.ApplyBucket(base())).To(Succeed())
}
