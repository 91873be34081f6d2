package layout

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
)

// OCI media types of a Helm chart artifact (helm.sh/helm/v4 pkg/registry constants.go: ChartLayerMediaType
// and LegacyChartLayerMediaType).
const (
	helmChartLayer       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	helmLegacyChartLayer = "application/tar+gzip"
)

// helmOrigin marks a build whose objects a HelmRelease rendered: findings about them point at the
// HelmRelease.
type helmOrigin struct {
	release string // namespace/name
	chart   string // name-version
	file    string
	line    int
}

// objIndex finds objects of the repository by cluster, kind, namespace and name.
type objIndex map[string]*unstructured.Unstructured

func indexKey(cluster, kind, ns, name string) string {
	return cluster + "|" + kind + "|" + ns + "|" + name
}

func newObjIndex(all []*built) objIndex {
	idx := objIndex{}
	for _, b := range all {
		for _, u := range b.objects {
			idx[indexKey(b.cfg.Cluster, u.GetKind(), u.GetNamespace(), u.GetName())] = u
		}
	}
	return idx
}

func (x objIndex) get(cluster, kind, ns, name string) *unstructured.Unstructured {
	if u := x[indexKey(cluster, kind, ns, name)]; u != nil {
		return u
	}
	return x[indexKey(cluster, kind, "", name)]
}

func isHelmRelease(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "helm.toolkit.fluxcd.io" && gvk.Kind == "HelmRelease"
}

// helmReleases renders every HelmRelease of the builds with the Helm SDK (rules HT011, HT012) and
// returns the renders as builds of their own, so the object rules, duplicates and the schema stage see
// the rendered objects.
func (r *run) helmReleases(ctx context.Context, all []*built) []*built {
	idx := newObjIndex(all)
	var out []*built
	for _, b := range all {
		for _, u := range b.objects {
			if !isHelmRelease(u) {
				continue
			}
			if nb := r.renderRelease(ctx, idx, b, u); nb != nil {
				out = append(out, nb)
			}
		}
	}
	return out
}

// chartSpec is a HelmRelease's chart template (spec.chart.spec), or what a chartRef points at.
type chartSpec struct {
	chart, version          string
	kind, name, namespace   string
	valuesFiles             []string
	ociURL, ociTag, ociSemv string
	ociInsecure             bool
}

