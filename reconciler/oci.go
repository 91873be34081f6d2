package reconciler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
)

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
