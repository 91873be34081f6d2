package depgraph

import (
	"slices"
	"strings"
	"testing"
)

// graph is a test graph written "a:b,c b:c": a depends on b and c, b on c.
func graph(s string) (nodes []string, deps func(string) []string) {
	edges := map[string][]string{}
	for _, f := range strings.Fields(s) {
		n, ds, _ := strings.Cut(f, ":")
		nodes = append(nodes, n)
		if ds != "" {
			edges[n] = strings.Split(ds, ",")
		}
	}
	return nodes, func(n string) []string { return edges[n] }
}

func TestCycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph string
		want  []string
	}{
		{name: "empty", graph: "", want: nil},
		{name: "no dependencies", graph: "a b c", want: nil},
		{name: "self-loop", graph: "a:a", want: []string{"a", "a"}},
		{name: "two-cycle", graph: "a:b b:a", want: []string{"a", "b", "a"}},
		{name: "three-cycle", graph: "a:b b:c c:a", want: []string{"a", "b", "c", "a"}},
		{name: "three-cycle entered from its largest node", graph: "c:a a:b b:c", want: []string{"a", "b", "c", "a"}},
		{name: "cycle not through the first node", graph: "a:b b:c c:d d:c", want: []string{"c", "d", "c"}},
		{name: "diamond is not a cycle", graph: "a:b,c b:d c:d d", want: nil},
		{name: "chain is not a cycle", graph: "a:b b:c c:d d", want: nil},
		{name: "unknown dependencies are ignored", graph: "a:ghost,b b:ghost", want: nil},
		{name: "unknown dependency named like a missing node", graph: "a:b b:zz", want: nil},
		{name: "duplicate dependencies", graph: "a:b,b b:a,a", want: []string{"a", "b", "a"}},
		{name: "duplicate nodes", graph: "a:b a:b b:a", want: []string{"a", "b", "a"}},
		// Two cycles: the one reached first in key order is reported (a reaches b before c).
		{name: "first of two cycles in key order", graph: "a:c,b b:a c:a", want: []string{"a", "b", "a"}},
		{name: "smaller cycle found first", graph: "x:y y:x b:c c:b", want: []string{"b", "c", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, deps := graph(tc.graph)
			if got := Cycle(nodes, deps); !slices.Equal(got, tc.want) {
				t.Fatalf("Cycle(%q) = %v, want %v", tc.graph, got, tc.want)
			}
		})
	}
}

// TestCycleIsDeterministic: the order the caller lists nodes and dependencies in does not change the
// cycle reported.
func TestCycleIsDeterministic(t *testing.T) {
	orders := []string{
		"a:d,b b:c c:a d:e e:d",
		"e:d d:e c:a b:c a:b,d",
		"c:a e:d a:b,d d:e b:c",
	}
	want := []string{"a", "b", "c", "a"}
	for _, g := range orders {
		nodes, deps := graph(g)
		for range 20 {
			if got := Cycle(nodes, deps); !slices.Equal(got, want) {
				t.Fatalf("Cycle(%q) = %v, want %v", g, got, want)
			}
		}
	}
}

// TestCycleLeavesInputsAlone: nodes and the slices deps returns are the caller's; they are not sorted in
// place.
func TestCycleLeavesInputsAlone(t *testing.T) {
	nodes := []string{"c", "b", "a"}
	edges := map[string][]string{"a": {"c", "b"}, "b": {"a"}}
	Cycle(nodes, func(n string) []string { return edges[n] })
	if !slices.Equal(nodes, []string{"c", "b", "a"}) || !slices.Equal(edges["a"], []string{"c", "b"}) {
		t.Fatalf("inputs were modified: nodes %v, deps of a %v", nodes, edges["a"])
	}
}

// TestCycleFunc orders struct keys with a comparison function, as the reconciler's namespace/name keys.
func TestCycleFunc(t *testing.T) {
	type key struct{ ns, name string }
	compare := func(a, b key) int {
		if c := strings.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	}
	a, b, c := key{"y", "a"}, key{"x", "b"}, key{"x", "c"}
	edges := map[key][]key{a: {b}, b: {c}, c: {a}}
	got := CycleFunc([]key{a, b, c}, func(k key) []key { return edges[k] }, compare)
	// x/b sorts first, so the cycle is entered there.
	if want := []key{b, c, a, b}; !slices.Equal(got, want) {
		t.Fatalf("CycleFunc = %v, want %v", got, want)
	}
}