func (r *run) renderRelease(ctx context.Context, idx objIndex, b *built, hr *unstructured.Unstructured) *built {
	ns := hr.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	cluster := b.cfg.Cluster
	fail := func(rule RuleID, sev Severity, hint, format string, args ...any) *built {
		r.at(b, hr, Finding{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...), Hint: hint})
		return nil
	}

	spec, problem := r.chartSpecOf(idx, cluster, ns, hr)
	if problem != "" {
		return fail(RuleHelmRender, Error, "fix spec.chart.spec or spec.chartRef (helm.toolkit.fluxcd.io/v2)", "%s", problem)
	}
	ch, srcRoot, cleanup, sev, err := r.loadChart(ctx, idx, b, cluster, spec)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		if sev == Warning {
			return fail(RuleHelmSource, Warning, "make the chart source reachable from where validation runs (or declare it in the repository); the chart is not validated until then", "chart not rendered: %v", err)
		}
		return fail(RuleHelmRender, Error, "fix the chart reference (name, version, path) so the source holds the chart", "%v", err)
	}
	chartName := ch.Metadata.Name + "-" + ch.Metadata.Version

	if missing := missingDependencies(ch); len(missing) > 0 {
		return fail(RuleHelmSource, Warning, "vendor the dependencies (`helm dependency build`) to validate them here; Flux fetches them from their repositories",
			"chart %s: dependencies %s are not in its charts/ folder; chart not rendered", chartName, strings.Join(missing, ", "))
	}

	// Values, in helm-controller's order: the chart's values (or spec.chart.spec.valuesFiles instead),
	// then spec.valuesFrom in order, then spec.values on top.
	if len(spec.valuesFiles) > 0 {
		merged := map[string]any{}
		for _, f := range spec.valuesFiles {
			data, err := readValuesFile(ch, srcRoot, f)
			if err != nil {
				return fail(RuleHelmRender, Error, "fix spec.chart.spec.valuesFiles: paths are relative to the chart source", "valuesFiles %s: %v", f, err)
			}
			v, err := common.ReadValues(data)
			if err != nil {
				return fail(RuleHelmRender, Error, "fix the values file's YAML", "valuesFiles %s: %v", f, err)
			}
			merged = mergeValues(merged, v)
		}
		ch.Values = merged
	}
	vals := map[string]any{}
	fromRaw, _, _ := unstructured.NestedFieldNoCopy(hr.Object, "spec", "valuesFrom")
	from, _ := fromRaw.([]any)
	for i, x := range from {
		ref, _ := x.(map[string]any)
		kind, nm := str(ref, "kind"), str(ref, "name")
		key := str(ref, "valuesKey")
		if key == "" {
			key = "values.yaml" // helm-controller ValuesReference.ValuesKey default
		}
		optional, _ := ref["optional"].(bool)
		src := idx.get(cluster, kind, ns, nm)
		if src == nil {
			if !optional {
				r.at(b, hr, Finding{Rule: RuleHelmSource, Severity: Warning,
					Message: fmt.Sprintf("spec.valuesFrom[%d] %s %s/%s is not declared in the repository; rendered without its values", i, kind, ns, nm),
					Hint:    "declare it in the repository, or mark it optional: true"})
			}
			continue
		}
		raw, ok := dataValue(src, key)
		if !ok {
			if !optional {
				return fail(RuleHelmRender, Error, "fix spec.valuesFrom valuesKey, or add the key", "spec.valuesFrom[%d] %s %s/%s has no key %q", i, kind, ns, nm, key)
			}
			continue
		}
		if tp := str(ref, "targetPath"); tp != "" {
			if err := strvals.ParseIntoString(tp+"="+raw, vals); err != nil {
				return fail(RuleHelmRender, Error, "fix spec.valuesFrom targetPath", "spec.valuesFrom[%d] targetPath %q: %v", i, tp, err)
			}
			continue
		}
		v, err := common.ReadValues([]byte(raw))
		if err != nil {
			return fail(RuleHelmRender, Error, "fix the YAML under the valuesKey", "spec.valuesFrom[%d] %s %s/%s key %q: %v", i, kind, ns, nm, key, err)
		}
		vals = mergeValues(vals, v)
	}
	// kustomize's maps hold Go ints, which unstructured's copying helpers refuse: read without a copy.
	if raw, _, _ := unstructured.NestedFieldNoCopy(hr.Object, "spec", "values"); raw != nil {
		inline, ok := jsonNumbers(raw).(map[string]any)
		if !ok {
			return fail(RuleHelmRender, Error, "spec.values must be a map of values", "spec.values is a %T, not a map", raw)
		}
		vals = mergeValues(vals, inline)
	}

	relNS := ns
	if tn, _, _ := unstructured.NestedString(hr.Object, "spec", "targetNamespace"); tn != "" {
		relNS = tn
	}
	relName, _, _ := unstructured.NestedString(hr.Object, "spec", "releaseName")
	if relName == "" {
		// helm-controller: "<targetNamespace>-<name>" when spec.targetNamespace is set, else the name.
		relName = hr.GetName()
		if tn, _, _ := unstructured.NestedString(hr.Object, "spec", "targetNamespace"); tn != "" {
			relName = tn + "-" + hr.GetName()
		}
	}

	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return fail(RuleHelmRender, Error, "fix the chart's dependencies (conditions, tags, import-values)", "chart %s: %v", chartName, err)
	}
	caps := common.DefaultCapabilities.Copy()
	minor := fmt.Sprint(r.target)
	caps.KubeVersion = common.KubeVersion{Version: fmt.Sprintf("v1.%s.%d", minor, r.prof.HelmKubeVersionPatch), Major: "1", Minor: minor}
	rv, err := commonutil.ToRenderValues(ch, vals, common.ReleaseOptions{Name: relName, Namespace: relNS, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return fail(RuleHelmRender, Error, "fix spec.values so the chart's values.schema.json accepts them", "chart %s: %v", chartName, err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return fail(RuleHelmRender, Error, "fix the template or the values it reads (`helm template` shows the same error)", "chart %s does not render: %v", chartName, err)
	}

	nb := &built{cfg: b.cfg, ks: b.ks, origins: map[string]string{}, ok: true,
		helm: &helmOrigin{release: ns + "/" + hr.GetName(), chart: chartName}}
	nb.helm.file = b.origins[build.Subject(hr)]
	if nb.helm.file != "" && !strings.Contains(nb.helm.file, "(generated") {
		nb.helm.line = lineOf(filepath.Join(b.cfg.Root, nb.helm.file), hr.GetName(), "HelmRelease")
	}
	type manifest struct{ name, content string }
	var manifests []manifest
	for _, crd := range ch.CRDObjects() {
		manifests = append(manifests, manifest{crd.Filename, string(crd.File.Data)})
	}
	for _, n := range sortedKeys(files) {
		if strings.HasSuffix(n, "NOTES.txt") || strings.TrimSpace(files[n]) == "" {
			continue
		}
		manifests = append(manifests, manifest{n, files[n]})
	}
	for _, m := range manifests {
		docs := releaseutil.SplitManifests(m.content)
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			doc := strings.TrimSpace(docs[k])
			if doc == "" || strings.Trim(doc, "-\n ") == "" {
				continue
			}
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return fail(RuleHelmRender, Error, "fix the template so it renders valid YAML", "chart %s: %s renders invalid YAML: %v", chartName, m.name, err)
			}
			if obj == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if u.GetAPIVersion() == "" || u.GetKind() == "" {
				return fail(RuleHelmRender, Error, "every rendered document needs apiVersion and kind", "chart %s: %s renders a document without apiVersion or kind", chartName, m.name)
			}
			if hook := u.GetAnnotations()["helm.sh/hook"]; strings.Contains(hook, "test") {
				continue // test hooks run only on `helm test` (spec.test), not on install
			}
			gvk := u.GroupVersionKind()
			if u.GetNamespace() == "" && !r.prof.ClusterScoped[gvk.Group+"/"+gvk.Kind] && !r.crdScope[cluster][gvk.Group+"/"+gvk.Kind] {
				u.SetNamespace(relNS) // Helm creates namespaced objects without a namespace in the release namespace
			}
			nb.objects = append(nb.objects, u)
			nb.origins[build.Subject(u)] = m.name
		}
	}
	for _, u := range nb.objects {
		if u.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
			if r.crdScope[cluster] == nil {
				r.crdScope[cluster] = map[string]bool{}
			}
			r.crdScope[cluster][g+"/"+kind] = scope == "Cluster"
		}
	}
	r.report.HelmReleases = append(r.report.HelmReleases, HelmRender{Cluster: cluster, Configuration: b.cfg.Name,
		Kustomization: b.ks.Name(), Release: ns + "/" + hr.GetName(), Chart: chartName, Objects: len(nb.objects)})
	return nb
}

