package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/reconciler"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
)

// DiffAction is what applying the layout would do to one object.
type DiffAction string

// Diff actions: ssa's (created, configured, unchanged, skipped), plus deleted for what the
// Kustomization's prune would remove and rejected for an object the API server refuses.
const (
	DiffCreated    DiffAction = "created"
	DiffConfigured DiffAction = "configured"
	DiffUnchanged  DiffAction = "unchanged"
	DiffSkipped    DiffAction = "skipped"
	DiffDeleted    DiffAction = "deleted"
	DiffRejected   DiffAction = "rejected"
)

// ObjectDiff is one object's outcome.
type ObjectDiff struct {
	Configuration string     `json:"configuration"`
	Kustomization string     `json:"kustomization"`
	Object        string     `json:"object"`
	Action        DiffAction `json:"action"`
	// File is where the object is declared (relative to the repository), for created/configured.
	File string `json:"file,omitempty"`
	// Diff is a unified diff of the live object and the dry-run result (configured only), with
	// metadata the server owns dropped and Secret values masked as `flux diff` masks them.
	Diff string `json:"diff,omitempty"`
	// Message says why an object is rejected.
	Message string `json:"message,omitempty"`
}

// DiffReport is what applying the layout would change on one cluster.
type DiffReport struct {
	Cluster string       `json:"cluster"`
	Objects []ObjectDiff `json:"objects"`
	// Problems are Kustomizations that could not be diffed (build failures): the report is incomplete.
	Problems []Finding `json:"problems,omitempty"`
}

// DiffOptions tune Diff.
type DiffOptions struct {
	// Reconciler is the GitOps engine's profile: its field manager and owner labels are the ones the
	// dry-run applies with and prune candidates are found by. reconciler.DefaultProfile() when zero.
	Reconciler reconciler.Profile
	Logger     *slog.Logger
}

// ErrDiff is wrapped when the cluster cannot be used for the diff.
var ErrDiff = errors.New("diff against the cluster failed")

// Diff builds every Kustomization of configs as the reconciler does (Flux's generator, kustomize,
// postBuild with substituteFrom read from the cluster, owner labels) and server-side dry-run applies
// each object against the cluster with the reconciler's field manager (fluxcd/pkg/ssa Diff, as
// `flux diff kustomization` does), impersonating flux-applier for namespace-scoped configurations as the
// Arc agent configures them. Objects the cluster holds with a Kustomization's owner labels that the new
// build no longer declares are reported as deleted when the Kustomization prunes.
func Diff(ctx context.Context, cfg *rest.Config, configs []Config, opts DiffOptions) (*DiffReport, error) {
	rp := opts.Reconciler
	if rp.Name == "" {
		rp = reconciler.DefaultProfile()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(configs) == 0 {
		return nil, fmt.Errorf("%w: no configuration to diff", ErrInput)
	}
	// Deprecation warnings of listed kinds (Endpoints, ComponentStatus) are not the layout's; the
	// layout's own API versions are rule HT008's business.
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NoWarnings{}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiff, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("%w: discover the API: %v", ErrDiff, err)
	}
	admin, err := client.New(cfg, client.Options{Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiff, err)
	}
	rep := &DiffReport{Cluster: configs[0].Cluster}
	live, err := ownedObjects(ctx, cfg, rp.OwnerGroup, rp.FieldManager)
	if err != nil {
		return nil, err
	}
	configs = append([]Config(nil), configs...)
	for i := range configs {
		c := &configs[i]
		abs, err := filepath.Abs(c.Root)
		if err != nil {
			return nil, fmt.Errorf("%w: configuration %q: repository directory %q: %v", ErrInput, c.Name, c.Root, err)
		}
		c.Root = abs
		for _, k := range c.Kustomizations {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			objs, origins, err := buildForDiff(ctx, admin, c, k, rp)
			if err != nil {
				rep.Problems = append(rep.Problems, Finding{Rule: RuleBuild, Severity: Error, Cluster: c.Cluster, Configuration: c.Name,
					Kustomization: k.Name(), File: k.File, Line: k.Line, Object: "Kustomization/" + k.Namespace() + "/" + k.Name(),
					Message: buildMessage(err, k.Object), Hint: buildHint(err)})
				continue
			}
			kc := admin
			if user := applier(c, k); user != "" {
				ic := rest.CopyConfig(cfg)
				ic.Impersonate = rest.ImpersonationConfig{UserName: user}
				if kc, err = client.New(ic, client.Options{Mapper: mapper}); err != nil {
					return nil, fmt.Errorf("%w: impersonate %s: %v", ErrDiff, user, err)
				}
			}
			ods, err := diffObjects(ctx, kc, admin, mapper, c, k, objs, origins, rp)
			if err != nil {
				return nil, err
			}
			log.Debug("diffed", "configuration", c.Name, "kustomization", k.Name(), "objects", len(ods))
			rep.Objects = append(rep.Objects, ods...)
			if prune, _, _ := unstructured.NestedBool(k.Object, "spec", "prune"); prune {
				rep.Objects = append(rep.Objects, pruned(c, k, objs, live, rp.OwnerGroup)...)
			}
		}
	}
	return rep, nil
}

