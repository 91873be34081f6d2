package layout

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// lineOf finds the line declaring an object in a YAML file: the line of metadata.name of the document
// whose kind and metadata.name match (anchors and aliases resolved, so `name: *app` counts), else of
// the first document with that name. A name ending in ":" looks for that mapping key instead (an Arc
// kustomization's key). 0 when not found.
func lineOf(path, name, kind string) int {
	if name == "" {
		return 0
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	if strings.HasSuffix(name, ":") {
		return keyLine(data, strings.TrimSuffix(name, ":"))
	}
	if n, ok := nameLine(data, name, kind); ok {
		return n
	}
	return 0
}

// nameLine parses every document of data and returns the line of the matching metadata.name; ok is
// false when data does not parse (a template, say) and no document matched.
func nameLine(data []byte, name, kind string) (int, bool) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	first := 0
	for {
		var doc yamlv3.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return first, first > 0
		}
		root := &doc
		if root.Kind == yamlv3.DocumentNode && len(root.Content) > 0 {
			root = root.Content[0]
		}
		root = resolveAlias(root)
		if root.Kind != yamlv3.MappingNode {
			continue
		}
		md := mapValue(root, "metadata")
		if md == nil {
			continue
		}
		nn := mapValueNode(md, "name")
		if nn == nil || resolveAlias(nn).Value != name {
			continue
		}
		k := mapValue(root, "kind")
		if kind == "" || (k != nil && k.Value == kind) {
			return nn.Line, true
		}
		if first == 0 {
			first = nn.Line
		}
	}
	return first, first > 0
}

func resolveAlias(n *yamlv3.Node) *yamlv3.Node {
	for n != nil && n.Kind == yamlv3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapValueNode is the value node of key in a mapping (aliases not resolved, so its line is where it
// is written).
func mapValueNode(m *yamlv3.Node, key string) *yamlv3.Node {
	m = resolveAlias(m)
	if m == nil || m.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapValue(m *yamlv3.Node, key string) *yamlv3.Node {
	return resolveAlias(mapValueNode(m, key))
}

// keyLine is the first line where key is written as a mapping key.
func keyLine(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(key) + `["']?\s*:`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		if re.MatchString(sc.Text()) {
			return n
		}
	}
	return 0
}

// closest is the candidate nearest to s by edit distance, when it is near enough to be a likely typo
// (at most a third of the longer name's length, and at most 4 edits); "" otherwise. Ties go to the
// first in sorted order, so the answer does not depend on the caller's order.
func closest(s string, candidates []string) string {
	cs := append([]string(nil), candidates...)
	sort.Strings(cs)
	best, bestD := "", 1<<30
	for _, c := range cs {
		if c == s {
			continue
		}
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(len(s), len(best)) / 3
	if limit > 4 {
		limit = 4
	}
	if best == "" || bestD > max(limit, 1) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Closest is the candidate nearest to s when it is close enough to be a likely typo, else "" (for
// "did you mean" in callers' messages).
func Closest(s string, candidates []string) string { return closest(s, candidates) }