// chartSpecOf reads spec.chartRef or spec.chart.spec; problem is set when neither is usable.
func (r *run) chartSpecOf(idx objIndex, cluster, ns string, hr *unstructured.Unstructured) (chartSpec, string) {
	if raw, _, _ := unstructured.NestedFieldNoCopy(hr.Object, "spec", "chartRef"); raw != nil {
		ref, _ := raw.(map[string]any)
		kind, nm, rns := str(ref, "kind"), str(ref, "name"), str(ref, "namespace")
		if rns == "" {
			rns = ns
		}
		src := idx.get(cluster, kind, rns, nm)
		switch kind {
		case "OCIRepository":
			if src == nil {
				return chartSpec{kind: kind, name: nm, namespace: rns}, ""
			}
			s := chartSpec{kind: kind, name: nm, namespace: rns}
			s.ociURL, _, _ = unstructured.NestedString(src.Object, "spec", "url")
			s.ociTag, _, _ = unstructured.NestedString(src.Object, "spec", "ref", "tag")
			s.ociSemv, _, _ = unstructured.NestedString(src.Object, "spec", "ref", "semver")
			s.ociInsecure, _, _ = unstructured.NestedBool(src.Object, "spec", "insecure")
			if d, _, _ := unstructured.NestedString(src.Object, "spec", "ref", "digest"); d != "" {
				s.ociTag = "@" + d
			}
			return s, ""
		case "HelmChart":
			if src == nil {
				return chartSpec{kind: kind, name: nm, namespace: rns}, ""
			}
			return chartSpecFrom(src.Object, "spec", rns), ""
		}
		return chartSpec{}, fmt.Sprintf("spec.chartRef.kind %q: use OCIRepository or HelmChart", kind)
	}
	if raw, _, _ := unstructured.NestedFieldNoCopy(hr.Object, "spec", "chart", "spec"); raw == nil {
		return chartSpec{}, "neither spec.chart.spec nor spec.chartRef is set"
	}
	s := chartSpecFrom(hr.Object, "spec.chart.spec", ns)
	if s.chart == "" || s.kind == "" || s.name == "" {
		return chartSpec{}, "spec.chart.spec needs chart and sourceRef (kind, name)"
	}
	return s, ""
}

