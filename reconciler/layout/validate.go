package layout

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/hybridtwin/hybridtwin/internal/admission"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
)

// Options tune a validation.
type Options struct {
	// Profile holds the tables; DefaultProfile() when zero.
	Profile Profile
	// ChartTransport, when set, carries every chart request (a HelmRepository's index and charts, OCI
	// chart pulls): the twin's chart mirror (twin/chartmirror Mirror.Transport), so charts resolve at their
	// upstream URLs as the engines resolve them. Nil uses the network.
	ChartTransport http.RoundTripper
	// TargetVersion overrides Profile.TargetVersion ("1.33", "v1.33", "v1.33.13").
	TargetVersion string
	// AllowedRegistries, when not empty, are the only registries (host, or host/path prefix) images may
	// come from. Empty enforces nothing.
	AllowedRegistries []string
	// Schema, when set, is an API server to validate every object against by server-side dry-run
	// (CRDs the repository defines are created there first). Nil skips rule HT009.
	Schema *rest.Config
	// Offline skips fetching remote charts (HelmRepository, OCIRepository, another Git repository):
	// HelmReleases that need one get a HT012 warning instead of a render.
	Offline bool
	// Sources are local directories for Flux sources outside the repository (--source, as flux build
	// --local-sources): their Kustomizations are built from there. Others are reported once each as
	// not resolvable offline (HT014).
	Sources []LocalSource
	// Policies, when set, are ValidatingAdmissionPolicies (hybridtwin validate --policies) every built
	// object is evaluated against offline, as the target API server would admit it (HT016). Nil skips it.
	Policies *admission.Set
	// Logger receives progress at debug level; silent when nil.
	Logger *slog.Logger
}

// built is one Kustomization's build.
type built struct {
	cfg     *Config
	ks      Kustomization
	objects []*unstructured.Unstructured
	origins map[string]string
	ok      bool
	// helm is set on the objects a HelmRelease rendered.
	helm *helmOrigin
	// node is the graph node built (nil for HelmRelease renders); display prefixes file names of a
	// source other than the repository under validation.
	node    *node
	display string
	// safe holds the Secrets (build.Subject) that, as written in Git, carry no plain-text value:
	// SOPS-encrypted, or only ${VAR} placeholders postBuild fills in.
	safe map[string]string
}

type run struct {
	opts     Options
	prof     Profile
	target   int
	report   *Report
	log      *slog.Logger
	crdScope map[string]map[string]bool // cluster -> group/Kind -> cluster-scoped
	walk     *walker
}

