package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/chartutil"
	"github.com/fluxcd/pkg/runtime/cel"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/opencontainers/go-digest"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/core"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/helm"
)

// hrState is the reconciler's record of one HelmRelease.
type hrState struct {
	obj     *helmv2.HelmRelease
	deleted bool
	lastMsg string // the last waiting message evented, so a wait is evented once
}

// ApplyHelmRelease adds or updates a HelmRelease (helm-controller's HelmRelease v2). A spec change (or
// a new reconcile.fluxcd.io/requestedAt annotation) reconciles it at once. What the twin's reconciler
// does not implement is refused with ErrInvalid naming the field.
func (r *Reconciler) ApplyHelmRelease(obj *helmv2.HelmRelease) error {
	if err := validateHelmRelease(obj); err != nil {
		return err
	}
	k := core.Key{Namespace: obj.Namespace, Name: obj.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	in := obj.DeepCopy()
	st := r.hrs[k]
	if st == nil {
		in.Generation = r.firstGeneration(in)
		if !r.opts.ObjectsInCluster {
			in.Status = helmv2.HelmReleaseStatus{}
		}
		r.hrs[k] = &hrState{obj: in}
	} else {
		var reconcile bool
		in.Generation, reconcile = r.updatedGeneration(st.obj, in, st.obj.Spec, in.Spec)
		in.Status = st.obj.Status
		st.obj = in
		if !reconcile {
			return nil
		}
	}
	if r.started {
		r.hrQueue.Add(k)
	}
	return nil
}

// HelmRelease returns a copy of the HelmRelease with its current status.
func (r *Reconciler) HelmRelease(namespace, name string) (*helmv2.HelmRelease, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.hrs[core.Key{Namespace: namespace, Name: name}]
	if st == nil {
		return nil, false
	}
	return st.obj.DeepCopy(), true
}

// HelmReleases returns copies of all HelmReleases, sorted by namespace and name.
func (r *Reconciler) HelmReleases() []helmv2.HelmRelease {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]helmv2.HelmRelease, 0, len(r.hrs))
	for _, st := range r.hrs {
		out = append(out, *st.obj.DeepCopy())
	}
	slices.SortFunc(out, func(a, b helmv2.HelmRelease) int {
		return compareKeys(core.Key{Namespace: a.Namespace, Name: a.Name}, core.Key{Namespace: b.Namespace, Name: b.Name})
	})
	return out
}

// DeleteHelmRelease removes a HelmRelease as helm-controller's finalizer does: unless it is suspended,
// the release is uninstalled (its objects deleted, its storage Secrets too unless
// spec.uninstall.keepHistory), and the HelmChart made for spec.chart is deleted.
func (r *Reconciler) DeleteHelmRelease(ctx context.Context, namespace, name string) error {
	k := core.Key{Namespace: namespace, Name: name}
	r.mu.Lock()
	st := r.hrs[k]
	if st == nil {
		r.mu.Unlock()
		return fmt.Errorf("HelmRelease %s: %w", k, ErrNotFound)
	}
	obj := st.obj.DeepCopy()
	r.mu.Unlock()
	if !obj.Spec.Suspend {
		acts, err := r.helmActions(obj)
		if err != nil {
			return err
		}
		un := obj.GetUninstall()
		if _, err := acts.Uninstall(helm.Options{Timeout: un.GetTimeout(obj.GetTimeout()).Duration, Wait: !un.DisableWait,
			DisableHooks: un.DisableHooks, KeepHistory: un.KeepHistory, Description: "Uninstalled by the twin's reconciler (HelmRelease deleted)"}); err != nil {
			msg := fmt.Sprintf("Helm uninstall failed for release %s/%s: %s", obj.GetStorageNamespace(), releaseName(obj), err)
			r.emit(KindHelmRelease, k, EventWarning, helmv2.UninstallFailedReason, msg, "")
			return fmt.Errorf("delete HelmRelease %s: %w", k, err)
		}
		// helm-controller's uninstall action (internal/reconcile/uninstall.go, fmtUninstallSuccess).
		if cur := obj.Status.History.Latest(); cur != nil {
			r.emit(KindHelmRelease, k, EventNormal, helmv2.UninstallSucceededReason,
				fmt.Sprintf("Helm uninstall succeeded for release %s with chart %s", cur.FullReleaseName(), cur.VersionedChartName()),
				cur.ChartVersion)
		}
		if err := r.deleteChartTemplate(ctx, obj); err != nil {
			return fmt.Errorf("delete HelmRelease %s: %w", k, err)
		}
	}
	r.mu.Lock()
	st.deleted = true
	delete(r.hrs, k)
	r.scheduleLocked(KindHelmRelease, k, 0)
	dependents := r.helmReleaseDependentsLocked(k)
	r.mu.Unlock()
	for _, d := range dependents {
		r.hrQueue.Add(d)
	}
	return nil
}