func chartSpecFrom(obj map[string]any, at, defNS string) chartSpec {
	path := strings.Split(at, ".")
	get := func(p ...string) string {
		v, _, _ := unstructured.NestedString(obj, append(append([]string{}, path...), p...)...)
		return v
	}
	s := chartSpec{chart: get("chart"), version: get("version"), kind: get("sourceRef", "kind"),
		name: get("sourceRef", "name"), namespace: get("sourceRef", "namespace")}
	if s.namespace == "" {
		s.namespace = defNS
	}
	s.valuesFiles, _, _ = unstructured.NestedStringSlice(obj, append(append([]string{}, path...), "valuesFiles")...)
	return s
}

// loadChart fetches the chart. srcRoot is the directory valuesFiles are relative to (a Git source's
// root; empty for packaged charts, whose files are read from the chart). sev is Warning when the source
// could not be reached (HT012), Error when it was reached and does not hold the chart (HT011).
func (r *run) loadChart(ctx context.Context, idx objIndex, b *built, cluster string, s chartSpec) (ch *chart.Chart, srcRoot string, cleanup func(), sev Severity, err error) {
	switch s.kind {
	case "GitRepository":
		// A chart path in the repository being validated (the bootstrap GitRepository, or any
		// GitRepository not declared in the repository is taken to be this one).
		if dir, err := securejoin.SecureJoin(b.cfg.Root, s.chart); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err == nil {
				ch, err := loader.LoadDir(dir)
				if err != nil {
					return nil, "", nil, Error, fmt.Errorf("chart %s: %v", s.chart, err)
				}
				return ch, b.cfg.Root, nil, "", nil
			}
		}
		gr := idx.get(cluster, "GitRepository", s.namespace, s.name)
		if gr == nil {
			return nil, "", nil, Error, fmt.Errorf("chart path %q (GitRepository %s/%s) has no Chart.yaml in the repository", s.chart, s.namespace, s.name)
		}
		u, _, _ := unstructured.NestedString(gr.Object, "spec", "url")
		if r.opts.Offline {
			return nil, "", nil, Warning, fmt.Errorf("chart %s is in GitRepository %s/%s (%s), not fetched: offline", s.chart, s.namespace, s.name, u)
		}
		ref := ""
		for _, f := range []string{"commit", "tag", "branch"} {
			if v, _, _ := unstructured.NestedString(gr.Object, "spec", "ref", f); v != "" && ref == "" {
				ref = v
			}
		}
		src, err := OpenSource(ctx, u, SourceOptions{Ref: ref, Timeout: r.prof.GitTimeout})
		if err != nil {
			return nil, "", nil, Warning, fmt.Errorf("GitRepository %s/%s: %v", s.namespace, s.name, err)
		}
		cleanup = func() { _ = src.Close() }
		dir, err := securejoin.SecureJoin(src.Dir, s.chart)
		if err == nil {
			ch, err = loader.LoadDir(dir)
		}
		if err != nil {
			return nil, "", cleanup, Error, fmt.Errorf("chart %s in GitRepository %s/%s (%s): %v", s.chart, s.namespace, s.name, src.Revision, err)
		}
		return ch, src.Dir, cleanup, "", nil
	case "HelmRepository":
		hr := idx.get(cluster, "HelmRepository", s.namespace, s.name)
		if hr == nil {
			return nil, "", nil, Warning, fmt.Errorf("HelmRepository %s/%s is not declared in the repository", s.namespace, s.name)
		}
		u, _, _ := unstructured.NestedString(hr.Object, "spec", "url")
		typ, _, _ := unstructured.NestedString(hr.Object, "spec", "type")
		if sec, _, _ := unstructured.NestedString(hr.Object, "spec", "secretRef", "name"); sec != "" {
			return nil, "", nil, Warning, fmt.Errorf("HelmRepository %s/%s needs the credentials of Secret %s", s.namespace, s.name, sec)
		}
		if r.opts.Offline {
			return nil, "", nil, Warning, fmt.Errorf("chart %s from %s, not fetched: offline", s.chart, u)
		}
		if typ == "oci" || strings.HasPrefix(u, "oci://") {
			insecure, _, _ := unstructured.NestedBool(hr.Object, "spec", "insecure")
			ch, sev, err := r.fetchOCIChart(ctx, strings.TrimSuffix(u, "/")+"/"+s.chart, "", s.version, insecure)
			return ch, "", nil, sev, err
		}
		ch, sev, err := r.fetchRepoChart(ctx, u, s.chart, s.version)
		return ch, "", nil, sev, err
	case "OCIRepository":
		if s.ociURL == "" {
			return nil, "", nil, Warning, fmt.Errorf("OCIRepository %s/%s is not declared in the repository", s.namespace, s.name)
		}
		if r.opts.Offline {
			return nil, "", nil, Warning, fmt.Errorf("chart %s, not fetched: offline", s.ociURL)
		}
		ch, sev, err := r.fetchOCIChart(ctx, s.ociURL, s.ociTag, s.ociSemv, s.ociInsecure)
		return ch, "", nil, sev, err
	case "HelmChart":
		return nil, "", nil, Warning, fmt.Errorf("HelmChart %s/%s is not declared in the repository", s.namespace, s.name)
	}
	return nil, "", nil, Warning, fmt.Errorf("chart source kind %q is not rendered (GitRepository, HelmRepository and OCIRepository are)", s.kind)
}