// applier is the user a Kustomization applies as: its spec.serviceAccountName, or flux-applier for a
// namespace-scoped Arc configuration (twin/arcagent ApplierServiceAccount, after the Flux extension's
// multi-tenancy); "" for the controller's own identity.
func applier(c *Config, k Kustomization) string {
	sa := str(k.Object, "spec", "serviceAccountName")
	if sa == "" && c.Scope == ScopeNamespace {
		sa = "flux-applier"
	}
	if sa == "" {
		return ""
	}
	return "system:serviceaccount:" + k.Namespace() + ":" + sa
}

func buildForDiff(ctx context.Context, admin client.Client, c *Config, k Kustomization, rp reconciler.Profile) ([]*unstructured.Unstructured, map[string]string, error) {
	res, err := build.Build(ctx, admin, build.Input{Root: c.Root, Kustomization: deepCopy(k.Object), Strict: rp.StrictSubstitutions})
	if err != nil {
		return nil, nil, err
	}
	if err := normalize.UnstructuredList(res.Objects); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", build.ErrBuild, err)
	}
	owner := map[string]string{rp.OwnerGroup + "/name": k.Name(), rp.OwnerGroup + "/namespace": k.Namespace()}
	cmLabels, _, _ := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "labels")
	cmAnn, _, _ := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "annotations")
	for _, o := range res.Objects {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for key, v := range owner {
			l[key] = v
		}
		for key, v := range cmLabels {
			l[key] = v
		}
		o.SetLabels(l)
		if len(cmAnn) > 0 {
			a := o.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			for key, v := range cmAnn {
				a[key] = v
			}
			o.SetAnnotations(a)
		}
	}
	sort.Sort(ssa.SortableUnstructureds(res.Objects))
	return res.Objects, res.Origins, nil
}