// releaseHelmRelease forgets a HelmRelease without uninstalling anything.
func (r *Reconciler) releaseHelmRelease(k core.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduleLocked(KindHelmRelease, k, 0)
	if st := r.hrs[k]; st != nil {
		st.deleted = true
		delete(r.hrs, k)
	}
}

// releaseName is helm-controller's release name: spec.releaseName, else [<targetNamespace>-]<name>,
// shortened to Helm's 53 characters by keeping the first 40 and adding "-" and 12 hex digits of the
// name's SHA-256 (helm-controller internal/release ShortenName).
func releaseName(o *helmv2.HelmRelease) string {
	name := o.GetReleaseName()
	const maxLength, hashLength = 53, 12
	if len(name) <= maxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxLength-hashLength-1] + "-" + hex.EncodeToString(sum[:])[:hashLength]
}

func validateHelmRelease(o *helmv2.HelmRelease) error {
	if o == nil {
		return fmt.Errorf("%w: nil HelmRelease", ErrInvalid)
	}
	bad := func(field, format string, args ...any) error {
		return invalid("HelmRelease", o.Namespace, o.Name, field, format, args...)
	}
	if o.Name == "" || o.Namespace == "" {
		return bad("metadata", "name and namespace are required")
	}
	if o.Spec.Interval.Duration <= 0 {
		return bad("spec.interval", "must be a positive duration, e.g. 10m")
	}
	switch {
	case o.Spec.Chart != nil && o.Spec.ChartRef != nil, o.Spec.Chart == nil && o.Spec.ChartRef == nil:
		return bad("spec.chart", "exactly one of spec.chart and spec.chartRef must be set")
	case o.Spec.Chart != nil:
		c := o.Spec.Chart.Spec
		if c.Chart == "" || c.SourceRef.Name == "" {
			return bad("spec.chart.spec", "chart and sourceRef.name are required")
		}
		if k := c.SourceRef.Kind; k != sourcev1.HelmRepositoryKind && k != sourcev1.GitRepositoryKind {
			return bad("spec.chart.spec.sourceRef.kind", "%q is not supported by the twin's reconciler; use HelmRepository or GitRepository", k)
		}
		switch {
		case c.Verify != nil:
			return bad("spec.chart.spec.verify", "is not supported by the twin's reconciler; remove it")
		case len(c.ValuesFiles) > 0:
			return bad("spec.chart.spec.valuesFiles", "is not supported by the twin's reconciler; remove it")
		case c.ReconcileStrategy != "" && c.ReconcileStrategy != sourcev1.ReconcileStrategyChartVersion:
			return bad("spec.chart.spec.reconcileStrategy", "%q is not supported by the twin's reconciler; remove it", c.ReconcileStrategy)
		}
	default:
		if k := o.Spec.ChartRef.Kind; k != sourcev1.OCIRepositoryKind && k != sourcev1.HelmChartKind {
			return bad("spec.chartRef.kind", "%q must be OCIRepository or HelmChart", k)
		}
		if o.Spec.ChartRef.Name == "" {
			return bad("spec.chartRef.name", "is required")
		}
	}
	for i, d := range o.Spec.DependsOn {
		if d.Name == "" {
			return bad(fmt.Sprintf("spec.dependsOn[%d].name", i), "is required")
		}
	}
	for i, v := range o.Spec.ValuesFrom {
		if v.Kind != "ConfigMap" && v.Kind != "Secret" {
			return bad(fmt.Sprintf("spec.valuesFrom[%d].kind", i), "%q must be ConfigMap or Secret", v.Kind)
		}
	}
	if dd := o.Spec.DriftDetection; dd != nil {
		switch dd.Mode {
		case "", helmv2.DriftDetectionDisabled, helmv2.DriftDetectionEnabled, helmv2.DriftDetectionWarn:
		default:
			return bad("spec.driftDetection.mode", "%q must be enabled, warn or disabled", dd.Mode)
		}
		for i, ir := range dd.Ignore {
			if len(ir.Paths) == 0 {
				return bad(fmt.Sprintf("spec.driftDetection.ignore[%d].paths", i), "is required: list JSON pointers such as /spec/replicas")
			}
		}
		if _, err := ignoreRules(o); err != nil {
			return bad("spec.driftDetection.ignore", "%v", err)
		}
	}
	for i, p := range o.Spec.PostRenderers {
		if p.Kustomize == nil {
			continue
		}
		for j, pt := range p.Kustomize.Patches {
			if strings.TrimSpace(pt.Patch) == "" {
				return bad(fmt.Sprintf("spec.postRenderers[%d].kustomize.patches[%d].patch", i, j), "is required: a strategic merge or JSON 6902 patch")
			}
		}
		for j, im := range p.Kustomize.Images {
			if im.Name == "" {
				return bad(fmt.Sprintf("spec.postRenderers[%d].kustomize.images[%d].name", i, j), "is required: the image name to replace")
			}
		}
	}
	switch o.Spec.PostRenderStrategy {
	case "", helmv2.PostRenderStrategyCombined, helmv2.PostRenderStrategySeparate, helmv2.PostRenderStrategyNoHooks:
	default:
		return bad("spec.postRenderStrategy", "%q must be nohooks, combined or separate", o.Spec.PostRenderStrategy)
	}
	if t := o.Spec.Test; t != nil {
		for i, f := range t.GetFilters() {
			if f.Name == "" {
				return bad(fmt.Sprintf("spec.test.filters[%d].name", i), "is required: the name of a test hook")
			}
		}
	}
	if in := o.Spec.Install; in != nil && in.Strategy != nil && in.Strategy.Name != string(helmv2.ActionStrategyRemediateOnFailure) {
		return bad("spec.install.strategy", "%q is not supported by the twin's reconciler; use remediation", in.Strategy.Name)
	}
	if up := o.Spec.Upgrade; up != nil && up.Strategy != nil && up.Strategy.Name != string(helmv2.ActionStrategyRemediateOnFailure) {
		return bad("spec.upgrade.strategy", "%q is not supported by the twin's reconciler; use remediation", up.Strategy.Name)
	}
	if w := o.Spec.WaitStrategy; w != nil && w.Name != helmv2.WaitStrategyPoller && w.Name != helmv2.WaitStrategyLegacy {
		return bad("spec.waitStrategy.name", "%q must be poller or legacy", w.Name)
	}
	if o.Spec.KubeConfig != nil {
		return bad("spec.kubeConfig", "is not supported by the twin's reconciler yet; remove it")
	}
	return nil
}