// errUnreachable marks a fetch that never reached a server that answers (HT012, warning).
var errUnreachable = errors.New("unreachable")

// fetchRepoChart reads an HTTP(S) Helm repository's index.yaml, picks the newest version the constraint
// allows (source-controller's semver selection; "*" when empty) and loads the archive.
func (r *run) fetchRepoChart(ctx context.Context, repoURL, chartName, constraint string) (*chart.Chart, Severity, error) {
	ctx, cancel := context.WithTimeout(ctx, r.prof.HelmTimeout)
	defer cancel()
	base := strings.TrimSuffix(repoURL, "/") + "/"
	data, err := r.httpGet(ctx, base+"index.yaml", r.prof.HelmIndexLimit)
	if err != nil {
		return nil, Warning, fmt.Errorf("helm repository %s: %v", repoURL, err)
	}
	var index struct {
		Entries map[string][]struct {
			Version string   `json:"version"`
			URLs    []string `json:"urls"`
		} `json:"entries"`
	}
	if err := yaml.Unmarshal(data, &index); err != nil {
		return nil, Error, fmt.Errorf("helm repository %s: index.yaml: %v", repoURL, err)
	}
	entries := index.Entries[chartName]
	if len(entries) == 0 {
		return nil, Error, fmt.Errorf("helm repository %s has no chart %q", repoURL, chartName)
	}
	var versions []string
	urls := map[string][]string{}
	for _, e := range entries {
		versions = append(versions, e.Version)
		urls[e.Version] = e.URLs
	}
	v, err := pickVersion(versions, constraint)
	if err != nil {
		return nil, Error, fmt.Errorf("chart %s in %s: %v", chartName, repoURL, err)
	}
	if len(urls[v]) == 0 {
		return nil, Error, fmt.Errorf("chart %s %s in %s has no download URL", chartName, v, repoURL)
	}
	ref, err := url.Parse(urls[v][0])
	if err != nil {
		return nil, Error, fmt.Errorf("chart %s %s: URL %q: %v", chartName, v, urls[v][0], err)
	}
	b, _ := url.Parse(base)
	archive, err := r.httpGet(ctx, b.ResolveReference(ref).String(), r.prof.HelmChartLimit)
	if err != nil {
		return nil, Warning, fmt.Errorf("chart %s %s: %v", chartName, v, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, Error, fmt.Errorf("chart %s %s from %s: %v", chartName, v, repoURL, err)
	}
	return ch, "", nil
}

// fetchOCIChart pulls a chart pushed with `helm push` (an OCI artifact with one chart layer) from
// oci://host/path/chart, by tag or digest, or the newest tag the semver constraint allows.
func (r *run) fetchOCIChart(ctx context.Context, ociURL, tag, constraint string, insecure bool) (*chart.Chart, Severity, error) {
	ctx, cancel := context.WithTimeout(ctx, r.prof.HelmTimeout)
	defer cancel()
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(strings.TrimPrefix(ociURL, "oci://"), opts...)
	if err != nil {
		return nil, Error, fmt.Errorf("OCI chart %s: %v", ociURL, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx)}
	if r.opts.ChartTransport != nil {
		ropts = append(ropts, remote.WithTransport(r.opts.ChartTransport))
	}
	var ref name.Reference
	switch {
	case strings.HasPrefix(tag, "@"):
		ref = repo.Digest(strings.TrimPrefix(tag, "@"))
	case tag != "" && constraint == "":
		ref = repo.Tag(tag)
	default:
		if constraint == "" {
			constraint = "*"
		}
		tags, err := remote.List(repo, ropts...)
		if err != nil {
			return nil, ociSeverity(err), fmt.Errorf("OCI chart %s: list tags: %v", ociURL, err)
		}
		// Helm stores "+" of a SemVer build as "_" in tags (helm push).
		vs := make([]string, 0, len(tags))
		for _, t := range tags {
			vs = append(vs, strings.ReplaceAll(t, "_", "+"))
		}
		v, err := pickVersion(vs, constraint)
		if err != nil {
			return nil, Error, fmt.Errorf("OCI chart %s: %v", ociURL, err)
		}
		ref = repo.Tag(strings.ReplaceAll(v, "+", "_"))
	}
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return nil, ociSeverity(err), fmt.Errorf("OCI chart %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, Error, fmt.Errorf("OCI chart %s: %v", ref, err)
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil || (string(mt) != helmChartLayer && string(mt) != helmLegacyChartLayer) {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, ociSeverity(err), fmt.Errorf("OCI chart %s: %v", ref, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, r.prof.HelmChartLimit+1))
		rc.Close()
		if err != nil {
			return nil, Warning, fmt.Errorf("OCI chart %s: %v", ref, err)
		}
		if int64(len(data)) > r.prof.HelmChartLimit {
			return nil, Error, fmt.Errorf("OCI chart %s is larger than %d bytes (source-controller --helm-chart-max-size)", ref, r.prof.HelmChartLimit)
		}
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return nil, Error, fmt.Errorf("OCI chart %s: %v", ref, err)
		}
		return ch, "", nil
	}
	return nil, Error, fmt.Errorf("OCI artifact %s has no Helm chart layer (%s)", ref, helmChartLayer)
}