// Validate runs the static stage over configs. It returns an error only when it could not run
// (exit code 2); problems in the repository are findings in the Report.
//
// It validates what Flux would apply: starting from the configurations' Kustomizations (the entry
// points) it builds each from its source, takes the Flux Kustomizations and sources the build applies,
// builds those in turn from their own sources (the repository itself, a --source directory, an
// ArtifactGenerator's artifact), and checks only the objects of those builds.
func Validate(ctx context.Context, configs []Config, opts Options) (*Report, error) {
	prof := opts.Profile
	if prof.Name == "" {
		prof = DefaultProfile()
	}
	tv := prof.TargetVersion
	if opts.TargetVersion != "" {
		tv = opts.TargetVersion
	}
	target, err := minorOf(tv)
	if err != nil {
		return nil, fmt.Errorf("%w: target Kubernetes version %q: %v; use e.g. v1.33", ErrInput, tv, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(configs) == 0 {
		return nil, fmt.Errorf("%w: no configuration to validate", ErrInput)
	}
	r := &run{opts: opts, prof: prof, target: target, log: log, crdScope: map[string]map[string]bool{},
		report: &Report{Profile: prof.Name, TargetVersion: "v1." + fmt.Sprint(target), Findings: []Finding{}}}

	configs = append([]Config(nil), configs...)
	for i := range configs {
		c := &configs[i]
		abs, err := filepath.Abs(c.Root)
		if err != nil {
			return nil, fmt.Errorf("%w: configuration %q: repository directory %q: %v", ErrInput, c.Name, c.Root, err)
		}
		c.Root = abs
		if fi, err := os.Stat(c.Root); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: configuration %q: repository directory %q does not exist", ErrInput, c.Name, c.Root)
		}
		sum := Summary{Cluster: c.Cluster, Name: c.Name, Scope: c.Scope, Namespace: c.Namespace}
		for _, k := range c.Kustomizations {
			sum.Kustomizations = append(sum.Kustomizations, k.Name())
		}
		r.report.Configs = append(r.report.Configs, sum)
	}

	// The graph: every Kustomization Flux would create, built from its source.
	tmp, err := os.MkdirTemp("", "hybridtwin-validate-")
	if err != nil {
		return nil, fmt.Errorf("validate: temporary directory: %w", err)
	}
	defer removeAll(tmp)
	r.walk = newWalker(ctx, r, tmp)
	if err := r.walk.run(configs); err != nil {
		return nil, err
	}
	r.walk.reportUnresolved()
	all := r.walk.all

	// CRD scopes per cluster, for the namespace rules.
	for _, b := range r.walk.raw {
		for _, u := range b.objects {
			if u.GetKind() == "CustomResourceDefinition" {
				g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
				scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
				if r.crdScope[b.cfg.Cluster] == nil {
					r.crdScope[b.cfg.Cluster] = map[string]bool{}
				}
				r.crdScope[b.cfg.Cluster][g+"/"+kind] = scope == "Cluster"
			}
		}
	}

	// HelmReleases: render their charts; the renders join the builds.
	all = append(all, r.helmReleases(ctx, all)...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	for _, b := range all {
		r.report.Objects += len(b.objects)
		for _, u := range b.objects {
			r.objectRules(b, u)
		}
	}
	r.graphRules(r.walk)
	r.duplicates(all)
	if opts.Policies != nil {
		if err := r.admission(ctx, all); err != nil {
			return nil, err
		}
		r.report.MarkStage(StagePolicies)
	}
	if opts.Schema != nil {
		if err := r.schema(ctx, all); err != nil {
			return nil, err
		}
		r.report.MarkStage(StageSchema)
	}
	r.report.sort()
	return r.report, nil
}

func (r *run) add(c *Config, k Kustomization, f Finding) {
	f.Cluster, f.Configuration = c.Cluster, c.Name
	if k.Object != nil {
		f.Kustomization = k.Name()
	}
	r.report.Findings = append(r.report.Findings, f)
}

// at fills a finding's file and line from the object's origin.
func (r *run) at(b *built, u *unstructured.Unstructured, f Finding) {
	f.Object = objectName(u)
	if h := b.helm; h != nil {
		f.File, f.Line = h.file, h.line
		f.Message = fmt.Sprintf("rendered by HelmRelease %s (chart %s, %s): %s", h.release, h.chart, b.origins[build.Subject(u)], f.Message)
		r.add(b.cfg, b.ks, f)
		return
	}
	f.File = b.origins[build.Subject(u)]
	if f.File != "" && !strings.Contains(f.File, "(generated") {
		f.Line = lineOf(filepath.Join(b.cfg.Root, f.File), u.GetName(), u.GetKind())
		f.File = displayPath(b.display, f.File)
	}
	r.add(b.cfg, b.ks, f)
}

func objectName(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	s := gvk.Kind
	if gvk.Group != "" {
		s += "." + gvk.Group
	}
	if u.GetNamespace() != "" {
		return s + "/" + u.GetNamespace() + "/" + u.GetName()
	}
	return s + "/" + u.GetName()
}

// buildMessage is a finding's message for a failed build of the Kustomization obj: a missing spec.path is
// named as the field, with Flux's own message after it.
func buildMessage(err error, obj map[string]any) string {
	if errors.Is(err, build.ErrPathNotFound) {
		p, _, _ := unstructured.NestedString(obj, "spec", "path")
		return fmt.Sprintf("spec.path %q does not exist in the source artifact (Flux: %s)", p, strings.TrimSpace(err.Error()))
	}
	return strings.TrimSpace(err.Error())
}

func buildHint(err error) string {
	switch {
	case errors.Is(err, build.ErrPathNotFound):
		return "fix the kustomization's path or add the directory to the repository"
	case errors.Is(err, build.ErrSubstitute):
		return "fix spec.postBuild"
	}
	return "run `kustomize build` on the path and fix the file it names"
}

// variables resolves a Kustomization's postBuild variables statically; complete is false when a
// non-optional substituteFrom source is not in the repository (its values are unknown here).
func (r *run) variables(c *Config, b *built, raw []*built) (map[string]string, bool) {
	vars := map[string]string{}
	complete := true
	ns := b.ks.Namespace()
	from, _, _ := unstructured.NestedSlice(b.ks.Object, "spec", "postBuild", "substituteFrom")
	for _, f := range from {
		fm, _ := f.(map[string]any)
		kind, name := str(fm, "kind"), str(fm, "name")
		optional, _ := fm["optional"].(bool)
		found := false
		for _, ob := range raw {
			if ob.cfg.Cluster != c.Cluster {
				continue
			}
			{
				for _, u := range ob.objects {
					if u.GetKind() != kind || u.GetName() != name || (u.GetNamespace() != ns && u.GetNamespace() != "") {
						continue
					}
					found = true
					data, _, _ := unstructured.NestedStringMap(u.Object, "data")
					for k, v := range data {
						if kind == "Secret" {
							if d, err := base64.StdEncoding.DecodeString(v); err == nil {
								v = string(d)
							}
						}
						vars[k] = v
					}
					sd, _, _ := unstructured.NestedStringMap(u.Object, "stringData")
					for k, v := range sd {
						vars[k] = v
					}
				}
			}
		}
		if !found && !optional {
			complete = false
			r.add(c, b.ks, Finding{Rule: RuleMissingVariable, Severity: Warning, File: b.ks.File, Line: b.ks.Line,
				Object:  "Kustomization/" + ns + "/" + b.ks.Name(),
				Message: fmt.Sprintf("spec.postBuild.substituteFrom %s %s/%s is not declared in the repository; its variables cannot be checked statically", kind, ns, name),
				Hint:    "declare it in the repository, mark it optional: true, or move its values to spec.postBuild.substitute"})
		}
	}
	inline, _, _ := unstructured.NestedStringMap(b.ks.Object, "spec", "postBuild", "substitute")
	for k, v := range inline {
		vars[k] = v
	}
	return vars, complete
}

func deepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

func minorOf(v string) (int, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.Split(v, ".")
	if len(parts) < 2 || parts[0] != "1" {
		return 0, errors.New("not a Kubernetes 1.x version")
	}
	var m int
	if _, err := fmt.Sscanf(parts[1], "%d", &m); err != nil {
		return 0, err
	}
	return m, nil
}
