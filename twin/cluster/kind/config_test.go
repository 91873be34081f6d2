package kind

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func exampleSpecs(t *testing.T) []cluster.Spec {
	t.Helper()
	specs, err := cluster.LoadFile(filepath.Join("..", "..", "..", "examples", "clusters", "two-clusters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// TestConfigGolden renders the example's clusters on both time profiles and compares them with
// testdata/<cluster>.<profile>.yaml (go test ./twin/cluster/kind -update rewrites them).
func TestConfigGolden(t *testing.T) {
	for _, s := range exampleSpecs(t) {
		for _, profile := range []cluster.TimeProfileName{cluster.ProfileReal, cluster.ProfileFast} {
			s := s
			s.TimeProfile = profile
			s.Provider = cluster.ProviderKind
			name := s.Name + "." + string(profile) + ".yaml"
			t.Run(name, func(t *testing.T) {
				got, err := ConfigYAML(s, DefaultNodeImage)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", name)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Fatalf("%s differs (-want +got):\n%s", path, diff)
				}
			})
		}
	}
}

func TestConfigNodesCarryTheVMsAndTheirLabels(t *testing.T) {
	s := exampleSpecs(t)[0]
	cfg, err := Config(s, "img")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Nodes) != 1+len(s.Nodes) {
		t.Fatalf("%d kind nodes, want 1 control plane + %d workers", len(cfg.Nodes), len(s.Nodes))
	}
	if cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole || cfg.Nodes[0].Labels[LabelVM] != s.ControlPlane[0].Name {
		t.Fatalf("control-plane node = %+v", cfg.Nodes[0])
	}
	for i, n := range s.Nodes {
		kn := cfg.Nodes[i+1]
		if kn.Role != v1alpha4.WorkerRole || kn.Image != "img" {
			t.Fatalf("node %d = %+v", i, kn)
		}
		want := map[string]string{
			LabelVM:                        n.Name,
			cluster.LabelHCIHost:           n.Host,
			cluster.LabelNodePool:          n.Pool,
			corev1.LabelInstanceTypeStable: n.Size,
			cluster.LabelAKSArcNodePool:    cluster.NodeLabels(s, n)[cluster.LabelAKSArcNodePool],
		}
		for k, v := range want {
			if kn.Labels[k] != v {
				t.Errorf("node %s: label %s = %q, want %q", n.Name, k, kn.Labels[k], v)
			}
		}
		if _, set := kn.Labels[corev1.LabelHostname]; set {
			t.Errorf("node %s: sets %s, which the kubelet owns in kind", n.Name, corev1.LabelHostname)
		}
	}
	if cfg.Networking.PodSubnet != s.Network.PodCIDR || cfg.Networking.ServiceSubnet != s.Network.ServiceCIDR {
		t.Fatalf("networking = %+v", cfg.Networking)
	}
}

// patchDoc finds the kubeadm patch of the given kind and parses it.
func patchDoc(t *testing.T, patches []string, kind string) map[string]any {
	t.Helper()
	for _, p := range patches {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(p), &m); err != nil {
			t.Fatalf("patch does not parse: %v\n%s", err, p)
		}
		if m["kind"] == kind {
			if _, has := m["apiVersion"]; has {
				t.Fatalf("%s patch has an apiVersion; kind then applies it to that kubeadm version only", kind)
			}
			return m
		}
	}
	t.Fatalf("no %s patch in %v", kind, patches)
	return nil
}

func extraArgs(t *testing.T, doc map[string]any, component string) map[string]any {
	t.Helper()
	c, ok := doc[component].(map[string]any)
	if !ok {
		t.Fatalf("ClusterConfiguration patch has no %s", component)
	}
	args, _ := c["extraArgs"].(map[string]any)
	return args
}

