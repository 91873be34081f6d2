package core

import (
	"errors"
	"slices"
	"strings"

	"github.com/hybridtwin/hybridtwin/internal/depgraph"
)

// ErrDependencyCycle is wrapped by every CycleError.
var ErrDependencyCycle = errors.New("dependency cycle")

// CycleError reports a cycle in dependsOn. Path starts and ends with the same Kustomization.
type CycleError struct {
	Path []Key
}

func (e *CycleError) Error() string {
	parts := make([]string, len(e.Path))
	for i, k := range e.Path {
		parts[i] = k.String()
	}
	return "dependsOn forms a cycle: " + strings.Join(parts, " -> ") +
		"; remove one of these dependsOn entries"
}

// Unwrap makes errors.Is(err, ErrDependencyCycle) true.
func (e *CycleError) Unwrap() error { return ErrDependencyCycle }

// Graph is the dependsOn graph over all Kustomizations of one reconciler. Edges point from a
// Kustomization to the ones it depends on. Dependencies on Kustomizations that do not exist (yet) are
// kept: they are not cycles, the gate reports them as not found.
type Graph struct {
	deps       map[Key][]Key
	dependents map[Key][]Key
}

// NewGraph builds the graph and rejects it with a *CycleError if dependsOn has a cycle. The cycle
// reported is the first one found when visiting nodes in key order, so the same input always reports
// the same path.
func NewGraph(deps map[Key][]Key) (*Graph, error) {
	g := &Graph{deps: make(map[Key][]Key, len(deps)), dependents: map[Key][]Key{}}
	for k, ds := range deps {
		cp := slices.Clone(ds)
		slices.SortFunc(cp, cmpKey)
		cp = slices.Compact(cp)
		g.deps[k] = cp
		for _, d := range cp {
			g.dependents[d] = append(g.dependents[d], k)
		}
	}
	for _, ds := range g.dependents {
		slices.SortFunc(ds, cmpKey)
	}
	if p := g.findCycle(); p != nil {
		return nil, newCycleError(p)
	}
	return g, nil
}

// newCycleError rotates a closed path (first == last) to start at its smallest key, so a cycle is
// reported the same way however it was found.
func newCycleError(path []Key) *CycleError {
	ring := path[:len(path)-1]
	min := 0
	for i, k := range ring {
		if k.Less(ring[min]) {
			min = i
		}
	}
	out := append(slices.Clone(ring[min:]), ring[:min]...)
	return &CycleError{Path: append(out, out[0])}
}

// Set replaces k's dependencies. If that would close a cycle it returns a *CycleError and leaves the
// graph unchanged. Only cycles through k can appear, so only paths from k's new dependencies back to k
// are searched: adding N Kustomizations one by one costs O(N + edges) each, not a rebuild.
func (g *Graph) Set(k Key, deps []Key) error {
	cp := slices.Clone(deps)
	slices.SortFunc(cp, cmpKey)
	cp = slices.Compact(cp)
	for _, d := range cp {
		if p := g.pathTo(d, k, map[Key]bool{}); p != nil {
			return newCycleError(append([]Key{k}, p...))
		}
	}
	g.Remove(k)
	g.deps[k] = cp
	for _, d := range cp {
		ds := g.dependents[d]
		i, _ := slices.BinarySearchFunc(ds, k, cmpKey)
		g.dependents[d] = slices.Insert(ds, i, k)
	}
	return nil
}

// pathTo returns a dependency path from "from" to "to" (both included), or nil.
func (g *Graph) pathTo(from, to Key, seen map[Key]bool) []Key {
	if from == to {
		return []Key{to}
	}
	if seen[from] {
		return nil
	}
	seen[from] = true
	for _, d := range g.deps[from] {
		if p := g.pathTo(d, to, seen); p != nil {
			return append([]Key{from}, p...)
		}
	}
	return nil
}

// Remove deletes k's node and its outgoing edges (Kustomizations that depend on k keep their edge:
// they report k as not found).
func (g *Graph) Remove(k Key) {
	for _, d := range g.deps[k] {
		ds := g.dependents[d]
		if i, ok := slices.BinarySearchFunc(ds, k, cmpKey); ok {
			g.dependents[d] = slices.Delete(ds, i, i+1)
		}
	}
	delete(g.deps, k)
}

func cmpKey(a, b Key) int {
	switch {
	case a == b:
		return 0
	case a.Less(b):
		return -1
	default:
		return 1
	}
}

// Nodes returns every Kustomization that has an entry in the graph, in key order.
func (g *Graph) Nodes() []Key {
	out := make([]Key, 0, len(g.deps))
	for k := range g.deps {
		out = append(out, k)
	}
	slices.SortFunc(out, cmpKey)
	return out
}

// DependsOn returns k's direct dependencies in key order.
func (g *Graph) DependsOn(k Key) []Key { return slices.Clone(g.deps[k]) }

// Dependents returns the Kustomizations that directly depend on k, in key order: the ones to wake when
// k becomes Ready.
func (g *Graph) Dependents(k Key) []Key { return slices.Clone(g.dependents[k]) }

// Order returns the nodes so that every Kustomization comes after its dependencies (ties in key order).
func (g *Graph) Order() []Key {
	indeg := map[Key]int{}
	for _, k := range g.Nodes() {
		n := 0
		for _, d := range g.deps[k] {
			if _, known := g.deps[d]; known {
				n++
			}
		}
		indeg[k] = n
	}
	var ready, out []Key
	for _, k := range g.Nodes() {
		if indeg[k] == 0 {
			ready = append(ready, k)
		}
	}
	for len(ready) > 0 {
		k := ready[0]
		ready = ready[1:]
		out = append(out, k)
		for _, d := range g.dependents[k] {
			if _, known := indeg[d]; !known {
				continue
			}
			indeg[d]--
			if indeg[d] == 0 {
				ready = append(ready, d)
				slices.SortFunc(ready, cmpKey)
			}
		}
	}
	return out
}

// findCycle returns the first cycle found visiting nodes and their dependencies in key order, or nil.
// Dependencies on Kustomizations without a node cannot close a cycle, so the search ignores them.
func (g *Graph) findCycle() []Key {
	return depgraph.CycleFunc(g.Nodes(), func(k Key) []Key { return g.deps[k] }, cmpKey)
}