// diffObjects dry-runs each object. An object whose kind a CRD of the same build defines, or whose
// namespace the same build creates, cannot be dry-run yet: it is created.
func diffObjects(ctx context.Context, kc, admin client.Client, mapper meta.RESTMapper, c *Config, k Kustomization,
	objs []*unstructured.Unstructured, origins map[string]string, rp reconciler.Profile) ([]ObjectDiff, error) {
	newKinds := map[schema.GroupKind]bool{}
	newNamespaces := map[string]bool{}
	for _, o := range objs {
		switch {
		case o.GetKind() == "CustomResourceDefinition":
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			newKinds[schema.GroupKind{Group: g, Kind: kind}] = true
		case o.GroupVersionKind().Group == "" && o.GetKind() == "Namespace":
			ns := &unstructured.Unstructured{}
			ns.SetGroupVersionKind(o.GroupVersionKind())
			if err := admin.Get(ctx, client.ObjectKey{Name: o.GetName()}, ns); apierrors.IsNotFound(err) {
				newNamespaces[o.GetName()] = true
			}
		}
	}
	m := ssa.NewResourceManager(kc, nil, ssa.Owner{Field: rp.FieldManager, Group: rp.OwnerGroup})
	// kustomize-controller's diff options (controllers/kustomization_controller.go): objects marked
	// reconcile: disabled are skipped, ssa: IfNotPresent ones are skipped once they exist, force:
	// enabled ones are recreated on immutable changes.
	dopts := ssa.DefaultDiffOptions()
	dopts.Exclusions = map[string]string{rp.OwnerGroup + "/reconcile": "disabled"}
	dopts.IfNotPresentSelector = map[string]string{rp.OwnerGroup + "/ssa": "IfNotPresent"}
	dopts.ForceSelector = map[string]string{rp.OwnerGroup + "/force": "enabled"}
	dopts.Force, _, _ = unstructured.NestedBool(k.Object, "spec", "force")

	var out []ObjectDiff
	for _, o := range objs {
		od := ObjectDiff{Configuration: c.Name, Kustomization: k.Name(), Object: objectName(o), File: origins[build.Subject(o)]}
		gvk := o.GroupVersionKind()
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if meta.IsNoMatchError(err) && newKinds[gvk.GroupKind()] {
				od.Action = DiffCreated
				out = append(out, od)
				continue
			}
			if meta.IsNoMatchError(err) {
				od.Action, od.Message = DiffRejected, fmt.Sprintf("the cluster does not serve %s %s and the build defines no CRD for it", o.GetAPIVersion(), gvk.Kind)
				out = append(out, od)
				continue
			}
			return nil, fmt.Errorf("%w: map %s: %v", ErrDiff, gvk, err)
		}
		if newNamespaces[o.GetNamespace()] {
			od.Action = DiffCreated
			out = append(out, od)
			continue
		}
		entry, liveObj, merged, err := m.Diff(ctx, jsonCopy(o), dopts)
		if err != nil {
			if isConnErr(err) {
				return nil, fmt.Errorf("%w: dry-run %s: %v", ErrDiff, od.Object, err)
			}
			od.Action, od.Message = DiffRejected, strings.TrimSpace(err.Error())
			out = append(out, od)
			continue
		}
		od.Action = DiffAction(entry.Action.String())
		if od.Action == DiffConfigured && liveObj != nil && merged != nil {
			od.Diff = unifiedDiff(liveObj, merged)
		}
		if od.Action != DiffCreated && od.Action != DiffConfigured {
			od.File = ""
		}
		out = append(out, od)
	}
	return out, nil
}

// unifiedDiff shows the fields that change: both sides as YAML without the metadata the server owns.
func unifiedDiff(live, merged *unstructured.Unstructured) string {
	clean := func(u *unstructured.Unstructured) string {
		x := u.DeepCopy()
		for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"} {
			unstructured.RemoveNestedField(x.Object, "metadata", f)
		}
		unstructured.RemoveNestedField(x.Object, "status")
		y, err := yaml.Marshal(x.Object)
		if err != nil {
			return fmt.Sprintf("%v", x.Object)
		}
		return string(y)
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(clean(live)), B: difflib.SplitLines(clean(merged)),
		FromFile: "live", ToFile: "merged", Context: 3,
	})
	if err != nil {
		return ""
	}
	return d
}

// liveObject is an object in the cluster that carries a Kustomization's owner labels.
type liveObject struct {
	id         string // objectName form
	owner      string // namespace/name of the Kustomization
	pruneNever bool
}