func TestConfigAppliesTheTimeProfileAndExtraArgs(t *testing.T) {
	for _, pn := range []cluster.TimeProfileName{cluster.ProfileReal, cluster.ProfileFast} {
		t.Run(string(pn), func(t *testing.T) {
			p, err := cluster.Profile(pn)
			if err != nil {
				t.Fatal(err)
			}
			s := exampleSpecs(t)[0]
			s.TimeProfile = pn
			s.ExtraArgs = map[cluster.Component][]string{
				cluster.KubeAPIServer:         {"--v=4"},
				cluster.KubeScheduler:         {"--profiling"},
				cluster.KubeControllerManager: {"--node-monitor-grace-period=99s"},
			}
			cfg, err := Config(s, "img")
			if err != nil {
				t.Fatal(err)
			}
			cc := patchDoc(t, cfg.KubeadmConfigPatches, "ClusterConfiguration")
			api := extraArgs(t, cc, "apiServer")
			want := map[string]any{
				"default-not-ready-toleration-seconds":   fmt.Sprint(p.DefaultNotReadyTolerationSeconds),
				"default-unreachable-toleration-seconds": fmt.Sprint(p.DefaultUnreachableTolerationSeconds),
				"v":                                      "4",
			}
			if diff := cmp.Diff(want, api); diff != "" {
				t.Errorf("apiServer extraArgs (-want +got):\n%s", diff)
			}
			cm := extraArgs(t, cc, "controllerManager")
			if cm["node-monitor-period"] != p.NodeMonitorPeriod.String() || cm["node-startup-grace-period"] != p.NodeStartupGracePeriod.String() {
				t.Errorf("controllerManager extraArgs = %v", cm)
			}
			if cm["node-monitor-grace-period"] != "99s" {
				t.Errorf("ExtraArgs did not override the profile: node-monitor-grace-period = %v", cm["node-monitor-grace-period"])
			}
			if sc := extraArgs(t, cc, "scheduler"); sc["profiling"] != "true" {
				t.Errorf("a bare flag becomes \"true\": scheduler extraArgs = %v", sc)
			}
			kc := patchDoc(t, cfg.KubeadmConfigPatches, "KubeletConfiguration")
			if kc["nodeLeaseDurationSeconds"] != float64(p.NodeLeaseDurationSeconds) || kc["nodeStatusUpdateFrequency"] != p.NodeStatusUpdateFrequency.String() {
				t.Errorf("KubeletConfiguration patch = %v", kc)
			}
		})
	}
}

func TestConfigTaintsWorkersOfTaintedPools(t *testing.T) {
	s := exampleSpecs(t)[0]
	s.Nodes[1].Taints = []cluster.Taint{{Key: "workload", Value: "gpu", Effect: "NoSchedule"}}
	cfg, err := Config(s, "img")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Nodes[1].KubeadmConfigPatches) != 0 {
		t.Fatalf("an untainted worker got patches: %v", cfg.Nodes[1].KubeadmConfigPatches)
	}
	jc := patchDoc(t, cfg.Nodes[2].KubeadmConfigPatches, "JoinConfiguration")
	want := map[string]any{"taints": []any{map[string]any{"key": "workload", "value": "gpu", "effect": "NoSchedule"}}}
	if diff := cmp.Diff(want, jc["nodeRegistration"]); diff != "" {
		t.Fatalf("JoinConfiguration nodeRegistration (-want +got):\n%s", diff)
	}
}

func TestCreateRefusesWithoutDockerOrForAnotherProvider(t *testing.T) {
	ctx := context.Background()
	s := exampleSpecs(t)[0]

	p := New(Options{Docker: filepath.Join(t.TempDir(), "no-docker"), Dir: t.TempDir()})
	if _, err := p.Create(ctx, s); !errors.Is(err, cluster.ErrInvalidSpec) {
		t.Fatalf("an embedded spec: err = %v, want ErrInvalidSpec", err)
	}
	s.Provider = cluster.ProviderKind
	if _, err := p.Create(ctx, s); !errors.Is(err, cluster.ErrUnsupported) {
		t.Fatalf("no Docker: err = %v, want ErrUnsupported", err)
	}
	if err := p.Delete(ctx, s.Name); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("Delete of a cluster never created: err = %v, want ErrNotFound", err)
	}
	if err := p.CutOff(ctx, s.Name, s.Nodes[0].Name); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("CutOff in a cluster never created: err = %v, want ErrNotFound", err)
	}
}

