package hardware

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodInventory = `apiVersion: hybridtwin.io/v1alpha1
kind: HCICluster
metadata:
  name: lab
spec:
  profile: aks-hci-2022
  hosts:
  - &s
    name: n1
    model: X
    cores: 16
    hyperThreading: true
    memoryGiB: 256
    drives:
    - {tier: nvme, sizeGB: 1600, count: 2}
    - {tier: HDD, sizeGB: 4000, count: 4}
  - {<<: *s, name: n2}
  network:
    managementSubnet: 10.1.0.0/24
    ipPools: [{start: 10.1.0.10, end: 10.1.0.99}]
    vipPool: {start: 10.1.0.200, end: 10.1.0.250}
  planning:
    failoverDelay: 30s
`

func TestParseInventory(t *testing.T) {
	i, err := ParseInventory("lab.yaml", []byte(goodInventory))
	if err != nil {
		t.Fatal(err)
	}
	h := i.Spec.Hosts[1]
	if h.Name != "n2" || h.Cores != 16 || !h.HyperThreading || len(h.Drives) != 2 || h.Drives[0].Tier != TierNVMe {
		t.Fatalf("merge key not applied: %+v", h)
	}
	if i.Spec.Network.Mode != "" || i.File != "lab.yaml" || i.Spec.Planning.FailoverDelay != Duration(30e9) {
		t.Fatalf("parsed %+v", i.Spec)
	}
}

// TestSpecErrors checks that bad input gets an error naming the file, the line and the field.
func TestSpecErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string // replace old with new in goodInventory
		line     int
		field    string
		contains string
		is       error
	}{
		{"unknown field", "    model: X\n", "    model: X\n    sockets: 2\n", 11, "spec.hosts[0].sockets", "known fields: cores, drives, hyperThreading, memoryGiB, model, name", nil},
		{"wrong type", "cores: 16", "cores: sixteen", 11, "spec.hosts[0].cores", "expected a whole number", nil},
		{"bad bool", "hyperThreading: true", "hyperThreading: maybe", 12, "spec.hosts[0].hyperThreading", "true or false", nil},
		{"bad tier", "tier: HDD", "tier: tape", 16, "spec.hosts[0].drives[1].tier", "use NVMe, SSD or HDD", nil},
		{"mixed hosts", "{<<: *s, name: n2}", "{<<: *s, name: n2, memoryGiB: 512}", 17, "spec.hosts[1].memoryGiB", `host "n2" has memoryGiB 512 but host "n1" has 256`, ErrMixedHosts},
		{"mixed drives", "{<<: *s, name: n2}", "{<<: *s, name: n2, drives: [{tier: SSD, sizeGB: 1, count: 1}]}", 17, "spec.hosts[1].drives", "same model", ErrMixedHosts},
		{"duplicate host", "name: n2}", "name: n1}", 17, "spec.hosts[1].name", "must be unique", nil},
		{"bad profile", "profile: aks-hci-2022", "profile: aks-2019", 6, "spec.profile", "aks-hci-2022, aks-arc-23h2", nil},
		{"bad subnet", "10.1.0.0/24", "10.1.0.0/33", 19, "spec.network.managementSubnet", "IPv4 CIDR", nil},
		{"pool outside subnet", "{start: 10.1.0.10, end: 10.1.0.99}", "{start: 10.2.0.10, end: 10.2.0.99}", 20, "spec.network.ipPools[0]", "not inside the management subnet", nil},
		{"pools overlap", "vipPool: {start: 10.1.0.200", "vipPool: {start: 10.1.0.90", 21, "spec.network.vipPool", "overlaps", nil},
		{"end before start", "end: 10.1.0.250", "end: 10.1.0.150", 21, "spec.network.vipPool.end", "comes before", nil},
		{"no vip pool", "    vipPool: {start: 10.1.0.200, end: 10.1.0.250}\n", "", 0, "spec.network.vipPool", "mandatory", nil},
		{"bad duration", "failoverDelay: 30s", "failoverDelay: soon", 23, "spec.planning.failoverDelay", "not a duration", nil},
		{"duplicate key", "  profile: aks-hci-2022\n", "  profile: aks-hci-2022\n  profile: aks-arc-23h2\n", 7, "spec.profile", "given twice", nil},
		{"list expected", "ipPools: [{start: 10.1.0.10, end: 10.1.0.99}]", "ipPools: 10.1.0.10", 20, "spec.network.ipPools", "expected a list", nil},
		{"wrong apiVersion", "hybridtwin.io/v1alpha1", "hybridtwin.io/v2", 1, "apiVersion", "write apiVersion: hybridtwin.io/v1alpha1", nil},
		{"wrong kind", "kind: HCICluster", "kind: Cluster", 1, "kind", "expected HCICluster", nil},
		{"syntax", "  name: lab\n", "  name: [lab\n", -1, "", "not valid YAML", nil},
		{"bad name", "name: lab", "name: Lab_1", 4, "metadata.name", "DNS label", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(goodInventory, c.old, c.new, 1)
			if src == goodInventory {
				t.Fatalf("case does not change the input: %q", c.old)
			}
			_, err := ParseInventory("lab.yaml", []byte(src))
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("want a SpecError, got %v", err)
			}
			if se.File != "lab.yaml" || se.Field != c.field || (c.line > 0 && se.Line != c.line) || (c.line < 0 && se.Line == 0) || !strings.Contains(se.Error(), c.contains) {
				t.Fatalf("got %q (file %s line %d field %q); want line %d field %q containing %q", se.Error(), se.File, se.Line, se.Field, c.line, c.field, c.contains)
			}
			if !strings.HasPrefix(se.Error(), "lab.yaml") {
				t.Fatalf("error does not start with the file name: %q", se.Error())
			}
			want := c.is
			if want == nil {
				want = ErrInvalidSpec
			}
			if !errors.Is(err, want) {
				t.Fatalf("error does not wrap %v", want)
			}
		})
	}
}

