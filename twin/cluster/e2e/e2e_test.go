package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/support"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
)

// These cases are refused before any cluster starts; the full lifecycle through e2e-framework runs
// against real clusters in twin/cluster/integration.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	spec := cluster.Spec{Name: "w", Nodes: []cluster.NodeSpec{{Name: "n", Pool: "p", Host: "h", CPU: 1, MemoryMiB: 1024}}}
	newCluster := func() *Cluster { return New(embedded.New(embedded.Options{Dir: t.TempDir()}), spec) }
	example := filepath.Join("..", "..", "..", "examples", "clusters", "two-clusters.yaml")

	tests := []struct {
		name string
		run  func(c *Cluster) error
		want error
	}{
		{"extra create arguments", func(c *Cluster) error { _, err := c.Create(ctx, "--retain"); return err }, cluster.ErrUnsupported},
		{"another Kubernetes version", func(c *Cluster) error {
			_, err := c.WithVersion("v1.30.0").Create(ctx)
			return err
		}, cluster.ErrUnsupported},
		{"a binary path", func(c *Cluster) error { _, err := c.WithPath("/usr/bin/kind").Create(ctx); return err }, cluster.ErrUnsupported},
		{"a name the config file lacks", func(c *Cluster) error {
			_, err := c.WithName("nope").(*Cluster).CreateWithConfig(ctx, example)
			return err
		}, cluster.ErrNotFound},
		{"a config file that does not parse", func(c *Cluster) error {
			_, err := c.CreateWithConfig(ctx, filepath.Join("..", "testdata", "bad-values.yaml"))
			return err
		}, cluster.ErrInvalidSpec},
		{"adding a node", func(c *Cluster) error { return c.AddNode(ctx, &support.Node{Name: "x"}) }, cluster.ErrUnsupported},
		{"removing a node", func(c *Cluster) error { return c.RemoveNode(ctx, &support.Node{Name: "n"}) }, cluster.ErrUnsupported},
		{"stopping a node of a cluster not created", func(c *Cluster) error { return c.StopNode(ctx, &support.Node{Name: "n"}) }, cluster.ErrNotFound},
		{"destroying a cluster not created", func(c *Cluster) error { return c.Destroy(ctx) }, cluster.ErrNotFound},
		{"exporting logs of a cluster not created", func(c *Cluster) error { return c.ExportLogs(ctx, t.TempDir()) }, cluster.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(newCluster()); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOptionsAndDefaults(t *testing.T) {
	c := New(embedded.New(embedded.Options{Dir: t.TempDir()}), cluster.Spec{Name: "a"})
	c.SetDefaults()
	if c.wait != defaultWait {
		t.Fatalf("default wait = %s", c.wait)
	}
	c.WithOpts(WithWaitDuration(7))
	if c.wait != 7 {
		t.Fatalf("WithWaitDuration did not apply: %s", c.wait)
	}
	if c.WithName("b"); c.name != "b" {
		t.Fatalf("WithName: %s", c.name)
	}
}

// faultRecorder is a provider that only records which VMs it is asked to cut off and restore: what
// StopNode and StartNode pass on, checked without starting a cluster.
type faultRecorder struct {
	cluster.Provider // nil: only the NodeFaults methods are called
	calls            []string
}

func (f *faultRecorder) CutOff(_ context.Context, c, vm string) error {
	f.calls = append(f.calls, "cut-off "+c+"/"+vm)
	return nil
}

func (f *faultRecorder) Restore(_ context.Context, c, vm string) error {
	f.calls = append(f.calls, "restore "+c+"/"+vm)
	return nil
}

func (f *faultRecorder) MarkOutOfService(context.Context, string, string) error { return nil }

// TestNodeOperationsActOnTheNodesVM: e2e-framework names nodes as ListNode does, by Node name, while
// providers fail VMs; on kind the two differ.
func TestNodeOperationsActOnTheNodesVM(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		info cluster.Info
		node string
		want []string
	}{
		{"embedded: the Node is named after its VM", cluster.Info{Name: "w"}, "moc-2", []string{"cut-off w/moc-2", "restore w/moc-2"}},
		{"kind: the Node has kind's name", cluster.Info{Name: "w", NodeNames: map[string]string{"moc-1": "w-worker", "moc-2": "w-worker2"}},
			"w-worker2", []string{"cut-off w/moc-2", "restore w/moc-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &faultRecorder{}
			c := New(rec, cluster.Spec{Name: tc.info.Name})
			c.info = tc.info
			if err := c.StopNode(ctx, &support.Node{Name: tc.node}); err != nil {
				t.Fatal(err)
			}
			if err := c.StartNode(ctx, &support.Node{Name: tc.node}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rec.calls); diff != "" {
				t.Fatalf("provider calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeRole(t *testing.T) {
	cp := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}}
	if got := nodeRole(cp); got != "control-plane" {
		t.Errorf("kind's control-plane node: role %q", got)
	}
	if got := nodeRole(&corev1.Node{}); got != "worker" {
		t.Errorf("a VM-node: role %q", got)
	}
}
