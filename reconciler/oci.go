package reconciler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
)

// ociRepositoryKind is OCIRepository's row of sourceKinds: source-controller's OCIRepository, for
// artifacts as `flux push artifact` makes them, pulled with go-containerregistry.
var ociRepositoryKind = sourceDef[sourcev1.OCIRepository, *sourcev1.OCIRepository, sourcev1.OCIRepositoryStatus]{
	kind:      KindOCIRepository,
	kustomize: true,
	resource:  "ocirepositories",
	validate:  validateOCIRepository,
	fields: func(o *sourcev1.OCIRepository) sourceFields {
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: sp.Ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: &st.ObservedIgnore, lastHandled: &st.LastHandledReconcileAt}
	},
	status: func(o *sourcev1.OCIRepository) *sourcev1.OCIRepositoryStatus { return &o.Status },
	fetch:  (*Reconciler).pullOCI,
	// OCIRepository also reports the artifact URL and the layer selection it was built with.
	stored: func(cur, fetched *sourcev1.OCIRepository) {
		cur.Status.URL = cur.Status.Artifact.URL
		cur.Status.ObservedLayerSelector = fetched.Spec.LayerSelector
	},
}

// ApplyOCIRepository adds or updates an OCIRepository. A spec change (or a new
// reconcile.fluxcd.io/requestedAt annotation) reconciles it at once.
func (r *Reconciler) ApplyOCIRepository(obj *sourcev1.OCIRepository) error {
	return r.applySource(mustSourceKind(KindOCIRepository), obj)
}

// DeleteOCIRepository removes an OCIRepository and its artifact. Kustomizations that use it report
// the source as not found.
func (r *Reconciler) DeleteOCIRepository(namespace, name string) error {
	return r.deleteSource(srcRef{KindOCIRepository, core.Key{Namespace: namespace, Name: name}})
}

// OCIRepository returns a copy of the OCIRepository with its current status.
func (r *Reconciler) OCIRepository(namespace, name string) (*sourcev1.OCIRepository, bool) {
	return getSource[*sourcev1.OCIRepository](r, KindOCIRepository, namespace, name)
}

// OCIRepositories returns copies of all OCIRepositories, sorted by namespace and name.
func (r *Reconciler) OCIRepositories() []sourcev1.OCIRepository {
	return listSources[sourcev1.OCIRepository](r, KindOCIRepository)
}