// helmReleaseDeps are the HelmReleases a HelmRelease depends on, the namespace defaulting to its own.
func helmReleaseDeps(o *helmv2.HelmRelease) []core.Key {
	out := make([]core.Key, 0, len(o.Spec.DependsOn))
	for _, d := range o.Spec.DependsOn {
		ns := d.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		out = append(out, core.Key{Namespace: ns, Name: d.Name})
	}
	return out
}

// chartSource is the source a HelmRelease reads its chart from: the HelmChart made for spec.chart
// (<namespace>-<name> in the sourceRef's namespace, helm-controller's GetHelmChartName), or
// spec.chartRef.
func chartSource(o *helmv2.HelmRelease) srcRef {
	if c := o.Spec.Chart; c != nil {
		ns := c.Spec.SourceRef.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		return srcRef{KindHelmChart, core.Key{Namespace: ns, Name: o.GetHelmChartName()}}
	}
	ns := o.Spec.ChartRef.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	return srcRef{Kind(o.Spec.ChartRef.Kind), core.Key{Namespace: ns, Name: o.Spec.ChartRef.Name}}
}

// chartTemplate is the HelmChart helm-controller makes for a HelmRelease's spec.chart.
func chartTemplate(o *helmv2.HelmRelease) *sourcev1.HelmChart {
	c := o.Spec.Chart.Spec
	ref := chartSource(o)
	interval := o.Spec.Interval
	if c.Interval != nil {
		interval = *c.Interval
	}
	hc := &sourcev1.HelmChart{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmChartKind},
		ObjectMeta: metav1.ObjectMeta{Name: ref.key.Name, Namespace: ref.key.Namespace},
		Spec: sourcev1.HelmChartSpec{Chart: c.Chart, Version: c.Version, Interval: interval,
			SourceRef:         sourcev1.LocalHelmChartSourceReference{Kind: c.SourceRef.Kind, Name: c.SourceRef.Name},
			ReconcileStrategy: c.ReconcileStrategy, Suspend: o.Spec.Suspend},
	}
	if hc.Spec.Version == "" {
		hc.Spec.Version = "*"
	}
	if hc.Spec.ReconcileStrategy == "" {
		hc.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyChartVersion
	}
	if m := o.Spec.Chart.ObjectMeta; m != nil {
		hc.Labels, hc.Annotations = m.Labels, m.Annotations
	}
	return hc
}

