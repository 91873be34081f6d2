package layout

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/envsubst/parse"
	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// objectRules runs the per-object rules: namespace scope, plaintext Secret, registries, API versions,
// HelmRelease.
func (r *run) objectRules(b *built, u *unstructured.Unstructured) {
	gvk := u.GroupVersionKind()
	c := b.cfg

	if c.Scope == ScopeNamespace {
		clusterScoped := r.prof.ClusterScoped[gvk.Group+"/"+gvk.Kind] || r.crdScope[c.Cluster][gvk.Group+"/"+gvk.Kind]
		switch {
		case clusterScoped:
			r.at(b, u, Finding{Rule: RuleNamespaceScope, Severity: Error,
				Message: fmt.Sprintf("cluster-scoped %s in namespace-scoped configuration %q (namespace %s)", gvk.Kind, c.Name, c.Namespace),
				Hint:    "move it to a cluster-scoped configuration owned by the cluster operators"})
		case u.GetNamespace() == "":
			r.at(b, u, Finding{Rule: RuleNamespaceScope, Severity: Warning,
				Message: fmt.Sprintf("%s has no namespace in namespace-scoped configuration %q", gvk.Kind, c.Name),
				Hint:    fmt.Sprintf("set metadata.namespace: %s (or namespace: %s in the kustomization.yaml)", c.Namespace, c.Namespace)})
		case u.GetNamespace() != c.Namespace:
			r.at(b, u, Finding{Rule: RuleNamespaceScope, Severity: Error,
				Message: fmt.Sprintf("%s in namespace %q, outside namespace-scoped configuration %q's namespace %q", gvk.Kind, u.GetNamespace(), c.Name, c.Namespace),
				Hint:    fmt.Sprintf("set metadata.namespace: %s, or move it to a configuration of namespace %s", c.Namespace, u.GetNamespace())})
		}
	}

	if gvk.Group == "" && gvk.Kind == "Secret" {
		r.secretRules(b, u)
	}

	if b.helm == nil && u.GetNamespace() == "" {
		if namespaced, known := r.namespaced(c.Cluster, gvk.Group, gvk.Kind); namespaced && known && c.Scope != ScopeNamespace {
			msg := fmt.Sprintf("%s has no metadata.namespace and Kustomization %s sets no spec.targetNamespace: kustomize-controller refuses the whole apply (%s/%s namespace not specified)", gvk.Kind, b.ks.Name(), gvk.Kind, u.GetName())
			if gvk.Group == "kustomize.toolkit.fluxcd.io" {
				msg += ", so this Kustomization is never created"
			}
			r.at(b, u, Finding{Rule: RuleNamespaceSet, Severity: Error, Message: msg,
				Hint: "set metadata.namespace, or namespace: in the kustomization.yaml that includes the file, or spec.targetNamespace on the Kustomization"})
		}
	}

	r.fluxAPIObject(b, u)

	if len(r.opts.AllowedRegistries) > 0 {
		for _, im := range images(u.Object, "") {
			if !allowedImage(im.image, r.opts.AllowedRegistries) {
				r.at(b, u, Finding{Rule: RuleRegistry, Severity: Error,
					Message: fmt.Sprintf("%s: image %q comes from registry %q, not one of the allowed (%s)", im.path, im.image, registryOf(im.image), strings.Join(r.opts.AllowedRegistries, ", ")),
					Hint:    "mirror the image into an allowed registry and reference it there (kustomize images: newName)"})
			}
		}
	}

	for _, d := range r.prof.Deprecations {
		if d.GroupVersion != u.GetAPIVersion() || (len(d.Kinds) > 0 && !contains(d.Kinds, gvk.Kind)) {
			continue
		}
		rem, _ := minorOf("1." + strings.TrimPrefix(d.RemovedIn, "1."))
		dep, _ := minorOf("1." + strings.TrimPrefix(d.DeprecatedIn, "1."))
		switch {
		case d.RemovedIn != "" && r.target >= rem:
			r.at(b, u, Finding{Rule: RuleDeprecatedAPI, Severity: Error,
				Message: fmt.Sprintf("%s %s was removed in Kubernetes v%s (target v1.%d)", u.GetAPIVersion(), gvk.Kind, d.RemovedIn, r.target),
				Hint:    "migrate to " + d.Replacement + " (kubernetes.io/docs/reference/using-api/deprecation-guide)"})
		case r.target >= dep:
			msg := fmt.Sprintf("%s %s is deprecated since Kubernetes v%s", u.GetAPIVersion(), gvk.Kind, d.DeprecatedIn)
			if d.RemovedIn != "" {
				msg += fmt.Sprintf(" and is removed in v%s", d.RemovedIn)
			}
			r.at(b, u, Finding{Rule: RuleDeprecatedAPI, Severity: Warning, Message: msg,
				Hint: "migrate to " + d.Replacement + " (kubernetes.io/docs/reference/using-api/deprecation-guide)"})
		}
	}
}

