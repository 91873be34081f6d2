package cluster

import "testing"

func TestInfoMapsVMsToNodeNames(t *testing.T) {
	kind := Info{Name: "east", Nodes: []string{"vm-w1", "vm-w2"}, NodeNames: map[string]string{
		"vm-cp1": "east-control-plane", "vm-w1": "east-worker", "vm-w2": "east-worker2",
	}}
	embedded := Info{Name: "east", Nodes: []string{"vm-w1", "vm-w2"}}
	tests := []struct {
		name     string
		info     Info
		vm, node string // NodeName(vm) == node and VMName(node) == vm
	}{
		{"kind worker", kind, "vm-w2", "east-worker2"},
		{"kind control plane", kind, "vm-cp1", "east-control-plane"},
		{"kind, a VM it does not know keeps its name", kind, "vm-w9", "vm-w9"},
		{"embedded names Nodes after VMs", embedded, "vm-w1", "vm-w1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.info.NodeName(tc.vm); got != tc.node {
				t.Errorf("NodeName(%q) = %q, want %q", tc.vm, got, tc.node)
			}
			if got := tc.info.VMName(tc.node); got != tc.vm {
				t.Errorf("VMName(%q) = %q, want %q", tc.node, got, tc.vm)
			}
		})
	}
}