func TestParsePlanErrors(t *testing.T) {
	good := `apiVersion: hybridtwin.io/v1alpha1
kind: ClusterPlan
metadata: {name: p}
spec:
  workloadClusters:
  - name: prod
    controlPlane: {count: 3}
    nodePools:
    - {name: linux, count: 3}
`
	if _, err := ParsePlan("p.yaml", []byte(good)); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ old, new, field string }{
		{"name: prod", "name: Prod", "spec.workloadClusters[0].name"},
		{"{name: linux, count: 3}", "{name: linux, count: -1}", "spec.workloadClusters[0].nodePools[0].count"},
		{"{name: linux", "{name: lb", "spec.workloadClusters[0].nodePools[0].name"},
		{"{name: linux", "{name: averyveryverylongpool", "spec.workloadClusters[0].nodePools[0].name"},
		{"{name: linux, count: 3}", "{name: linux, count: 3, osType: BeOS}", "spec.workloadClusters[0].nodePools[0].osType"},
		{"    controlPlane", "    loadBalancerServices: many\n    controlPlane", "spec.workloadClusters[0].loadBalancerServices"},
	}
	for _, c := range cases {
		_, err := ParsePlan("p.yaml", []byte(strings.Replace(good, c.old, c.new, 1)))
		var se *SpecError
		if !errors.As(err, &se) || se.Field != c.field || se.Line == 0 {
			t.Errorf("%s -> %s: got %v, want a SpecError on %s with a line", c.old, c.new, err, c.field)
		}
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	both := filepath.Join(dir, "both.yaml")
	doc := goodInventory + "---\n" + `apiVersion: hybridtwin.io/v1alpha1
kind: ClusterPlan
metadata: {name: p}
spec: {workloadClusters: [{name: a, nodePools: [{name: w, count: 1}]}]}
`
	if err := os.WriteFile(both, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	i, p, err := LoadFiles(both)
	if err != nil || i == nil || p == nil || p.Spec.WorkloadClusters[0].Name != "a" {
		t.Fatalf("multi-document file: %v %v %v", i, p, err)
	}
	// Two inventories are an error naming both files.
	if _, _, err := LoadFiles(both, both); err == nil || !strings.Contains(err.Error(), "a second HCICluster") {
		t.Fatalf("two inventories: %v", err)
	}
	// A plan alone is not enough.
	planOnly := filepath.Join(dir, "plan.yaml")
	_ = os.WriteFile(planOnly, []byte(strings.SplitN(doc, "---\n", 2)[1]), 0o644)
	if _, _, err := LoadFiles(planOnly); err == nil || !strings.Contains(err.Error(), "no HCICluster") {
		t.Fatalf("plan only: %v", err)
	}
	if _, _, err := LoadFiles(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestExamples(t *testing.T) {
	cases := []struct {
		name     string
		fits     bool
		errCheck string
		hosts    int
	}{
		{"edge-2node", false, "n-1", 2},
		{"branch-4node", true, "", 4},
		{"datacenter-8node", true, "", 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, p := loadExample(t, c.name)
			r, err := Analyze(i, p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Fits != c.fits || len(r.Hosts) != c.hosts {
				t.Fatalf("fits=%v hosts=%d, want %v %d: %s", r.Fits, len(r.Hosts), c.fits, c.hosts, r.Summary())
			}
			errs := findings(r, SeverityError, "")
			if c.errCheck != "" && (len(errs) != 1 || errs[0].Check != c.errCheck) {
				t.Fatalf("want exactly one %s error, got %+v", c.errCheck, errs)
			}
			if r.WhatIf == nil || r.WhatIf.MinHosts == 0 || r.WhatIf.WorstFailure == "" || len(r.WhatIf.MoreWorkers) != 3 {
				t.Fatalf("what-if incomplete: %+v", r.WhatIf)
			}
		})
	}
}
