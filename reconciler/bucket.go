package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
)

// bucketKind is Bucket's row of sourceKinds: source-controller's Bucket with the generic provider (any
// S3-compatible store), read with minio-go as source-controller reads it.
var bucketKind = sourceDef[sourcev1.Bucket, *sourcev1.Bucket, sourcev1.BucketStatus]{
	kind:      KindBucket,
	kustomize: true,
	resource:  "buckets",
	validate:  validateBucket,
	fields: func(o *sourcev1.Bucket) sourceFields {
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: sp.Ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: &st.ObservedIgnore, lastHandled: &st.LastHandledReconcileAt}
	},
	status: func(o *sourcev1.Bucket) *sourcev1.BucketStatus { return &o.Status },
	fetch:  (*Reconciler).fetchBucket,
	// Bucket also reports the artifact URL.
	stored: func(cur, _ *sourcev1.Bucket) { cur.Status.URL = cur.Status.Artifact.URL },
}

// ApplyBucket adds or updates a Bucket. A spec change (or a new reconcile.fluxcd.io/requestedAt
// annotation) reconciles it at once.
func (r *Reconciler) ApplyBucket(obj *sourcev1.Bucket) error {
	return r.applySource(mustSourceKind(KindBucket), obj)
}

// DeleteBucket removes a Bucket and its artifact. Kustomizations that use it report the source as not
// found.
func (r *Reconciler) DeleteBucket(namespace, name string) error {
	return r.deleteSource(srcRef{KindBucket, core.Key{Namespace: namespace, Name: name}})
}

// Bucket returns a copy of the Bucket with its current status.
func (r *Reconciler) Bucket(namespace, name string) (*sourcev1.Bucket, bool) {
	return getSource[*sourcev1.Bucket](r, KindBucket, namespace, name)
}

// Buckets returns copies of all Buckets, sorted by namespace and name.
func (r *Reconciler) Buckets() []sourcev1.Bucket {
	return listSources[sourcev1.Bucket](r, KindBucket)
}

func validateBucket(o *sourcev1.Bucket) error {
	if o == nil {
		return fmt.Errorf("%w: nil Bucket", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("Bucket", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	if o.Spec.BucketName == "" {
		return bad("spec.bucketName", "is required: the name of the bucket to read")
	}
	// spec.endpoint is a host[:port] without a scheme (minio.New refuses a URL with a path or scheme).
	if ep := o.Spec.Endpoint; ep == "" || strings.Contains(ep, "://") || strings.Contains(ep, "/") {
		return bad("spec.endpoint", "%q must be the S3 endpoint as host[:port], without a scheme or path, e.g. minio.example.com:9000", ep)
	}
	if _, err := url.Parse("http://" + o.Spec.Endpoint); err != nil {
		return bad("spec.endpoint", "%q is not a host[:port]: %v", o.Spec.Endpoint, err)
	}
	if o.Spec.Interval.Duration <= 0 {
		return bad("spec.interval", "must be a positive duration, e.g. 1m")
	}
	if o.Spec.Timeout != nil && o.Spec.Timeout.Duration <= 0 {
		return bad("spec.timeout", "must be a positive duration when set")
	}
	unsupported := map[string]bool{
		"spec.provider":           o.Spec.Provider != "" && o.Spec.Provider != sourcev1.BucketProviderGeneric,
		"spec.sts":                o.Spec.STS != nil,
		"spec.serviceAccountName": o.Spec.ServiceAccountName != "",
		"spec.certSecretRef":      o.Spec.CertSecretRef != nil,
		"spec.proxySecretRef":     o.Spec.ProxySecretRef != nil,
	}
	for _, f := range []string{"spec.provider", "spec.sts", "spec.serviceAccountName", "spec.certSecretRef", "spec.proxySecretRef"} {
		if unsupported[f] {
			return bad(f, "is not supported by the twin's reconciler (the generic S3 provider only); remove it")
		}
	}
	return nil
}

// fetchBucket lists and downloads a Bucket (source-controller's Bucket reconciler, generic provider);
// reconcileSource records it. Ready reasons and messages are source-controller's: a Secret that cannot be
// read or lacks its keys is AuthenticationFailed, every listing or download failure (a missing bucket
// among them: "bucket '<name>' not found") is BucketOperationFailed.
func (r *Reconciler) fetchBucket(ctx context.Context, ref srcRef, obj *sourcev1.Bucket) fetched {
	req := source.BucketRequest{Endpoint: obj.Spec.Endpoint, Insecure: obj.Spec.Insecure, Region: obj.Spec.Region,
		BucketName: obj.Spec.BucketName, Prefix: obj.Spec.Prefix, Ignore: obj.Spec.Ignore}
	if sr := obj.Spec.SecretRef; sr != nil {
		sec, err := r.secretRef(ctx, obj.Namespace, sr.Name)
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("failed to get secret '%s/%s': %w", obj.Namespace, sr.Name, errors.Unwrap(err)))
		}
		ak, okA := sec.Data["accesskey"]
		sk, okS := sec.Data["secretkey"]
		if !okA || !okS {
			return fetchFailed(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("invalid '%s' secret data: required fields 'accesskey' and 'secretkey'", sr.Name))
		}
		req.AccessKey, req.SecretKey = string(ak), string(sk)
	}
	art, objects, changed, err := r.store.FetchBucket(ctx, ref.String(), req)
	if err != nil {
		if errors.Is(err, source.ErrBucketClient) {
			return fetchFailed(sourcev1.AuthenticationFailedReason, err)
		}
		return fetchFailed(sourcev1.BucketOperationFailedReason, err)
	}
	return fetched{art: art, changed: changed,
		stored: fmt.Sprintf("stored artifact: revision '%s'", art.Revision),
		event:  fmt.Sprintf("stored artifact with %d fetched files from '%s' bucket", objects, obj.Spec.BucketName)}
}