// missingVariables lists every ${VAR} without a default and without a value, per object (rule HT002).
// It parses with Flux's own envsubst parser, so what counts as a variable is what Flux substitutes.
func (r *run) missingVariables(c *Config, b *built, vars map[string]string, complete bool) {
	if !complete {
		return
	}
	for _, u := range b.objects {
		if u.GetLabels()[r.prof.SubstituteDisabled] == "disabled" || u.GetAnnotations()[r.prof.SubstituteDisabled] == "disabled" {
			continue
		}
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			continue
		}
		tree, err := parse.Parse(string(y))
		if err != nil {
			r.at(b, u, Finding{Rule: RuleMissingVariable, Severity: Error,
				Message: fmt.Sprintf("variable expression does not parse: %v", err),
				Hint:    "fix the ${...} expression, or escape a literal $ as $$"})
			continue
		}
		missing := map[string]bool{}
		var walk func(n parse.Node)
		walk = func(n parse.Node) {
			switch n := n.(type) {
			case *parse.ListNode:
				for _, x := range n.Nodes {
					walk(x)
				}
			case *parse.FuncNode:
				if _, ok := vars[n.Param]; !ok && !defaultOp(n.Name) {
					missing[n.Param] = true
				}
				for _, x := range n.Args {
					walk(x)
				}
			}
		}
		walk(tree.Root)
		if len(missing) == 0 {
			continue
		}
		names := sortedKeys(missing)
		r.at(b, u, Finding{Rule: RuleMissingVariable, Severity: Error,
			Message: fmt.Sprintf("postBuild variable(s) without a value: %s", strings.Join(names, ", ")),
			Hint:    fmt.Sprintf("add %s to spec.postBuild.substitute (or a substituteFrom source), or give a default: ${%s:=value}", strings.Join(names, ", "), names[0])})
	}
}

// defaultOp is envsubst's set of operators that supply their own value for an unset variable
// (fluxcd/pkg/envsubst template.go isDefaultOp).
func defaultOp(name string) bool {
	switch name {
	case "-", "+", "=", "?", ":-", ":+", ":=", ":?":
		return true
	}
	return false
}

type ksKey struct{ cluster, namespace, name string }