// ownedObjects lists every object of every listable kind that carries the owner name label and was
// applied by the field manager: what the Kustomizations' inventories hold (both the twin's reconciler
// and kustomize-controller label every object they apply with <group>/name and <group>/namespace).
// The field manager test leaves out objects that only copied the labels (Endpoints of a Service).
func ownedObjects(ctx context.Context, cfg *rest.Config, group, manager string) ([]liveObject, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiff, err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("%w: discover the API: %v", ErrDiff, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiff, err)
	}
	nameLabel, nsLabel := group+"/name", group+"/namespace"
	var out []liveObject
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !contains(r.Verbs, "list") {
				continue
			}
			res := gv.WithResource(r.Name)
			items, err := dyn.Resource(res).List(ctx, metav1.ListOptions{LabelSelector: nameLabel})
			if err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsForbidden(err) {
					continue
				}
				return nil, fmt.Errorf("%w: list %s: %v", ErrDiff, res, err)
			}
			for i := range items.Items {
				u := &items.Items[i]
				applied := false
				for _, mf := range u.GetManagedFields() {
					if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply {
						applied = true
					}
				}
				if !applied {
					continue
				}
				u.SetAPIVersion(gv.String())
				u.SetKind(r.Kind)
				lb := u.GetLabels()
				out = append(out, liveObject{id: objectName(u), owner: lb[nsLabel] + "/" + lb[nameLabel],
					pruneNever: u.GetAnnotations()[group+"/prune"] == "disabled"})
			}
		}
	}
	return out, nil
}

// pruned are the live objects of the Kustomization the build no longer declares (kustomize-controller's
// prune: inventory minus the new build, minus prune: disabled).
func pruned(c *Config, k Kustomization, objs []*unstructured.Unstructured, live []liveObject, group string) []ObjectDiff {
	want := map[string]bool{}
	for _, o := range objs {
		want[objectName(o)] = true
	}
	owner := k.Namespace() + "/" + k.Name()
	var out []ObjectDiff
	for _, l := range live {
		if l.owner != owner || want[l.id] || l.pruneNever {
			continue
		}
		out = append(out, ObjectDiff{Configuration: c.Name, Kustomization: k.Name(), Object: l.id, Action: DiffDeleted})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out
}

// ExitCode is `flux diff`'s: 0 when nothing would change, 1 when something would (or would be
// rejected), 2 when a Kustomization could not be built (the diff is incomplete).
func (d *DiffReport) ExitCode() int {
	if len(d.Problems) > 0 {
		return ExitError
	}
	for _, o := range d.Objects {
		if o.Action != DiffUnchanged && o.Action != DiffSkipped {
			return ExitFindings
		}
	}
	return ExitClean
}

// Count returns how many objects have each action.
func (d *DiffReport) Count() map[DiffAction]int {
	m := map[DiffAction]int{}
	for _, o := range d.Objects {
		m[o.Action]++
	}
	return m
}

// Write renders the report as text (every object with its action, "►" and a diff for changes, then a
// summary) or JSON.
func (d *DiffReport) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case FormatText, "":
	default:
		return fmt.Errorf("%w: output format %q: use text or json", ErrInput, f)
	}
	var b strings.Builder
	for _, p := range d.Problems {
		fmt.Fprintf(&b, "✗ %s [%s/%s] could not be built: %s\n", p.Object, p.Configuration, p.Kustomization, p.Message)
	}
	for _, o := range d.Objects {
		if o.Action == DiffUnchanged || o.Action == DiffSkipped {
			fmt.Fprintf(&b, "  %s %s [%s/%s]\n", o.Object, o.Action, o.Configuration, o.Kustomization)
			continue
		}
		fmt.Fprintf(&b, "► %s %s [%s/%s]", o.Object, o.Action, o.Configuration, o.Kustomization)
		if o.File != "" {
			fmt.Fprintf(&b, " (%s)", o.File)
		}
		if o.Message != "" {
			fmt.Fprintf(&b, ": %s", o.Message)
		}
		b.WriteString("\n")
		if o.Diff != "" {
			b.WriteString(o.Diff)
			if !strings.HasSuffix(o.Diff, "\n") {
				b.WriteString("\n")
			}
		}
	}
	n := d.Count()
	fmt.Fprintf(&b, "cluster %s: %d created, %d configured, %d deleted, %d rejected, %d unchanged, %d skipped\n",
		d.Cluster, n[DiffCreated], n[DiffConfigured], n[DiffDeleted], n[DiffRejected], n[DiffUnchanged], n[DiffSkipped])
	_, err := io.WriteString(w, b.String())
	return err
}
