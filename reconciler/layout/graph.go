package layout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// node is one Flux Kustomization the graph reaches: an entry point (a configuration's Kustomization)
// or one that an applied build creates.
type node struct {
	// cfg is the configuration the node descends from (findings name it).
	cfg *Config
	// home is the cluster the Kustomization object lives on; its build lands on target().
	home  string
	ks    Kustomization
	entry bool
	// deferred is set once a node with substituteFrom waited for the rest of the graph.
	deferred bool
	// built is false while the node's source is unresolved.
	built bool
}

func (n *node) key() ksKey { return ksKey{n.home, n.ks.Namespace(), n.ks.Name()} }

// sourceRef is spec.sourceRef with Flux's defaults (kind GitRepository, the Kustomization's
// namespace); ok is false when the object names none (an Arc configuration's Kustomization, whose
// source is the configuration's repository).
func (n *node) sourceRef() (SourceRef, bool) {
	sr, _, _ := unstructured.NestedMap(n.ks.Object, "spec", "sourceRef")
	if sr == nil || str(sr, "name") == "" {
		return SourceRef{}, false
	}
	ref := SourceRef{Kind: str(sr, "kind"), Namespace: str(sr, "namespace"), Name: str(sr, "name")}
	if ref.Kind == "" {
		ref.Kind = "GitRepository"
	}
	if ref.Namespace == "" {
		ref.Namespace = n.ks.Namespace()
	}
	return ref, true
}

// target is the cluster a node's build is applied to: its home, or with spec.kubeConfig the remote
// cluster that kubeconfig reaches (kustomize-controller applies there, and impersonation and
// dependsOn stay on the home cluster). The remote cluster is named "<home>/<secret or configmap>".
func (n *node) target() string {
	for _, f := range []string{"secretRef", "configMapRef"} {
		if name, _, _ := unstructured.NestedString(n.ks.Object, "spec", "kubeConfig", f, "name"); name != "" {
			return n.home + "/" + name
		}
	}
	return n.home
}

// tree is a resolved source: the directory builds read (the artifact as source-controller would
// store it) and the prefix findings put before its file names ("" for the repository under
// validation).
type tree struct {
	dir, display string
}

type resolution int

const (
	resolved resolution = iota
	pending             // the source object is not (yet) among the applied objects
	unresolvable
)

// unresolved is a source the walk could not read, with the Kustomizations that use it.
type unresolved struct {
	cluster string
	ref     SourceRef
	reason  string
	hint    string
	sev     Severity
	nodes   []*node
}

// walker follows the graph of Kustomization builds and sources from the entry points, as
// kustomize-controller would: it builds an entry, applies (collects) what the build produces, and
// builds every Kustomization found there from its own source.
type walker struct {
	r   *run
	ctx context.Context
	tmp string

	queue, deferred, waiting []*node
	seen                     map[ksKey]*node
	nodes                    []*node
	raw, all                 []*built

	// sources holds the source objects the applied builds declare: cluster|Kind/ns/name.
	sources map[string]*unstructured.Unstructured
	// generators maps cluster|ns/artifact to the ArtifactGenerator declaring it.
	generators map[string]*unstructured.Unstructured
	// self maps cluster|Kind/ns/name of the sources that are the repository under validation to
	// its directory.
	self       map[string]string
	trees      map[string]tree
	cfgs       map[string]*Config
	unresolved map[string]*unresolved
	unresOrder []string
	summary    map[*Config]int
}

func newWalker(ctx context.Context, r *run, tmp string) *walker {
	return &walker{r: r, ctx: ctx, tmp: tmp, seen: map[ksKey]*node{}, sources: map[string]*unstructured.Unstructured{},
		generators: map[string]*unstructured.Unstructured{}, self: map[string]string{}, trees: map[string]tree{},
		cfgs: map[string]*Config{}, unresolved: map[string]*unresolved{}, summary: map[*Config]int{}}
}

func srcKey(cluster string, ref SourceRef) string { return cluster + "|" + ref.String() }

