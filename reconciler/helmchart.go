package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/source"
	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// helmChartKind is HelmChart's row of sourceKinds: source-controller's HelmChart, a chart taken from a
// HelmRepository (a version picked by semver from its index and downloaded, or pulled from an OCI
// registry) or packaged from a GitRepository's folder. Its artifact is the packaged chart
// (<name>-<version>.tgz), revision the chart version.
var helmChartKind = sourceDef[sourcev1.HelmChart, *sourcev1.HelmChart, sourcev1.HelmChartStatus]{
	kind:     KindHelmChart,
	resource: "helmcharts",
	validate: validateHelmChart,
	fields: func(o *sourcev1.HelmChart) sourceFields {
		sp, st := &o.Spec, &o.Status
		return sourceFields{spec: o.Spec, interval: sp.Interval.Duration, suspend: sp.Suspend,
			conditions: &st.Conditions, artifact: &st.Artifact, observedGeneration: &st.ObservedGeneration,
			observedIgnore: new(*string), lastHandled: &st.LastHandledReconcileAt}
	},
	status: func(o *sourcev1.HelmChart) *sourcev1.HelmChartStatus { return &o.Status },
	fetch:  (*Reconciler).fetchHelmChart,
	// HelmChart also reports where its artifact is served, the chart it built and the source revision
	// it built from.
	stored: func(cur, fetched *sourcev1.HelmChart) {
		cur.Status.URL = cur.Status.Artifact.URL
		cur.Status.ObservedChartName = fetched.Spec.Chart
		cur.Status.ObservedSourceArtifactRevision = fetched.Status.ObservedSourceArtifactRevision
	},
}

// ApplyHelmChart adds or updates a HelmChart. A spec change (or a new reconcile.fluxcd.io/requestedAt
// annotation) reconciles it at once.
func (r *Reconciler) ApplyHelmChart(obj *sourcev1.HelmChart) error {
	return r.applySource(mustSourceKind(KindHelmChart), obj)
}

// DeleteHelmChart removes a HelmChart and its artifact.
func (r *Reconciler) DeleteHelmChart(namespace, name string) error {
	return r.deleteSource(srcRef{KindHelmChart, core.Key{Namespace: namespace, Name: name}})
}

// HelmChart returns a copy of the HelmChart with its current status.
func (r *Reconciler) HelmChart(namespace, name string) (*sourcev1.HelmChart, bool) {
	return getSource[*sourcev1.HelmChart](r, KindHelmChart, namespace, name)
}

// HelmCharts returns copies of all HelmCharts, sorted by namespace and name.
func (r *Reconciler) HelmCharts() []sourcev1.HelmChart {
	return listSources[sourcev1.HelmChart](r, KindHelmChart)
}

