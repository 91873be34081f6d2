package hardware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// APIVersion is the schema version of HCICluster and ClusterPlan documents.
const APIVersion = "hybridtwin.io/v1alpha1"

// Document kinds.
const (
	KindHCICluster  = "HCICluster"
	KindClusterPlan = "ClusterPlan"
)

// maxNodes bounds how many YAML nodes one document may expand to (aliases included), so a hostile file
// cannot make the decoder walk forever.
const maxNodes = 200_000

// scalarParser is implemented by field types with their own scalar syntax (enums, durations).
type scalarParser interface {
	parseScalar(s string) error
}

// positions maps a field path (spec.hosts[1].cores) to its line, for validation errors after decoding.
type positions map[string]int

// decoder walks a yaml.Node tree into a Go value strictly: unknown fields, duplicate keys and type
// mismatches are errors naming the file, the line and the field path.
type decoder struct {
	file  string
	pos   positions
	nodes int
}

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &SpecError{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
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

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) error {
	d.nodes++
	if d.nodes > maxNodes {
		return d.errf(n, path, "the document expands to more than %d YAML nodes (aliases included); write it out plainly", maxNodes)
	}
	if depth > 32 {
		return d.errf(n, path, "nested too deeply")
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return d.errf(n, path, "alias to an unknown anchor")
		}
		n = n.Alias
		d.nodes++
	}
	if path != "" {
		d.pos[path] = n.Line // merge keys are decoded first, so an explicit key's line wins
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.String {
		return nil // an empty value leaves the zero value; validation says if it is required
	}
	if sp, ok := v.Addr().Interface().(scalarParser); ok {
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "expected a single value, got %s", kindName(n))
		}
		if err := sp.parseScalar(n.Value); err != nil {
			return d.errf(n, path, "%v", err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errf(n, path, "expected a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "expected a text value, got %s", kindName(n))
		}
		if n.Tag == "!!null" {
			v.SetString("")
			return nil
		}
		v.SetString(n.Value)
		return nil
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "expected a whole number, got %s", kindName(n))
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
		if err != nil {
			return d.errf(n, path, "expected a whole number, got %s", kindName(n))
		}
		if i < -1<<31 || i > 1<<31-1 {
			return d.errf(n, path, "%d is out of range", i)
		}
		v.SetInt(i)
		return nil
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "expected a number, got %s", kindName(n))
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != f || f > 1e15 || f < -1e15 {
			return d.errf(n, path, "expected a number, got %s", kindName(n))
		}
		v.SetFloat(f)
		return nil
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "expected true or false, got %s", kindName(n))
		}
		switch n.Value {
		case "true", "True", "TRUE", "yes", "on":
			v.SetBool(true)
		case "false", "False", "FALSE", "no", "off":
			v.SetBool(false)
		default:
			return d.errf(n, path, "expected true or false, got %s", kindName(n))
		}
		return nil
	}
	return d.errf(n, path, "internal: cannot decode into %s", v.Type())
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "expected a mapping of fields, got %s", kindName(n))
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
			if err := d.decode(src, v, path, depth+1); err != nil {
				return err
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return d.errf(k, path, "a field name must be plain text, got %s", kindName(k))
		}
		key := k.Value
		fp := join(path, key)
		if seen[key] {
			return d.errf(k, fp, "field given twice; keep one")
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
			return d.errf(k, fp, "unknown field in %s; known fields: %s", where, knownNames(fields))
		}
		if err := d.decode(val, v.FieldByIndex(fi.index), fp, depth+1); err != nil {
			return err
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parseError turns a YAML syntax error into a SpecError with its line. The parser omits the line for a few
// scanner errors (a tab or control character where a token should start); then the first line holding such
// a character is named.
func parseError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	} else {
		line = suspectLine(data)
		msg += " (near this line)"
	}
	return &SpecError{File: file, Line: line, Msg: "not valid YAML: " + msg + "; check indentation (spaces, not tabs) and quoting"}
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

// header is what every document starts with.
type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

// rawDoc is one YAML document of a file, not yet decoded into its kind.
type rawDoc struct {
	file string
	node *yaml.Node
	kind string
}