// add queues a node unless the graph has it already (two builds applying one Kustomization are
// reported by the duplicates rule on the object itself).
func (w *walker) add(n *node) {
	if _, ok := w.seen[n.key()]; ok {
		return
	}
	w.seen[n.key()] = n
	w.nodes = append(w.nodes, n)
	w.queue = append(w.queue, n)
	if !n.entry {
		if i, ok := w.summary[n.cfg]; ok {
			w.r.report.Configs[i].Kustomizations = append(w.r.report.Configs[i].Kustomizations, n.ks.Name())
		}
	}
}

// run walks from the configurations' Kustomizations until nothing new is reachable.
func (w *walker) run(configs []Config) error {
	for i := range configs {
		c := &configs[i]
		w.summary[c] = i
		for _, ref := range c.Self {
			w.self[srcKey(c.Cluster, ref)] = c.Root
		}
		for _, k := range c.Kustomizations {
			n := &node{cfg: c, home: c.Cluster, ks: k, entry: true}
			if ref, ok := n.sourceRef(); ok && len(c.Self) == 0 {
				w.self[srcKey(c.Cluster, ref)] = c.Root
			}
			w.add(n)
		}
	}
	parked := -1
	for {
		for len(w.queue) > 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
			n := w.queue[0]
			w.queue = w.queue[1:]
			// A Kustomization with substituteFrom reads ConfigMaps and Secrets other builds may
			// declare: build it once everything else reachable is built.
			if from, _, _ := unstructured.NestedSlice(n.ks.Object, "spec", "postBuild", "substituteFrom"); len(from) > 0 && !n.deferred {
				n.deferred = true
				w.deferred = append(w.deferred, n)
				continue
			}
			if err := w.process(n); err != nil {
				return err
			}
		}
		if len(w.deferred) > 0 {
			w.queue, w.deferred = w.deferred, nil
			continue
		}
		// Nodes whose source no build declared yet: retry while new sources keep appearing.
		if len(w.waiting) > 0 && len(w.sources)+len(w.generators) != parked {
			parked = len(w.sources) + len(w.generators)
			w.queue, w.waiting = w.waiting, nil
			continue
		}
		break
	}
	for _, n := range w.waiting {
		ref, _ := n.sourceRef()
		reason, hint, sev := w.undeclared(n.home, ref)
		w.markUnresolved(n, ref, reason, hint, sev)
	}
	w.waiting = nil
	return nil
}

// undeclared explains a source no applied object declares.
func (w *walker) undeclared(cluster string, ref SourceRef) (string, string, Severity) {
	var names []string
	for k := range w.sources {
		if c, rest, _ := strings.Cut(k, "|"); c == cluster && strings.HasPrefix(rest, ref.Kind+"/") {
			names = append(names, strings.TrimPrefix(rest, ref.Kind+"/"))
		}
	}
	want := ref.Namespace + "/" + ref.Name
	if near := closest(want, names); near != "" {
		return fmt.Sprintf("%s is not declared by any object the layout applies (did you mean %s/%s?); Flux reports the Kustomization not Ready: source not found", ref, ref.Kind, near),
			fmt.Sprintf("fix spec.sourceRef: name the %s %s", ref.Kind, near), Error
	}
	return fmt.Sprintf("%s is not declared by any object the layout applies; Flux waits for it (source not found) unless something outside the repository creates it", ref),
		fmt.Sprintf("declare the %s in the repository, or pass --source %s=DIR to build its Kustomizations from a local copy", ref.Kind, ref), Warning
}

func (w *walker) markUnresolved(n *node, ref SourceRef, reason, hint string, sev Severity) {
	k := srcKey(n.home, ref)
	u := w.unresolved[k]
	if u == nil {
		u = &unresolved{cluster: n.home, ref: ref, reason: reason, hint: hint, sev: sev}
		w.unresolved[k] = u
		w.unresOrder = append(w.unresOrder, k)
	}
	u.nodes = append(u.nodes, n)
}

// cfgFor is the configuration a build runs under: the node's, on its target cluster, reading its
// source's tree.
func (w *walker) cfgFor(c *Config, cluster, dir string) *Config {
	if cluster == c.Cluster && dir == c.Root {
		return c
	}
	k := fmt.Sprintf("%p|%s|%s", c, cluster, dir)
	if d := w.cfgs[k]; d != nil {
		return d
	}
	d := *c
	d.Cluster, d.Root = cluster, dir
	w.cfgs[k] = &d
	return &d
}

