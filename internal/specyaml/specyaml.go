package specyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// MaxNodes bounds how many YAML nodes one document may expand to (aliases included).
const MaxNodes = 200_000

// ScalarParser is implemented by field types with their own scalar syntax (enums, durations).
type ScalarParser interface {
	ParseScalar(s string) error
}

// Positions maps a field path (spec.hosts[1].cores) to its line.
type Positions map[string]int

// Problem is one thing wrong in a document.
type Problem struct {
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path; empty for document-level problems
	Msg   string // what is wrong and what to do
}

// Document is one YAML document of a file with its apiVersion and kind read (not checked).
type Document struct {
	Node       *yaml.Node // the root mapping
	APIVersion string
	Kind       string
	Line       int
	Index      int // 0-based position in the file, empty documents included
}

// Split parses data into its documents. Empty documents are skipped; a document that is not a mapping,
// or a YAML syntax error, is a Problem.
func Split(data []byte) ([]Document, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p := syntaxProblem(data, err)
			return nil, &p
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind != yaml.MappingNode {
			return nil, &Problem{Line: root.Line, Msg: fmt.Sprintf("document %d is %s; expected a mapping with apiVersion, kind, metadata and spec", i+1, KindName(root))}
		}
		d := Document{Node: root, Line: root.Line, Index: i}
		for j := 0; j+1 < len(root.Content); j += 2 {
			k, v := root.Content[j], root.Content[j+1]
			if k.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode {
				switch k.Value {
				case "apiVersion":
					d.APIVersion = v.Value
				case "kind":
					d.Kind = v.Value
				}
			}
		}
		docs = append(docs, d)
	}
	return docs, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// syntaxProblem turns a YAML syntax error into a Problem with its line. The parser omits the line for a few
// scanner errors (a tab or control character where a token should start); then the first line holding
// such a character is named.
func syntaxProblem(data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	} else {
		line = suspectLine(data)
		msg += " (near this line)"
	}
	return Problem{Line: line, Msg: "not valid YAML: " + msg + "; check indentation (spaces, not tabs) and quoting"}
}

func suspectLine(data []byte) int {
	for i, l := range strings.Split(string(data), "\n") {
		for _, r := range l {
			if r == '\t' || (r < 0x20 && r != '\r') || r == 0x7f || r == 0xfffd {
				return i + 1
			}
		}
	}
	return 1
}

// Decode walks node into the value into points at, strictly, and returns the line of every field it
// decoded and every problem it found. A field with a problem keeps its zero value; decoding goes on.
func Decode(node *yaml.Node, into any) (Positions, []Problem) {
	d := &decoder{pos: Positions{}}
	d.decode(node, reflect.ValueOf(into).Elem(), "", 0)
	return d.pos, d.problems
}

type decoder struct {
	pos      Positions
	nodes    int
	problems []Problem
	budget   bool // the node budget was exceeded; stop
}

func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// Join appends key to a dotted path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// KindName describes a node for messages: "a mapping", "a list", "the value \"x\"", "null".
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the value %q", truncate(n.Value, 40))
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

type fieldInfo struct {
	index []int
	name  string
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		out = append(out, fieldInfo{index: f.Index, name: name})
	}
	fieldCache.Store(t, out)
	return out
}

func knownNames(fs []fieldInfo) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.budget {
		return
	}
	d.nodes++
	if d.nodes > MaxNodes {
		d.budget = true
		d.problem(n, path, "the document expands to more than %d YAML nodes (aliases included); write it out plainly", MaxNodes)
		return
	}
	if depth > 32 {
		d.problem(n, path, "nested too deeply")
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.problem(n, path, "alias to an unknown anchor")
			return
		}
		n = n.Alias
		d.nodes++
	}
	if path != "" {
		d.pos[path] = n.Line // merge keys are decoded first, so an explicit key's line wins
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.String {
		return // an empty value leaves the zero value; validation says if it is required
	}
	if sp, ok := v.Addr().Interface().(ScalarParser); ok {
		if n.Kind != yaml.ScalarNode {
			d.problem(n, path, "expected a single value, got %s", KindName(n))
			return
		}
		if err := sp.ParseScalar(n.Value); err != nil {
			d.problem(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, depth+1)
		return
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
		return
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(n, path, "expected a list, got %s", KindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
		return
	case reflect.Map:
		d.decodeMap(n, v, path, depth)
		return
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.problem(n, path, "expected a text value, got %s", KindName(n))
			return
		}
		if n.Tag == "!!null" {
			v.SetString("")
			return
		}
		v.SetString(n.Value)
		return
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode {
			d.problem(n, path, "expected a whole number, got %s", KindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
		if err != nil {
			d.problem(n, path, "expected a whole number, got %s", KindName(n))
			return
		}
		if i < -1<<31 || i > 1<<31-1 {
			d.problem(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
		return
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.problem(n, path, "expected a number, got %s", KindName(n))
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != f || f > 1e15 || f < -1e15 {
			d.problem(n, path, "expected a number, got %s", KindName(n))
			return
		}
		v.SetFloat(f)
		return
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.problem(n, path, "expected true or false, got %s", KindName(n))
			return
		}
		switch n.Value {
		case "true", "True", "TRUE", "yes", "on":
			v.SetBool(true)
		case "false", "False", "FALSE", "no", "off":
			v.SetBool(false)
		default:
			d.problem(n, path, "expected true or false, got %s", KindName(n))
		}
		return
	}
	d.problem(n, path, "internal: cannot decode into %s", v.Type())
}

// decodeMap decodes a mapping with string keys into a map (for user-named entries such as
// kustomizations by name).
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "expected a mapping, got %s", KindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.problem(n, path, "internal: map keys of %s are not text", v.Type())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(k, path, "a key must be plain text, got %s", KindName(k))
			continue
		}
		fp := Join(path, k.Value)
		if seen[k.Value] {
			d.problem(k, fp, "key given twice; keep one")
			continue
		}
		seen[k.Value] = true
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, fp, depth+1)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "expected a mapping of fields, got %s", KindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	// Merge keys (<<: *anchor) first, so explicit keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!merge" {
			continue
		}
		for val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		srcs := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			srcs = val.Content
		}
		for _, src := range srcs {
			d.decode(src, v, path, depth+1)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k, path, "a field name must be plain text, got %s", KindName(k))
			continue
		}
		key := k.Value
		fp := Join(path, key)
		if seen[key] {
			d.problem(k, fp, "field given twice; keep one")
			continue
		}
		seen[key] = true
		var fi *fieldInfo
		for j := range fields {
			if fields[j].name == key {
				fi = &fields[j]
				break
			}
		}
		if fi == nil {
			where := path
			if where == "" {
				where = "the document"
			}
			d.problem(k, fp, "unknown field in %s; known fields: %s", where, knownNames(fields))
			continue
		}
		d.decode(val, v.FieldByIndex(fi.index), fp, depth+1)
	}
}
