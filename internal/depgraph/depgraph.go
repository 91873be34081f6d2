package depgraph

import (
	"cmp"
	"slices"
)

// Cycle returns the first dependency cycle that a depth-first search finds, visiting nodes and each
// node's dependencies in ascending order. The path is closed, its first node repeated at the end:
// [a b a] for a and b depending on each other, [a a] for a node that depends on itself. Dependencies
// that are not among nodes are ignored (they cannot be part of a cycle). It returns nil when there is
// no cycle.
func Cycle[K cmp.Ordered](nodes []K, deps func(K) []K) []K {
	return CycleFunc(nodes, deps, cmp.Compare[K])
}

// CycleFunc is Cycle for keys that are ordered by compare (which returns a negative number, zero or a
// positive number as a is less than, equal to or greater than b) rather than by <.
// deps may return a slice the caller owns: it is not modified.
func CycleFunc[K comparable](nodes []K, deps func(K) []K, compare func(a, b K) int) []K {
	order := slices.Clone(nodes)
	slices.SortFunc(order, compare)
	order = slices.Compact(order)
	known := make(map[K]bool, len(order))
	for _, n := range order {
		known[n] = true
	}

	const (
		white = iota // not visited yet
		grey         // on the current path
		black        // visited, no cycle through it
	)
	color := make(map[K]int, len(order))
	var stack, found []K
	var visit func(n K) bool
	visit = func(n K) bool {
		color[n] = grey
		stack = append(stack, n)
		ds := slices.Clone(deps(n))
		slices.SortFunc(ds, compare)
		for _, d := range ds {
			if !known[d] {
				continue
			}
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				found = append(slices.Clone(stack[i:]), d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range order {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}