// tree prepares dir as source-controller would archive it, once per directory and ignore rules.
func (w *walker) tree(dir, display, ignore string) (tree, error) {
	k := dir + "\x00" + ignore
	if t, ok := w.trees[k]; ok {
		t.display = display
		return t, nil
	}
	out, err := artifactTree(dir, w.tmp, ignore)
	if err != nil {
		return tree{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	t := tree{dir: out, display: display}
	w.trees[k] = t
	return t, nil
}

// resolve finds the tree a source reference reads.
func (w *walker) resolve(c *Config, cluster string, ref SourceRef, depth int) (tree, resolution, string, string, Severity, error) {
	for _, ls := range w.r.opts.Sources {
		if ls.matches(ref) {
			abs, _ := filepath.Abs(ls.Dir)
			t, err := w.tree(abs, ls.Dir, "")
			return t, resolved, "", "", "", err
		}
	}
	k := srcKey(cluster, ref)
	decl := w.sources[k]
	ignore := ""
	if decl != nil {
		ignore, _, _ = unstructured.NestedString(decl.Object, "spec", "ignore")
	}
	if root, ok := w.self[k]; ok {
		t, err := w.tree(root, "", ignore)
		return t, resolved, "", "", "", err
	}
	if ref.Kind == "ExternalArtifact" && decl == nil {
		if gen := w.generators[cluster+"|"+ref.Namespace+"/"+ref.Name]; gen != nil && depth < 4 {
			return w.generate(c, cluster, ref, gen, depth)
		}
		return tree{}, pending, "", "", "", nil
	}
	if decl == nil {
		return tree{}, pending, "", "", "", nil
	}
	hint := fmt.Sprintf("pass --source %s=DIR (a local checkout of it) to build its Kustomizations", ref)
	switch ref.Kind {
	case "GitRepository":
		url, _, _ := unstructured.NestedString(decl.Object, "spec", "url")
		gref, _, _ := unstructured.NestedFieldNoCopy(decl.Object, "spec", "ref")
		for sk, root := range w.self {
			sd := w.sources[sk]
			if sd == nil || !strings.HasPrefix(sk, cluster+"|GitRepository/") {
				continue
			}
			surl, _, _ := unstructured.NestedString(sd.Object, "spec", "url")
			sref, _, _ := unstructured.NestedFieldNoCopy(sd.Object, "spec", "ref")
			if surl != "" && surl == url && reflect.DeepEqual(sref, gref) {
				t, err := w.tree(root, "", ignore)
				return t, resolved, "", "", "", err
			}
		}
		return tree{}, unresolvable, fmt.Sprintf("%s (%s) is another repository: Flux clones it when it reconciles; it is not resolvable offline, so its Kustomizations were not built", ref, url), hint, Warning, nil
	case "OCIRepository":
		url, _, _ := unstructured.NestedString(decl.Object, "spec", "url")
		return tree{}, unresolvable, fmt.Sprintf("%s (%s) is an artifact in a registry: Flux pulls it when it reconciles; it is not resolvable offline, so its Kustomizations were not built", ref, url),
			fmt.Sprintf("pass --source %s=DIR with the folder the artifact is pushed from (flux push artifact --path)", ref), Warning, nil
	}
	return tree{}, unresolvable, fmt.Sprintf("%s is read from outside the repository when Flux reconciles; it is not resolvable offline, so its Kustomizations were not built", ref), hint, Warning, nil
}

// generate builds an ArtifactGenerator's artifact from its resolved sources.
func (w *walker) generate(c *Config, cluster string, ref SourceRef, gen *unstructured.Unstructured, depth int) (tree, resolution, string, string, Severity, error) {
	k := "generated\x00" + srcKey(cluster, ref)
	if t, ok := w.trees[k]; ok {
		return t, resolved, "", "", "", nil
	}
	roots := map[string]string{}
	srcs, _, _ := unstructured.NestedSlice(gen.Object, "spec", "sources")
	for _, s := range srcs {
		sm, _ := s.(map[string]any)
		sref := SourceRef{Kind: str(sm, "kind"), Namespace: str(sm, "namespace"), Name: str(sm, "name")}
		if sref.Namespace == "" {
			sref.Namespace = gen.GetNamespace()
		}
		t, res, reason, hint, sev, err := w.resolve(c, cluster, sref, depth+1)
		if err != nil || res != resolved {
			if res == pending {
				return tree{}, pending, "", "", "", err
			}
			return tree{}, res, fmt.Sprintf("%s is generated by ArtifactGenerator %s/%s from %s: %s", ref, gen.GetNamespace(), gen.GetName(), sref, reason), hint, sev, err
		}
		roots[str(sm, "alias")] = t.dir
	}
	arts, _, _ := unstructured.NestedSlice(gen.Object, "spec", "artifacts")
	var ops []copyOp
	for _, a := range arts {
		am, _ := a.(map[string]any)
		if str(am, "name") != ref.Name {
			continue
		}
		cps, _ := am["copy"].([]any)
		for _, cp := range cps {
			cm, _ := cp.(map[string]any)
			op := copyOp{from: str(cm, "from"), to: str(cm, "to")}
			ex, _ := cm["exclude"].([]any)
			for _, e := range ex {
				if s, ok := e.(string); ok {
					op.exclude = append(op.exclude, s)
				}
			}
			ops = append(ops, op)
		}
	}
	dir, err := generateArtifact(w.tmp, roots, ops)
	if err != nil {
		return tree{}, unresolvable, fmt.Sprintf("ArtifactGenerator %s/%s cannot produce %s: %v; source-watcher reports the generator not Ready and the Kustomization waits", gen.GetNamespace(), gen.GetName(), ref, err),
			"fix spec.artifacts[].copy so every from matches files of its source", Error, nil
	}
	t := tree{dir: dir, display: ref.String() + ":"}
	w.trees[k] = t
	return t, resolved, "", "", "", nil
}

// process builds one node and queues what its build applies.
func (w *walker) process(n *node) error {
	r := w.r
	var t tree
	if ref, ok := n.sourceRef(); ok {
		var res resolution
		var reason, hint string
		var sev Severity
		var err error
		t, res, reason, hint, sev, err = w.resolve(n.cfg, n.home, ref, 0)
		if err != nil {
			return err
		}
		switch res {
		case pending:
			w.waiting = append(w.waiting, n)
			return nil
		case unresolvable:
			w.markUnresolved(n, ref, reason, hint, sev)
			return nil
		}
	} else {
		var err error
		if t, err = w.tree(n.cfg.Root, "", ""); err != nil {
			return err
		}
	}
	n.built = true
	cfg := w.cfgFor(n.cfg, n.target(), t.dir)
	if n.entry {
		r.fluxAPI(cfg, n)
	}
	obj := deepCopy(n.ks.Object)
	spec, _ := obj["spec"].(map[string]any)
	hasPostBuild := spec != nil && spec["postBuild"] != nil
	if spec != nil {
		delete(spec, "postBuild")
	}
	b := &built{cfg: cfg, ks: n.ks, display: t.display, node: n}
	res, err := build.Build(w.ctx, nil, build.Input{Root: t.dir, Kustomization: obj})
	r.log.Debug("built", "configuration", cfg.Name, "kustomization", n.ks.Name(), "err", err)
	if err != nil {
		r.add(cfg, n.ks, Finding{Rule: RuleBuild, Severity: Error, File: n.ks.File, Line: n.ks.Line,
			Object:  "Kustomization/" + n.ks.Namespace() + "/" + n.ks.Name(),
			Message: strings.TrimSpace(err.Error()) + sourceNote(t),
			Hint:    buildHint(err)})
		return nil
	}
	b.objects, b.origins, b.ok = res.Objects, res.Origins, true
	b.safe = safeSecrets(b.objects)
	w.raw = append(w.raw, b)
	final := b
	if hasPostBuild {
		vars, complete := r.variables(cfg, b, w.raw)
		r.missingVariables(cfg, b, vars, complete)
		obj := deepCopy(n.ks.Object)
		pb := obj["spec"].(map[string]any)["postBuild"].(map[string]any)
		delete(pb, "substituteFrom")
		sub := map[string]any{}
		for k, v := range vars {
			sub[k] = v
		}
		pb["substitute"] = sub
		res, err := build.Build(w.ctx, nil, build.Input{Root: t.dir, Kustomization: obj})
		if err != nil {
			r.add(cfg, n.ks, Finding{Rule: RuleMissingVariable, Severity: Error, File: n.ks.File, Line: n.ks.Line,
				Object:  "Kustomization/" + n.ks.Namespace() + "/" + n.ks.Name(),
				Message: strings.TrimSpace(err.Error()),
				Hint:    "fix the ${...} expression or the variable's value in spec.postBuild"})
			return nil
		}
		final = &built{cfg: cfg, ks: n.ks, objects: res.Objects, origins: res.Origins, ok: true, display: t.display, node: n, safe: b.safe}
	}
	w.all = append(w.all, final)
	w.collect(n, final, t)
	return nil
}

func sourceNote(t tree) string {
	if t.display == "" {
		return ""
	}
	return " (source " + strings.TrimSuffix(t.display, ":") + ")"
}

// collect registers the sources a build applies and queues the Kustomizations it applies.
func (w *walker) collect(n *node, b *built, t tree) {
	cluster := b.cfg.Cluster
	for _, u := range b.objects {
		gvk := u.GroupVersionKind()
		switch {
		case gvk.Group == "source.toolkit.fluxcd.io" && sourceKinds[gvk.Kind]:
			ns := u.GetNamespace()
			w.sources[srcKey(cluster, SourceRef{gvk.Kind, ns, u.GetName()})] = u
		case gvk.Group == "source.extensions.fluxcd.io" && gvk.Kind == "ArtifactGenerator":
			arts, _, _ := unstructured.NestedSlice(u.Object, "spec", "artifacts")
			for _, a := range arts {
				am, _ := a.(map[string]any)
				w.generators[cluster+"|"+u.GetNamespace()+"/"+str(am, "name")] = u
			}
		}
	}
	for _, u := range b.objects {
		gvk := u.GroupVersionKind()
		if gvk.Group != "kustomize.toolkit.fluxcd.io" || gvk.Kind != "Kustomization" {
			continue
		}
		if u.GetNamespace() == "" {
			// Flux refuses the parent's apply (namespace not specified, rule HT015): never created.
			continue
		}
		origin := b.origins[build.Subject(u)]
		file, line := origin, 0
		if origin != "" && !strings.Contains(origin, "(generated") {
			line = lineOf(filepath.Join(t.dir, origin), u.GetName(), "Kustomization")
			file = displayPath(t.display, origin)
		}
		obj := jsonCopy(u).Object
		if seen := w.seen[ksKey{cluster, u.GetNamespace(), u.GetName()}]; seen != nil && seen.entry && seen.cfg.File == "" {
			// A discovered entry point (flux bootstrap's flux-system) as its own build applies it: the
			// object Flux reconciles from then on, with the cluster folder's patches (decryption, say).
			seen.ks.Object = obj
			continue
		}
		w.add(&node{cfg: n.cfg, home: cluster, ks: Kustomization{Object: obj, File: file, Line: line}})
	}
}

func displayPath(display, rel string) string {
	if display == "" {
		return rel
	}
	if strings.HasSuffix(display, ":") {
		return display + rel
	}
	return filepath.ToSlash(filepath.Join(display, rel))
}

// reportUnresolved writes one finding per source the walk could not read (rule HT014).
func (w *walker) reportUnresolved() {
	for _, k := range w.unresOrder {
		u := w.unresolved[k]
		n := u.nodes[0]
		var names []string
		for _, x := range u.nodes {
			names = append(names, x.ks.Namespace()+"/"+x.ks.Name())
		}
		w.r.add(n.cfg, n.ks, Finding{Rule: RuleSource, Severity: u.sev, File: n.ks.File, Line: n.ks.Line,
			Object:  "Kustomization/" + n.ks.Namespace() + "/" + n.ks.Name(),
			Message: fmt.Sprintf("%s; Kustomization(s) not built: %s", u.reason, strings.Join(names, ", ")),
			Hint:    u.hint})
	}
}

// unresolvedOn reports whether a source of cluster could not be read (its Kustomizations, and what
// they would create, are unknown).
func (w *walker) unresolvedOn(cluster string) bool {
	for _, u := range w.unresolved {
		if u.cluster == cluster {
			return true
		}
	}
	return false
}

func removeAll(dir string) { _ = os.RemoveAll(dir) }
