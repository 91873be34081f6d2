package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validSpec() Spec {
	return Spec{
		Name:          "workload-1",
		ControlPlane:  []VMSpec{{Name: "cp1", Host: "hci-1", CPU: 4, MemoryMiB: 8192}},
		LoadBalancers: []VMSpec{{Name: "lb1", Host: "hci-2", CPU: 4, MemoryMiB: 8192}},
		Nodes: []NodeSpec{
			{Name: "moc-1", Pool: "np1", Host: "hci-1", Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192},
			{Name: "moc-2", Pool: "np1", Host: "hci-2", Size: "Standard_A4_v2", CPU: 4, MemoryMiB: 8192, Reserved: Resources{CPUMilli: 180, MemoryMiB: 1024}},
		},
	}
}

func TestWithDefaults(t *testing.T) {
	s := validSpec().WithDefaults()
	if s.Provider != ProviderEmbedded || s.TimeProfile != ProfileReal {
		t.Fatalf("provider %q profile %q", s.Provider, s.TimeProfile)
	}
	if s.Network != (Network{PodCIDR: DefaultPodCIDR, ServiceCIDR: DefaultServiceCIDR, NodeCIDRMaskSize: DefaultNodeCIDRMaskSize}) {
		t.Fatalf("network = %+v", s.Network)
	}
	if s.Nodes[0].IP != "198.51.100.10" || s.Nodes[1].IP != "198.51.100.11" {
		t.Fatalf("node IPs = %s, %s", s.Nodes[0].IP, s.Nodes[1].IP)
	}
	if s.Nodes[0].Pods != DefaultMaxPods || s.Nodes[0].OS != "linux" {
		t.Fatalf("node defaults = %+v", s.Nodes[0])
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("a valid spec fails: %v", err)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		fields []string
	}{
		{"empty name", func(s *Spec) { s.Name = "" }, []string{"name"}},
		{"upper-case name", func(s *Spec) { s.Name = "Workload" }, []string{"name"}},
		{"long name", func(s *Spec) { s.Name = strings.Repeat("a", 41) }, []string{"name"}},
		{"unknown provider", func(s *Spec) { s.Provider = "k3d" }, []string{"provider"}},
		{"unknown profile", func(s *Spec) { s.TimeProfile = "slow" }, []string{"timeProfile"}},
		{"no nodes", func(s *Spec) { s.Nodes = nil }, []string{"nodes"}},
		{"node without cpu and memory", func(s *Spec) { s.Nodes[1].CPU = 0; s.Nodes[1].MemoryMiB = -1 }, []string{"nodes[1].cpu", "nodes[1].memoryMiB"}},
		{"duplicate node", func(s *Spec) { s.Nodes[1].Name = "moc-1" }, []string{"nodes[1].name"}},
		{"duplicate ip", func(s *Spec) { s.Nodes[0].IP = "10.0.0.5"; s.Nodes[1].IP = "10.0.0.5" }, []string{"nodes[1].ip"}},
		{"bad ip", func(s *Spec) { s.Nodes[0].IP = "10.0.0" }, []string{"nodes[0].ip"}},
		{"missing pool and host", func(s *Spec) { s.Nodes[0].Pool = ""; s.Nodes[0].Host = "" }, []string{"nodes[0].pool", "nodes[0].host"}},
		{"reserved above capacity", func(s *Spec) { s.Nodes[0].Reserved.CPUMilli = 4000 }, []string{"nodes[0].reserved.cpuMilli"}},
		{"twin label overridden", func(s *Spec) { s.Nodes[0].Labels = map[string]string{LabelHCIHost: "x"} }, []string{"nodes[0].labels." + LabelHCIHost}},
		{"bad label value", func(s *Spec) { s.Nodes[0].Labels = map[string]string{"team": "a b"} }, []string{"nodes[0].labels.team"}},
		{"bad taint effect", func(s *Spec) { s.Nodes[0].Taints = []Taint{{Key: "gpu", Effect: "Never"}} }, []string{"nodes[0].taints[0].effect"}},
		{"bad os", func(s *Spec) { s.Nodes[0].OS = "darwin" }, []string{"nodes[0].os"}},
		{"vm without size", func(s *Spec) { s.LoadBalancers[0].CPU = 0 }, []string{"loadBalancers[0].cpu"}},
		{"overlapping networks", func(s *Spec) { s.Network.ServiceCIDR = "10.244.128.0/20" }, []string{"network.serviceCIDR"}},
		{"node mask too short", func(s *Spec) { s.Network.NodeCIDRMaskSize = 16 }, []string{"network.nodeCIDRMaskSize"}},
		{"unknown component", func(s *Spec) { s.ExtraArgs = map[Component][]string{"kubelet": {"--v=2"}} }, []string{"extraArgs.kubelet"}},
		{"arg without dashes", func(s *Spec) { s.ExtraArgs = map[Component][]string{KubeAPIServer: {"v=2"}} }, []string{"extraArgs.kube-apiserver[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(&s)
			s = s.WithDefaults()
			tc.mutate(&s) // again: WithDefaults may have filled what the case emptied
			err := s.Validate()
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want ErrInvalidSpec", err)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("err is %T", err)
			}
			if diff := cmp.Diff(tc.fields, se.Fields()); diff != "" {
				t.Fatalf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestParseFileReportsEveryProblemWithItsPath(t *testing.T) {
	tests := []struct {
		name, file string
		wantErr    []string // substrings of the error
	}{
		{"unknown field", "unknown-field.yaml", []string{"unknown-field.yaml", `unknown field "cpus"`}},
		{"bad values", "bad-values.yaml", []string{
			"clusters[0].nodes[0].cpu: is 0",
			"clusters[1].name: \"east\" is also clusters[0].name",
			"clusters[1].timeProfile: \"real\" differs from the file's \"fast\"",
			"kind: \"Cluster\": use \"ClusterSet\"",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", tc.file))
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want ErrInvalidSpec", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := LoadFile(filepath.Join("testdata", "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestTheExampleIsValid(t *testing.T) {
	specs, err := LoadFile(filepath.Join("..", "..", "examples", "clusters", "two-clusters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d clusters, want 2", len(specs))
	}
	for _, s := range specs {
		c := s.Capacity()
		if len(s.ControlPlane) != 1 || len(s.LoadBalancers) != 1 || c.Nodes != 3 || c.VMs != 5 {
			t.Fatalf("%s: %d control plane, %d LB, capacity %+v; the issue asks for 1, 1 and 3 workers", s.Name, len(s.ControlPlane), len(s.LoadBalancers), c)
		}
		if s.TimeProfile != ProfileReal || s.Provider != ProviderEmbedded {
			t.Fatalf("%s: profile %s provider %s", s.Name, s.TimeProfile, s.Provider)
		}
	}
}

func TestCapacityCountsEveryVM(t *testing.T) {
	c := validSpec().WithDefaults().Capacity()
	want := Capacity{
		Workers:       Resources{CPUMilli: 8000, MemoryMiB: 16384},
		Allocatable:   Resources{CPUMilli: 7820, MemoryMiB: 15360},
		Pods:          2 * DefaultMaxPods,
		ControlPlane:  Resources{CPUMilli: 4000, MemoryMiB: 8192},
		LoadBalancers: Resources{CPUMilli: 4000, MemoryMiB: 8192},
		Total:         Resources{CPUMilli: 16000, MemoryMiB: 32768},
		Nodes:         2,
		VMs:           4,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("capacity (-want +got):\n%s", diff)
	}
}

func TestNodeLabels(t *testing.T) {
	s := validSpec().WithDefaults()
	n := s.Nodes[0]
	n.Labels = map[string]string{"team": "payments", LabelHCIHost: "ignored"}
	got := NodeLabels(s, n)
	want := map[string]string{
		LabelCluster:                       "workload-1",
		LabelNodePool:                      "np1",
		LabelHCIHost:                       "hci-1",
		LabelAKSArcNodePool:                "workload-1-" + aksArcPoolLabel("workload-1", "np1")[len("workload-1-"):],
		"kubernetes.io/hostname":           "moc-1",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": "Standard_A4_v2",
		"team":                             "payments",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("labels (-want +got):\n%s", diff)
	}
	if v := got[LabelAKSArcNodePool]; !strings.HasPrefix(v, "workload-1-") || !strings.HasSuffix(v, "-np1") || len(v) != len("workload-1-")+8+len("-np1") {
		t.Fatalf("AKS hybrid pool label %q is not <cluster>-<8 hex>-<pool>", v)
	}
	if NodeLabels(s, n)[LabelAKSArcNodePool] != got[LabelAKSArcNodePool] {
		t.Fatal("the pool label differs between calls")
	}
}

func TestProfiles(t *testing.T) {
	real, err := Profile("")
	if err != nil || real.Name != ProfileReal {
		t.Fatalf("default profile = %v, %v", real.Name, err)
	}
	fast, err := Profile(ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	if real.LeaseRenewInterval().Seconds() != 10 || fast.LeaseRenewInterval().Seconds() != 2 {
		t.Fatalf("renew intervals %s, %s; want a quarter of 40 s and 8 s", real.LeaseRenewInterval(), fast.LeaseRenewInterval())
	}
	for _, p := range Profiles() {
		// The node-lifecycle controller needs several missed renewals before the grace period ends.
		if p.NodeMonitorGracePeriod < 4*p.LeaseRenewInterval() {
			t.Errorf("%s: grace %s is under 4 lease renewals (%s)", p.Name, p.NodeMonitorGracePeriod, p.LeaseRenewInterval())
		}
		if p.NodeMonitorPeriod >= p.NodeMonitorGracePeriod {
			t.Errorf("%s: monitor period %s not below grace %s", p.Name, p.NodeMonitorPeriod, p.NodeMonitorGracePeriod)
		}
	}
	if _, err := Profile("slow"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("unknown profile: err = %v", err)
	}
}