// ensureChartTemplate creates or updates the HelmChart of spec.chart: in the cluster by server-side
// apply as helm-controller (whose owner labels it carries), which the cluster watch then hands to the
// source reconciler; in memory directly.
func (r *Reconciler) ensureChartTemplate(ctx context.Context, o *helmv2.HelmRelease) error {
	hc := chartTemplate(o)
	if !r.opts.ObjectsInCluster {
		return r.ApplyHelmChart(hc)
	}
	hc.Labels = mergeLabels(hc.Labels, map[string]string{
		helmv2.GroupVersion.Group + "/name": o.Name, helmv2.GroupVersion.Group + "/namespace": o.Namespace})
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hc)
	if err != nil {
		return err
	}
	delete(u, "status")
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	res := r.dyn.Resource(mustSourceKind(KindHelmChart).gvr).Namespace(hc.Namespace)
	before := ""
	if cur, err := res.Get(ctx, hc.Name, metav1.GetOptions{}); err == nil {
		before = cur.GetResourceVersion()
	} else if !isNotFound(err) {
		return fmt.Errorf("failed to run server-side apply: %w", err)
	}
	force := true
	after, err := res.Patch(ctx, hc.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "helm-controller", Force: &force})
	if err != nil {
		// helm-controller records the failed apply as a trace event (a Normal Kubernetes Event).
		err = fmt.Errorf("failed to run server-side apply: %w", err)
		r.emit(KindHelmRelease, core.Key{Namespace: o.Namespace, Name: o.Name}, EventNormal, "HelmChartSyncErr", err.Error(), "")
		return err
	}
	// helm-controller (internal/reconcile/helmchart_template.go) posts a trace event -- a Normal
	// Kubernetes Event -- when its server-side apply created or changed the HelmChart, none when unchanged.
	action := ""
	switch {
	case before == "":
		action = "Created"
	case after.GetResourceVersion() != before:
		action = "Configured"
	}
	if action != "" {
		r.emit(KindHelmRelease, core.Key{Namespace: o.Namespace, Name: o.Name}, EventNormal, "HelmChart"+action,
			fmt.Sprintf("%s HelmChart/%s/%s with SourceRef '%s/%s/%s'", action, hc.Namespace, hc.Name,
				hc.Spec.SourceRef.Kind, hc.Namespace, hc.Spec.SourceRef.Name), "")
	}
	return nil
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// deleteChartTemplate deletes the HelmChart made for spec.chart.
func (r *Reconciler) deleteChartTemplate(ctx context.Context, o *helmv2.HelmRelease) error {
	if o.Spec.Chart == nil {
		return nil
	}
	ref := chartSource(o)
	if !r.opts.ObjectsInCluster {
		if err := r.deleteSource(ref); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	err := r.dyn.Resource(mustSourceKind(KindHelmChart).gvr).Namespace(ref.key.Namespace).Delete(ctx, ref.key.Name, metav1.DeleteOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to delete HelmChart '%s': %w", ref.key, err)
	}
	// helm-controller's finalizer posts this as a trace event (a Normal Kubernetes Event).
	r.emit(KindHelmRelease, core.Key{Namespace: o.Namespace, Name: o.Name}, EventNormal, "HelmChartDeleted",
		fmt.Sprintf("deleted HelmChart '%s'", ref.key), "")
	return nil
}

// helmReleasesOfSourceLocked lists the HelmReleases whose chart comes from ref. Callers hold r.mu.
func (r *Reconciler) helmReleasesOfSourceLocked(ref srcRef) []schedKey {
	var out []core.Key
	for k, st := range r.hrs {
		if chartSource(st.obj) == ref {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareKeys)
	keys := make([]schedKey, len(out))
	for i, k := range out {
		keys[i] = schedKey{KindHelmRelease, k}
	}
	return keys
}

// helmReleaseDependentsLocked lists the HelmReleases that depend on k. Callers hold r.mu.
func (r *Reconciler) helmReleaseDependentsLocked(k core.Key) []core.Key {
	var out []core.Key
	for d, st := range r.hrs {
		if slices.Contains(helmReleaseDeps(st.obj), k) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// helmActions returns the Helm actions of a HelmRelease's release.
func (r *Reconciler) helmActions(o *helmv2.HelmRelease) (*helm.Actions, error) {
	var user string
	sa := o.Spec.ServiceAccountName
	if sa == "" {
		sa = r.opts.DefaultServiceAccount
	}
	if sa != "" {
		user = "system:serviceaccount:" + o.Namespace + ":" + sa
	}
	return r.helm.NewActions(helm.Release{Name: releaseName(o), Namespace: o.GetReleaseNamespace(),
		StorageNamespace: o.GetStorageNamespace(), User: user}, r.log)
}

// hrWait is why a HelmRelease cannot be released now: the Ready=False reason and message, and whether
// it is evented as a warning.
type hrWait struct {
	reason, msg string
	warning     bool
	// quiet: helm-controller sets the condition and requeues without an event (a missing or not yet
	// ready chart source: internal/controller/helmrelease_controller.go, ArtifactFailed/SourceNotReady).
	quiet bool
}

// reconcileHelmRelease runs one reconciliation, in helm-controller's order: suspend, dependencies,
// chart template, source, values, chart, then the release actions (atomic release).
func (r *Reconciler) reconcileHelmRelease(ctx context.Context, k core.Key) {
	start := r.clk.Now()
	r.mu.Lock()
	st := r.hrs[k]
	if st == nil || st.deleted {
		r.mu.Unlock()
		return
	}
	obj := st.obj.DeepCopy()
	if rq := requestedAt(obj.Annotations); rq != "" {
		st.obj.Status.LastHandledReconcileAt = rq
	}
	var wait *hrWait
	var celErr error
	for i, d := range helmReleaseDeps(obj) {
		dst := r.hrs[d]
		if dst == nil {
			wait = &hrWait{reason: helmv2.DependencyNotReadyReason,
				msg: fmt.Sprintf("unable to get '%s' dependency: helmreleases.helm.toolkit.fluxcd.io %q not found", d, d.Name)}
			break
		}
		// helm-controller's checkDependencies: a readyExpr (CEL, self and dep) replaces the built-in
		// check (without its AdditiveCELDependencyCheck feature gate, off by default).
		if expr := obj.Spec.DependsOn[i].ReadyExpr; expr != "" {
			ready, err := evalReadyExpr(ctx, expr, d.Name, obj, dst.obj)
			if err != nil {
				celErr = err
				break
			}
			if !ready {
				wait = &hrWait{reason: helmv2.DependencyNotReadyReason, msg: fmt.Sprintf("dependency '%s' is not ready according to readyExpr eval", d)}
				break
			}
			continue
		}
		if dst.obj.Status.ObservedGeneration != dst.obj.Generation || !apimeta.IsStatusConditionTrue(dst.obj.Status.Conditions, meta.ReadyCondition) {
			wait = &hrWait{reason: helmv2.DependencyNotReadyReason, msg: fmt.Sprintf("dependency '%s' is not ready", d)}
			break
		}
	}
	r.mu.Unlock()
	if obj.Spec.Suspend {
		r.mu.Lock()
		r.scheduleLocked(KindHelmRelease, k, 0)
		r.mu.Unlock()
		return
	}
	// helm-controller compiles spec.healthCheckExprs before anything else, and an invalid expression
	// (or readyExpr) stalls the HelmRelease until its spec changes.
	if _, err := cel.NewStatusReader(obj.Spec.HealthCheckExprs); err != nil && celErr == nil {
		celErr = err
	}
	if celErr != nil {
		r.hrStalled(k, st, obj, meta.InvalidCELExpressionReason, celErr)
		return
	}
	if wait != nil {
		r.hrWaiting(k, st, obj, wait)
		return
	}

	// The chart: the HelmChart of spec.chart (made or updated first), or spec.chartRef.
	src := chartSource(obj)
	if obj.Spec.Chart != nil {
		if err := r.ensureChartTemplate(ctx, obj); err != nil {
			r.hrWaiting(k, st, obj, &hrWait{reason: helmv2.ArtifactFailedReason, msg: err.Error(), warning: true})
			return
		}
	}
	r.mu.Lock()
	if obj.Spec.Chart != nil {
		st.obj.Status.HelmChart = src.key.String()
	}
	wait = r.chartReadyLocked(obj, src)
	r.mu.Unlock()
	if wait != nil {
		r.hrWaiting(k, st, obj, wait)
		return
	}

	values, err := chartutil.ChartValuesFromReferences(ctx, logr.FromSlogHandler(r.log.Handler()), r.admin, obj.Namespace,
		obj.GetValues(), obj.Spec.ValuesFrom...)
	if err != nil {
		r.hrWaiting(k, st, obj, &hrWait{reason: "ValuesError", msg: err.Error(), warning: true})
		return
	}
	art := r.store.Acquire(src.String())
	if art == nil {
		r.hrWaiting(k, st, obj, &hrWait{reason: helmv2.ArtifactFailedReason,
			msg: fmt.Sprintf("Source not ready: artifact not found. Retrying in %s", r.prof.DependencyRequeue), quiet: true})
		return
	}
	ch, err := helm.LoadArtifact(art.Dir)
	art.Release()
	if err != nil {
		r.hrWaiting(k, st, obj, &hrWait{reason: helmv2.ArtifactFailedReason, msg: "Could not load chart: " + err.Error(), warning: true})
		return
	}

	outcome := r.releaseHelm(ctx, k, st, obj, ch, values)
	r.met.observeReconcile(KindHelmRelease, outcome, r.clk.Since(start))
	if outcome == core.Succeeded {
		r.mu.Lock()
		dependents := r.helmReleaseDependentsLocked(k)
		r.mu.Unlock()
		for _, d := range dependents {
			r.hrQueue.Add(d)
		}
	}
}

// chartReadyLocked says why the chart source is not ready (helm-controller's isSourceReady), nil when
// it has an artifact for its current spec. Callers hold r.mu.
func (r *Reconciler) chartReadyLocked(o *helmv2.HelmRelease, src srcRef) *hrWait {
	sst := r.srcs[src]
	if sst == nil {
		return &hrWait{reason: helmv2.ArtifactFailedReason, msg: fmt.Sprintf("could not get Source object: %s.source.toolkit.fluxcd.io %q not found",
			strings.ToLower(string(src.kind))+"s", src.key.Name), quiet: true}
	}
	notReady := func(why string) *hrWait {
		return &hrWait{reason: "SourceNotReady", msg: fmt.Sprintf("%s '%s' is not ready: %s", src.kind, src.key, why), quiet: true}
	}
	fields := sst.kind.fields(sst.obj)
	conds := *fields.conditions
	if hc, ok := sst.obj.(*sourcev1.HelmChart); ok && o.Spec.Chart != nil && !equalJSON(hc.Spec, chartTemplate(o).Spec) {
		return notReady("latest generation of object has not been reconciled")
	}
	if *fields.observedGeneration != sst.obj.GetGeneration() {
		msg := "latest generation of object has not been reconciled"
		if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil && c.Status == metav1.ConditionFalse {
			msg = c.Message
		}
		return notReady(msg)
	}
	if c := apimeta.FindStatusCondition(conds, meta.StalledCondition); c != nil && c.Status == metav1.ConditionTrue {
		return notReady(c.Message)
	}
	if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil && c.Status == metav1.ConditionFalse && sst.obj.GetArtifact() == nil {
		return notReady(c.Message)
	}
	if sst.obj.GetArtifact() == nil {
		return notReady("does not have an artifact")
	}
	return nil
}

// hrWaiting records a HelmRelease that cannot be released now: Ready False with the reason, an event
// when the message is new, and a re-check after DependencyRequeue (a dependency or source becoming
// ready wakes it before that).
func (r *Reconciler) hrWaiting(k core.Key, st *hrState, obj *helmv2.HelmRelease, w *hrWait) {
	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.ReadyCondition, metav1.ConditionFalse, w.reason, w.msg)
	r.scheduleLocked(KindHelmRelease, k, r.prof.DependencyRequeue)
	r.published(KindHelmRelease, k)
	changed := st.lastMsg != w.msg
	st.lastMsg = w.msg
	r.mu.Unlock()
	if changed && !w.quiet {
		typ := EventNormal
		if w.warning {
			typ = EventWarning
		}
		r.emit(KindHelmRelease, k, typ, w.reason, w.msg, "")
	}
}

// hrStalled records a configuration error no retry fixes: Ready False and Stalled with the reason, a
// Warning event, and no reconciliation until the spec changes (helm-controller's terminal errors).
func (r *Reconciler) hrStalled(k core.Key, st *hrState, obj *helmv2.HelmRelease, reason string, err error) {
	msg := fmt.Sprintf("%s: %v", terminalErrorMessage, err)
	r.mu.Lock()
	if st.deleted {
		r.mu.Unlock()
		return
	}
	r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.ReadyCondition, metav1.ConditionFalse, reason, msg)
	r.setCondition(&st.obj.Status.Conditions, obj.Generation, meta.StalledCondition, metav1.ConditionTrue, reason, msg)
	st.obj.Status.ObservedGeneration = obj.Generation
	r.scheduleLocked(KindHelmRelease, k, 0)
	r.published(KindHelmRelease, k)
	st.lastMsg = ""
	r.mu.Unlock()
	r.emit(KindHelmRelease, k, EventWarning, reason, err.Error(), "")
}

func isNotFound(err error) bool {
	var s interface{ Status() metav1.Status }
	return errors.As(err, &s) && s.Status().Reason == metav1.StatusReasonNotFound
}

// configDigest is helm-controller's digest of a release's values (fluxcd/pkg/chartutil DigestValues).
func configDigest(values map[string]any) string {
	return chartutil.DigestValues(digest.Canonical, values).String()
}

// snapshotOf is helm-controller's history entry of a release record.
func snapshotOf(rel *release.Release) *helmv2.Snapshot {
	b, _ := json.Marshal(rel)
	sum := sha256.Sum256(b)
	s := &helmv2.Snapshot{APIVersion: "v2", Digest: "sha256:" + hex.EncodeToString(sum[:]), Name: rel.Name, Namespace: rel.Namespace,
		Version: rel.Version, ConfigDigest: configDigest(rel.Config)}
	if rel.Info != nil {
		s.Status = rel.Info.Status.String()
		s.FirstDeployed, s.LastDeployed = metav1.NewTime(rel.Info.FirstDeployed), metav1.NewTime(rel.Info.LastDeployed)
		if !rel.Info.Deleted.IsZero() {
			s.Deleted = metav1.NewTime(rel.Info.Deleted)
		}
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		s.ChartName, s.ChartVersion, s.AppVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, rel.Chart.Metadata.AppVersion
	}
	return s
}

// observe brings the history up to date with storage: every snapshot's record is read again (an
// upgrade supersedes the previous release, an uninstall deletes it), and the newest record is added
// when it is new. Records it cannot read keep their snapshot.
func observe(acts *helm.Actions, hist *helmv2.Snapshots, action helmv2.ReleaseAction) {
	for i, s := range *hist {
		if rel, err := acts.Get(s.Version); err == nil && rel != nil && rel.Name == s.Name {
			ns := snapshotOf(rel)
			ns.Action, ns.TestHooks = s.Action, s.TestHooks
			(*hist)[i] = ns
		} else if err == nil && rel == nil && s.Deleted.IsZero() {
			s.Status = rcommon.StatusUninstalled.String()
		}
	}
	last, err := acts.Last()
	if err != nil || last == nil {
		return
	}
	if l := hist.Latest(); l != nil && l.Version == last.Version && l.Name == last.Name {
		return
	}
	s := snapshotOf(last)
	s.Action = action
	*hist = append(helmv2.Snapshots{s}, *hist...)
	hist.SortByVersion()
}

// the waits and time budgets of an action, from the HelmRelease's spec.
func installOptions(o *helmv2.HelmRelease) helm.Options {
	in := o.GetInstall()
	return waitOf(o, helm.Options{Timeout: in.GetTimeout(o.GetTimeout()).Duration, Wait: !in.DisableWait, WaitForJobs: !in.DisableWaitForJobs,
		DisableHooks: in.DisableHooks, CreateNamespace: in.CreateNamespace,
		SkipCRDs:    true, // the CRDs policy is applied by ApplyCRDs, as helm-controller does
		Description: "Install complete"})
}

// installCRDsPolicy is spec.install.crds, Create by default, Skip with the deprecated skipCRDs
// (helm-controller's crdPolicyOrDefault).
func installCRDsPolicy(o *helmv2.HelmRelease) helmv2.CRDsPolicy {
	in := o.GetInstall()
	switch {
	case in.SkipCRDs:
		return helmv2.Skip
	case in.CRDs == "":
		return helmv2.Create
	}
	return in.CRDs
}

func upgradeOptions(o *helmv2.HelmRelease) helm.Options {
	up := o.GetUpgrade()
	return waitOf(o, helm.Options{Timeout: up.GetTimeout(o.GetTimeout()).Duration, Wait: !up.DisableWait, WaitForJobs: !up.DisableWaitForJobs,
		DisableHooks: up.DisableHooks, Force: up.Force, CleanupOnFail: up.CleanupOnFail, MaxHistory: o.GetMaxHistory(),
		Description: "Upgrade complete"})
}

func rollbackOptions(o *helmv2.HelmRelease) helm.Options {
	rb := o.GetRollback()
	return waitOf(o, helm.Options{Timeout: rb.GetTimeout(o.GetTimeout()).Duration, Wait: !rb.DisableWait, WaitForJobs: !rb.DisableWaitForJobs,
		DisableHooks: rb.DisableHooks, Force: rb.Force, CleanupOnFail: rb.CleanupOnFail, MaxHistory: o.GetMaxHistory()})
}

// waitOf adds spec.waitStrategy and spec.healthCheckExprs to an action's options: legacy waits with
// Helm's legacy checks; poller (the default) with kstatus, plus the CEL health checks as extra
// status readers, as helm-controller's poller does. The expressions compiled when the reconciliation
// began (an invalid one stalls it), so an error here cannot happen.
func waitOf(o *helmv2.HelmRelease, opts helm.Options) helm.Options {
	opts.Legacy = o.Spec.WaitStrategy != nil && o.Spec.WaitStrategy.Name == helmv2.WaitStrategyLegacy
	if len(o.Spec.HealthCheckExprs) > 0 {
		if sr, err := cel.NewStatusReader(o.Spec.HealthCheckExprs); err == nil {
			opts.StatusReaders = append(opts.StatusReaders, sr)
		}
	}
	return opts
}

func uninstallOptions(o *helmv2.HelmRelease) helm.Options {
	un := o.GetUninstall()
	return helm.Options{Timeout: un.GetTimeout(o.GetTimeout()).Duration, Wait: !un.DisableWait, DisableHooks: un.DisableHooks,
		KeepHistory: un.KeepHistory}
}
