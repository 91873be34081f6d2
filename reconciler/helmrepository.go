package reconciler

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
)

// helmRepositoryKind is HelmRepository's row of sourceKinds: source-controller's HelmRepository. Of
// type default its artifact is the repository's index.yaml, revision "sha256:<digest of the index>";
// of type oci it is a marker with nothing to fetch (source-controller keeps no status on it) that
// HelmCharts read their registry address and login from.
var helmRepositoryKind = sourceDef[sourcev1.HelmRepository, *sourcev1.HelmRepository, sourcev1.HelmRepositoryStatus]{
	kind:     KindHelmRepository,
	resource: "helmrepositories",
	validate: validateHelmRepository,
	fields: func(o *sourcev1.HelmRepository) sourceFields {
		sp, st := &o.Spec, &o.Status
		var ignore *string
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: new(*string), lastHandled: &st.LastHandledReconcileAt}
	},
	status: func(o *sourcev1.HelmRepository) *sourcev1.HelmRepositoryStatus { return &o.Status },
	static: func(o *sourcev1.HelmRepository) bool { return o.Spec.Type == sourcev1.HelmRepositoryTypeOCI },
	fetch:  (*Reconciler).fetchHelmIndex,
	// HelmRepository also reports where its artifact is served.
	stored: func(cur, _ *sourcev1.HelmRepository) { cur.Status.URL = cur.Status.Artifact.URL },
}

// ApplyHelmRepository adds or updates a HelmRepository. A spec change (or a new
// reconcile.fluxcd.io/requestedAt annotation) reconciles it at once.
func (r *Reconciler) ApplyHelmRepository(obj *sourcev1.HelmRepository) error {
	return r.applySource(mustSourceKind(KindHelmRepository), obj)
}

// DeleteHelmRepository removes a HelmRepository and its artifact.
func (r *Reconciler) DeleteHelmRepository(namespace, name string) error {
	return r.deleteSource(srcRef{KindHelmRepository, core.Key{Namespace: namespace, Name: name}})
}

// HelmRepository returns a copy of the HelmRepository with its current status.
func (r *Reconciler) HelmRepository(namespace, name string) (*sourcev1.HelmRepository, bool) {
	return getSource[*sourcev1.HelmRepository](r, KindHelmRepository, namespace, name)
}

// HelmRepositories returns copies of all HelmRepositories, sorted by namespace and name.
func (r *Reconciler) HelmRepositories() []sourcev1.HelmRepository {
	return listSources[sourcev1.HelmRepository](r, KindHelmRepository)
}

func validateHelmRepository(o *sourcev1.HelmRepository) error {
	if o == nil {
		return fmt.Errorf("%w: nil HelmRepository", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("HelmRepository", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	switch o.Spec.Type {
	case "", sourcev1.HelmRepositoryTypeDefault:
		u, err := url.Parse(o.Spec.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("spec.url", "%q must be an http:// or https:// chart repository URL (or set spec.type: oci)", o.Spec.URL)
		}
		if o.Spec.Interval.Duration <= 0 {
			return bad("spec.interval", "must be a positive duration, e.g. 10m")
		}
	case sourcev1.HelmRepositoryTypeOCI:
		if !strings.HasPrefix(o.Spec.URL, sourcev1.OCIRepositoryPrefix) {
			return bad("spec.url", "%q must be an oci:// URL for spec.type oci", o.Spec.URL)
		}
	default:
		return bad("spec.type", "%q must be default or oci", o.Spec.Type)
	}
	if o.Spec.Timeout != nil && o.Spec.Timeout.Duration <= 0 {
		return bad("spec.timeout", "must be a positive duration when set")
	}
	unsupported := map[string]bool{
		"spec.provider":      o.Spec.Provider != "" && o.Spec.Provider != sourcev1.GenericOCIProvider,
		"spec.certSecretRef": o.Spec.CertSecretRef != nil,
		"spec.accessFrom":    o.Spec.AccessFrom != nil,
	}
	for _, f := range []string{"spec.provider", "spec.certSecretRef", "spec.accessFrom"} {
		if unsupported[f] {
			return bad(f, "is not supported by the twin's reconciler; remove it")
		}
	}
	return nil
}

// helmAuth reads a Helm source's spec.secretRef (keys username, password, ca.crt), and carries the
// chart transport (Options.ChartTransport) every Helm fetch goes through.
func (r *Reconciler) helmAuth(ctx context.Context, namespace string, name string) (*helm.Auth, error) {
	if name == "" {
		return &helm.Auth{Transport: r.opts.ChartTransport}, nil
	}
	sec, err := r.secretRef(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &helm.Auth{Username: string(sec.Data["username"]), Password: string(sec.Data["password"]), CABundle: sec.Data["ca.crt"],
		Transport: r.opts.ChartTransport}, nil
}

// fetchHelmIndex downloads a HelmRepository's index.yaml and stores it as the artifact
// (source-controller's HelmRepository reconciler).
func (r *Reconciler) fetchHelmIndex(ctx context.Context, ref srcRef, obj *sourcev1.HelmRepository) fetched {
	var secret string
	if obj.Spec.SecretRef != nil {
		secret = obj.Spec.SecretRef.Name
	}
	auth, err := r.helmAuth(ctx, obj.Namespace, secret)
	if err != nil {
		return fetchFailed(sourcev1.AuthenticationFailedReason, err)
	}
	index, revision, err := helm.FetchIndex(ctx, obj.Spec.URL, auth)
	if err != nil {
		return fetchFailed(sourcev1.IndexationFailedReason, err)
	}
	art, changed, err := r.store.Publish(ref.String(), revision, "", []source.File{
		{Name: helm.IndexFile, Read: func() ([]byte, error) { return index, nil }}})
	if err != nil {
		return fetchFailed(sourcev1.StorageOperationFailedCondition, err)
	}
	return fetched{art: art, changed: changed,
		stored: fmt.Sprintf("stored artifact: revision '%s'", art.Revision),
		event:  fmt.Sprintf("stored fetched index of %s from '%s'", humanSize(int64(len(index))), obj.Spec.URL)}
}

// humanSize prints a size as source-controller's messages do ("1.2 kB").
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