// ociSeverity: a registry that answered (manifest unknown, denied) is an error in the reference; one
// that did not answer is a warning.
func ociSeverity(err error) Severity {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode != 0 {
		return Error
	}
	return Warning
}

// pickVersion returns the newest version allowed by constraint ("*" when empty), as source-controller
// selects a chart version (Masterminds semver constraints; an exact version matches itself).
func pickVersion(versions []string, constraint string) (string, error) {
	if constraint == "" {
		constraint = "*"
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		for _, v := range versions {
			if v == constraint {
				return v, nil
			}
		}
		return "", fmt.Errorf("version %q is neither a semver constraint nor a published version", constraint)
	}
	var best *semver.Version
	bestRaw := ""
	for _, raw := range versions {
		v, err := semver.NewVersion(raw)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestRaw = v, raw
		}
	}
	if best == nil {
		sort.Strings(versions)
		return "", fmt.Errorf("no version matches %q (published: %s)", constraint, strings.Join(versions, ", "))
	}
	return bestRaw, nil
}

func (r *run) httpGet(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	client := http.DefaultClient
	if r.opts.ChartTransport != nil {
		client = &http.Client{Transport: r.opts.ChartTransport}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, redactErr(err, ""))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s", errUnreachable, redactURL(u), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", errUnreachable, redactURL(u), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes (source-controller's limit)", redactURL(u), limit)
	}
	return data, nil
}

