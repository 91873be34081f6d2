package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
)

// AddNode and RemoveNode on a cluster the provider does not run say so (ErrNotFound) and start nothing.
// Adding and removing nodes of a running cluster is exercised by the twin's tests (twin
// TestExampleTwinLifecycle scales a pool up and down) and the scenarios.
func TestNodePoolsOnAnUnknownCluster(t *testing.T) {
	p := New(Options{Dir: t.TempDir()})
	ctx := context.Background()
	err := p.AddNode(ctx, "nope", cluster.NodeSpec{Name: "nope-linux-0", Pool: "linux", Host: "hci-1", CPU: 4, MemoryMiB: 6144})
	if !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("AddNode on an unknown cluster: %v, want ErrNotFound", err)
	}
	if err := p.RemoveNode(ctx, "nope", "nope-linux-0"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("RemoveNode on an unknown cluster: %v, want ErrNotFound", err)
	}
	if infos, _ := p.List(ctx); len(infos) != 0 {
		t.Fatalf("clusters after refused node operations: %v", infos)
	}
}
