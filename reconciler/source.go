package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// reconcileSource reconciles a GitRepository or an OCIRepository.
func (r *Reconciler) reconcileSource(ctx context.Context, ref srcRef) {
	switch ref.kind {
	case KindGitRepository:
		r.reconcileGit(ctx, ref)
	case KindOCIRepository:
		r.reconcileOCI(ctx, ref)
	}
}

// reconcileGit fetches a GitRepository and, when the revision changed, publishes the new artifact
// and wakes every Kustomization that reads it.
func (r *Reconciler) reconcileGit(ctx context.Context, ref srcRef) {
	k := ref.key
	start := r.clk.Now()
	r.mu.Lock()
	st := r.repos[k]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	obj := st.obj.DeepCopy()
	if rq := requestedAt(obj.Annotations); rq != "" {
		st.obj.Status.LastHandledReconcileAt = rq
	}
	if obj.Spec.Suspend {
		r.scheduleLocked(KindGitRepository, k, 0)
		r.mu.Unlock()
		return
	}
	r.markProgressing(&st.obj.Status.Conditions, obj.Generation, "building artifact")
	r.mu.Unlock()

	timeout := r.prof.GitTimeout
	if obj.Spec.Timeout != nil {
		timeout = obj.Spec.Timeout.Duration
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	art, changed, reason, err := r.fetch(fctx, ref, obj)

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
			LastUpdateTime: metav1.NewTime(art.Created), Size: &art.Size}
		s.ObservedIgnore = obj.Spec.Ignore
		r.markReady(&s.Conditions, obj.Generation, meta.SucceededReason, fmt.Sprintf("stored artifact for revision '%s'", art.Revision))
		r.setCondition(&s.Conditions, obj.Generation, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason,
			fmt.Sprintf("stored artifact for revision '%s'", art.Revision))
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
	r.scheduleLocked(KindGitRepository, k, next)
	r.mu.Unlock()
	r.met.observeReconcile(KindGitRepository, outcome, r.clk.Since(start))

	if err != nil {
		r.emit(KindGitRepository, k, EventWarning, reason, err.Error(), "")
		return
	}
	if changed {
		r.emit(KindGitRepository, k, EventNormal, "NewArtifact", fmt.Sprintf("stored artifact for commit '%s'", art.Commit), art.Revision)
	}
	for _, w := range wake {
		r.ksQueue.Add(w)
	}
}

func (r *Reconciler) fetch(ctx context.Context, ref srcRef, obj *sourcev1.GitRepository) (*source.Artifact, bool, string, error) {
	req := source.Request{URL: obj.Spec.URL, Ignore: obj.Spec.Ignore}
	if ref := obj.Spec.Reference; ref != nil {
		req.Ref = source.Ref{Branch: ref.Branch, Tag: ref.Tag, SemVer: ref.SemVer, Name: ref.Name, Commit: ref.Commit}
	}
	if sr := obj.Spec.SecretRef; sr != nil {
		var sec corev1.Secret
		if err := r.admin.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: sr.Name}, &sec); err != nil {
			return nil, false, sourcev1.AuthenticationFailedReason,
				fmt.Errorf("failed to get secret '%s/%s' named in spec.secretRef: %w", obj.Namespace, sr.Name, err)
		}
		req.Auth = &source.Auth{Username: string(sec.Data["username"]), Password: string(sec.Data["password"]),
			BearerToken: string(sec.Data["bearerToken"]), CABundle: sec.Data["ca.crt"]}
	}
	art, changed, err := r.store.Fetch(ctx, ref.String(), req)
	if err != nil {
		reason := sourcev1.GitOperationFailedReason
		if errors.Is(err, source.ErrAuth) {
			reason = sourcev1.AuthenticationFailedReason
		}
		return nil, false, reason, fmt.Errorf("failed to checkout and determine revision: %w", err)
	}
	return art, changed, "", nil
}
