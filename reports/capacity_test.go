package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hybridtwin/hybridtwin/hardware"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var examples = []string{"edge-2node", "branch-4node", "datacenter-8node"}

func analyze(t testing.TB, example string) *hardware.Result {
	t.Helper()
	inv, plan, err := hardware.LoadFiles("../examples/hardware/"+example+".yaml", "../examples/hardware/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := hardware.Analyze(inv, plan)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCapacityGolden renders every example in every format and compares with testdata/<example>.<format>.
// After an intended change: go test ./reports/ -run Golden -update, then review the diff.
func TestCapacityGolden(t *testing.T) {
	for _, ex := range examples {
		r := analyze(t, ex)
		for _, f := range Formats {
			t.Run(ex+"."+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				if err := WriteCapacity(&buf, f, r); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", ex+"."+f.Ext())
				if *update {
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("%s differs from the rendering; diff it after `go test ./reports/ -run Golden -update`:\n%s", golden, firstDiff(string(want), buf.String()))
				}
			})
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return ""
}

// TestCapacityHTMLContent checks what a planner must see, independent of layout.
func TestCapacityHTMLContent(t *testing.T) {
	r := analyze(t, "edge-2node")
	var buf bytes.Buffer
	if err := CapacityHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`id="hosts-before"`, `id="hosts-after"`, `id="storage-waterfall"`, `id="ip-pools"`, // the pictures
		"DOES NOT FIT", "After losing edge-hci-01", "host down", // the verdict and the failure
		"raw", "resiliency", "reserve", "usable", // the waterfall steps
		"31 of 80 used", "17 of 40 used", // the IP and VIP pools
		"Baseline architecture for AKS on Azure Stack HCI", // sources
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=", "<link", "@import", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("HTML report must be self-contained; it has %q", banned)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"html", "json", "md"} {
		if _, err := ParseFormat(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseFormat("pdf"); err == nil {
		t.Error("pdf accepted")
	}
}
