package hardware

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the spec parser. It must never panic, and every error must be a
// SpecError that starts with the file name and names the field or the line (the only exception is a file
// without any inventory document, which has neither). Whatever parses must evaluate without panicking.
// The seed corpus runs as a normal test; `go test -fuzz=FuzzParse ./hardware/` searches further.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/hardware/*.yaml")
	var plan []byte
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		if strings.HasSuffix(s, "plan.yaml") {
			plan = data
		}
		f.Add(data)
	}
	f.Add([]byte(goodInventory))
	f.Add([]byte(goodInventory + "---\n" + string(plan)))
	f.Add([]byte("apiVersion: hybridtwin.io/v1alpha1\nkind: HCICluster\nspec: {hosts: [*a]}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("apiVersion: hybridtwin.io/v1alpha1\nkind: HCICluster\nspec: {hosts: [{<<: *x}]}\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Add([]byte("\t"))
	f.Add([]byte("apiVersion: hybridtwin.io/v1alpha1\nkind: HCICluster\nmetadata: {name: x}\nspec: {profile: aks-hci-2022, hosts: [{name: a, cores: 1e9}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, plan, err := parseDocs("fuzz.yaml", data)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %T %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %q", err)
			}
			if se.Field == "" && se.Line == 0 {
				t.Fatalf("error names neither field nor line: %q", err)
			}
			return
		}
		if inv == nil {
			return
		}
		res, err := Evaluate(inv, plan)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || (se.Field == "" && se.Line == 0) {
				t.Fatalf("evaluate error without field or line: %v", err)
			}
			return
		}
		if res.Fits != (res.Err() == nil) {
			t.Fatalf("fits=%v but Err()=%v", res.Fits, res.Err())
		}
	})
}
