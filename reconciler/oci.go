package reconciler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// reconcileOCI pulls an OCIRepository's artifact and, when the revision (or the layer selection or
// ignore rules) changed, publishes it and wakes every Kustomization that reads it -- source-controller's
// OCIRepository reconciler, for artifacts as `flux push artifact` makes them.
func (r *Reconciler) reconcileOCI(ctx context.Context, ref srcRef) {
	k := ref.key
	start := r.clk.Now()
	r.mu.Lock()
	st := r.ocis[k]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	obj := st.obj.DeepCopy()
	if rq := requestedAt(obj.Annotations); rq != "" {
		st.obj.Status.LastHandledReconcileAt = rq
	}
	if obj.Spec.Suspend {
		r.scheduleLocked(KindOCIRepository, k, 0)
		r.mu.Unlock()
		return
	}
	r.markProgressing(&st.obj.Status.Conditions, obj.Generation, "building artifact")
	r.mu.Unlock()

	timeout := r.prof.GitTimeout // the same 60 s default (api/v1 OCIRepositorySpec.Timeout: "defaults to 60s")
	if obj.Spec.Timeout != nil {
		timeout = obj.Spec.Timeout.Duration
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	art, changed, reason, err := r.pullOCI(fctx, ref, obj)

	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	s := &st.obj.Status
	s.ObservedGeneration = obj.Generation
	var next time.Duration
	outcome := core.Succeeded
	if err != nil {
		outcome = core.Failed
		st.failures++
		r.markFailed(&s.Conditions, obj.Generation, reason, err.Error(), false)
		next = min(r.prof.SourceRetryBase<<min(st.failures, 30), obj.Spec.Interval.Duration)
	} else {
		st.failures = 0
		s.Artifact = &meta.Artifact{Path: art.Dir, URL: "file://" + art.Dir, Revision: art.Revision, Digest: art.Digest,
			LastUpdateTime: metav1.NewTime(art.Created), Size: &art.Size, Metadata: art.Metadata}
		s.URL = s.Artifact.URL
		s.ObservedIgnore = obj.Spec.Ignore
		s.ObservedLayerSelector = obj.Spec.LayerSelector
		msg := fmt.Sprintf("stored artifact for digest '%s'", art.Revision)
		r.markReady(&s.Conditions, obj.Generation, meta.SucceededReason, msg)
		r.setCondition(&s.Conditions, obj.Generation, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, msg)
		next = obj.Spec.Interval.Duration
	}
	var wake []core.Key
	if changed {
		wake = r.kustomizationsOfSourceLocked(ref)
	}
	r.mu.Unlock()
	if outcome == core.Succeeded {
		next = r.jitter(next)
	}
	r.mu.Lock()
	r.scheduleLocked(KindOCIRepository, k, next)
	r.mu.Unlock()
	r.met.observeReconcile(KindOCIRepository, outcome, r.clk.Since(start))

	if err != nil {
		r.emit(KindOCIRepository, k, EventWarning, reason, err.Error(), "")
		return
	}
	if changed {
		r.emit(KindOCIRepository, k, EventNormal, "NewArtifact",
			fmt.Sprintf("stored artifact with revision '%s' from '%s'", art.Revision, obj.Spec.URL), art.Revision)
	}
	for _, w := range wake {
		r.ksQueue.Add(w)
	}
}

func (r *Reconciler) pullOCI(ctx context.Context, ref srcRef, obj *sourcev1.OCIRepository) (*source.Artifact, bool, string, error) {
	req := source.OCIRequest{URL: obj.Spec.URL, Insecure: obj.Spec.Insecure, Ignore: obj.Spec.Ignore,
		LayerMediaType: obj.GetLayerMediaType(), Copy: obj.GetLayerOperation() == sourcev1.OCILayerCopy}
	if rf := obj.Spec.Reference; rf != nil {
		req.Ref = source.OCIRef{Digest: rf.Digest, SemVer: rf.SemVer, SemverFilter: rf.SemverFilter, Tag: rf.Tag}
	}
	if sr := obj.Spec.SecretRef; sr != nil {
		var sec corev1.Secret
		if err := r.admin.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: sr.Name}, &sec); err != nil {
			return nil, false, sourcev1.AuthenticationFailedReason,
				fmt.Errorf("failed to get secret '%s/%s' named in spec.secretRef: %w", obj.Namespace, sr.Name, err)
		}
		auth, err := dockerConfigAuth(&sec, strings.TrimPrefix(obj.Spec.URL, sourcev1.OCIRepositoryPrefix))
		if err != nil {
			return nil, false, sourcev1.AuthenticationFailedReason,
				fmt.Errorf("secret '%s/%s' named in spec.secretRef: %w", obj.Namespace, sr.Name, err)
		}
		req.Auth = auth
	}
	art, changed, err := r.store.FetchOCI(ctx, ref.String(), req)
	if err != nil {
		reason := sourcev1.OCIPullFailedReason
		if errors.Is(err, source.ErrOCILayer) {
			reason = sourcev1.OCILayerOperationFailedReason
		}
		return nil, false, reason, err
	}
	return art, changed, "", nil
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