// graphRules checks dependsOn per cluster over every Kustomization the graph reaches: every reference
// exists (HT003) and the graph is acyclic (HT004). A dependsOn entry without a namespace means the
// Kustomization's own namespace (kustomize-controller v1 API).
func (r *run) graphRules(w *walker) {
	type gnode struct {
		n    *node
		deps []ksKey
	}
	nodes := map[ksKey]*gnode{}
	var order []ksKey
	for _, n := range w.nodes {
		key := n.key()
		g := &gnode{n: n}
		deps, _, _ := unstructured.NestedSlice(n.ks.Object, "spec", "dependsOn")
		for _, d := range deps {
			dm, _ := d.(map[string]any)
			ns := str(dm, "namespace")
			if ns == "" {
				ns = key.namespace
			}
			g.deps = append(g.deps, ksKey{key.cluster, ns, str(dm, "name")})
		}
		nodes[key] = g
		order = append(order, key)
	}
	for _, key := range order {
		g := nodes[key]
		for _, d := range g.deps {
			if _, ok := nodes[d]; ok {
				continue
			}
			var have []string
			for _, o := range order {
				if o.cluster == key.cluster {
					have = append(have, o.namespace+"/"+o.name)
				}
			}
			want := d.namespace + "/" + d.name
			f := Finding{Rule: RuleDependsOn, Severity: Error, File: g.n.ks.File, Line: g.n.ks.Line,
				Object:  "Kustomization/" + key.namespace + "/" + key.name,
				Message: fmt.Sprintf("dependsOn %s: no such Kustomization on cluster %q; Flux never reconciles this Kustomization (dependency not found)", want, key.cluster)}
			near := closest(want, have)
			for _, o := range order {
				if o.cluster == key.cluster && o.name == d.name && o.namespace != d.namespace {
					near = o.namespace + "/" + o.name // the same name in another namespace
					break
				}
			}
			switch {
			case near != "":
				f.Hint = fmt.Sprintf("did you mean %s? Fix spec.dependsOn (a dependsOn without namespace means the Kustomization's own, %s)", near, key.namespace)
			case w.unresolvedOn(key.cluster):
				f.Severity = Warning
				f.Message = fmt.Sprintf("dependsOn %s: no such Kustomization among those validated on cluster %q; it may come from a source that was not resolved (HT014)", want, key.cluster)
				f.Hint = "pass that source with --source NAME=DIR to check it, or fix spec.dependsOn"
			default:
				f.Hint = "fix spec.dependsOn, or add the Kustomization it names to the cluster's layout"
				if len(have) <= 6 {
					f.Hint += " (the cluster has: " + strings.Join(have, ", ") + ")"
				}
			}
			r.add(g.n.cfg, g.n.ks, f)
		}
	}
	// Cycles: depth-first search in declaration order; each cycle is reported once, at its first member.
	const white, grey, black = 0, 1, 2
	color := map[ksKey]int{}
	var stack []ksKey
	reported := map[string]bool{}
	var visit func(k ksKey)
	visit = func(k ksKey) {
		color[k] = grey
		stack = append(stack, k)
		for _, d := range nodes[k].deps {
			if _, ok := nodes[d]; !ok {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cyc := append([]ksKey{}, stack[i:]...)
				names := make([]string, 0, len(cyc)+1)
				for _, x := range cyc {
					names = append(names, x.name)
				}
				sorted := append([]string{}, names...)
				sort.Strings(sorted)
				id := k.cluster + ":" + strings.Join(sorted, ",")
				if !reported[id] {
					reported[id] = true
					names = append(names, d.name)
					n := nodes[d].n
					r.add(n.cfg, n.ks, Finding{Rule: RuleCycle, Severity: Error, File: n.ks.File, Line: n.ks.Line,
						Object:  "Kustomization/" + d.namespace + "/" + d.name,
						Message: "dependsOn cycle: " + strings.Join(names, " -> "),
						Hint:    "remove one of the dependsOn edges of the cycle; Flux never reconciles a Kustomization in a cycle"})
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[k] = black
	}
	for _, k := range order {
		if color[k] == white {
			visit(k)
		}
	}
}

// duplicates finds objects declared by two Kustomizations of one cluster (HT010): both would apply
// it, with two field managers' inventories fighting over it.
func (r *run) duplicates(all []*built) {
	type decl struct {
		b *built
		u *unstructured.Unstructured
	}
	seen := map[string][]decl{}
	var keys []string
	for _, b := range all {
		for _, u := range b.objects {
			gvk := u.GroupVersionKind()
			key := b.cfg.Cluster + "|" + gvk.Group + "/" + gvk.Kind + "/" + u.GetNamespace() + "/" + u.GetName()
			if _, ok := seen[key]; !ok {
				keys = append(keys, key)
			}
			seen[key] = append(seen[key], decl{b, u})
		}
	}
	for _, key := range keys {
		ds := seen[key]
		if len(ds) < 2 {
			continue
		}
		var where []string
		for _, d := range ds {
			where = append(where, fmt.Sprintf("%s/%s (%s)", d.b.cfg.Name, d.b.ks.Name(), d.b.origins[build.Subject(d.u)]))
		}
		for _, d := range ds[1:] {
			r.at(d.b, d.u, Finding{Rule: RuleDuplicate, Severity: Error,
				Message: fmt.Sprintf("declared by %d Kustomizations of cluster %q: %s", len(ds), d.b.cfg.Cluster, strings.Join(where, ", ")),
				Hint:    "keep the object in one Kustomization (a shared base belongs to one of them, or a component)"})
		}
	}
}

type imageRef struct{ path, image string }

// images finds every container image in an object: any containers/initContainers/ephemeralContainers
// list, wherever the pod template sits (Deployment, CronJob, custom resources with pod specs).
func images(v any, path string) []imageRef {
	var out []imageRef
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			p := path + "." + k
			if k == "containers" || k == "initContainers" || k == "ephemeralContainers" {
				if list, ok := t[k].([]any); ok {
					for i, c := range list {
						cm, _ := c.(map[string]any)
						if im, ok := cm["image"].(string); ok {
							out = append(out, imageRef{fmt.Sprintf("%s[%d].image", p[1:], i), im})
						}
					}
					continue
				}
			}
			out = append(out, images(t[k], p)...)
		}
	case []any:
		for i, x := range t {
			out = append(out, images(x, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}

// registryOf is the registry host of an image reference, by the Docker reference grammar
// (distribution/reference: the first component is a host when it has a '.' or ':' or is localhost;
// otherwise the image is on docker.io).
func registryOf(image string) string {
	i := strings.IndexByte(image, '/')
	if i < 0 {
		return "docker.io"
	}
	first := image[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first
	}
	return "docker.io"
}

func allowedImage(image string, allowed []string) bool {
	full := image
	if reg := registryOf(image); reg == "docker.io" && !strings.HasPrefix(image, "docker.io/") {
		full = "docker.io/" + image
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(a, "/")
		if registryOf(full) == a || strings.HasPrefix(full, a+"/") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