func TestWithOutOfService(t *testing.T) {
	base := []corev1.Taint{{Key: "workload", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	on, changed := withOutOfService(base, true)
	if !changed || len(on) != 2 || on[1].Key != corev1.TaintNodeOutOfService || on[1].Effect != corev1.TaintEffectNoExecute {
		t.Fatalf("add: %v, %v", on, changed)
	}
	if _, changed := withOutOfService(on, true); changed {
		t.Fatal("adding twice changed the taints")
	}
	off, changed := withOutOfService(on, false)
	if !changed || !cmp.Equal(off, base) {
		t.Fatalf("remove: %v, %v", off, changed)
	}
}

// TestNodeNamesFollowKindsNaming pins the names kind v0.33.0 gives the nodes of a Config (its
// MakeNodeNamer: <cluster>-<role>, then a count from 2 per role, in the config's node order).
func TestNodeNamesFollowKindsNaming(t *testing.T) {
	east := exampleSpecs(t)[0]
	one := east
	one.Name = "solo"
	one.Nodes = one.Nodes[:1]
	tests := []struct {
		name string
		spec cluster.Spec
		want map[string]string
	}{
		{"three workers", east, map[string]string{
			east.ControlPlane[0].Name: "workload-east-control-plane",
			east.Nodes[0].Name:        "workload-east-worker",
			east.Nodes[1].Name:        "workload-east-worker2",
			east.Nodes[2].Name:        "workload-east-worker3",
		}},
		{"one worker", one, map[string]string{
			one.ControlPlane[0].Name: "solo-control-plane",
			one.Nodes[0].Name:        "solo-worker",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Config(tc.spec, "img")
			if err != nil {
				t.Fatal(err)
			}
			got := NodeNames(cfg)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("NodeNames (-want +got):\n%s", diff)
			}
			info := newInfo(tc.spec, cfg, "kubeconfig")
			for _, n := range tc.spec.Nodes {
				if node := info.NodeName(n.Name); node != tc.want[n.Name] {
					t.Errorf("Info.NodeName(%q) = %q, want %q", n.Name, node, tc.want[n.Name])
				}
				if vm := info.VMName(tc.want[n.Name]); vm != n.Name {
					t.Errorf("Info.VMName(%q) = %q, want %q", tc.want[n.Name], vm, n.Name)
				}
			}
		})
	}
}

func TestCheckNodeNamesComparesWithTheNodesVMLabels(t *testing.T) {
	want := map[string]string{"vm-cp": "c-control-plane", "vm-1": "c-worker", "vm-2": "c-worker2"}
	node := func(name, vm string) corev1.Node {
		n := corev1.Node{}
		n.Name = name
		if vm != "" {
			n.Labels = map[string]string{LabelVM: vm}
		}
		return n
	}
	tests := []struct {
		name    string
		nodes   []corev1.Node
		wantErr bool
	}{
		{"as predicted", []corev1.Node{node("c-control-plane", "vm-cp"), node("c-worker", "vm-1"), node("c-worker2", "vm-2")}, false},
		{"workers swapped", []corev1.Node{node("c-control-plane", "vm-cp"), node("c-worker2", "vm-1"), node("c-worker", "vm-2")}, true},
		{"a VM without a Node", []corev1.Node{node("c-control-plane", "vm-cp"), node("c-worker", "vm-1")}, true},
		{"a Node without the VM label", []corev1.Node{node("c-control-plane", "vm-cp"), node("c-worker", "vm-1"), node("c-worker2", "")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNodeNames(want, tc.nodes)
			if tc.wantErr != errors.Is(err, ErrNodeNames) {
				t.Fatalf("err = %v, want an ErrNodeNames: %t", err, tc.wantErr)
			}
		})
	}
}

// fakeDocker is a docker command that records its arguments, one call per line, and succeeds: the
// commands the provider would run on a machine with Docker, checked where there is none.
func fakeDocker(t *testing.T) (cmd string, calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	cmd = filepath.Join(dir, "docker")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '"+log+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, func() []string {
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
	}
}

// TestCutOffPausesTheVMsKindNode checks that a VM name given to CutOff reaches Docker as the name of the
// VM's kind node container, which is what failover on a kind twin depends on.
func TestCutOffPausesTheVMsKindNode(t *testing.T) {
	ctx := context.Background()
	s := exampleSpecs(t)[0]
	s.Provider = cluster.ProviderKind
	docker, calls := fakeDocker(t)
	p := New(Options{Docker: docker, Dir: t.TempDir()})
	cfg, err := Config(s, "img")
	if err != nil {
		t.Fatal(err)
	}
	p.infos[s.Name] = newInfo(s, cfg, "kubeconfig") // what Create records once kind has made the cluster

	if err := p.CutOff(ctx, s.Name, s.Nodes[1].Name); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"pause_workload-east-worker2"}, calls()); diff != "" {
		t.Fatalf("docker calls (-want +got):\n%s", diff)
	}
	if err := p.CutOff(ctx, s.Name, "no-such-vm"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("CutOff of a VM the cluster lacks: err = %v, want ErrNotFound", err)
	}
	if n := len(calls()); n != 1 {
		t.Fatalf("a refused CutOff still ran docker (%d calls)", n)
	}
}