// missingDependencies lists the Chart.yaml dependencies without a chart in charts/ (helm
// action.CheckDependencies' test).
func missingDependencies(ch *chart.Chart) []string {
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if !have[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	return missing
}

// readValuesFile reads a valuesFiles entry: from the Git source's tree, or from the packaged chart.
func readValuesFile(ch *chart.Chart, srcRoot, f string) ([]byte, error) {
	if srcRoot != "" {
		p, err := securejoin.SecureJoin(srcRoot, f)
		if err != nil {
			return nil, err
		}
		return os.ReadFile(p)
	}
	clean := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(f)), "./")
	if i := strings.Index(clean, "/"); i >= 0 && strings.HasPrefix(clean, ch.Metadata.Name+"/") {
		clean = clean[i+1:]
	}
	for _, file := range ch.Raw {
		if file.Name == clean {
			return file.Data, nil
		}
	}
	return nil, fmt.Errorf("not in chart %s", ch.Metadata.Name)
}

// dataValue reads key from a ConfigMap's data or a Secret's data (base64) or stringData.
func dataValue(u *unstructured.Unstructured, key string) (string, bool) {
	if sd, ok, _ := unstructured.NestedStringMap(u.Object, "stringData"); ok {
		if v, ok := sd[key]; ok {
			return v, true
		}
	}
	data, _, _ := unstructured.NestedStringMap(u.Object, "data")
	v, ok := data[key]
	if ok && u.GetKind() == "Secret" {
		d, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return "", false
		}
		v = string(d)
	}
	return v, ok
}

// mergeValues merges src into dst recursively (maps merge, everything else is replaced), as
// helm-controller merges values layers.
func mergeValues(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// jsonNumbers turns kustomize's int64 values into float64, as values read from YAML are, so templates
// behave as under helm-controller (which reads spec.values from JSON).
func jsonNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = jsonNumbers(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonNumbers(x)
		}
		return out
	case int64:
		return float64(t)
	case int:
		return float64(t)
	}
	return v
}