// splitDocs parses data into its YAML documents and reads each one's apiVersion and kind.
func splitDocs(file string, data []byte) ([]rawDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []rawDoc
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, parseError(file, data, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue // an empty document between separators
		}
		if root.Kind != yaml.MappingNode {
			return nil, &SpecError{File: file, Line: root.Line, Msg: fmt.Sprintf("document %d is %s; expected a mapping with apiVersion, kind, metadata and spec", i+1, kindName(root))}
		}
		var h header
		d := &decoder{file: file, pos: positions{}}
		// Read only apiVersion and kind here; the full strict decode happens per kind.
		for j := 0; j+1 < len(root.Content); j += 2 {
			k := root.Content[j]
			if k.Kind != yaml.ScalarNode || (k.Value != "apiVersion" && k.Value != "kind") {
				continue
			}
			target := &h.APIVersion
			if k.Value == "kind" {
				target = &h.Kind
			}
			if err := d.decode(root.Content[j+1], reflect.ValueOf(target).Elem(), k.Value, 0); err != nil {
				return nil, err
			}
		}
		line := root.Line
		if h.APIVersion != APIVersion {
			return nil, &SpecError{File: file, Line: line, Field: "apiVersion", Msg: fmt.Sprintf("is %q; write apiVersion: %s", h.APIVersion, APIVersion)}
		}
		if h.Kind != KindHCICluster && h.Kind != KindClusterPlan {
			return nil, &SpecError{File: file, Line: line, Field: "kind", Msg: fmt.Sprintf("is %q; expected %s (an inventory) or %s (a plan)", h.Kind, KindHCICluster, KindClusterPlan)}
		}
		docs = append(docs, rawDoc{file: file, node: root, kind: h.Kind})
	}
	return docs, nil
}

func decodeDoc(doc rawDoc, into any) (positions, error) {
	d := &decoder{file: doc.file, pos: positions{}}
	if err := d.decode(doc.node, reflect.ValueOf(into).Elem(), "", 0); err != nil {
		return nil, err
	}
	return d.pos, nil
}

// ParseInventory parses one HCICluster document (file names the source in errors) and validates it.
func ParseInventory(file string, data []byte) (*Inventory, error) {
	inv, _, err := parseDocs(file, data)
	if err != nil {
		return nil, err
	}
	if inv == nil {
		return nil, &SpecError{File: file, Msg: "no " + KindHCICluster + " document; an inventory starts with apiVersion: " + APIVersion + " and kind: " + KindHCICluster}
	}
	return inv, nil
}

// ParsePlan parses one ClusterPlan document. It is checked against a profile when evaluated.
func ParsePlan(file string, data []byte) (*Plan, error) {
	_, plan, err := parseDocs(file, data)
	if err != nil {
		return nil, err
	}
	if plan == nil {
		return nil, &SpecError{File: file, Msg: "no " + KindClusterPlan + " document; a plan starts with apiVersion: " + APIVersion + " and kind: " + KindClusterPlan}
	}
	return plan, nil
}

func parseDocs(file string, data []byte) (*Inventory, *Plan, error) {
	docs, err := splitDocs(file, data)
	if err != nil {
		return nil, nil, err
	}
	return decodeAll(docs)
}

func decodeAll(docs []rawDoc) (*Inventory, *Plan, error) {
	var inv *Inventory
	var plan *Plan
	for _, doc := range docs {
		switch doc.kind {
		case KindHCICluster:
			if inv != nil {
				return nil, nil, &SpecError{File: doc.file, Line: doc.node.Line, Field: "kind", Msg: fmt.Sprintf("a second %s (the first is in %s); give exactly one inventory", KindHCICluster, inv.File)}
			}
			inv = &Inventory{}
			pos, err := decodeDoc(doc, inv)
			if err != nil {
				return nil, nil, err
			}
			inv.File, inv.pos = doc.file, pos
			if err := inv.validate(); err != nil {
				return nil, nil, err
			}
		case KindClusterPlan:
			if plan != nil {
				return nil, nil, &SpecError{File: doc.file, Line: doc.node.Line, Field: "kind", Msg: fmt.Sprintf("a second %s (the first is in %s); put all workload clusters in one plan", KindClusterPlan, plan.File)}
			}
			plan = &Plan{}
			pos, err := decodeDoc(doc, plan)
			if err != nil {
				return nil, nil, err
			}
			plan.File, plan.pos = doc.file, pos
			if err := plan.validateShape(); err != nil {
				return nil, nil, err
			}
		}
	}
	return inv, plan, nil
}

// LoadFiles reads the named files (each may hold several YAML documents) and returns the one inventory and
// the optional plan among them. It is the package's only I/O.
func LoadFiles(paths ...string) (*Inventory, *Plan, error) {
	var all []rawDoc
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, &SpecError{File: p, Msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}
		}
		docs, err := splitDocs(p, data)
		if err != nil {
			return nil, nil, err
		}
		if len(docs) == 0 {
			return nil, nil, &SpecError{File: p, Msg: "holds no YAML document"}
		}
		all = append(all, docs...)
	}
	inv, plan, err := decodeAll(all)
	if err != nil {
		return nil, nil, err
	}
	if inv == nil {
		return nil, nil, &SpecError{File: strings.Join(paths, ", "), Msg: "no " + KindHCICluster + " inventory among the files; pass one with -f"}
	}
	return inv, plan, nil
}
