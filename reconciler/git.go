package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
)

// gitRepositoryKind is GitRepository's row of sourceKinds: source-controller's GitRepository, cloned
// with go-git over HTTP(S) or SSH.
var gitRepositoryKind = sourceDef[sourcev1.GitRepository, *sourcev1.GitRepository, sourcev1.GitRepositoryStatus]{
	kind:      KindGitRepository,
	kustomize: true,
	resource:  "gitrepositories",
	validate:  validateGitRepository,
	fields: func(o *sourcev1.GitRepository) sourceFields {
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, timeout: sp.Timeout, suspend: sp.Suspend, ignore: sp.Ignore,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: &st.ObservedIgnore, lastHandled: &st.LastHandledReconcileAt}
	},
	status: func(o *sourcev1.GitRepository) *sourcev1.GitRepositoryStatus { return &o.Status },
	fetch:  (*Reconciler).fetchGit,
}

// ApplyGitRepository adds or updates a GitRepository. A spec change (or a new
// reconcile.fluxcd.io/requestedAt annotation) reconciles it at once.
func (r *Reconciler) ApplyGitRepository(obj *sourcev1.GitRepository) error {
	return r.applySource(mustSourceKind(KindGitRepository), obj)
}

// DeleteGitRepository removes a GitRepository and its clone and artifact. Kustomizations that use it
// report the source as not found.
func (r *Reconciler) DeleteGitRepository(namespace, name string) error {
	return r.deleteSource(srcRef{KindGitRepository, core.Key{Namespace: namespace, Name: name}})
}

// GitRepository returns a copy of the GitRepository with its current status.
func (r *Reconciler) GitRepository(namespace, name string) (*sourcev1.GitRepository, bool) {
	return getSource[*sourcev1.GitRepository](r, KindGitRepository, namespace, name)
}

// GitRepositories returns copies of all GitRepositories, sorted by namespace and name.
func (r *Reconciler) GitRepositories() []sourcev1.GitRepository {
	return listSources[sourcev1.GitRepository](r, KindGitRepository)
}

func validateGitRepository(o *sourcev1.GitRepository) error {
	if o == nil {
		return fmt.Errorf("%w: nil GitRepository", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("GitRepository", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	u, err := url.Parse(o.Spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh") || u.Host == "" {
		return bad("spec.url", "%q must be an http://, https:// or ssh:// Git URL (source-controller's pattern; write git@host:path as ssh://git@host/path)", o.Spec.URL)
	}
	if o.Spec.Interval.Duration <= 0 {
		return bad("spec.interval", "must be a positive duration, e.g. 1m")
	}
	if o.Spec.Timeout != nil && o.Spec.Timeout.Duration <= 0 {
		return bad("spec.timeout", "must be a positive duration when set")
	}
	unsupported := map[string]bool{
		"spec.provider":           o.Spec.Provider != "" && o.Spec.Provider != sourcev1.GitProviderGeneric,
		"spec.verify":             o.Spec.Verification != nil,
		"spec.include":            len(o.Spec.Include) > 0,
		"spec.recurseSubmodules":  o.Spec.RecurseSubmodules,
		"spec.sparseCheckout":     len(o.Spec.SparseCheckout) > 0,
		"spec.proxySecretRef":     o.Spec.ProxySecretRef != nil,
		"spec.serviceAccountName": o.Spec.ServiceAccountName != "",
	}
	for _, f := range []string{"spec.provider", "spec.verify", "spec.include", "spec.recurseSubmodules",
		"spec.sparseCheckout", "spec.proxySecretRef", "spec.serviceAccountName"} {
		if unsupported[f] {
			return bad(f, "is not supported by the twin's reconciler; remove it")
		}
	}
	return nil
}

// fetchGit clones or fetches a GitRepository and checks out its reference.
func (r *Reconciler) fetchGit(ctx context.Context, ref srcRef, obj *sourcev1.GitRepository) fetched {
	req := source.Request{URL: obj.Spec.URL, Ignore: obj.Spec.Ignore, Observed: obj.Status.Artifact != nil}
	if ref := obj.Spec.Reference; ref != nil {
		req.Ref = source.Ref{Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Name: ref.Name, Commit: ref.Commit}
	}
	if sr := obj.Spec.SecretRef; sr != nil {
		sec, err := r.secretRef(ctx, obj.Namespace, sr.Name)
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason, err)
		}
		req.Auth = &source.Auth{Username: string(sec.Data["username"]), Password: string(sec.Data["password"]),
			BearerToken: string(sec.Data["bearerToken"]), CABundle: sec.Data["ca.crt"],
			Identity: sec.Data["identity"], KnownHosts: sec.Data["known_hosts"]}
	}
	if source.IsSSH(obj.Spec.URL) {
		// source-controller v1.9.6 getAuthOpts: the Secret's keys are checked before any fetch.
		if err := source.ValidateSSHAuth(obj.Spec.URL, req.Auth); err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to configure authentication options: %w", err))
		}
		if source.IdentityNeedsPassword(req.Auth) {
			return fetchFailed(sourcev1.AuthenticationFailedReason, fmt.Errorf(
				"SSH identity key is encrypted but no 'password' field was provided in the secret '%s/%s'", obj.Namespace, obj.Spec.SecretRef.Name))
		}
	}
	art, changed, err := r.store.Fetch(ctx, ref.String(), req)
	if err != nil {
		reason := sourcev1.GitOperationFailedReason
		if errors.Is(err, source.ErrAuth) {
			reason = sourcev1.AuthenticationFailedReason
		}
		return fetchFailed(reason, fmt.Errorf("failed to checkout and determine revision: %w", err))
	}
	return fetched{art: art, changed: changed,
		stored: fmt.Sprintf("stored artifact for revision '%s'", art.Revision),
		event:  fmt.Sprintf("stored artifact for commit '%s'", art.Commit)}
}