func validateHelmChart(o *sourcev1.HelmChart) error {
	if o == nil {
		return fmt.Errorf("%w: nil HelmChart", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("HelmChart", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	if o.Spec.Chart == "" {
		return bad("spec.chart", "is required")
	}
	if o.Spec.Interval.Duration <= 0 {
		return bad("spec.interval", "must be a positive duration, e.g. 10m")
	}
	switch k := o.Spec.SourceRef.Kind; k {
	case sourcev1.HelmRepositoryKind, sourcev1.GitRepositoryKind:
	default:
		return bad("spec.sourceRef.kind", "%q is not supported by the twin's reconciler; use HelmRepository or GitRepository", k)
	}
	if o.Spec.SourceRef.Name == "" {
		return bad("spec.sourceRef.name", "is required")
	}
	unsupported := map[string]bool{
		"spec.verify":            o.Spec.Verify != nil,
		"spec.valuesFiles":       len(o.Spec.ValuesFiles) > 0,
		"spec.reconcileStrategy": o.Spec.ReconcileStrategy != "" && o.Spec.ReconcileStrategy != sourcev1.ReconcileStrategyChartVersion,
	}
	for _, f := range []string{"spec.verify", "spec.valuesFiles", "spec.reconcileStrategy"} {
		if unsupported[f] {
			return bad(f, "is not supported by the twin's reconciler; remove it")
		}
	}
	return nil
}

// helmChartSource is a HelmChart's spec.sourceRef (in the HelmChart's namespace).
func helmChartSource(o *sourcev1.HelmChart) srcRef {
	return srcRef{Kind(o.Spec.SourceRef.Kind), core.Key{Namespace: o.Namespace, Name: o.Spec.SourceRef.Name}}
}

// helmChartsOfRepositoryLocked lists the HelmCharts whose source is ref. Callers hold r.mu.
func (r *Reconciler) helmChartsOfRepositoryLocked(ref srcRef) []core.Key {
	var out []core.Key
	for sr, st := range r.srcs {
		if c, ok := st.obj.(*sourcev1.HelmChart); ok && sr.kind == KindHelmChart && helmChartSource(c) == ref {
			out = append(out, sr.key)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// fetchHelmChart builds a HelmChart's artifact: source-controller's HelmChart reconciler, for charts
// from HTTP and OCI Helm repositories and from Git.
func (r *Reconciler) fetchHelmChart(ctx context.Context, ref srcRef, obj *sourcev1.HelmChart) fetched {
	src := helmChartSource(obj)
	r.mu.Lock()
	var srcObj sourceObject
	if st := r.srcs[src]; st != nil {
		srcObj = st.obj.DeepCopyObject().(sourceObject)
	}
	r.mu.Unlock()
	if srcObj == nil {
		return fetchFailed("SourceUnavailable", fmt.Errorf("failed to get source: %s.source.toolkit.fluxcd.io %q not found", src.kind, src.key.Name))
	}
	var (
		data     []byte
		version  string
		config   string
		packaged bool
		// chartName is the packaged chart's own name (a Git folder's Chart.yaml may name it otherwise).
		chartName string
	)
	switch s := srcObj.(type) {
	case *sourcev1.HelmRepository:
		var secret string
		if s.Spec.SecretRef != nil {
			secret = s.Spec.SecretRef.Name
		}
		auth, err := r.helmAuth(ctx, s.Namespace, secret)
		if err != nil {
			return fetchFailed(sourcev1.AuthenticationFailedReason, err)
		}
		if s.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
			data, version, err = helm.PullOCI(ctx, s.Spec.URL, obj.Spec.Chart, obj.Spec.Version, s.Spec.Insecure, auth)
			if err != nil {
				return chartFailed(err)
			}
			config = obj.Spec.Chart + "\x00" + source.DigestOf(data)
			break
		}
		art := r.store.Acquire(src.String())
		if art == nil {
			return fetchFailed("NoSourceArtifact", fmt.Errorf("no artifact available for %s source '%s'", src.kind, src.key.Name))
		}
		b, err := os.ReadFile(filepath.Join(art.Dir, helm.IndexFile))
		revision := art.Revision
		art.Release()
		if err != nil {
			return fetchFailed("NoSourceArtifact", fmt.Errorf("read the index of %s: %w", src, err))
		}
		idx, err := helm.ParseIndex(b)
		if err != nil {
			return fetchFailed(sourcev1.IndexationFailedReason, err)
		}
		cv, err := helm.Resolve(idx, obj.Spec.Chart, obj.Spec.Version)
		if err != nil {
			return chartFailed(err)
		}
		if data, err = helm.Download(ctx, s.Spec.URL, cv, auth); err != nil {
			return chartFailed(err)
		}
		version, config = cv.Version, obj.Spec.Chart+"\x00"+cv.Digest+"\x00"+source.DigestOf(data)
		obj.Status.ObservedSourceArtifactRevision = revision
	case *sourcev1.GitRepository:
		art := r.store.Acquire(src.String())
		if art == nil {
			return fetchFailed("NoSourceArtifact", fmt.Errorf("no artifact available for %s source '%s'", src.kind, src.key.Name))
		}
		var md *chart.Metadata
		var err error
		if !filepath.IsLocal(filepath.FromSlash(obj.Spec.Chart)) {
			err = fmt.Errorf("%w: path '%s' leaves the source's root", helm.ErrChartReference, obj.Spec.Chart)
		} else {
			data, md, err = helm.Package(filepath.Join(art.Dir, filepath.FromSlash(obj.Spec.Chart)))
		}
		revision := art.Revision
		art.Release()
		if err != nil {
			return chartFailed(err)
		}
		version, config, packaged = md.Version, revision, true
		chartName = md.Name
		obj.Status.ObservedSourceArtifactRevision = revision
	}
	name := obj.Spec.Chart
	if chartName != "" {
		name = chartName
	}
	art, changed, err := r.store.Publish(ref.String(), version, config, []source.File{
		{Name: fmt.Sprintf("%s-%s.tgz", name, version), Read: func() ([]byte, error) { return data, nil }}})
	if err != nil {
		return fetchFailed(sourcev1.StorageOperationFailedCondition, err)
	}
	action := "pulled"
	reason := sourcev1.ChartPullSucceededReason
	if packaged {
		action, reason = "packaged", sourcev1.ChartPackageSucceededReason
	}
	msg := fmt.Sprintf("%s '%s' chart with version '%s'", action, name, version)
	return fetched{art: art, changed: changed, stored: msg, event: msg, reason: reason}
}

// chartFailed maps a chart error to source-controller's reason: a chart reference nothing matches
// stalls (InvalidChartReference) until the spec or the repository changes; a failed pull or package
// is retried.
func chartFailed(err error) fetched {
	switch {
	case errors.Is(err, helm.ErrChartReference):
		f := fetchFailed("InvalidChartReference", err)
		f.stalled = true
		return f
	case errors.Is(err, helm.ErrChartPackage):
		return fetchFailed("ChartPackageError", err)
	default:
		return fetchFailed("ChartPullError", err)
	}
}