func validateOCIRepository(o *sourcev1.OCIRepository) error {
	if o == nil {
		return fmt.Errorf("%w: nil OCIRepository", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("OCIRepository", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	rest, ok := strings.CutPrefix(o.Spec.URL, sourcev1.OCIRepositoryPrefix)
	if !ok || rest == "" {
		return bad("spec.url", "%q must be an oci:// URL of a repository, e.g. oci://registry.example.com/manifests/app", o.Spec.URL)
	}
	if _, err := name.NewRepository(rest, name.StrictValidation); err != nil {
		return bad("spec.url", "%q is not a repository reference (put a tag in spec.ref.tag, a digest in spec.ref.digest): %v", o.Spec.URL, err)
	}
	if o.Spec.Interval.Duration <= 0 {
		return bad("spec.interval", "must be a positive duration, e.g. 1m")
	}
	if o.Spec.Timeout != nil && o.Spec.Timeout.Duration <= 0 {
		return bad("spec.timeout", "must be a positive duration when set")
	}
	if ref := o.Spec.Reference; ref != nil {
		if ref.Digest != "" {
			if _, err := gcrv1.NewHash(ref.Digest); err != nil {
				return bad("spec.ref.digest", "%q must be sha256:<64 hex digits>", ref.Digest)
			}
		}
		if ref.SemVer != "" {
			if _, err := semver.NewConstraint(ref.SemVer); err != nil {
				return bad("spec.ref.semver", "%q is not a semver range: %v", ref.SemVer, err)
			}
		}
		if ref.SemverFilter != "" {
			if _, err := regexp.Compile(ref.SemverFilter); err != nil {
				return bad("spec.ref.semverFilter", "%q is not a regular expression: %v", ref.SemverFilter, err)
			}
		}
	}
	if op := o.GetLayerOperation(); op != sourcev1.OCILayerExtract && op != sourcev1.OCILayerCopy {
		return bad("spec.layerSelector.operation", "%q must be extract or copy", op)
	}
	unsupported := map[string]bool{
		"spec.provider":           o.Spec.Provider != "" && o.Spec.Provider != sourcev1.GenericOCIProvider,
		"spec.verify":             o.Spec.Verify != nil,
		"spec.serviceAccountName": o.Spec.ServiceAccountName != "",
		"spec.certSecretRef":      o.Spec.CertSecretRef != nil,
		"spec.proxySecretRef":     o.Spec.ProxySecretRef != nil,
	}
	for _, f := range []string{"spec.provider", "spec.verify", "spec.serviceAccountName", "spec.certSecretRef", "spec.proxySecretRef"} {
		if unsupported[f] {
			return bad(f, "is not supported by the twin's reconciler; remove it")
		}
	}
	return nil
}

// pullOCI pulls an OCIRepository's artifact (source-controller's OCIRepository reconciler, for
// artifacts as `flux push artifact` makes them); reconcileSource records it.
func (r *Reconciler) pullOCI(ctx context.Context, ref srcRef, obj *sourcev1.OCIRepository) fetched {
	req := source.OCIRequest{URL: obj.Spec.URL, Insecure: obj.Spec.Insecure, Ignore: obj.Spec.Ignore,
		LayerMediaType: obj.GetLayerMediaType(), Copy: obj.GetLayerOperation() == sourcev1.OCILayerCopy}
	if rf := obj.Spec.Reference; rf != nil {
		req.Ref = source.OCIRef{Digest: rf.Digest, SemVer: rf.SemVer, SemverFilter: rf.SemverFilter, Tag: rf.Tag}
	}
	if sr := obj.Spec.SecretRef; sr != nil {
		sec, err := r.secretRef(ctx, obj.Namespace, sr.Name)
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason, err)
		}
		auth, err := dockerConfigAuth(sec, strings.TrimPrefix(obj.Spec.URL, sourcev1.OCIRepositoryPrefix))
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("secret '%s/%s' named in spec.secretRef: %w", obj.Namespace, sr.Name, err))
		}
		req.Auth = auth
	}
	art, changed, err := r.store.FetchOCI(ctx, ref.String(), req)
	if err != nil {
		reason := sourcev1.OCIPullFailedReason
		if errors.Is(err, source.ErrOCILayer) {
			reason = sourcev1.OCILayerOperationFailedReason
		}
		return fetchFailed(reason, err)
	}
	return fetched{art: art, changed: changed,
		stored: fmt.Sprintf("stored artifact for digest '%s'", art.Revision),
		event:  fmt.Sprintf("stored artifact with revision '%s' from '%s'", art.Revision, obj.Spec.URL)}
}

// dockerConfigAuth reads the login for the repository's registry host from a
// kubernetes.io/dockerconfigjson Secret (.dockerconfigjson: {"auths": {"<host>": {"username",
// "password"} or {"auth": base64("user:password")}}}), as OCIRepository's spec.secretRef requires.
func dockerConfigAuth(sec *corev1.Secret, repo string) (*source.OCIAuth, error) {
	raw, ok := sec.Data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, fmt.Errorf("has no %s key; create it with `kubectl create secret docker-registry`", corev1.DockerConfigJsonKey)
	}
	var cfg struct {
		Auths map[string]struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Auth     string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not a Docker config: %v", corev1.DockerConfigJsonKey, err)
	}
	host, _, _ := strings.Cut(repo, "/")
	for key, a := range cfg.Auths {
		h := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
		h, _, _ = strings.Cut(h, "/")
		if !strings.EqualFold(h, host) {
			continue
		}
		if a.Username == "" && a.Password == "" && a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("auths[%q].auth is not base64: %v", key, err)
			}
			u, p, _ := strings.Cut(string(dec), ":")
			return &source.OCIAuth{Username: u, Password: p}, nil
		}
		return &source.OCIAuth{Username: a.Username, Password: a.Password}, nil
	}
	return nil, fmt.Errorf("%s has no login for registry %s", corev1.DockerConfigJsonKey, host)
}
