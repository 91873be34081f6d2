package specyaml

import (
	"strings"
	"testing"
)

type level string

func (l *level) ParseScalar(s string) error {
	if s != "low" && s != "high" {
		return errorString("unknown level " + s + "; use low or high")
	}
	*l = level(s)
	return nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

type item struct {
	Path string `yaml:"path"`
	On   bool   `yaml:"on"`
}

func TestDecodeCollectsEveryProblemWithLines(t *testing.T) {
	src := `apiVersion: v1
kind: Doc
name: x
count: many
level: medium
colour: red
labels: {a: "1", a: "2"}
items:
- path: ./a
  on: maybe
- pathz: ./b
extra: {path: ./c, on: yes}
`
	docs, p := Split([]byte(src))
	if p != nil || len(docs) != 1 || docs[0].Kind != "Doc" || docs[0].APIVersion != "v1" {
		t.Fatalf("split: %v %+v", p, docs)
	}
	var d struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Name       string            `yaml:"name"`
		Count      int               `yaml:"count"`
		Level      level             `yaml:"level"`
		Labels     map[string]string `yaml:"labels"`
		Items      []item            `yaml:"items"`
		Extra      *item             `yaml:"extra"`
	}
	pos, problems := Decode(docs[0].Node, &d)
	want := []struct {
		line  int
		field string
		msg   string
	}{
		{4, "count", "whole number"},
		{5, "level", "unknown level medium"},
		{6, "colour", "unknown field"},
		{7, "labels.a", "given twice"},
		{10, "items[0].on", "true or false"},
		{11, "items[1].pathz", "unknown field"},
	}
	if len(problems) != len(want) {
		t.Fatalf("got %d problems, want %d: %+v", len(problems), len(want), problems)
	}
	for i, w := range want {
		p := problems[i]
		if p.Line != w.line || p.Field != w.field || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %+v, want line %d field %s containing %q", i, p, w.line, w.field, w.msg)
		}
	}
	if d.Name != "x" || d.Extra == nil || d.Extra.Path != "./c" || !d.Extra.On || d.Labels["a"] != "1" || d.Items[0].Path != "./a" {
		t.Errorf("decoded %+v", d)
	}
	if pos["extra.path"] != 12 || pos["items[1]"] != 11 {
		t.Errorf("positions = %v", pos)
	}
}

func TestSplitReportsSyntaxErrorsWithLines(t *testing.T) {
	_, p := Split([]byte("a: 1\nb: [1, 2\nc: 3\n"))
	if p == nil || p.Line == 0 || !strings.Contains(p.Msg, "not valid YAML") {
		t.Fatalf("problem = %+v", p)
	}
	_, p = Split([]byte("- just\n- a list\n"))
	if p == nil || !strings.Contains(p.Msg, "expected a mapping") {
		t.Fatalf("problem = %+v", p)
	}
}
