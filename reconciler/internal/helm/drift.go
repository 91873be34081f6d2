package helm

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/ssa/jsondiff"
	ssanormalize "github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	extjsondiff "github.com/wI2L/jsondiff"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/types"
	apierrutil "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// The annotation that exempts an object of a release from drift detection, and its value
// (helm-controller api/v2 DriftDetectionMetadataKey, DriftDetectionDisabledValue).
const (
	driftDetectionKey      = "helm.toolkit.fluxcd.io/driftDetection"
	driftDetectionDisabled = "disabled"
)

// Drift is what differs between a release's manifest and the cluster: per object, absent (deleted
// in the cluster), changed (with the JSON patch that restores it) or unchanged/excluded.
type Drift jsondiff.DiffSet

// HasChanges says whether any object is absent or changed.
func (d Drift) HasChanges() bool { return jsondiff.DiffSet(d).HasChanges() }

// Diff compares the objects of rel's manifest with the cluster, as helm-controller's drift detection
// does: each object, with the labels and annotations Helm puts on it, is server-side applied as a
// dry run by the release's field manager, and the result is compared with the live object. Objects
// annotated helm.toolkit.fluxcd.io/driftDetection: disabled are excluded; ignore removes JSON
// pointers from the comparison of the objects its selectors match. Errors on some objects still
// return the drift found on the others.
func (a *Actions) Diff(ctx context.Context, rel *release.Release, ignore []jsondiff.IgnoreRule) (Drift, error) {
	c, err := a.client(true)
	if err != nil {
		return nil, err
	}
	objs, err := ssautil.ReadObjects(strings.NewReader(rel.Manifest))
	if err != nil {
		return nil, fmt.Errorf("failed to read objects from release manifest: %w", err)
	}
	if err := ssanormalize.UnstructuredListWithScheme(objs, c.Scheme()); err != nil {
		return nil, fmt.Errorf("failed to normalize release objects: %w", err)
	}
	var errs []error
	keep := objs[:0]
	for _, o := range objs {
		// What Helm sets on every object it creates (helm pkg/action validate.go).
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l["app.kubernetes.io/managed-by"] = "Helm"
		o.SetLabels(l)
		an := o.GetAnnotations()
		if an == nil {
			an = map[string]string{}
		}
		an["meta.helm.sh/release-name"], an["meta.helm.sh/release-namespace"] = rel.Name, rel.Namespace
		o.SetAnnotations(an)
		if o.GetNamespace() == "" {
			namespaced, err := apiutil.IsObjectNamespaced(o, c.Scheme(), c.RESTMapper())
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to determine if %s is namespace scoped: %w", o.GetKind(), err))
				continue
			}
			if namespaced {
				o.SetNamespace(rel.Namespace)
			}
		}
		keep = append(keep, o)
	}
	opts := []jsondiff.ListOption{
		jsondiff.FieldOwner(kube.ManagedFieldsManager),
		jsondiff.ExclusionSelector{driftDetectionKey: driftDetectionDisabled},
		jsondiff.Rationalize(true),
		jsondiff.Graceful(true),
	}
	if len(ignore) > 0 {
		opts = append(opts, jsondiff.IgnoreRules(ignore))
	}
	set, err := jsondiff.UnstructuredList(ctx, c, keep, opts...)
	if err != nil {
		errs = append(errs, err)
	}
	return Drift(set), apierrutil.Reduce(apierrutil.Flatten(apierrutil.NewAggregate(errs)))
}

// Correct puts the cluster back to the release's manifest: absent objects are created, changed ones
// patched with the drift's JSON patch, as the release's field manager (helm-controller's
// CorrectClusterDrift). It returns one line per corrected object ("Deployment/ns/name configured")
// and the failures.
func (a *Actions) Correct(ctx context.Context, d Drift) ([]string, error) {
	c, err := a.client(false)
	if err != nil {
		return nil, err
	}
	sorted := slices.Clone(d)
	slices.SortFunc(sorted, func(x, y *jsondiff.Diff) int {
		return strings.Compare(ResourceName(x.DesiredObject), ResourceName(y.DesiredObject))
	})
	var done []string
	var errs []error
	for _, t := range []jsondiff.DiffType{jsondiff.DiffTypeCreate, jsondiff.DiffTypeUpdate} {
		for _, df := range sorted {
			if df.Type != t {
				continue
			}
			obj := df.DesiredObject.DeepCopyObject().(client.Object)
			name := ResourceName(obj)
			if t == jsondiff.DiffTypeCreate {
				if err := c.Create(ctx, obj, client.FieldOwner(kube.ManagedFieldsManager)); err != nil {
					errs = append(errs, fmt.Errorf("%s creation failure: %w", name, err))
					continue
				}
				done = append(done, name+" created")
				continue
			}
			p, err := json.Marshal(df.Patch)
			if err == nil {
				err = c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, p), client.FieldOwner(kube.ManagedFieldsManager))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s patch failure: %w", name, err))
				continue
			}
			done = append(done, name+" configured")
		}
	}
	return done, apierrutil.NewAggregate(errs)
}

// client is a controller-runtime client of the release's cluster and identity, dry-run only when
// dryRun.
func (a *Actions) client(dryRun bool) (client.Client, error) {
	cfg, err := a.g.forNamespace(a.rel.Namespace, a.rel.User).ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Mapper: a.g.mapper, DryRun: &dryRun})
}

// ResourceName is an object as helm-controller's messages name it: Kind/namespace/name.
func ResourceName(o client.Object) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetObjectKind().GroupVersionKind().Kind + "/" + ns + "/" + o.GetName()
	}
	return o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
}

// Summary is helm-controller's summary of a drift (internal/diff SummarizeDiffSet): one line per
// removed, changed or excluded object.
func (d Drift) Summary() string {
	var b strings.Builder
	for _, df := range d {
		if df == nil {
			continue
		}
		switch df.Type {
		case jsondiff.DiffTypeCreate:
			fmt.Fprintf(&b, "%s removed\n", ResourceName(df.DesiredObject))
		case jsondiff.DiffTypeExclude:
			fmt.Fprintf(&b, "%s excluded\n", ResourceName(df.DesiredObject))
		case jsondiff.DiffTypeUpdate:
			var add, change, remove int
			for _, op := range df.Patch {
				switch op.Type {
				case extjsondiff.OperationAdd:
					add++
				case extjsondiff.OperationReplace:
					change++
				case extjsondiff.OperationRemove:
					remove++
				}
			}
			fmt.Fprintf(&b, "%s changed (%d additions, %d changes, %d removals)\n", ResourceName(df.DesiredObject), add, change, remove)
		}
	}
	return strings.TrimSpace(b.String())
}
